"""The process's authenticator: from an `Authorization` header to the caller's Principal.

One object per process (the app's `app.state.authenticator`, made in its lifespan), shared by
the middleware and the route dependencies, so both check a token the same way and share one
cache of verified tokens. With authentication off, everyone is ANONYMOUS.
"""

from __future__ import annotations

import logging

from shared.auth.errors import unauthorized
from shared.auth.principal import ANONYMOUS, Principal
from shared.auth.tokens import TokenVerifier
from shared.config import Settings
from shared.http import ApiError

log = logging.getLogger("cqrs.auth")


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


def principal_or_refusal(authenticator: Authenticator, authorization: str | None,
                         method: str, path: str) -> Principal:
    """The caller of `method path`; a refusal is logged (never the token) and raised."""
    try:
        return authenticator.principal(bearer_token(authorization))
    except ApiError as refusal:
        log.info("refused %s %s: %s", method, path, refusal.message)  # never the token
        raise
