"""`verify --repair`: re-project each drifting customer from the event log.

Repair works per customer: the customer's own view, its accounts' views, their transactions and
histories and the customer's daily statistics are projected afresh from the event log and
replace what is stored, each document guarded by the revision it was read at, so a live
projector writing at the same moment is never overwritten.
"""

from __future__ import annotations

import asyncio

from pymongo import DeleteMany, ReplaceOne
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.event_log import events_of
from command_service.state_reads import account_ids_of
from projector.planner import plan_batch
from projector.projections import Doc
from projector.store import ReadStore, WriteConflictError, conflict_pause_s
from shared.readmodel import ACCOUNTS, CUSTOMERS, DAILY_STATS, HISTORY, TRANSACTIONS, ViewDatabase


async def repair(engine: AsyncEngine, views: ViewDatabase, customer_ids: set[str]) -> int:
    """Re-project each customer and its accounts from the event log; returns how many."""
    repaired = 0
    for customer_id in sorted(customer_ids):
        for attempt in range(20):
            try:
                await _repair_customer(engine, views, customer_id)
                break
            except WriteConflictError:  # the live projector wrote meanwhile: read again
                await asyncio.sleep(conflict_pause_s(attempt))
        else:
            raise RuntimeError(f"customer {customer_id} kept changing during the repair")
        repaired += 1
    return repaired


async def _repair_customer(engine: AsyncEngine, views: ViewDatabase, customer_id: str) -> None:
    await views.refresh()
    account_ids = await account_ids_of(engine, customer_id)
    # Read the stored revisions before the log, so the log holds at least what they show.
    before = {
        CUSTOMERS: {d["_id"]: d async for d in views[CUSTOMERS].find({"_id": customer_id})},
        ACCOUNTS: {d["_id"]: d async for d in views[ACCOUNTS].find({"_id": {"$in": account_ids}})},
        DAILY_STATS: {d["_id"]: d async for d in views[DAILY_STATS].find(
            {"customer_id": customer_id})},
    }
    events = await events_of(engine, [customer_id, *account_ids])  # by index, in order
    fresh = plan_batch(events, {}, {}, {})  # from nothing: the whole history is in order
    await _replace(views, DAILY_STATS, fresh.daily_stats, before[DAILY_STATS])
    await _replace_entries(views, TRANSACTIONS, {"account_id": {"$in": account_ids}},
                           fresh.transactions)
    await _replace_entries(views, HISTORY, {"aggregate_id": {"$in": [customer_id, *account_ids]}},
                           fresh.history)
    await _replace(views, CUSTOMERS, fresh.customers, before[CUSTOMERS])
    await _replace(views, ACCOUNTS, fresh.accounts, before[ACCOUNTS])


async def _replace_entries(views: ViewDatabase, view: str, owned: dict,
                           docs: list[Doc]) -> None:
    """Entries are written once and never change (see ReadStore._upsert): what `owned`
    selects becomes exactly `docs`, in one ordered bulk write."""
    await views[view].bulk_write(
        [DeleteMany({**owned, "_id": {"$nin": [d["_id"] for d in docs]}})]
        + [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs],
        ordered=True)


async def _replace(views: ViewDatabase, view: str, docs: dict[str, Doc],
                   before: dict[str, Doc]) -> None:
    stale = [doc_id for doc_id in before if doc_id not in docs]
    if stale:
        await views[view].delete_many({"_id": {"$in": stale}})
    if docs:
        await ReadStore(views).replace_guarded(view, docs, before)
