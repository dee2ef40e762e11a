"""What a browser needs from both services: CORS for the origins CQRS_CORS_ALLOW_ORIGINS names
(none by default: no CORS header at all), and gzip for answers over 1 KiB.

CORS is Starlette's CORSMiddleware, built at the first request from the settings the app's
lifespan loaded: the middleware stack is built before the lifespan runs, and the settings are
read in the lifespan, never when the app is created.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from shared.http import error_response

# gzip only above 1 KiB: smaller answers gain too little to pay for the compression. Level 6,
# not Starlette's 9: on a 500-item page (130 KB of JSON) 9 took 7.9 ms and 6 took 2.7 ms, for
# 23.8 KB and 23.9 KB (measured here, 2026-12-03).
GZIP_OPTIONS = {"minimum_size": 1024, "compresslevel": 6}
# What the services serve, and the request headers their routes read.
ALLOWED_METHODS = ("GET", "POST", "PATCH")
ALLOWED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key", "If-None-Match",
                   "Last-Event-ID", "X-Consistency-Token", "X-Consistency-Wait-Ms",
                   "X-Request-ID")
# The response headers a page's script may read (beyond the CORS-safelisted ones): read your
# writes, conditional reads, correlation, and how long to back off after a 429 or a 503.
EXPOSED_HEADERS = ("ETag", "X-Consistency-Token", "X-Command-ID", "X-Request-ID",
                   "Retry-After", "Idempotent-Replayed")


class _CORS(CORSMiddleware):
    """Starlette's CORS, with a refused preflight answered in the contract's error format
    (Starlette answers it in plain text)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        kept = {name: value for name, value in response.headers.items()
                if name.lower() not in ("content-length", "content-type")}
        return error_response(response.status_code, "cors_refused",
                              response.body.decode(errors="replace"), headers=kept)


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
        return _CORS(self.app, allow_origins=origins, allow_methods=ALLOWED_METHODS,
                     allow_headers=ALLOWED_HEADERS, expose_headers=EXPOSED_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._handler is None:
            self._handler = self._build(scope)
        await self._handler(scope, receive, send)
