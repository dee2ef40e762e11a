"""The projector's MongoDB I/O: load the documents a batch touches, write a plan back.

A batch costs a fixed number of round trips whatever its size: one `find` per view to load,
one unordered `bulk_write` per view to write. Each document carries `_rev`, bumped on every
write; a write is a replace guarded by the `_rev` it was planned from, with upsert, so a
concurrent writer (two projectors during a rebalance) makes it fail with E11000 instead of
overwriting: the batch is then planned again from fresh reads.
"""

from __future__ import annotations

from prometheus_client import Counter
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from projector.planner import BatchPlan
from projector.projections import Doc
from shared.readmodel import ACCOUNTS, CUSTOMERS, DAILY_STATS, TRANSACTIONS

ROUND_TRIPS = Counter("cqrs_projector_store_round_trips_total",
                      "Read-store calls made by the projector", ["operation"])
_DUPLICATE_KEY = 11000


class WriteConflictError(Exception):
    """Another writer changed a document since it was loaded; plan the batch again."""


class ReadStore:
    def __init__(self, db: AsyncDatabase) -> None:
        self.db = db

    async def load(self, collection: str, ids: set[str]) -> dict[str, Doc]:
        if not ids:
            return {}
        ROUND_TRIPS.labels("find").inc()
        cursor = self.db[collection].find({"_id": {"$in": sorted(ids)}})
        return {doc["_id"]: doc async for doc in cursor}

    async def write(self, plan: BatchPlan, loaded: dict[str, dict[str, Doc]]) -> None:
        """Dependants first, primaries last (see planner.py for why the order matters)."""
        if plan.transactions:
            await self._bulk(TRANSACTIONS, [
                ReplaceOne({"_id": doc["_id"]}, doc, upsert=True) for doc in plan.transactions
            ])
        await self._guarded(DAILY_STATS, plan.daily_stats, loaded.get(DAILY_STATS, {}))
        await self._guarded(CUSTOMERS, plan.customers, loaded.get(CUSTOMERS, {}))
        await self._guarded(ACCOUNTS, plan.accounts, loaded.get(ACCOUNTS, {}))

    async def _guarded(self, collection: str, docs: dict[str, Doc],
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
            await self._bulk(collection, operations)

    async def _bulk(self, collection: str, operations: list) -> None:
        ROUND_TRIPS.labels("bulk_write").inc()
        try:
            await self.db[collection].bulk_write(operations, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if errors and all(e.get("code") == _DUPLICATE_KEY for e in errors):
                raise WriteConflictError(
                    f"{len(errors)} {collection} document(s) changed concurrently") from exc
            raise
