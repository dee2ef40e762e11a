"""`verify`: compare the write model with every read model; `--repair`: re-project what differs.

What the views should hold is computed twice and both are checked: from the write model's
state tables (balances, statuses, versions, names) and by folding the event log through the
same pure projections the projector uses (transaction counts, customer totals, daily
statistics, every history entry). A check covers a scope (operations/scope.py): everything,
folding the whole log, or a few customers, folding only their events. Repair is
operations/repair.py.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.event_log import events_of, read_events
from operations.drift import Drift, same_moment
from operations.history_check import HistoryCheck
from operations.scope import EVERYTHING, Scope, ScopeRows, find_all
from projector.projections import (
    ACCOUNT_EVENTS,
    Doc,
    apply_to_account,
    apply_to_customer,
    apply_to_daily_stats,
    daily_stats_id,
    transaction_kind,
)
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


async def _batches(engine: AsyncEngine, aggregate_ids: list[str] | None):
    if aggregate_ids is None:
        async for batch in read_events(engine):
            yield batch
    else:
        yield await events_of(engine, aggregate_ids)


async def fold_event_log(
        engine: AsyncEngine,
        each: Callable[[EventEnvelope, str], None] | None = None,
        aggregate_ids: list[str] | None = None) -> Expected:
    """What the views should hold (only those of `aggregate_ids`' events, when given);
    `each(event, customer id)` sees every event on the way, so a check of a per-event view
    needs no second pass over the log."""
    expected = Expected()
    async for batch in _batches(engine, aggregate_ids):
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


async def find_drift(engine: AsyncEngine, views: ViewDatabase,
                     scope: Scope = EVERYTHING) -> list[Drift]:
    return (await check_scope(engine, views, scope))[0]


async def check_scope(engine: AsyncEngine, views: ViewDatabase,
                      scope: Scope) -> tuple[list[Drift], ScopeRows]:
    """The differences, and the state rows they were found against (which aggregates the
    check covered)."""
    await views.refresh()
    rows = await ScopeRows.load(engine, scope)
    history = HistoryCheck(await find_all(views[HISTORY], rows.filters(HISTORY)))
    expected = await fold_event_log(engine, history.check,
                                     None if scope.everything else rows.aggregate_ids)
    drift: list[Drift] = []
    account_rows, customer_rows = rows.accounts, rows.customers

    actual_accounts = await find_all(views[ACCOUNTS], rows.filters(ACCOUNTS))
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

    actual_customers = await find_all(views[CUSTOMERS], rows.filters(CUSTOMERS))
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

    counts = {d["_id"]: d["count"] for owned in rows.filters(TRANSACTIONS)
              async for d in await views[TRANSACTIONS].aggregate(
                  ([{"$match": owned}] if owned else [])
                  + [{"$group": {"_id": "$account_id", "count": {"$sum": 1}}}])}
    for account_id in set(counts) | set(expected.transaction_counts):
        want, have = expected.transaction_counts.get(account_id, 0), counts.get(account_id, 0)
        if want != have:
            owner = account_rows[account_id].customer_id if account_id in account_rows else None
            drift.append(Drift(TRANSACTIONS, account_id, "count", want, have, owner))

    actual_stats = await find_all(views[DAILY_STATS], rows.filters(DAILY_STATS))
    for stats_id, want in expected.daily_stats.items():
        have = actual_stats.pop(stats_id, None) or {}
        for name in STATS_COMPARED:
            if have.get(name) != want[name]:
                drift.append(Drift(DAILY_STATS, stats_id, name, want[name], have.get(name),
                                   want["customer_id"]))
    drift += [Drift(DAILY_STATS, doc_id, "_id", None, doc_id, doc.get("customer_id"))
              for doc_id, doc in actual_stats.items()]
    return drift + history.drift(), rows


async def find_lasting_drift(engine: AsyncEngine, views: ViewDatabase,
                             settle_s: float = 2.0, scope: Scope = EVERYTHING) -> list[Drift]:
    """Drift that is not just lag: under live load a view trails the write model for a moment,
    so a difference counts only if it is still there, unchanged, `settle_s` later (the second
    look covers only the customers the first one found drifting)."""
    first = await find_drift(engine, views, scope)
    if not first or settle_s <= 0:
        return first
    return await still_there(engine, views, first, settle_s, scope)


async def still_there(engine: AsyncEngine, views: ViewDatabase, first: list[Drift],
                      settle_s: float, scope: Scope) -> list[Drift]:
    """The differences of `first` (found within `scope`) still there, unchanged, `settle_s`
    later: the second look covers only their customers, or all of `scope` when a difference
    names none."""
    await asyncio.sleep(settle_s)
    seen = {(d.view, d.doc_id, d.field): repr(d.actual) for d in first}
    owners = {d.customer_id for d in first}
    again = scope if scope.everything or None in owners else Scope.of(owners)
    return [d for d in await find_drift(engine, views, again)
            if seen.get((d.view, d.doc_id, d.field)) == repr(d.actual)]


def _entries(doc: Doc) -> list[tuple]:
    return sorted((e["account_id"], e["version"], e["balance_minor"], e["status"],
                   e["transaction_count"]) for e in doc.get("accounts", []))
