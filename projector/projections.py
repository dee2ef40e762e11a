"""How each event changes each read model: pure functions from (document, event) to document.

No I/O here, so the same code serves the live projector, `rebuild` and `verify`, and is unit
tested without a database. Documents are plain dicts in the shape stored in MongoDB; money is
integer minor units (`*_minor`), never a float.
"""

from __future__ import annotations

from typing import Any

from shared.envelope import EventEnvelope
from shared.readmodel import STATS_FIELDS

Doc = dict[str, Any]

MONEY_KINDS = {
    "MoneyDeposited": "deposit",
    "MoneyWithdrawn": "withdrawal",
    "TransferSent": "transfer_out",
    "TransferReceived": "transfer_in",
}
DEBIT_KINDS = {"withdrawal", "transfer_out"}
STATUS_AFTER = {"AccountFrozen": "frozen", "AccountUnfrozen": "active", "AccountClosed": "closed"}
ACCOUNT_EVENTS = {"AccountOpened", *MONEY_KINDS, *STATUS_AFTER}
CUSTOMER_EVENTS = {"CustomerRegistered", "CustomerRenamed", "CustomerEmailChanged",
                   "CustomerClosed"}


# The fields of each event's payload an entry of its aggregate's history shows: those of the
# published contract (docs/events/), without the aggregate's own id, which the entry's key
# holds. Named, not copied, so a newer producer's extra field shows up nowhere.
_MONEY_FIELDS = ("customer_id", "currency", "transaction_id", "amount_minor",
                 "balance_after_minor", "reference")
_TRANSFER_FIELDS = (*_MONEY_FIELDS, "transfer_id", "counterparty_account_id")
HISTORY_DETAILS: dict[str, tuple[str, ...]] = {
    "CustomerRegistered": ("name", "email"),
    "CustomerRenamed": ("name",),
    "CustomerEmailChanged": ("email",),
    "CustomerClosed": ("reason",),
    "AccountOpened": ("customer_id", "currency", "type", "initial_deposit_minor",
                      "balance_after_minor", "transaction_id"),
    "MoneyDeposited": _MONEY_FIELDS,
    "MoneyWithdrawn": _MONEY_FIELDS,
    "TransferSent": _TRANSFER_FIELDS,
    "TransferReceived": _TRANSFER_FIELDS,
    "AccountFrozen": ("customer_id", "currency", "reason"),
    "AccountUnfrozen": ("customer_id", "currency"),
    "AccountClosed": ("customer_id", "currency"),
}


class UnknownEventError(ValueError):
    """An event this projector cannot apply (a newer producer, or a corrupt message)."""


def transaction_kind(event: EventEnvelope) -> str | None:
    """The history entry an event creates, if any: an initial deposit counts as a deposit."""
    if event.event_type == "AccountOpened":
        return "deposit" if event.payload.get("initial_deposit_minor") else None
    return MONEY_KINDS.get(event.event_type)


def money_amount(event: EventEnvelope) -> int:
    p = event.payload
    return p["initial_deposit_minor"] if event.event_type == "AccountOpened" else p["amount_minor"]


def transaction_doc(event: EventEnvelope) -> Doc | None:
    kind = transaction_kind(event)
    if kind is None:
        return None
    p = event.payload
    return {
        "_id": p["transaction_id"],
        "account_id": event.aggregate_id,
        "customer_id": p["customer_id"],
        "account_version": event.version,
        "kind": kind,
        "currency": p["currency"],
        "amount_minor": money_amount(event),
        "balance_after_minor": p["balance_after_minor"],
        "occurred_at": event.occurred_at,
        "reference": p.get("reference"),
        "counterparty_account_id": p.get("counterparty_account_id"),
        "transfer_id": p.get("transfer_id"),
        "event_id": event.event_id,
    }


def history_id(aggregate_id: str, version: int) -> str:
    return f"{aggregate_id}|{version}"


def history_doc(event: EventEnvelope) -> Doc:
    """The entry an event makes in its aggregate's history. Keyed by (aggregate, version), so
    a redelivered event writes the same document again, in place."""
    fields = HISTORY_DETAILS.get(event.event_type)
    if fields is None:
        raise UnknownEventError(f"unknown event type {event.event_type}")
    return {
        "_id": history_id(event.aggregate_id, event.version),
        "aggregate_id": event.aggregate_id,
        "version": event.version,
        "type": event.event_type,
        "occurred_at": event.occurred_at,
        "command_id": event.command_id,
        "event_id": event.event_id,
        "details": {name: event.payload[name] for name in fields},
    }


def apply_to_account(doc: Doc | None, event: EventEnvelope) -> Doc:
    """The account view. The caller guarantees `event.version == doc version + 1`."""
    p = event.payload
    if event.event_type == "AccountOpened":
        doc = {
            "_id": event.aggregate_id, "customer_id": p["customer_id"],
            "type": p["type"], "currency": p["currency"],
            "balance_minor": 0, "status": "active", "transaction_count": 0,
            "opened_at": event.occurred_at, "last_transaction_at": None,
            "status_reason": None, "status_changed_at": None,
        }
    elif doc is None:
        raise UnknownEventError(f"{event.event_type} v{event.version} before AccountOpened")
    else:
        doc = dict(doc)
    _apply_account_fields(doc, event)
    if event.event_type in STATUS_AFTER:
        # Only a freeze gives a reason; unfreezing and closing take none.
        doc["status_reason"] = p["reason"] if event.event_type == "AccountFrozen" else None
        doc["status_changed_at"] = event.occurred_at
    doc["version"] = event.version
    doc["updated_at"] = event.occurred_at
    return doc


