"""Live updates: a view as Server-Sent Events (docs/api.md, "Live updates").

A stream is refused like its view's GET is (401/403, 404 before the stream starts, 503), or
429 past the subject's cap; then it sends the view as it is, and every newer version the
process's ViewWatcher (query_service/live.py) finds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, FastAPI, Header, Request

from query_service.deps import ConsistencyDep, Db, Reader
from query_service.event_stream import (
    MEDIA_TYPE,
    EventStreamResponse,
    StreamSlots,
    view_events,
)
from query_service.live import ACCOUNT, CUSTOMER, ViewKind, ViewWatcher, event_data
from query_service.routers.accounts import visible_account
from query_service.routers.customers import visible_customer
from shared.config import Settings
from shared.http import ERROR_RESPONSES

router = APIRouter(tags=["live updates"])

LastEventId = Annotated[int | None, Header(
    alias="Last-Event-ID", ge=0,
    description="the `id` of the last event received: the view is sent at once only if it "
                "has moved past it")]

_EXAMPLE = 'event: view\nid: 3\ndata: {"account_id": "…", "balance": "12.50", …}\n\n' \
           ": keep-alive\n\n"
STREAM_RESPONSES = {
    200: {"description": "Server-Sent Events: the view now (`event: view`, `id`: its version, "
                         "`data`: its JSON exactly as the view's GET answers it), then once "
                         "more each time it changes (several versions may be folded into one "
                         "event; the id only grows); a `: keep-alive` comment at least every "
                         "15 s. The stream ends when the read store fails: reconnect with "
                         "Last-Event-ID.",
          "content": {MEDIA_TYPE: {"schema": {"type": "string"}, "example": _EXAMPLE}}},
    **{k: ERROR_RESPONSES[k] for k in (404, 422, 503)},
    429: {"description": "Too many queries from this subject (`rate_limited`), or it has "
                         "CQRS_STREAMS_PER_SUBJECT streams open already "
                         "(`too_many_streams`); retry after Retry-After seconds",
          "headers": {"Retry-After": {"schema": {"type": "integer"}}},
          "content": {"application/json": {"schema": {
              "$ref": "#/components/schemas/ErrorResponse"}}}},
}


@asynccontextmanager
async def live_updates(app: FastAPI, config: Settings):
    """The process's watcher and stream slots, for as long as the service runs (inside the
    read store's lifespan). `app.state.drain` ends every stream when the server stops, which
    would otherwise wait for them until its graceful-shutdown timeout (shared/worker.py)."""
    watcher = ViewWatcher(app.state.db, config.stream_poll_ms / 1000,
                          timeout_s=2 * config.mongo_timeout_ms / 1000)
    app.state.watcher = watcher
    app.state.stream_slots = StreamSlots(config.streams_per_subject)
    app.state.drain = watcher.end_all
    watcher.start()
    try:
        yield
    finally:
        await watcher.stop()


@router.get("/v1/accounts/{account_id}/stream", response_class=EventStreamResponse,
            responses=STREAM_RESPONSES, summary="One account's view, live (Server-Sent Events)")
async def account_stream(request: Request, account_id: UUID, db: Db,
                         consistency: ConsistencyDep, reader: Reader,
                         last_event_id: LastEventId = None) -> EventStreamResponse:
    doc, release = await _first_view(request, reader, lambda: visible_account(
        db, account_id, consistency, reader))
    return _stream(request, ACCOUNT, doc, last_event_id, release)


@router.get("/v1/customers/{customer_id}/stream", response_class=EventStreamResponse,
            responses=STREAM_RESPONSES,
            summary="A customer's 360 view, live (Server-Sent Events)",
            description="The event id is the customer's version plus every account's: the "
                        "360 view changes with its accounts, the customer's version does not.")
async def customer_stream(request: Request, customer_id: UUID, db: Db,
                          consistency: ConsistencyDep, reader: Reader,
                          last_event_id: LastEventId = None) -> EventStreamResponse:
    doc, release = await _first_view(request, reader, lambda: visible_customer(
        db, customer_id, consistency, reader))
    return _stream(request, CUSTOMER, doc, last_event_id, release)


async def _first_view(request: Request, reader, read: Callable[[], Awaitable[dict]]):
    """A stream's slot (429 past the subject's cap, before any read), then its first view
    as the GET answers it; the slot is given back if that read fails (404, 503, 403)."""
    release = request.app.state.stream_slots.acquire(reader)
    try:
        return await read(), release
    except BaseException:
        release()
        raise


def _stream(request: Request, kind: ViewKind, doc: dict, last_event_id: int | None,
            release) -> EventStreamResponse:
    watcher: ViewWatcher = request.app.state.watcher
    first = (kind.version(doc), event_data(kind, doc))
    subscriber = watcher.subscribe(kind, doc["_id"], first)

    def close() -> None:
        watcher.unsubscribe(kind, doc["_id"], subscriber)
        release()

    known = -1 if last_event_id is None else last_event_id
    body = view_events(subscriber, first, known, request.app.state.settings.stream_keepalive_s)
    return EventStreamResponse(body, on_close=close)
