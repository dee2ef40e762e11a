"""Request metrics, request ids and structured JSON logs, shared by every process.

A request id (`X-Request-ID`, accepted from the client or made up) becomes the correlation id of
everything the request causes: it is stored in the outbox row's headers, travels in the Kafka
message headers, and is put back into the log context by the projector, so one `grep` of the
correlation id finds a command's lines in the command service, the relay and the projector.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import time
import uuid

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_LATENCY = Histogram(
    "cqrs_http_request_duration_seconds", "HTTP request latency by route and status",
    ["service", "method", "route", "status"],
    buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10),
)

# What the current line of work is about; read by the JSON log formatter.
LOG_CONTEXT: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar(
    "log_context", default={})  # noqa: B039 (never mutated: always replaced)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def bind(**fields: str | None) -> contextvars.Token:
    """Add fields to the log context of this task (and the tasks it starts)."""
    return LOG_CONTEXT.set({**LOG_CONTEXT.get(), **{k: v for k, v in fields.items() if v}})


def current(field: str) -> str | None:
    return LOG_CONTEXT.get().get(field)


class RequestContext:
    """Pure ASGI middleware: request id in and out, and a latency histogram per route (the
    route's template, e.g. /v1/accounts/{account_id}, so ids never explode the labels)."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sent = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else str(uuid.uuid4())
        token = bind(request_id=request_id, correlation_id=request_id)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"],
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_LATENCY.labels(self.service, scope["method"], route, str(status)).observe(
                time.perf_counter() - started)
            LOG_CONTEXT.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with the log context's ids."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **LOG_CONTEXT.get(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """For people at a terminal (`make dev`): the same fields, as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        context = " ".join(f"{k}={v}" for k, v in LOG_CONTEXT.get().items())
        return f"{super().format(record)}{' ' + context if context else ''}"


def configure_logging(level: str, fmt: str = "json") -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
    else:
        formatter = TextFormatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    formatter.converter = time.gmtime  # UTC, like every timestamp we print
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # aiokafka logs every reconnect attempt at ERROR while a broker is away; our own loops
    # report outages once, with what they do about them.
    logging.getLogger("aiokafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
