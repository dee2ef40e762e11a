"""How `verify --watch` tells lag from drift (operations/watch.py): a scope is behind only when
a view trails the write model *and* the history lacks the aggregate's latest event."""

from __future__ import annotations

from operations.drift import Drift
from operations.watch import behind_customers
from shared.readmodel import ACCOUNTS, CUSTOMERS, DAILY_STATS, HISTORY, TRANSACTIONS


def trailing(view: str, aggregate: str, written: int, viewed: int | None) -> Drift:
    return Drift(view, aggregate, "version", written, viewed, "c1")


def missing_entry(aggregate: str, version: int) -> Drift:
    return Drift(HISTORY, f"{aggregate}|{version}", "_id", f"{aggregate}|{version}", None, "c1")


def test_a_view_behind_whose_latest_event_has_no_history_entry_yet_is_lag():
    assert behind_customers([trailing(ACCOUNTS, "a1", 5, 3), missing_entry("a1", 4),
                             missing_entry("a1", 5)]) == {"c1"}


def test_a_view_not_yet_written_at_all_is_lag():
    assert behind_customers([trailing(CUSTOMERS, "c1", 1, None), missing_entry("c1", 1)]) \
        == {"c1"}


def test_a_view_behind_although_the_projector_wrote_the_latest_entry_is_drift():
    assert behind_customers([trailing(ACCOUNTS, "a1", 5, 3)]) == set()
    assert behind_customers([trailing(ACCOUNTS, "a1", 5, 3), missing_entry("a1", 4)]) == set()


def test_a_view_ahead_of_the_write_model_is_drift():
    assert behind_customers([trailing(ACCOUNTS, "a1", 5, 6), missing_entry("a1", 5)]) == set()


def test_each_difference_names_the_aggregate_it_belongs_to():
    assert Drift(HISTORY, "a1|7", "_id", None, "a1|7", "c1").aggregate_id == "a1"
    assert Drift(DAILY_STATS, "c1|2026-12-03|EUR", "count", 1, 2, "c1").aggregate_id == "c1"
    assert Drift(TRANSACTIONS, "a1", "count", 1, 2, "c1").aggregate_id == "a1"
    assert Drift(ACCOUNTS, "a1", "balance_minor", 1, 2, "c1").aggregate_id == "a1"