def _apply_account_fields(entry: Doc, event: EventEnvelope) -> None:
    """What an account event changes, shared by the account view and the customer's copy."""
    if event.event_type in STATUS_AFTER:
        entry["status"] = STATUS_AFTER[event.event_type]
    elif event.event_type not in ACCOUNT_EVENTS:
        raise UnknownEventError(f"unknown account event {event.event_type}")
    if "balance_after_minor" in event.payload:
        entry["balance_minor"] = event.payload["balance_after_minor"]
    if transaction_kind(event) is not None:
        entry["transaction_count"] = entry.get("transaction_count", 0) + 1
        entry["last_transaction_at"] = event.occurred_at


def apply_to_customer(doc: Doc | None, event: EventEnvelope) -> Doc:
    """The customer 360 view. A customer event advances `version` (the caller guarantees it is
    the next one); an account event updates that account's entry, once: an entry already at
    or past the event's version is left alone, so re-applying an event changes nothing."""
    doc = _empty_customer(_customer_id(event)) if doc is None else _copy_customer(doc)
    if event.event_type in CUSTOMER_EVENTS:
        _apply_customer_fields(doc, event)
        doc["version"] = event.version
    elif event.aggregate_type == "account":
        entries = doc["accounts"]
        index = next((i for i, a in enumerate(entries) if a["account_id"] == event.aggregate_id),
                     None)
        if index is None:
            if event.event_type != "AccountOpened":
                raise UnknownEventError(
                    f"{event.event_type} v{event.version} of an account the customer view lacks")
            entries.append(_account_entry(event))
        elif entries[index]["version"] < event.version:
            entry = dict(entries[index])
            _apply_account_fields(entry, event)
            entry["version"] = event.version
            entries[index] = entry
        else:
            return doc  # already applied
        doc["summary"] = customer_summary(entries)
    else:
        raise UnknownEventError(f"unknown customer event {event.event_type}")
    doc["updated_at"] = max(filter(None, [doc.get("updated_at"), event.occurred_at]))
    return doc


def daily_stats_id(event: EventEnvelope) -> str | None:
    """Daily figures are kept per customer, UTC day and currency."""
    if transaction_kind(event) is None:
        return None
    p = event.payload
    return f"{p['customer_id']}|{event.occurred_at.date().isoformat()}|{p['currency']}"


def apply_to_daily_stats(doc: Doc | None, event: EventEnvelope) -> Doc:
    """Add a money event to its day's figures, once: `applied` keeps the last version counted
    per account, and the planner feeds each account's events in version order."""
    kind = transaction_kind(event)
    if kind is None:
        raise UnknownEventError(f"{event.event_type} carries no money movement")
    p = event.payload
    if doc is None:
        doc = {"_id": daily_stats_id(event), "customer_id": p["customer_id"],
               "date": event.occurred_at.date().isoformat(), "currency": p["currency"],
               **{name: 0 for name in STATS_FIELDS.values()}, "count": 0, "applied": {}}
    if doc["applied"].get(event.aggregate_id, 0) >= event.version:
        return doc
    doc = {**doc, "applied": {**doc["applied"], event.aggregate_id: event.version}}
    doc[STATS_FIELDS[kind]] += money_amount(event)
    doc["count"] += 1
    return doc


def _apply_customer_fields(doc: Doc, event: EventEnvelope) -> None:
    """What one of the customer's own events changes in its 360 view."""
    p = event.payload
    if event.event_type == "CustomerRegistered":
        doc.update(status="active", created_at=doc.get("created_at") or event.occurred_at)
    if "name" in p:
        doc.update(name=p["name"], name_lower=p["name"].lower())
    if "email" in p:
        doc.update(email=p["email"], email_lower=p["email"].lower())
    if event.event_type == "CustomerClosed":
        doc.update(status="closed", status_reason=p["reason"], closed_at=event.occurred_at)


def _account_entry(event: EventEnvelope) -> Doc:
    p = event.payload
    entry = {
        "account_id": event.aggregate_id, "type": p["type"], "currency": p["currency"],
        "balance_minor": 0, "status": "active", "version": event.version,
        "opened_at": event.occurred_at, "last_transaction_at": None, "transaction_count": 0,
    }
    _apply_account_fields(entry, event)
    return entry


def customer_summary(entries: list[Doc]) -> Doc:
    balances: dict[str, int] = {}
    for entry in entries:
        balances[entry["currency"]] = balances.get(entry["currency"], 0) + entry["balance_minor"]
    return {
        "account_count": len(entries),
        "transaction_count": sum(e["transaction_count"] for e in entries),
        "balances_minor": dict(sorted(balances.items())),
    }


def _customer_id(event: EventEnvelope) -> str:
    if event.aggregate_type == "customer":
        return event.aggregate_id
    return event.payload["customer_id"]


def _empty_customer(customer_id: str) -> Doc:
    # Account events can reach the view before CustomerRegistered (different partitions):
    # version 0 marks a customer whose own registration has not been applied yet.
    return {"_id": customer_id, "version": 0, "accounts": [], "summary": customer_summary([]),
            "created_at": None, "updated_at": None}


def _copy_customer(doc: Doc) -> Doc:
    return {**doc, "accounts": list(doc.get("accounts", []))}
