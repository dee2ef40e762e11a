"""The ASGI middleware that authenticates every request under /v1 before anything else runs.

Pure ASGI rather than a FastAPI dependency alone: a caller without a valid token is refused
before any body is read or any route is matched, so it learns nothing about the API.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.auth.authenticator import principal_or_refusal
from shared.http import ApiError, error_response


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
                principal = principal_or_refusal(scope["app"].state.authenticator,
                                                 authorization, scope["method"], path)
            except ApiError as refusal:
                response = error_response(refusal.status, refusal.code, refusal.message,
                                          headers=refusal.headers)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
