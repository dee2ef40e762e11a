"""The projector's MongoDB I/O: load the documents a batch touches, write a plan back.

A batch costs a fixed number of round trips whatever its size: one `find` per view to load,
one unordered `bulk_write` per view to write. Each document carries `_rev`, bumped on every
write; a write is a replace guarded by the `_rev` it was planned from, with upsert, so a
concurrent writer (two projectors during a rebalance) makes it fail with E11000 instead of
overwriting: the batch is then planned again from fresh reads.
"""

from __future__ import annotations

import asyncio

from prometheus_client import Counter
from pymongo import ReplaceOne
from pymongo.errors import BulkWriteError

from projector.planner import (
    BatchPlan,
    account_ids_of,
    customer_ids_of,
    daily_stats_ids_of,
    plan_batch,
)
from projector.projections import Doc
from shared.backoff import Backoff
from shared.envelope import EventEnvelope
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    TRANSACTIONS,
    ViewDatabase,
)

ROUND_TRIPS = Counter("cqrs_projector_store_round_trips_total",
                      "Read-store calls made by the projector", ["operation"])
VIEW_WRITES = Counter("cqrs_projector_view_writes_total",
                      "Read-model documents written, per view", ["view"])
_DUPLICATE_KEY = 11000


class WriteConflictError(Exception):
    """Another writer changed a document since it was loaded; plan the batch again."""


class ReadStore:
    """Reads and writes views by logical name (see `ViewDatabase`), so a rebuild's switch to
    new collections is followed without a restart."""

    def __init__(self, views: ViewDatabase) -> None:
        self.views = views

    @property
    def db(self):
        return self.views.db

    async def load(self, collection: str, ids: set[str]) -> dict[str, Doc]:
        if not ids:
            return {}
        ROUND_TRIPS.labels("find").inc()
        # One reply for all of them: past 101 documents the default batch needs a getMore, and
        # without a limit the server keeps the cursor open for a getMore that finds nothing.
        cursor = self.views[collection].find({"_id": {"$in": sorted(ids)}},
                                             batch_size=len(ids), limit=len(ids))
        return {doc["_id"]: doc async for doc in cursor}

    async def write(self, plan: BatchPlan, loaded: dict[str, dict[str, Doc]]) -> None:
        """Dependants first, primaries last (see planner.py for why the order matters). The
        history, the transactions and the statistics depend on nothing written here, so they
        go together; the statistics must be written before the customer view, whose version a
        read-your-writes wait on the statistics goes by."""
        await _all_done(
            self._upsert(HISTORY, plan.history),
            self._upsert(TRANSACTIONS, plan.transactions),
            self.replace_guarded(DAILY_STATS, plan.daily_stats, loaded.get(DAILY_STATS, {})))
        await self.replace_guarded(CUSTOMERS, plan.customers, loaded.get(CUSTOMERS, {}))
        await self.replace_guarded(ACCOUNTS, plan.accounts, loaded.get(ACCOUNTS, {}))

    async def _upsert(self, collection: str, docs: list[Doc]) -> None:
        """Entries that never change once written: keyed by what they record, so writing one
        again (a redelivery, a crash before the commit) replaces it with itself."""
        if docs:
            VIEW_WRITES.labels(collection).inc(len(docs))
            await self._bulk(collection, [
                ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in docs])

    async def replace_guarded(self, collection: str, docs: dict[str, Doc],
                       before: dict[str, Doc]) -> None:
        operations = []
        for doc_id, doc in docs.items():
            revision = before.get(doc_id, {}).get("_rev")
            operations.append(ReplaceOne(
                {"_id": doc_id, "_rev": revision},  # {"_rev": None} also matches "no document"
                {**doc, "_rev": (revision or 0) + 1},
                upsert=True,
            ))
        if operations:
            VIEW_WRITES.labels(collection).inc(len(operations))
            await self._bulk(collection, operations)

    async def _bulk(self, collection: str, operations: list) -> None:
        ROUND_TRIPS.labels("bulk_write").inc()
        try:
            await self.views[collection].bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if errors and all(e.get("code") == _DUPLICATE_KEY for e in errors):
                raise WriteConflictError(
                    f"{len(errors)} {collection} document(s) changed concurrently") from exc
            raise


async def _all_done(*calls):
    """Run the calls at once; once every one has finished, raise the first failure, if any
    (plain gather would leave the others running into the caller's retry)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


async def project_events(store: ReadStore, events: list[EventEnvelope]) -> BatchPlan:
    """Load what the events touch, plan them, write the plan: a fixed number of round trips
    (3 finds, at most 5 bulk writes) however many events there are. Raises
    WriteConflictError when another writer got there first; the caller plans again."""
    await store.views.refresh()
    accounts, customers, daily_stats = await _all_done(  # three finds at once
        store.load(ACCOUNTS, account_ids_of(events)),
        store.load(CUSTOMERS, customer_ids_of(events)),
        store.load(DAILY_STATS, daily_stats_ids_of(events)))
    loaded = {ACCOUNTS: accounts, CUSTOMERS: customers, DAILY_STATS: daily_stats}
    plan = plan_batch(events, loaded[ACCOUNTS], loaded[CUSTOMERS], loaded[DAILY_STATS])
    await store.write(plan, loaded)
    return plan


CONFLICT_PAUSE = Backoff(first_s=0.01, max_s=1.0)  # a write race lost: plan again soon


def conflict_pause_s(attempt: int) -> float:
    """How long to wait before planning again after losing a write race: growing, capped."""
    return CONFLICT_PAUSE.delay_s(attempt + 1)


async def project_with_retries(store: ReadStore, events: list[EventEnvelope],
                               attempts: int = 50) -> BatchPlan:
    """project_events, planned again from fresh reads while another writer (the live
    projector) keeps winning the race, with a growing pause."""
    for attempt in range(attempts):
        try:
            return await project_events(store, events)
        except WriteConflictError:
            await asyncio.sleep(conflict_pause_s(attempt))
    raise WriteConflictError(f"still conflicting after {attempts} attempts")
