"""What the event streams (routers/streams.py) learn about changes of the views they show.

One `ViewWatcher` per query process polls the read store for every view an open stream
watches: each tick is ONE `find` per kind of view, for all watched ids at once, projected to
the versions, and, only when some view moved, ONE more `find` of the views that moved, each
rendered once and handed to every stream watching it. So the store's load grows with the
number of views that change, never with the number of streams (200 streams of one account
cost what one does).

Why polling and not change streams: MongoDB serves `$changeStream` on replica sets only, and
the production read store (docker-compose.yml) is a standalone `mongod`; a poll works on every
topology, follows a rebuild's switch of collections (`ViewDatabase.refresh`), and its failure
is one place to end every stream cleanly.

A stream never goes backwards: each `Subscriber` keeps only the newest version offered to it
(a slow client gets several versions folded into one event), and the stream itself sends only
versions above the last one it sent (event_stream.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge

from query_service import views
from shared.http import json_bytes
from shared.readmodel import ACCOUNTS, CUSTOMERS, ViewDatabase

log = logging.getLogger(__name__)

TICKS = Counter("cqrs_query_stream_ticks_total", "Polls of the views event streams watch")
STORE_QUERIES = Counter("cqrs_query_stream_store_queries_total",
                        "Read-store queries made to serve the event streams", ["operation"])
# With `--workers N` each worker has its own streams: what the service has open is the sum
# over the workers alive (shared/metrics.py).
OPEN_STREAMS = Gauge("cqrs_query_streams_open", "Event streams open", multiprocess_mode="livesum")
WATCHED_VIEWS = Gauge("cqrs_query_stream_watched_views", "Views event streams watch",
                      multiprocess_mode="livesum")


def customer_revision(doc: dict) -> int:
    """A customer 360 view's stream version: the customer's own version plus every account's.
    The view changes when the customer or any of its accounts changes, and every such event
    adds one to one of these versions, so the sum grows with every change (the customer's own
    `version` does not move on a deposit). Derived from the content, so it also holds across a
    rebuild, where the documents' write counters start again."""
    return doc["version"] + sum(entry["version"] for entry in doc.get("accounts", ()))


@dataclass(frozen=True, eq=False)  # two kinds, each its own key
class ViewKind:
    """How one kind of view is watched: its collection, the fields its version is computed
    from, and the rendering its GET route answers with."""

    collection: str
    version_fields: dict[str, int]
    version: Callable[[dict], int]
    render: Callable[[dict], dict]


ACCOUNT = ViewKind(ACCOUNTS, {"version": 1}, lambda doc: doc["version"], views.account_view)
CUSTOMER = ViewKind(CUSTOMERS, {"version": 1, "accounts.version": 1}, customer_revision,
                    views.customer_360)


def event_data(kind: ViewKind, doc: dict) -> bytes:
    """The view's JSON exactly as its GET answers it (shared/http.py's `json_response`)."""
    return json_bytes(kind.render(doc))


class Subscriber:
    """One stream's mailbox: the newest (version, data) offered, or the end of the stream."""

    def __init__(self) -> None:
        self.latest: tuple[int, bytes] | None = None
        self.ended = False
        self.wake = asyncio.Event()

    def offer(self, version: int, data: bytes) -> None:
        if self.latest is None or version > self.latest[0]:
            self.latest = (version, data)
            self.wake.set()

    def end(self) -> None:
        self.ended = True
        self.wake.set()

    def take(self) -> tuple[int, bytes] | None:
        latest, self.latest = self.latest, None
        self.wake.clear()
        return latest


@dataclass
class _Watch:
    latest: tuple[int, bytes] | None = None  # the newest version seen and its event data
    subscribers: set[Subscriber] = field(default_factory=set)


class ViewWatcher:
    """Polls the watched views every `poll_s`; ends every stream when the store fails."""

    def __init__(self, db: ViewDatabase, poll_s: float, timeout_s: float) -> None:
        self._db, self._poll_s, self._timeout_s = db, poll_s, timeout_s
        self._watches: dict[ViewKind, dict[str, _Watch]] = {ACCOUNT: {}, CUSTOMER: {}}
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="view-watcher")

    async def stop(self) -> None:
        self.end_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def subscribe(self, kind: ViewKind, view_id: str, first: tuple[int, bytes]) -> Subscriber:
        """Watch a view whose (version, event data) `first` the stream just read and sends
        first. No await in here: whatever the watcher published while the stream was reading
        is either in `first` already or handed over now, so no change between the two is
        lost."""
        subscriber = Subscriber()
        watch = self._watches[kind].setdefault(view_id, _Watch())
        watch.subscribers.add(subscriber)
        if watch.latest is None or first[0] > watch.latest[0]:
            watch.latest = first
        elif watch.latest[0] > first[0]:
            subscriber.offer(*watch.latest)
        WATCHED_VIEWS.set(self.watched)
        return subscriber

    def unsubscribe(self, kind: ViewKind, view_id: str, subscriber: Subscriber) -> None:
        watch = self._watches[kind].get(view_id)
        if watch is not None:
            watch.subscribers.discard(subscriber)
            if not watch.subscribers:
                del self._watches[kind][view_id]
        WATCHED_VIEWS.set(self.watched)

    @property
    def watched(self) -> int:
        return sum(len(watches) for watches in self._watches.values())

    def end_all(self) -> None:
        """End every open stream (its client reconnects) and forget what was watched."""
        for watches in self._watches.values():
            for watch in watches.values():
                for subscriber in watch.subscribers:
                    subscriber.end()
            watches.clear()
        WATCHED_VIEWS.set(0)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            if not self.watched:
                continue
            try:
                # A store that stops answering must not hang the streams: past the timeout
                # they end like on any other failure, and the clients reconnect.
                async with asyncio.timeout(self._timeout_s):
                    await self.tick()
            except Exception as exc:
                log.warning("event streams ended: the read store failed (%s: %s)",
                            exc.__class__.__name__, exc)
                self.end_all()

    async def tick(self) -> None:
        TICKS.inc()
        db = await self._db.refresh()  # follow a rebuild's switch of collections
        for kind, watches in self._watches.items():
            if watches:
                await self._poll(db, kind, watches)

    async def _poll(self, db: ViewDatabase, kind: ViewKind, watches: dict[str, _Watch]) -> None:
        ids = sorted(watches)
        STORE_QUERIES.labels("versions").inc()
        # One reply for all of them (see projector/store.py: no getMore, no open cursor).
        found = await db[kind.collection].find(
            {"_id": {"$in": ids}}, kind.version_fields, batch_size=len(ids),
            limit=len(ids)).to_list()
        moved = [doc["_id"] for doc in found if doc["_id"] in watches and (
            (latest := watches[doc["_id"]].latest) is None or kind.version(doc) > latest[0])]
        if not moved:
            return
        STORE_QUERIES.labels("views").inc()
        docs = await db[kind.collection].find(
            {"_id": {"$in": moved}}, batch_size=len(moved), limit=len(moved)).to_list()
        for doc in docs:
            watch = watches.get(doc["_id"])  # the last stream may have left meanwhile
            version = kind.version(doc)
            if watch is None or (watch.latest is not None and version <= watch.latest[0]):
                continue
            watch.latest = (version, event_data(kind, doc))
            for subscriber in watch.subscribers:
                subscriber.offer(*watch.latest)
