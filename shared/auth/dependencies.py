"""The FastAPI dependencies routes declare: the caller's Principal with a scope, and /metrics.

The wiring between HTTP and authentication (the middleware has already checked the token under
/v1; these add the scope a route needs), apart from the token logic itself.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.security import HTTPBearer

from shared.auth.authenticator import principal_or_refusal
from shared.auth.errors import forbidden
from shared.auth.principal import ADMIN, READ, Principal


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
            principal = principal_or_refusal(request.app.state.authenticator,
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
    principal = principal_or_refusal(request.app.state.authenticator,
                                     request.headers.get("authorization"),
                                     request.method, request.url.path)
    if not principal.is_admin:
        raise forbidden("reading /metrics needs the admin scope", ADMIN)
