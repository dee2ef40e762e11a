"""Bearer-token authentication and the access rules both services share.

Every `/v1` route needs `Authorization: Bearer <JWT>`; the token's claims say who is calling and
what they may do. Tokens and secrets are never logged and never echoed in a response.

One job per module:

- `principal`: the scopes and the Principal (who is calling, what they may do);
- `errors`: the 401 / 403 refusals and their `WWW-Authenticate` challenge;
- `claims`: a verified token's claims -> Principal;
- `keys`: the trusted keys, loaded from the settings (PEM, JWKS), and `check_auth_settings`;
- `tokens`: verifying a token (with its cache) and minting one;
- `authenticator`: the process's Authenticator, from an `Authorization` header to a Principal;
- `middleware`: the ASGI middleware that authenticates everything under /v1;
- `dependencies`: the FastAPI dependencies (scope checks, the /metrics guard);
- `openapi`: the OpenAPI descriptions of the refusals.

The names other packages use are re-exported here.
"""

from shared.auth.authenticator import Authenticator
from shared.auth.dependencies import authenticate, metrics_guard, require_reader, require_scope
from shared.auth.errors import REALM, forbidden
from shared.auth.keys import check_auth_settings, describe
from shared.auth.middleware import BearerAuthMiddleware
from shared.auth.openapi import AUTH_RESPONSES, RATE_LIMITED_RESPONSE
from shared.auth.principal import ADMIN, ANONYMOUS, READ, SCOPES, SYSTEM, WRITE, Principal
from shared.auth.tokens import LEEWAY_S, TokenVerifier, mint_token

__all__ = [
    "ADMIN",
    "ANONYMOUS",
    "AUTH_RESPONSES",
    "LEEWAY_S",
    "RATE_LIMITED_RESPONSE",
    "READ",
    "REALM",
    "SCOPES",
    "SYSTEM",
    "WRITE",
    "Authenticator",
    "BearerAuthMiddleware",
    "Principal",
    "TokenVerifier",
    "authenticate",
    "check_auth_settings",
    "describe",
    "forbidden",
    "metrics_guard",
    "mint_token",
    "require_reader",
    "require_scope",
]
