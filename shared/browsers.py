"""What a browser needs from both services: CORS for the origins CQRS_CORS_ALLOW_ORIGINS names
(none by default: no CORS header at all), and gzip for answers over 1 KiB.

CORS is Starlette's CORSMiddleware, built at the first request from the settings the app's
lifespan loaded: the middleware stack is built before the lifespan runs, and the settings are
read in the lifespan, never when the app is created.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

# gzip only above this: smaller answers gain too little to pay for the compression.
GZIP_MINIMUM_BYTES = 1024
# What the services serve, and the request headers their routes read.
ALLOWED_METHODS = ("GET", "POST", "PATCH")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-None-Match",
                   "X-Consistency-Token", "X-Consistency-Wait-Ms", "X-Request-ID")
# The response headers a page's script may read (beyond the CORS-safelisted ones): read your
# writes, conditional reads, correlation, and how long to back off after a 429 or a 503.
EXPOSED_HEADERS = ("ETag", "X-Consistency-Token", "X-Command-ID", "X-Request-ID",
                   "Retry-After", "Idempotent-Replayed")


class BrowserAccess:
    """CORS for the configured origins; a plain pass-through when none is configured."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._handler: ASGIApp | None = None

    def _build(self, scope: Scope) -> ASGIApp:
        origins = scope["app"].state.settings.cors_origins
        if not origins:
            return self.app
        # No credentials: the services read bearer tokens, never cookies.
        return CORSMiddleware(self.app, allow_origins=origins, allow_methods=ALLOWED_METHODS,
                              allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._handler is None:
            self._handler = self._build(scope)
        await self._handler(scope, receive, send)
