"""A long history for the verify bench, built fast: its events written to the write model in
bulk, and its views computed in-process by the projector's own planner and inserted in bulk.

Projected the projector's way (a `find` and a guarded `bulk_write` per view per batch),
SecantusDB took 18 minutes for 105k events, so a million would take hours; and the history is
not what the bench measures. The documents are still exactly the projector's: the event rows
are the command service's (the domain model's events through `envelope_of`), read back as the
event log reads them (`as_read`) and planned by `plan_batch`, the function the projector,
`rebuild` and `verify` share. tests/integration/test_bench_verify_history.py builds a small
history both ways, finds the same documents, and `verify` no drift.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from types import SimpleNamespace

from pymongo.asynchronous.database import AsyncDatabase
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service import outbox_envelope
from command_service.db.tables import accounts, customers, events, naive_utc
from command_service.domain.events import AccountOpened, CustomerRegistered, DomainEvent
from command_service.event_log import as_read
from command_service.outbox_envelope import envelope_of
from operations.rebuild import replay
from projector.planner import plan_batch
from projector.projections import Doc
from projector.store import ReadStore
from shared.envelope import EventEnvelope
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    INDEXES,
    TRANSACTIONS,
    ViewDatabase,
    read_registry,
)

CHUNK = 5_000  # events per write-model transaction (one executemany) and per plan
INSERT_BATCH = 10_000  # documents per insert_many


class StateRows:
    """The customers' and accounts' state rows the events leave (bank histories hold only
    registrations, openings and money movements), written once at the end."""

    def __init__(self) -> None:
        self.customers: dict[str, dict] = {}
        self.accounts: dict[str, dict] = {}

    def add(self, event: DomainEvent) -> None:
        at = naive_utc(event.occurred_at)
        if isinstance(event, CustomerRegistered):
            self.customers[event.customer_id] = dict(
                customer_id=event.customer_id, name=event.name, email=event.email,
                email_normalized=event.email.lower(), status="active", version=event.version,
                created_at=at, updated_at=at)
        elif isinstance(event, AccountOpened):
            self.accounts[event.account_id] = dict(
                account_id=event.account_id, customer_id=event.customer_id,
                account_type=event.type, currency=event.currency,
                balance_minor=event.balance_after_minor, status="active", freeze_reason=None,
                version=event.version, opened_at=at, updated_at=at)
        else:
            self.accounts[event.account_id].update(balance_minor=event.balance_after_minor,
                                                   version=event.version, updated_at=at)

    async def write(self, engine: AsyncEngine) -> None:
        async with engine.begin() as conn:
            for table, rows in ((customers, self.customers), (accounts, self.accounts)):
                values = list(rows.values())
                for i in range(0, len(values), CHUNK):
                    await conn.execute(table.insert(), values[i:i + CHUNK])


def event_row(event: DomainEvent, position: int) -> dict:
    """The events-table row the command service's unit of work writes for `event`."""
    return {**outbox_envelope.event_row(envelope_of(event, str(uuid.uuid4()))),
            "position": position}


Chunk = Callable[[list[dict]], Awaitable[None]]  # told each chunk of rows once committed


async def write_log(engine: AsyncEngine, domain_events: Iterable[DomainEvent], start: int,
                    each_chunk: Chunk | None = None) -> int:
    """Event rows at positions `start` + 1 on and the state rows they leave, a chunk per
    transaction; returns the last position written."""
    state, position = StateRows(), start
    stream = iter(domain_events)
    while chunk := list(islice(stream, CHUNK)):
        rows = []
        for event in chunk:
            position += 1
            rows.append(event_row(event, position))
            state.add(event)
        async with engine.begin() as conn:
            await conn.execute(events.insert(), rows)
        if each_chunk is not None:
            await each_chunk(rows)
    await state.write(engine)
    return position


