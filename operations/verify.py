"""`verify`: compare the write model with every read model; `--repair`: re-project what differs.

What the views should hold is computed twice and both are checked: from the write model's
state tables (balances, statuses, versions, names) and by folding the event log through the
same pure projections the projector uses (transaction counts, customer totals, daily
statistics, every history entry). Repair works per customer: the customer's own view, its
accounts' views, their transactions and histories and the customer's daily statistics are
projected afresh from the event log and
replace what is stored, each document guarded by the revision it was read at, so a live
projector writing at the same moment is never overwritten.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from pymongo import DeleteMany, ReplaceOne
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.event_log import read_events
from command_service.state_reads import account_ids_of, account_states, customer_states
from operations.drift import Drift, same_moment
from operations.history_check import HistoryCheck
from projector.planner import plan_batch
from projector.projections import (
    ACCOUNT_EVENTS,
    Doc,
    apply_to_account,
    apply_to_customer,
    apply_to_daily_stats,
    daily_stats_id,
    transaction_kind,
)
from projector.store import ReadStore, WriteConflictError, conflict_pause_s
from shared.envelope import EventEnvelope
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    TRANSACTIONS,
    ViewDatabase,
)

STATS_COMPARED = ("deposits_minor", "withdrawals_minor", "transfers_in_minor",
                  "transfers_out_minor", "count")


@dataclass
class Expected:
    """What every view should hold, folded from the event log (no transaction documents kept:
    only their count per account, so memory stays proportional to accounts and days)."""

    accounts: dict[str, Doc] = field(default_factory=dict)
    customers: dict[str, Doc] = field(default_factory=dict)
    daily_stats: dict[str, Doc] = field(default_factory=dict)
    transaction_counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))


async def fold_event_log(
        engine: AsyncEngine,
        each: Callable[[EventEnvelope, str], None] | None = None) -> Expected:
    """What the views should hold; `each(event, customer id)` sees every event on the way, so
    a check of a per-event view needs no second pass over the log."""
    expected = Expected()
    async for batch in read_events(engine):
        for event in batch:
            if event.event_type in ACCOUNT_EVENTS:
                expected.accounts[event.aggregate_id] = apply_to_account(
                    expected.accounts.get(event.aggregate_id), event)
                customer_id = event.payload["customer_id"]
                if transaction_kind(event):
                    expected.transaction_counts[event.aggregate_id] += 1
                    stats_id = daily_stats_id(event)
                    expected.daily_stats[stats_id] = apply_to_daily_stats(
                        expected.daily_stats.get(stats_id), event)
            else:
                customer_id = event.aggregate_id
            expected.customers[customer_id] = apply_to_customer(
                expected.customers.get(customer_id), event)
            if each is not None:
                each(event, customer_id)
    return expected


async def find_drift(engine: AsyncEngine, views: ViewDatabase) -> list[Drift]:
    await views.refresh()
    history = await HistoryCheck.load(views)
    expected = await fold_event_log(engine, history.check)
    drift: list[Drift] = []
    account_rows = await account_states(engine)
    customer_rows = await customer_states(engine)

    actual_accounts = {d["_id"]: d async for d in views[ACCOUNTS].find({})}
    for account_id, row in account_rows.items():
        want = expected.accounts.get(account_id, {})
        have = actual_accounts.pop(account_id, None) or {}
        checks = {"version": row.version, "balance_minor": row.balance_minor,
                  "status": row.status, "transaction_count":
                      expected.transaction_counts.get(account_id, 0),
                  # The write model keeps a frozen-then-closed account's freeze reason; the
                  # view, like the contract, has a reason only while the account is frozen.
                  "status_reason": row.freeze_reason if row.status == "frozen" else None}
        for name, value in checks.items():
            if have.get(name) != value or want.get(name) != value:
                drift.append(Drift(ACCOUNTS, account_id, name, value, have.get(name),
                                   row.customer_id))
        # Only the event log knows when the status last changed.
        changed_at = want.get("status_changed_at")
        if not same_moment(have.get("status_changed_at"), changed_at):
            drift.append(Drift(ACCOUNTS, account_id, "status_changed_at", changed_at,
                               have.get("status_changed_at"), row.customer_id))
    drift += [Drift(ACCOUNTS, doc_id, "_id", None, doc_id, doc.get("customer_id"))
              for doc_id, doc in actual_accounts.items()]

    actual_customers = {d["_id"]: d async for d in views[CUSTOMERS].find({})}
    for customer_id, row in customer_rows.items():
        want = expected.customers.get(customer_id, {})
        have = actual_customers.pop(customer_id, None) or {}
        for name, value in {"version": row.version, "name": row.name, "email": row.email,
                            "status": row.status, "summary": want.get("summary"),
                            "accounts": _entries(want)}.items():
            actual = _entries(have) if name == "accounts" else have.get(name)
            if actual != value:
                drift.append(Drift(CUSTOMERS, customer_id, name, value, actual, customer_id))
    drift += [Drift(CUSTOMERS, doc_id, "_id", None, doc_id, doc_id)
              for doc_id in actual_customers]

    counts = {d["_id"]: d["count"] async for d in await views[TRANSACTIONS].aggregate(
        [{"$group": {"_id": "$account_id", "count": {"$sum": 1}}}])}
    for account_id in set(counts) | set(expected.transaction_counts):
        want, have = expected.transaction_counts.get(account_id, 0), counts.get(account_id, 0)
        if want != have:
            owner = account_rows[account_id].customer_id if account_id in account_rows else None
            drift.append(Drift(TRANSACTIONS, account_id, "count", want, have, owner))

    actual_stats = {d["_id"]: d async for d in views[DAILY_STATS].find({})}
    for stats_id, want in expected.daily_stats.items():
        have = actual_stats.pop(stats_id, None) or {}
        for name in STATS_COMPARED:
            if have.get(name) != want[name]:
                drift.append(Drift(DAILY_STATS, stats_id, name, want[name], have.get(name),
                                   want["customer_id"]))
    drift += [Drift(DAILY_STATS, doc_id, "_id", None, doc_id, doc.get("customer_id"))
              for doc_id, doc in actual_stats.items()]
    return drift + history.drift()


async def find_lasting_drift(engine: AsyncEngine, views: ViewDatabase,
                             settle_s: float = 2.0) -> list[Drift]:
    """Drift that is not just lag: under live load a view trails the write model for a moment,
    so a difference counts only if it is still there, unchanged, `settle_s` later."""
    first = await find_drift(engine, views)
    if not first or settle_s <= 0:
        return first
    await asyncio.sleep(settle_s)
    seen = {(d.view, d.doc_id, d.field): repr(d.actual) for d in first}
    return [d for d in await find_drift(engine, views)
            if seen.get((d.view, d.doc_id, d.field)) == repr(d.actual)]


def _entries(doc: Doc) -> list[tuple]:
    return sorted((e["account_id"], e["version"], e["balance_minor"], e["status"],
                   e["transaction_count"]) for e in doc.get("accounts", []))


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
    events = [e async for batch in read_events(engine, aggregate_ids=[customer_id, *account_ids])
              for e in batch]
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
