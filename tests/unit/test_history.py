"""The account and customer history views, planned by projector/planner.py: one entry per
applied event, keyed by (aggregate, version), holding the event's published payload fields;
redeliveries, gaps and failures plan none; the query service prints money as strings."""

from __future__ import annotations

import json
from pathlib import Path

from projector.planner import plan_batch
from projector.projections import (
    ACCOUNT_EVENTS,
    CUSTOMER_EVENTS,
    HISTORY_DETAILS,
    history_doc,
    history_id,
)
from query_service.views import history_item
from shared.upcasting import READABLE_VERSIONS
from tests.support.bank import ADA, Bank
from tests.support.history import ADA_USD, BOB_USD, CY, drive
from tests.unit.test_planner import ReadModel, hand_made

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "events"


def test_every_event_type_has_a_history_entry_of_its_published_payload_fields():
    assert set(HISTORY_DETAILS) == ACCOUNT_EVENTS | CUSTOMER_EVENTS == set(READABLE_VERSIONS)
    for event_type, fields in HISTORY_DETAILS.items():
        schema = json.loads((SCHEMAS / f"{event_type}.v{READABLE_VERSIONS[event_type]}"
                                       ".schema.json").read_text())
        own_id = "account_id" if event_type in ACCOUNT_EVENTS else "customer_id"
        published = set(schema["properties"]["payload"]["properties"]) - {own_id}
        assert set(fields) == published, event_type


def test_the_scenario_plans_one_entry_per_event_keyed_by_aggregate_and_version():
    log = drive().log
    plan = plan_batch(log, {}, {})
    assert len(plan.applied) == len(log)
    assert [(h["aggregate_id"], h["version"]) for h in plan.history] == [
        (e.aggregate_id, e.version) for e in plan.applied]
    assert [h["_id"] for h in plan.history] == [
        history_id(e.aggregate_id, e.version) for e in plan.applied]
    for entry, event in zip(plan.history, plan.applied, strict=True):
        assert (entry["type"], entry["occurred_at"], entry["command_id"], entry["event_id"]) \
            == (event.event_type, event.occurred_at, event.command_id, event.event_id)
    bob_usd = [h["type"] for h in plan.history if h["aggregate_id"] == BOB_USD]
    assert bob_usd == ["AccountOpened", "TransferReceived", "TransferSent", "AccountFrozen",
                       "AccountUnfrozen"]
    cy = [(h["type"], h["details"]) for h in plan.history if h["aggregate_id"] == CY]
    assert cy == [("CustomerRegistered", {"name": "Cy Leaving", "email": "cy@example.com"}),
                  ("CustomerClosed", {"reason": "moved abroad"})]


def test_an_entry_holds_the_payload_without_the_aggregate_id_or_an_unknown_field():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=1_250)
    frozen = bank.freeze(account, reason="kyc")
    newer = hand_made("AccountFrozen", "acc-1", 3, {**frozen.payload, "channel": "mobile"})
    assert history_doc(newer)["details"] == {"customer_id": ADA, "currency": "USD",
                                             "reason": "kyc"}
    opened = history_doc(bank.log[1])
    assert opened["details"] == {"customer_id": ADA, "currency": "USD", "type": "checking",
                                 "initial_deposit_minor": 1_250, "balance_after_minor": 1_250,
                                 "transaction_id": bank.log[1].payload["transaction_id"]}
    [renamed] = bank.change_customer(name="Ada King")
    assert history_doc(renamed)["details"] == {"name": "Ada King"}


def test_redelivered_held_and_failed_events_plan_no_entry():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    bank.deposit(account, 5)
    read = ReadModel()
    first = read.project(bank.log)
    assert len(first.history) == 3
    again = read.project(bank.log)  # redelivered: every version already applied
    assert again.history == [] and len(again.duplicates) == 3
    later = bank.deposit(account, 7)
    gap = bank.deposit(account, 9)
    held = read.project([gap])
    assert held.history == [] and held.held == [gap]
    unknown = hand_made("MoneyLent", "acc-1", 3, later.payload)
    failed = read.project([unknown])
    assert failed.history == [] and failed.failed[0][0] is unknown
    assert [h["version"] for h in read.project([later, gap]).history] == [3, 4]


def test_planning_again_after_a_crash_plans_the_same_entries_in_place():
    """The history is written before the account view: a crash in between plans the batch
    again from the old view, and the same ids replace what the first attempt wrote."""
    bank = Bank()
    bank.register()
    account = bank.open("acc-1")
    bank.deposit(account, 5)
    read = ReadModel()
    crashed = read.plan(bank.log)  # planned, history written, the views never were
    assert read.plan(bank.log).history == crashed.history


def test_a_history_item_prints_money_as_decimal_strings_without_the_minor_suffix():
    bank = Bank()
    bank.register()
    usd = bank.open("acc-1", initial=1_250)
    other = bank.open("acc-2")
    sent, _ = bank.transfer(usd, other, 1_000, reference="rent")
    item = history_item(history_doc(sent))
    assert set(item) == {"version", "type", "occurred_at", "command_id", "details"}
    assert item["details"] == {
        "customer_id": ADA, "currency": "USD", "transaction_id": sent.payload["transaction_id"],
        "amount": "10.00", "balance_after": "2.50", "reference": "rent",
        "transfer_id": sent.payload["transfer_id"], "counterparty_account_id": "acc-2"}
    assert item["occurred_at"].endswith("Z") and item["type"] == "TransferSent"
    opened = history_item(history_doc(bank.log[1]))["details"]
    assert (opened["initial_deposit"], opened["balance_after"]) == ("12.50", "12.50")
    assert not [name for name in opened if name.endswith("_minor")]


def test_the_scenario_s_accounts_list_every_lifecycle_event():
    plan = plan_batch(drive().log, {}, {})
    ada_usd = [h["type"] for h in plan.history if h["aggregate_id"] == ADA_USD]
    assert ada_usd[0] == "AccountOpened" and "TransferSent" in ada_usd
    eur = {h["type"] for h in plan.history if h["details"].get("currency") == "EUR"}
    assert {"AccountOpened", "MoneyDeposited", "MoneyWithdrawn", "AccountClosed"} <= eur