class ViewFold:
    """Every view's documents after the events so far, planned as the projector plans a
    batch. A fresh bulk-built log has no duplicate, gap or unknown event: any is a bug here."""

    def __init__(self) -> None:
        self.accounts: dict[str, Doc] = {}
        self.customers: dict[str, Doc] = {}
        self.daily_stats: dict[str, Doc] = {}

    def fold(self, batch: list[EventEnvelope]):
        plan = plan_batch(batch, self.accounts, self.customers, self.daily_stats)
        if plan.held or plan.failed or plan.duplicates:
            raise ValueError(f"the history does not fold: {len(plan.held)} held, "
                             f"{len(plan.failed)} failed, {len(plan.duplicates)} duplicates")
        self.accounts.update(plan.accounts)
        self.customers.update(plan.customers)
        self.daily_stats.update(plan.daily_stats)
        return plan

    def final(self) -> dict[str, list[Doc]]:
        # `_rev` 1: the store's revision of a document written once (projector/store.py).
        return {view: [{**doc, "_rev": 1} for doc in docs.values()]
                for view, docs in ((ACCOUNTS, self.accounts), (CUSTOMERS, self.customers),
                                   (DAILY_STATS, self.daily_stats))}


class BulkInserts:
    """Documents buffered per view and inserted INSERT_BATCH at a time, unordered, one
    insert in flight while the next chunk is made (the store and this process each keep a
    core busy)."""

    def __init__(self, views: ViewDatabase) -> None:
        self._views = views
        self._buffers: dict[str, list[Doc]] = {}
        self._in_flight: asyncio.Task | None = None

    async def add(self, view: str, docs: list[Doc]) -> None:
        buffer = self._buffers.setdefault(view, [])
        buffer.extend(docs)
        while len(buffer) >= INSERT_BATCH:
            await self._send(view, buffer[:INSERT_BATCH])
            del buffer[:INSERT_BATCH]

    async def _send(self, view: str, docs: list[Doc]) -> None:
        if self._in_flight is not None:
            await self._in_flight
        self._in_flight = asyncio.create_task(
            self._views[view].insert_many(docs, ordered=False))

    async def close(self) -> None:
        for view, buffer in self._buffers.items():
            if buffer:
                await self._send(view, list(buffer))
        self._buffers.clear()
        if self._in_flight is not None:
            await self._in_flight


@dataclass
class BuiltHistory:
    last_position: int
    events: int
    seconds: float  # all of it: events, state rows, documents, indexes
    index_seconds: float


async def build_history(engine: AsyncEngine, db: AsyncDatabase,
                        domain_events: Iterable[DomainEvent], start: int = 0) -> BuiltHistory:
    """Write the events after `start` and the views they make, into an empty read store."""
    started = time.monotonic()
    views = await ViewDatabase(db).refresh()
    fold, inserts = ViewFold(), BulkInserts(views)

    async def project(rows: list[dict]) -> None:
        plan = fold.fold([as_read(SimpleNamespace(**row)) for row in rows])
        await inserts.add(HISTORY, plan.history)
        await inserts.add(TRANSACTIONS, plan.transactions)

    last = await write_log(engine, domain_events, start, project)
    for view, docs in fold.final().items():
        await inserts.add(view, docs)
    await inserts.close()
    # Indexes last: SecantusDB inserts into indexed collections at half the speed (20k
    # transactions: 17 s with their six indexes, 2 s without and 8 s to index them after).
    # One index per call: it builds each with a scan of the whole collection, and the six of
    # a million transactions in one createIndexes outlast the client's socket timeout.
    indexed = time.monotonic()
    physical = await read_registry(db)
    for view, indexes in INDEXES.items():
        for index in indexes:
            await db[physical.get(view, view)].create_indexes([index])
    done = time.monotonic()
    return BuiltHistory(last, last - start, round(done - started, 1), round(done - indexed, 1))


async def project_log(engine: AsyncEngine, db: AsyncDatabase, after: int) -> int:
    """The projector's own way, for the events that are measured: the log after `after`
    replayed as `rebuild` replays it (operations/rebuild.py), each batch loaded, planned and
    written by the projector's store. Returns the number of events projected."""
    seen, _ = await replay(engine, ReadStore(ViewDatabase(db)), after)
    return seen
