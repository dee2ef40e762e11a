"""Months are the sums of their days, per currency, in calendar order."""

from __future__ import annotations

from query_service.routers.customers import _months


def day(date: str, currency: str, deposits: int = 0, withdrawals: int = 0, count: int = 1):
    return {"date": date, "currency": currency, "deposits_minor": deposits,
            "withdrawals_minor": withdrawals, "transfers_in_minor": 0, "transfers_out_minor": 0,
            "count": count}


def test_the_days_of_a_month_add_up_per_currency_and_months_stay_apart():
    months = _months([
        day("2026-11-29", "USD", deposits=100), day("2026-11-30", "EUR", withdrawals=7),
        day("2026-11-30", "USD", deposits=50, withdrawals=20, count=3),
        day("2026-12-01", "USD", deposits=1),
    ])
    assert [(m["month"], m["currency"], m["deposits_minor"], m["withdrawals_minor"],
             m["count"]) for m in months] == [
        ("2026-11", "EUR", 0, 7, 1), ("2026-11", "USD", 150, 20, 4),
        ("2026-12", "USD", 1, 0, 1)]


def test_no_days_make_no_months():
    assert _months([]) == []
