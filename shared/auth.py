"""Bearer-token authentication and the access rules both services share.

Every `/v1` route needs `Authorization: Bearer <JWT>`. A token is accepted when its signature
verifies with a configured key (HS256 with `CQRS_AUTH_JWT_SECRET`; RS256/ES256 with
`CQRS_AUTH_PUBLIC_KEY` or a key of `CQRS_AUTH_JWKS_FILE`), it has not expired, and its `iss` and
`aud` are the configured ones. Its claims say what the caller may do:

- `sub`: who, recorded with every command (at most 255 characters);
- `scope` (space-separated, or a list; `scp` is read too): `accounts:write` to send commands,
  `accounts:read` to query, `admin` for everything (including /metrics when that is closed);
- `customer_id` (optional): limits the token to that customer, its accounts and transactions.

Tokens and secrets are never logged and never echoed in a response.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import Request
from fastapi.security import HTTPBearer
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.config import Settings, SettingsError
from shared.http import ApiError, error_response

log = logging.getLogger("cqrs.auth")

ADMIN = "admin"
READ = "accounts:read"
WRITE = "accounts:write"
SCOPES = (READ, WRITE, ADMIN)

MAX_TOKEN_CHARS = 8192
MAX_SUBJECT_CHARS = 255
LEEWAY_S = 30  # clock skew tolerated on exp / nbf / iat
VERIFIED_TOKENS_KEPT = 10_000  # per process, least recently used dropped first
ASYMMETRIC = {"RS256", "ES256"}
DEV_SECRET_FILE = "auth-secret"
REALM = 'Bearer realm="cqrs-accounts"'


@dataclass(frozen=True)
class Principal:
    """Who is calling, and what the token lets them do."""

    subject: str
    scopes: frozenset[str]
    customer_id: str | None = None
    authenticated: bool = True

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def has(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    @property
    def restricted(self) -> bool:
        """A customer's token: its own customer, accounts and transactions only."""
        return not self.is_admin and self.customer_id is not None

    def may_see_customer(self, customer_id: str | None) -> bool:
        return not self.restricted or customer_id == self.customer_id


# With authentication off, every caller is this one; commands record it as their subject.
ANONYMOUS = Principal("anonymous", frozenset(SCOPES), None, authenticated=False)
# A command run by code in this process (tests, operations), not over HTTP.
SYSTEM = Principal("system", frozenset(SCOPES), None, authenticated=False)


# -- errors ------------------------------------------------------------------------------------

def unauthorized(message: str, *, invalid: bool = True) -> ApiError:
    challenge = f'{REALM}, error="invalid_token"' if invalid else REALM
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": challenge})


def forbidden(message: str, scope: str | None = None) -> ApiError:
    headers = ({"WWW-Authenticate": f'{REALM}, error="insufficient_scope", scope="{scope}"'}
               if scope else {})
    return ApiError(403, "forbidden", message, headers=headers)


# -- keys and verification -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    algorithm: str
    key: Any
    kid: str | None = None


