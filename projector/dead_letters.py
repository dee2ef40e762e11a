"""The dead-letter store: events the projector could not apply, parked with their reason.

Once an event of an aggregate is parked, every later event of that aggregate is parked behind
it, so the aggregate's order survives; `retry` re-applies an aggregate's parked events in
version order through the same planner as the live projector, and `discard` gives up on them
(the aggregate's views then need `verify --repair`). Events of a type or schema version this
release cannot read stay parked until a release that reads them retries them. Undecodable
messages are parked too, but can only be discarded.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from projector.delivery import AFTER_THE_UPGRADE
from projector.store import ReadStore, WriteConflictError, project_with_retries
from shared.envelope import EventEnvelope, utc_now
from shared.readmodel import DEAD_LETTERS
from shared.upcasting import READER, EventReader, UnreadableEvent

PARKED = "parked"


@dataclass
class RetryReport:
    applied: int = 0
    already_applied: int = 0
    still_parked: dict[str, str] = field(default_factory=dict)  # aggregate -> reason


class ParkedAggregates:
    """Which aggregates have parked events, known in the projector, so that a batch of
    aggregates with nothing parked costs no dead-letter query.

    Parked entries appear only when a projector parks: this one adds them here at once, and
    those another projector parked before a rebalance are read with the next batch after any
    assignment (`forget`). So an aggregate not known here has nothing parked. One known here
    may have been retried or discarded since (`dlq`), so it is confirmed by the store before
    its event is parked behind it."""

    def __init__(self, dead_letters: DeadLetters) -> None:
        self._dead_letters = dead_letters
        self._known: set[str] | None = None  # None: read them all before the next batch
        self._generation = 0  # bumped by forget(), which may run during a read (a rebalance)

    async def among(self, aggregate_ids: set[str]) -> set[str]:
        known = self._known
        while known is None:
            generation = self._generation
            known = await self._dead_letters.parked_aggregates()
            if generation != self._generation:
                known = None  # forgotten while reading: the previous owner may have parked more
        self._known = known
        candidates = known & aggregate_ids
        if not candidates:
            return set()
        parked = await self._dead_letters.parked_aggregates(candidates)
        if self._known is not None:
            self._known -= candidates - parked
        return parked

    def add(self, aggregate_ids: set[str]) -> None:
        if self._known is not None:
            self._known |= aggregate_ids

    def forget(self) -> None:
        self._known = None
        self._generation += 1


class DeadLetters:
    def __init__(self, db: AsyncDatabase, reader: EventReader = READER) -> None:
        self._collection = db[DEAD_LETTERS]
        self._reader = reader  # a parked event is read anew: the release may read it now

    async def parked_aggregates(self, among: set[str] | None = None) -> set[str]:
        """The aggregates (of `among`, or all) with parked events: one query."""
        query: dict = {"status": PARKED}
        if among is not None:
            query["aggregate_id"] = {"$in": sorted(among)}
        cursor = self._collection.find(query, {"aggregate_id": 1, "_id": 0})
        return {doc["aggregate_id"] async for doc in cursor if doc.get("aggregate_id")}

    async def park(self, entries: list[tuple[EventEnvelope, str, int, int]],
                   as_sent: dict[str, str] | None = None) -> None:
        """(event, reason, partition, offset). Idempotent: an event is parked once. `as_sent`:
        event id -> the message value to keep instead of the event as this release read it."""
        now = utc_now()
        as_sent = as_sent or {}
        await self._collection.bulk_write([
            ReplaceOne({"_id": event.event_id}, {
                "aggregate_id": event.aggregate_id, "aggregate_type": event.aggregate_type,
                "version": event.version, "event_type": event.event_type,
                "envelope": as_sent.get(event.event_id) or event.to_json(), "error": reason,
                "status": PARKED, "partition": partition, "offset": offset, "parked_at": now,
            }, upsert=True)
            for event, reason, partition, offset in entries
        ], ordered=False)

    async def park_undecodable(self, messages: list[tuple[object, object, str]]) -> None:
        now = utc_now()
        await self._collection.bulk_write([
            ReplaceOne({"_id": f"undecodable:{partition.partition}:{message.offset}"}, {
                "aggregate_id": None, "version": None, "event_type": None,
                "envelope": (message.value or b"").decode(errors="replace"),
                "key": (message.key or b"").decode(errors="replace"),
                "error": reason, "status": PARKED, "partition": partition.partition,
                "offset": message.offset, "parked_at": now,
            }, upsert=True)
            for partition, message, reason in messages
        ], ordered=False)

    async def list(self, aggregate_id: str | None = None) -> list[dict]:
        query: dict = {"status": PARKED}
        if aggregate_id:
            query["aggregate_id"] = aggregate_id
        return await self._collection.find(query).sort(
            [("aggregate_id", 1), ("version", 1)]).to_list()

    async def count_parked(self) -> int:
        return await self._collection.count_documents({"status": PARKED})

    async def get(self, entry_id: str) -> dict | None:
        return await self._collection.find_one({"_id": entry_id})

    async def retry(self, store: ReadStore, aggregate_id: str | None = None) -> RetryReport:
        """Apply the parked events of each aggregate, in version order. What applies (or was
        applied meanwhile) leaves the store; what still fails stays parked, in order."""
        report = RetryReport()
        # Until nothing is left: the live projector may park another event of an aggregate
        # while we retry it (the aggregate still looked parked), and that one must not stay.
        for _ in range(10):
            progressed = await self._retry_once(store, aggregate_id, report)
            if not progressed:
                break
        return report

    async def _retry_once(self, store: ReadStore, aggregate_id: str | None,
                          report: RetryReport) -> bool:
        """One pass over what is parked; True when something left the store."""
        report.still_parked.clear()
        by_aggregate: dict[str, list[dict]] = defaultdict(list)
        for entry in await self.list(aggregate_id):
            if entry["aggregate_id"] is None:
                report.still_parked[entry["_id"]] = "undecodable: can only be discarded"
                continue
            by_aggregate[entry["aggregate_id"]].append(entry)
        progressed = False
        for aggregate, entries in by_aggregate.items():
            try:
                events = [self._reader.read(EventEnvelope.from_json(e["envelope"]))
                          for e in entries]
            except UnreadableEvent as exc:
                report.still_parked[aggregate] = f"{exc}; {AFTER_THE_UPGRADE}"
                continue
            try:
                plan = await project_with_retries(store, events)
            except WriteConflictError:
                report.still_parked[aggregate] = "kept conflicting with another writer"
                continue
            done = {e.event_id for e in plan.applied} | {e.event_id for e in plan.duplicates}
            report.applied += len(plan.applied)
            report.already_applied += len(plan.duplicates)
            if done:
                await self._collection.delete_many({"_id": {"$in": sorted(done)}})
                progressed = True
            if plan.failed:
                event, error = plan.failed[0]
                await self._collection.update_one({"_id": event.event_id},
                                                  {"$set": {"error": error}})
                report.still_parked[aggregate] = f"v{event.version}: {error}"
            elif plan.held:
                report.still_parked[aggregate] = (
                    f"v{plan.held[0].version} waits for an earlier version the views lack; "
                    "run `cqrs-accounts verify --repair`")
        return progressed

    async def discard(self, entry_ids: list[str] | None = None,
                      aggregate_id: str | None = None) -> int:
        query: dict = {"status": PARKED}
        if entry_ids:
            query["_id"] = {"$in": entry_ids}
        if aggregate_id:
            query["aggregate_id"] = aggregate_id
        if not entry_ids and not aggregate_id:
            raise ValueError("name the entries or the aggregate to discard")
        result = await self._collection.update_many(
            query, {"$set": {"status": "discarded", "discarded_at": utc_now()}})
        return result.modified_count

    async def delete_discarded(self, before: datetime) -> int:
        """Forget entries discarded before `before` (CQRS_DEAD_LETTER_RETENTION_S): an operator
        gave up on them, and `verify --repair` repaired their views from the event log. Parked
        entries are never deleted, however old."""
        result = await self._collection.delete_many(
            {"status": "discarded", "discarded_at": {"$lt": before}})
        return result.deleted_count
