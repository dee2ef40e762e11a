"""Bearer tokens: verifying one (with a cache of those already accepted) and minting one.

A token is accepted when its signature verifies with a trusted key (shared/auth/keys.py), it has
not expired, and its `iss` and `aud` are the configured ones. Minting lives beside verifying so
the claims a token is made with and the claims it is checked for cannot drift apart.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth.claims import principal_from_claims
from shared.auth.errors import unauthorized
from shared.auth.keys import Key, keys_from_settings
from shared.auth.principal import Principal
from shared.config import Settings, SettingsError

MAX_TOKEN_CHARS = 8192
LEEWAY_S = 30  # clock skew tolerated on exp / nbf / iat
VERIFIED_TOKENS_KEPT = 10_000  # per process, least recently used dropped first


class TokenVerifier:
    def __init__(self, keys: list[Key], issuer: str, audience: str,
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
        return cls(keys_from_settings(settings), settings.auth_issuer, settings.auth_audience)

    def _key_for(self, header: dict) -> Key:
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
