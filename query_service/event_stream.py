"""Server-Sent Events on the wire: the framing of a view event and of the keep-alive comment,
the response that carries them, and the per-subject cap on open streams."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from query_service.live import OPEN_STREAMS, Subscriber
from shared.auth import Principal
from shared.http import ApiError

KEEP_ALIVE = b": keep-alive\n\n"
MEDIA_TYPE = "text/event-stream"
# Streams are live: no cache keeps them, and a proxy (nginx) must pass each event on at once.
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def view_event(version: int, data: bytes) -> bytes:
    """One `view` event. The data is one line: JSON as this service writes it has no raw
    newline (orjson escapes them inside strings)."""
    return b"event: view\nid: %d\ndata: %s\n\n" % (version, data)


async def view_events(subscriber: Subscriber, first: tuple[int, bytes], known: int,
                      keep_alive_s: float) -> AsyncIterator[bytes]:
    """The body of one stream: `first`, the view when the stream opened, unless the client
    already has that version (`known`, its Last-Event-ID, -1 for none); then every newer
    version the watcher offers, a keep-alive comment at least every `keep_alive_s`, and the
    end when the watcher ends the stream."""
    sent = known
    if first[0] > sent:
        sent = first[0]
        yield view_event(*first)
    # A comment at least every `keep_alive_s`, even while events flow: proxies and
    # clients that time out idle connections count comments, not events.
    clock = asyncio.get_running_loop().time
    due = clock() + keep_alive_s
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscriber.wake.wait(), max(0.0, due - clock()))
        if subscriber.ended:
            return
        latest = subscriber.take()
        if latest is not None and latest[0] > sent:  # never older after newer
            sent = latest[0]
            yield view_event(*latest)
        if clock() >= due:
            due = clock() + keep_alive_s
            yield KEEP_ALIVE


class EventStreamResponse(StreamingResponse):
    """A `text/event-stream` response; `on_close` runs however it ends (the client left, the
    server stops, the store failed). Starlette stops sending when the client disconnects.
    Compression middleware must leave it alone: gzip buffers, and a buffered event arrives
    late (Starlette's GZipMiddleware skips this media type)."""

    media_type = MEDIA_TYPE

    def __init__(self, content: AsyncIterator[bytes], status_code: int = 200, *,
                 on_close: Callable[[], None] = lambda: None) -> None:
        # `status_code` is in the signature because FastAPI reads the documented status of a
        # route's response class from it.
        super().__init__(content, status_code, headers=HEADERS)
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()
            await self.body_iterator.aclose()


class StreamSlots:
    """Open streams per subject, capped: each stream holds a slot until it ends. Counted in
    this process, as the command rate limit is; with authentication off there is no subject,
    and no cap (a closed network or a benchmark)."""

    def __init__(self, per_subject: int) -> None:
        self.per_subject = per_subject
        self._open: dict[str, int] = {}

    def acquire(self, reader: Principal) -> Callable[[], None]:
        """Take a slot (429 past the cap); returns what gives it back, once."""
        subject = reader.subject if reader.authenticated else None
        if subject is not None:
            if self._open.get(subject, 0) >= self.per_subject:
                raise ApiError(429, "too_many_streams",
                               f"this subject already has {self.per_subject} open streams; "
                               "close one or retry later", headers={"Retry-After": "5"})
            self._open[subject] = self._open.get(subject, 0) + 1
        OPEN_STREAMS.inc()
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            OPEN_STREAMS.dec()
            if subject is not None:
                left = self._open[subject] - 1
                if left:
                    self._open[subject] = left
                else:
                    del self._open[subject]

        return release

    def open_for(self, subject: str) -> int:
        return self._open.get(subject, 0)