def _pem_text(value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = Path(value).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SettingsError(f"CQRS_AUTH_PUBLIC_KEY: cannot read {path} "
                            f"({exc.strerror or exc.__class__.__name__})") from None


def _public_key(value: str) -> _Key:
    try:
        key = serialization.load_pem_public_key(_pem_text(value))
    except ValueError:
        raise SettingsError("CQRS_AUTH_PUBLIC_KEY: not a PEM public key") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise SettingsError("CQRS_AUTH_PUBLIC_KEY: an RSA key needs at least 2048 bits")
        return _Key("RS256", key)
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return _Key("ES256", key)
    raise SettingsError("CQRS_AUTH_PUBLIC_KEY: must be an RSA (RS256) or P-256 (ES256) key")


def _jwks(path_text: str) -> list[_Key]:
    path = Path(path_text).expanduser()
    try:
        keyset = jwt.PyJWKSet.from_json(path.read_text())
    except OSError as exc:
        raise SettingsError(f"CQRS_AUTH_JWKS_FILE: cannot read {path} "
                            f"({exc.strerror or exc.__class__.__name__})") from None
    except (jwt.PyJWKSetError, jwt.PyJWKError, ValueError, KeyError) as exc:
        raise SettingsError(f"CQRS_AUTH_JWKS_FILE: not a usable JWKS ({exc})") from None
    keys = [_Key(k.algorithm_name, k.key, k.key_id) for k in keyset.keys
            if k.algorithm_name in ASYMMETRIC and getattr(k, "public_key_use", None) != "enc"]
    if not keys:
        raise SettingsError("CQRS_AUTH_JWKS_FILE: holds no RS256 or ES256 signing key")
    return keys


def check_auth_settings(settings: Settings) -> None:
    """Raise SettingsError (one line naming the setting) unless the process can check tokens:
    authentication is off, or a key is configured and loads."""
    if not settings.auth_disabled:
        TokenVerifier.from_settings(settings)


class TokenVerifier:
    def __init__(self, keys: list[_Key], issuer: str, audience: str,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys, self.issuer, self.audience = keys, issuer, audience
        self._clock = clock
        # Tokens already verified -> (principal, end of validity). A client sends the same
        # token with every request, and checking a signature costs more than the rest of
        # authentication. Only accepted tokens are kept: what could change by the next
        # request is expiry, checked on each hit.
        self._verified: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier:
        keys: list[_Key] = []
        secret = settings.auth_jwt_secret.get_secret_value()
        if secret:
            keys.append(_Key("HS256", secret.encode()))
        if settings.auth_public_key:
            keys.append(_public_key(settings.auth_public_key))
        if settings.auth_jwks_file:
            keys.extend(_jwks(settings.auth_jwks_file))
        if not keys:
            raise SettingsError(
                "CQRS_AUTH_JWT_SECRET: authentication is on but no key is configured; set it "
                "(or CQRS_AUTH_PUBLIC_KEY / CQRS_AUTH_JWKS_FILE), or CQRS_AUTH_DISABLED=true "
                "on a network nobody else reaches")
        return cls(keys, settings.auth_issuer, settings.auth_audience)

    def _key_for(self, header: dict) -> _Key:
        algorithm, kid = header.get("alg"), header.get("kid")
        candidates = [k for k in self._keys if k.algorithm == algorithm]
        if kid is not None:
            named = [k for k in candidates if k.kid == kid]
            candidates = named or [k for k in candidates if k.kid is None]
        if len(candidates) != 1:
            raise unauthorized("the token is not signed with a key this service accepts")
        return candidates[0]

    def verify(self, token: str) -> Principal:
        if len(token) > MAX_TOKEN_CHARS:
            raise unauthorized("the token is too long")
        known = self._verified.get(token)
        if known is not None:
            principal, valid_until = known
            if self._clock() < valid_until:
                self._verified.move_to_end(token)
                return principal
            del self._verified[token]
        principal, expires = self._check(token)
        # PyJWT refuses a token once `exp <= now - leeway`.
        self._verified[token] = (principal, expires + LEEWAY_S)
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return principal

    def _check(self, token: str) -> tuple[Principal, int]:
        """Verify the signature and claims: the caller's principal and the token's `exp`."""
        try:
            header = jwt.get_unverified_header(token)
            key = self._key_for(header)
            claims = jwt.decode(
                token, key.key, algorithms=[key.algorithm], audience=self.audience,
                issuer=self.issuer, leeway=LEEWAY_S,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise unauthorized("the token is meant for another audience") from None
        except jwt.InvalidIssuerError:
            raise unauthorized("the token comes from an issuer this service does not trust"
                               ) from None
        except jwt.InvalidSignatureError:
            raise unauthorized("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise unauthorized(f"the token has no {exc.claim} claim") from None
        except jwt.ImmatureSignatureError:
            raise unauthorized("the token is not valid yet") from None
        except jwt.PyJWTError:
            raise unauthorized("the token is malformed") from None
        return principal_from_claims(claims), int(claims["exp"])


def principal_from_claims(claims: dict) -> Principal:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject.strip() or len(subject) > MAX_SUBJECT_CHARS \
            or not subject.isprintable():
        raise unauthorized(f"the token's sub must be 1 to {MAX_SUBJECT_CHARS} printable "
                           "characters")
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(v for v in value if isinstance(v, str))
    customer_id = claims.get("customer_id")
    if customer_id is not None:
        try:
            customer_id = str(uuid.UUID(str(customer_id)))
        except ValueError:
            raise unauthorized("the token's customer_id is not a customer id") from None
    return Principal(subject, frozenset(scopes) & set(SCOPES), customer_id)


def mint_token(settings: Settings, *, subject: str, scopes: list[str] | tuple[str, ...],
               customer_id: str | None = None, ttl_s: int = 3600,
               private_key: bytes | None = None, kid: str | None = None) -> str:
    """A token these services accept: signed with the configured HS256 secret, or with
    `private_key` (PEM, RSA -> RS256, P-256 EC -> ES256) whose public half they are given."""
    now = int(time.time())
    claims: dict[str, Any] = {"iss": settings.auth_issuer, "aud": settings.auth_audience,
                              "sub": subject, "iat": now, "exp": now + ttl_s,
                              "scope": " ".join(scopes)}
    if customer_id is not None:
        claims["customer_id"] = str(uuid.UUID(customer_id))
    headers = {"kid": kid} if kid else None
    if private_key is not None:
        key = serialization.load_pem_private_key(private_key, password=None)
        algorithm = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    secret = settings.auth_jwt_secret.get_secret_value()
    if not secret:
        raise SettingsError("CQRS_AUTH_JWT_SECRET: is not set, so there is no key to sign "
                            "with (give --private-key for RS256/ES256)")
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def dev_secret(data_dir: Path) -> str:
    """The development secret of `cqrs-accounts dev`: made once, kept under the data directory
    (readable by its owner only), so a restarted stack accepts the tokens it printed before."""
    path = Path(data_dir) / DEV_SECRET_FILE
    if path.exists():
        secret = path.read_text().strip()
        if len(secret) >= 32:
            return secret
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(secret + "\n")
    return secret


# -- FastAPI -------------------------------------------------------------------------------------

class Authenticator:
    """Per process: checks bearer tokens (or lets everyone in as ANONYMOUS when disabled)."""

    def __init__(self, verifier: TokenVerifier | None) -> None:
        self._verifier = verifier

    @classmethod
    def from_settings(cls, settings: Settings) -> Authenticator:
        if settings.auth_disabled:
            log.warning("authentication is disabled (CQRS_AUTH_DISABLED=true): anyone who can "
                        "reach this service can use it")
            return cls(None)
        return cls(TokenVerifier.from_settings(settings))

    @property
    def enabled(self) -> bool:
        return self._verifier is not None

    def principal(self, token: str | None) -> Principal:
        if self._verifier is None:
            return ANONYMOUS
        if token is None:
            raise unauthorized("a bearer token is required (Authorization: Bearer <token>)",
                               invalid=False)
        return self._verifier.verify(token)


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def _principal_or_refusal(authenticator: Authenticator, authorization: str | None,
                          method: str, path: str) -> Principal:
    try:
        return authenticator.principal(bearer_token(authorization))
    except ApiError as refusal:
        log.info("refused %s %s: %s", method, path, refusal.message)  # never the token
        raise


class BearerAuthMiddleware:
    """Authenticates every request under /v1 before anything else looks at it (no body is
    read, no route is revealed, for a caller without a valid token) and leaves the principal
    in the request's state. The Authenticator is the app's (`app.state.authenticator`, made
    in its lifespan)."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1") -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            authorization = Headers(scope=scope).get("authorization")
            try:
                principal = _principal_or_refusal(scope["app"].state.authenticator,
                                                  authorization, scope["method"], path)
            except ApiError as refusal:
                response = error_response(refusal.status, refusal.code, refusal.message,
                                          headers=refusal.headers)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class BearerPrincipal(HTTPBearer):
    """A dependency: the caller (as BearerAuthMiddleware found it under /v1, else checked
    here), if its token has one of `any_of` (or admin; any token when `any_of` is empty).

    It is itself the bearer security scheme, so the OpenAPI schema documents the scheme on
    each route, and FastAPI resolves the whole check as one dependency: each level of a
    dependency chain costs FastAPI tens of microseconds per request."""

    def __init__(self, *any_of: str) -> None:
        super().__init__(
            auto_error=False, scheme_name="bearerAuth", bearerFormat="JWT",
            description="A JWT with `sub`, `scope` (accounts:read, accounts:write or admin) "
                        "and, for a customer's token, `customer_id`; see `cqrs-accounts "
                        "token`.",
        )
        self.any_of = any_of

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        principal = request.scope.get("state", {}).get("principal")
        if principal is None:
            principal = _principal_or_refusal(request.app.state.authenticator,
                                              request.headers.get("authorization"),
                                              request.method, request.url.path)
        if self.any_of and not any(principal.has(scope) for scope in self.any_of):
            raise forbidden(f"the token lacks the {' or '.join(self.any_of)} scope",
                            self.any_of[0])
        return principal


authenticate = BearerPrincipal()


def require_scope(*any_of: str) -> BearerPrincipal:
    """A dependency: the caller's principal, if its token has one of `any_of` (or admin)."""
    return BearerPrincipal(*any_of)


require_reader = require_scope(READ)  # one callable, so FastAPI runs it once per request


async def metrics_guard(request: Request) -> None:
    """/metrics: open, or with CQRS_AUTH_METRICS_ADMIN_ONLY (`app.state.metrics_admin_only`)
    readable with an admin token only."""
    if not getattr(request.app.state, "metrics_admin_only", False):
        return
    principal = _principal_or_refusal(request.app.state.authenticator,
                                      request.headers.get("authorization"),
                                      request.method, request.url.path)
    if not principal.is_admin:
        raise forbidden("reading /metrics needs the admin scope", ADMIN)


def _error_response(text: str) -> dict:
    return {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorResponse"}}}}


AUTH_RESPONSES: dict[int | str, dict] = {
    401: _error_response("No bearer token, or one that is expired, malformed or not signed "
                         "by a trusted key (with a WWW-Authenticate header)"),
    403: _error_response("The token lacks the scope, or the data belongs to another customer"),
}
RATE_LIMITED_RESPONSE: dict[int | str, dict] = {
    429: _error_response("Too many commands from this subject; retry after Retry-After seconds"),
}


def describe(settings: Settings) -> str:
    """How this process checks tokens, for a start-up log line (never the key itself)."""
    if settings.auth_disabled:
        return "authentication disabled"
    kinds = [name for name, present in (
        ("HS256 secret", settings.auth_jwt_secret.get_secret_value()),
        ("public key", settings.auth_public_key), ("JWKS file", settings.auth_jwks_file),
    ) if present]
    return (f"bearer tokens ({', '.join(kinds)}; iss={json.dumps(settings.auth_issuer)}, "
            f"aud={json.dumps(settings.auth_audience)})")
