"""Plans a batch: which events to apply, which are duplicates, which must wait for a gap.

Pure, like the projections. Guarantee 4 (exactly-once effect) is decided here: every event is
judged against the version its aggregate's *primary* view already holds (the account view for
account events, the customer view's own version for customer events):
- version <= held: a redelivery or an old event, skipped;
- version == held + 1: applied to the primary view and to every view that depends on it
  (the aggregate's history, transactions, daily statistics, the customer's account entry);
  dependants are written first, the primary last, so a crash in between re-applies only
  idempotent writes;
- version > held + 1: a gap; held back with every later event of that aggregate, retried.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from projector.projections import (
    ACCOUNT_EVENTS,
    Doc,
    UnknownEventError,
    apply_to_account,
    apply_to_customer,
    apply_to_daily_stats,
    daily_stats_id,
    history_doc,
    transaction_doc,
)
from shared.envelope import EventEnvelope


@dataclass
class BatchPlan:
    accounts: dict[str, Doc] = field(default_factory=dict)  # changed documents only
    customers: dict[str, Doc] = field(default_factory=dict)
    transactions: list[Doc] = field(default_factory=list)
    daily_stats: dict[str, Doc] = field(default_factory=dict)
    history: list[Doc] = field(default_factory=list)  # one entry per applied event
    applied: list[EventEnvelope] = field(default_factory=list)
    duplicates: list[EventEnvelope] = field(default_factory=list)
    held: list[EventEnvelope] = field(default_factory=list)
    failed: list[tuple[EventEnvelope, str]] = field(default_factory=list)


def customer_ids_of(events: list[EventEnvelope]) -> set[str]:
    return {e.aggregate_id if e.aggregate_type == "customer" else e.payload["customer_id"]
            for e in events if e.aggregate_type in ("customer", "account")}


def account_ids_of(events: list[EventEnvelope]) -> set[str]:
    return {e.aggregate_id for e in events if e.aggregate_type == "account"}


def daily_stats_ids_of(events: list[EventEnvelope]) -> set[str]:
    return {i for i in map(daily_stats_id, events) if i is not None}


def plan_batch(events: list[EventEnvelope], accounts: dict[str, Doc], customers: dict[str, Doc],
               daily_stats: dict[str, Doc] | None = None) -> BatchPlan:
    """The dicts hold the current documents of every id the events touch."""
    plan = BatchPlan()
    views = {"accounts": dict(accounts), "customers": dict(customers),
             "daily_stats": dict(daily_stats or {})}
    by_aggregate: dict[str, dict[int, EventEnvelope]] = defaultdict(dict)
    for event in events:
        if by_aggregate[event.aggregate_id].setdefault(event.version, event) is not event:
            plan.duplicates.append(event)  # the same version twice in one batch

    for versions in by_aggregate.values():
        blocked = False
        for version in sorted(versions):
            event = versions[version]
            if blocked:
                plan.held.append(event)
                continue
            primary = views["accounts" if event.aggregate_type == "account" else "customers"]
            current = (primary.get(event.aggregate_id) or {}).get("version", 0)
            if version <= current:
                plan.duplicates.append(event)
            elif version > current + 1:
                plan.held.append(event)
                blocked = True
            else:
                try:
                    _apply(plan, event, views)
                except (UnknownEventError, KeyError, TypeError, ValueError) as exc:
                    plan.failed.append((event, f"{exc.__class__.__name__}: {exc}"))
                    blocked = True
                else:
                    plan.applied.append(event)
    return plan


def _apply(plan: BatchPlan, event: EventEnvelope, views: dict[str, dict[str, Doc]]) -> None:
    """Apply one in-order event to every view it touches. Everything is computed first, so an
    event that fails leaves the plan untouched."""
    accounts, customers, stats = views["accounts"], views["customers"], views["daily_stats"]
    entry = history_doc(event)  # refuses an event type this release does not know
    if event.event_type in ACCOUNT_EVENTS:
        account = apply_to_account(accounts.get(event.aggregate_id), event)
        customer_id = event.payload["customer_id"]
        customer = apply_to_customer(customers.get(customer_id), event)
        transaction = transaction_doc(event)
        stats_id = daily_stats_id(event)
        day = apply_to_daily_stats(stats.get(stats_id), event) if stats_id else None
        accounts[event.aggregate_id] = plan.accounts[event.aggregate_id] = account
        customers[customer_id] = plan.customers[customer_id] = customer
        if transaction is not None:
            plan.transactions.append(transaction)
        if day is not None:
            stats[stats_id] = plan.daily_stats[stats_id] = day
    else:  # one of the customer's own events
        customer = apply_to_customer(customers.get(event.aggregate_id), event)
        customers[event.aggregate_id] = plan.customers[event.aggregate_id] = customer
    plan.history.append(entry)
