"""Read-model documents -> the JSON shapes of docs/api.md (money as strings, UTC ISO timestamps)."""

from __future__ import annotations

from datetime import datetime

from shared.envelope import iso_utc
from shared.money import format_minor


def _time(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment else None


def account_summary(entry: dict) -> dict:
    return {
        "account_id": entry["account_id"], "type": entry["type"], "currency": entry["currency"],
        "balance": format_minor(entry["balance_minor"]), "status": entry["status"],
        "version": entry["version"], "opened_at": _time(entry["opened_at"]),
        "last_transaction_at": _time(entry.get("last_transaction_at")),
    }


def customer_status(doc: dict) -> str:
    # A view projected by the release before customers could close has no status: active.
    return doc.get("status", "active")


def customer_360(doc: dict) -> dict:
    summary = doc["summary"]
    return {
        "customer_id": doc["_id"], "name": doc["name"], "email": doc["email"],
        "status": customer_status(doc), "version": doc["version"],
        "accounts": [account_summary(a) for a in doc["accounts"]],
        "summary": {
            "account_count": summary["account_count"],
            "transaction_count": summary["transaction_count"],
            "balances": {cur: format_minor(v) for cur, v in summary["balances_minor"].items()},
        },
        "updated_at": _time(doc["updated_at"]),
    }


def customer_item(doc: dict) -> dict:
    return {"customer_id": doc["_id"], "name": doc["name"], "email": doc["email"],
            "status": customer_status(doc)}


def account_view(doc: dict) -> dict:
    return {
        "account_id": doc["_id"], "customer_id": doc["customer_id"], "type": doc["type"],
        "currency": doc["currency"], "balance": format_minor(doc["balance_minor"]),
        "status": doc["status"], "status_reason": doc.get("status_reason"),
        "status_changed_at": _time(doc.get("status_changed_at")), "version": doc["version"],
        "transaction_count": doc["transaction_count"], "opened_at": _time(doc["opened_at"]),
        "updated_at": _time(doc["updated_at"]),
    }


def transaction_item(doc: dict) -> dict:
    return {
        "transaction_id": doc["_id"], "account_id": doc["account_id"], "kind": doc["kind"],
        "amount": format_minor(doc["amount_minor"]),
        "balance_after": format_minor(doc["balance_after_minor"]),
        "occurred_at": _time(doc["occurred_at"]), "reference": doc.get("reference"),
        "counterparty_account_id": doc.get("counterparty_account_id"),
    }


def daily_figures(doc: dict) -> dict:
    return {"date": doc["date"], **_figures(doc)}


def monthly_figures(doc: dict) -> dict:
    return {"month": doc["month"], **_figures(doc)}


def _figures(doc: dict) -> dict:
    return {
        "currency": doc["currency"],
        "deposits": format_minor(doc["deposits_minor"]),
        "withdrawals": format_minor(doc["withdrawals_minor"]),
        "transfers_in": format_minor(doc["transfers_in_minor"]),
        "transfers_out": format_minor(doc["transfers_out_minor"]),
        "count": doc["count"],
    }


def history_item(doc: dict) -> dict:
    """An event as its aggregate's history shows it: money fields (`*_minor` in the event)
    as decimal strings, named without the suffix, like every amount this service prints."""
    details = {}
    for name, value in doc["details"].items():
        if name.endswith("_minor"):
            details[name.removesuffix("_minor")] = format_minor(value)
        else:
            details[name] = value
    return {"version": doc["version"], "type": doc["type"],
            "occurred_at": _time(doc["occurred_at"]), "command_id": doc["command_id"],
            "details": details}
