"""HTTP pieces both services share: the contract's error format, the body-size cap, and the
/healthz, /readyz and /metrics endpoints (also served by the relay and the projector)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.metrics import metrics_text
from shared.outages import ANY_DEPENDENCY_DOWN

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
READINESS_TIMEOUT_S = 2.0

ReadinessCheck = Callable[[], Awaitable[object]]

ERROR_RESPONSES = {
    code: {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorResponse"}}}}
    for code, text in {
        404: "Not found", 409: "Refused by a business rule", 413: "Request body over 1 MiB",
        422: "Malformed request", 503: "A dependency is unavailable",
    }.items()
}


async def app_settings(request: Request):
    """The settings the app was started with (set in its lifespan). Not get_settings with a
    dependency override: FastAPI re-inspects every dependency on every request once any
    override exists, which cost a third of the query service's CPU. Async, because FastAPI
    runs a plain `def` dependency in its thread pool: a thread hand-off per request."""
    return request.app.state.settings


class ApiError(Exception):
    """An error answered in the contract's format."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.headers = headers or {}


def json_response(content: Any) -> Response:
    """A 200 JSON response, encoded here. For a view already in its documented shape: FastAPI
    neither validates nor re-encodes a Response the endpoint returns (the route's
    response_model still documents it), and orjson writes the same bytes as FastAPI's encoder
    at a tenth of the cost of validating and encoding a page."""
    return Response(json_bytes(content), media_type="application/json")


def json_bytes(content: Any) -> bytes:
    """A view's JSON as `json_response` sends it (event streams send the same bytes)."""
    return orjson.dumps(content)


def error_response(status: int, code: str, message: str, details: list | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"error": {"code": code, "message": message, "details": details or []}},
        headers=headers,
    )


def _field_name(loc: tuple) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    if not parts:
        return str(loc[0]) if loc else "body"
    return ".".join(parts)


def _validation_details(exc: RequestValidationError) -> list[dict]:
    details = []
    for error in exc.errors():
        message = error.get("msg", "is invalid")
        field = _field_name(tuple(error.get("loc", ())))
        if error.get("type") == "json_invalid":  # its location is a character offset
            message, field = "the body is not valid JSON", "body"
        elif error.get("type") == "missing" and tuple(error.get("loc", ())) == ("body",):
            message = "a JSON body is required"
        message = message.removeprefix("Value error, ")
        details.append({"field": field, "message": message})
    return details


def install_error_handlers(app: FastAPI, unavailable: tuple[type[BaseException], ...] = ()) -> None:
    """Every error leaves in one shape: {"error": {"code", "message", "details"}}."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "validation_error", "the request is malformed",
                              _validation_details(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:  # FastAPI could not decode the body (not UTF-8, ...)
            return error_response(422, "validation_error", "the request is malformed",
                                  [{"field": "body", "message": "the body is not valid JSON"}])
        codes = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}
        return error_response(exc.status_code, codes.get(exc.status_code, "http_error"),
                              str(exc.detail), headers=getattr(exc, "headers", None))

    async def _dependency_down(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("dependency unavailable: %s", exc.__class__.__name__)
        return error_response(503, "dependency_unavailable",
                              "a dependency is unavailable; retry shortly",
                              headers={"Retry-After": "1"})

    for exc_type in (*unavailable, *ANY_DEPENDENCY_DOWN):
        app.add_exception_handler(exc_type, _dependency_down)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "an unexpected error occurred")


class BodySizeLimit:
    """Refuse bodies over the cap with 413 before reading them into memory (pure ASGI, so it
    works for chunked uploads that carry no Content-Length too)."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge(self.max_bytes)
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._too_large(scope, receive, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(413, "payload_too_large",
                                  f"the request body is over {self.max_bytes} bytes")
        await response(scope, receive, send)


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException, so FastAPI's body parsing lets it through to the 413 handler."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, f"the request body is over {max_bytes} bytes")


def health_router(checks: dict[str, ReadinessCheck],
                  metrics_guard: Callable[..., Awaitable[None]] | None = None) -> APIRouter:
    """/healthz: the process answers. /readyz: every dependency answers within a short timeout;
    otherwise 503 naming the first one that does not. /metrics: Prometheus text, behind
    `metrics_guard` when given (a dependency that may refuse the request)."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict:
        return {"status": "ok"}

    @router.get("/readyz", summary="Every dependency answers",
                responses={503: ERROR_RESPONSES[503]})
    async def readyz() -> JSONResponse:
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check(), READINESS_TIMEOUT_S)
            except Exception as exc:  # any failure means not ready; say which dependency
                return error_response(503, "dependency_unavailable",
                                      f"{name} is not answering ({exc.__class__.__name__})",
                                      [{"dependency": name}], {"Retry-After": "1"})
        return JSONResponse({"status": "ready", "checks": sorted(checks)})

    guarded = metrics_guard is not None
    guard_errors = {status: {"description": text, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/ErrorResponse"}}}}
        for status, text in ((401, "No valid bearer token (when only admins may read it)"),
                             (403, "The token lacks the admin scope"))}

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response,
                dependencies=[Depends(metrics_guard)] if guarded else [],
                responses=guard_errors if guarded else None)
    async def metrics() -> Response:
        return Response(metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return router


def add_error_schema(app: FastAPI) -> None:
    """Document the error body in the OpenAPI schema that every error response refers to."""
    original = app.openapi

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorResponse"] = {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message", "details"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                               "details": {"type": "array", "items": {"type": "object"}}},
            }},
        }
        _no_null_parameters(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi


def _no_null_parameters(schema: dict) -> None:
    """An optional header or query parameter is absent, never null: HTTP has no null, and the
    text "null" is no integer or date. FastAPI documents `X | None` parameters as
    `anyOf: [X, null]`; keep X."""
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) \
                    else []:
                options = parameter.get("schema", {}).get("anyOf")
                if not options:
                    continue
                kept = [o for o in options if o.get("type") != "null"]
                if len(kept) != len(options):
                    rest = {k: v for k, v in parameter["schema"].items() if k != "anyOf"}
                    parameter["schema"] = {**kept[0], **rest} if len(kept) == 1 \
                        else {**rest, "anyOf": kept}
