"""The read side's pure projections (projector/projections.py), the published envelope
(shared/envelope.py) and the API shapes (query_service/views.py).

Events are produced by driving the real domain model and wrapping its pending events in
envelopes the way command_service/unit_of_work.py does, then sent through the JSON the relay
publishes, so these tests check the actual contract between the write side and the read side.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from command_service.domain.model import AccountType
from projector.projections import (
    UnknownEventError,
    apply_to_account,
    apply_to_customer,
    customer_summary,
    transaction_doc,
    transaction_kind,
)
from query_service import views
from shared.envelope import EventEnvelope, iso_utc, parse_iso_utc
from shared.upcasting import READABLE_VERSIONS
from tests.support.bank import ADA, T0, Bank

ISO_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
MONEY = re.compile(r"^\d+\.\d{2}$")


def account_view(events: list[EventEnvelope]) -> dict:
    doc = None
    for event in events:
        doc = apply_to_account(doc, event)
    return doc


def customer_view(events: list[EventEnvelope], doc: dict | None = None) -> dict:
    for event in events:
        doc = apply_to_customer(doc, event)
    return doc


def entry(doc: dict, account_id: str) -> dict:
    [found] = [a for a in doc["accounts"] if a["account_id"] == account_id]
    return found


def hand_made(event_type: str, aggregate_id: str, version: int, payload: dict,
              aggregate_type: str = "account", minute: int = 0) -> EventEnvelope:
    return EventEnvelope(event_id=str(uuid.uuid4()), event_type=event_type,
                         schema_version=READABLE_VERSIONS.get(event_type, 1),
                         aggregate_type=aggregate_type, aggregate_id=aggregate_id,
                         version=version, occurred_at=T0 + timedelta(minutes=minute),
                         command_id="cmd", payload=payload)


def test_utc_timestamps_are_printed_in_utc_with_a_z_whatever_the_input_zone():
    paris = timezone(timedelta(hours=2))
    assert iso_utc(datetime(2026, 3, 1, 11, 0, 0, 5, tzinfo=paris)) == \
        "2026-03-01T09:00:00.000005Z"
    assert iso_utc(datetime(2026, 3, 1, 9, 0)) == "2026-03-01T09:00:00.000000Z"  # naive = UTC


@pytest.mark.parametrize("text", ["2026-03-01T09:00:00Z", "2026-03-01T09:00:00.000000Z",
                                  "2026-03-01T10:00:00+01:00", "2026-03-01T09:00:00"])
def test_parsed_timestamps_are_aware_and_in_utc(text):
    moment = parse_iso_utc(text)
    assert moment == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(0)


def test_the_domain_payloads_are_the_keys_the_projections_read():
    bank = Bank()
    bank.register()
    usd, eur = bank.open("acc-usd", initial=1_000), bank.open("acc-eur", currency="EUR")
    bank.deposit(usd, 5, reference="r")
    bank.withdraw(usd, 5)
    other = bank.open("acc-usd-2")
    bank.transfer(usd, other, 10)
    bank.freeze(eur, reason="kyc")
    bank.unfreeze(eur)
    bank.close(eur)
    base = {"account_id", "customer_id", "currency"}
    money = base | {"transaction_id", "amount_minor", "balance_after_minor", "reference"}
    expected = {
        "CustomerRegistered": {"customer_id", "name", "email"},
        "AccountOpened": base | {"type", "initial_deposit_minor", "balance_after_minor",
                                 "transaction_id"},
        "MoneyDeposited": money,
        "MoneyWithdrawn": money,
        "TransferSent": money | {"transfer_id", "counterparty_account_id"},
        "TransferReceived": money | {"transfer_id", "counterparty_account_id"},
        "AccountFrozen": base | {"reason"},
        "AccountUnfrozen": base,
        "AccountClosed": base,
    }
    seen = {e.event_type: set(e.payload) for e in bank.log}
    assert seen == expected
    assert {e.aggregate_type for e in bank.log} == {"customer", "account"}


# -- the account view ------------------------------------------------------------------------

def test_an_opened_account_view_starts_at_version_1_with_its_initial_deposit():
    bank = Bank()
    bank.open("acc-1", currency="EUR", initial=2_500, account_type=AccountType.SAVINGS)
    [opened] = bank.log
    doc = apply_to_account(None, opened)
    assert doc == {
        "_id": "acc-1", "customer_id": ADA, "type": "savings", "currency": "EUR",
        "balance_minor": 2_500, "status": "active", "transaction_count": 1,
        "opened_at": opened.occurred_at, "last_transaction_at": opened.occurred_at,
        "version": 1, "updated_at": opened.occurred_at, "status_reason": None,
        "status_changed_at": None,
    }


def test_an_account_opened_without_money_has_no_transactions():
    bank = Bank()
    bank.open("acc-1")
    doc = account_view(bank.log)
    assert (doc["balance_minor"], doc["transaction_count"], doc["version"]) == (0, 0, 1)
    assert doc["last_transaction_at"] is None
    assert transaction_doc(bank.log[0]) is None
    assert transaction_kind(bank.log[0]) is None


def test_the_account_view_follows_the_balance_the_events_carry():
    bank = Bank()
    account = bank.open("acc-1", initial=1_000)
    bank.deposit(account, 250)
    bank.withdraw(account, 1_100)
    last = bank.deposit(account, 5)
    doc = account_view(bank.log)
    assert doc["balance_minor"] == account.balance_minor == 155
    assert doc["version"] == account.version == 4
    assert doc["transaction_count"] == 4  # the initial deposit counts
    assert doc["last_transaction_at"] == doc["updated_at"] == last.occurred_at


def test_the_account_view_takes_the_balance_from_the_event_rather_than_redoing_arithmetic():
    opened = hand_made("AccountOpened", "acc-1", 1, {
        "account_id": "acc-1", "customer_id": ADA, "currency": "USD", "type": "checking",
        "initial_deposit_minor": 0, "balance_after_minor": 0, "transaction_id": None})
    deposited = hand_made("MoneyDeposited", "acc-1", 2, {
        "account_id": "acc-1", "customer_id": ADA, "currency": "USD", "transaction_id": "t1",
        "amount_minor": 100, "balance_after_minor": 4_321, "reference": None}, minute=1)
    assert account_view([opened, deposited])["balance_minor"] == 4_321


def test_status_events_change_the_status_but_not_the_money_or_the_history():
    bank = Bank()
    account = bank.open("acc-1", initial=300)
    bank.freeze(account, reason="kyc")
    frozen = account_view(bank.log)
    assert (frozen["status"], frozen["balance_minor"], frozen["transaction_count"]) == \
        ("frozen", 300, 1)
    bank.unfreeze(account)
    assert account_view(bank.log)["status"] == "active"
    bank.withdraw(account, 300)
    closed_event = bank.close(account)
    doc = account_view(bank.log)
    assert (doc["status"], doc["balance_minor"], doc["transaction_count"]) == ("closed", 0, 2)
    assert doc["version"] == 5
    assert doc["updated_at"] == closed_event.occurred_at
    assert doc["last_transaction_at"] < closed_event.occurred_at
    assert all(transaction_doc(e) is None for e in bank.log if e.event_type.startswith("Account")
               and e.event_type != "AccountOpened")


def test_the_account_view_keeps_the_freeze_reason_while_frozen_and_when_the_status_changed():
    bank = Bank()
    account = bank.open("acc-1", initial=300)
    frozen_event = bank.freeze(account, reason="kyc")
    bank.deposit(account, 5)  # a credit while frozen changes neither
    doc = account_view(bank.log)
    assert (doc["status_reason"], doc["status_changed_at"]) == ("kyc", frozen_event.occurred_at)
    unfrozen_event = bank.unfreeze(account)
    doc = account_view(bank.log)
    assert (doc["status_reason"], doc["status_changed_at"]) == (None, unfrozen_event.occurred_at)
    bank.freeze(account, reason="second look")
    assert account_view(bank.log)["status_reason"] == "second look"


def test_a_closed_account_has_no_status_reason():
    bank = Bank()
    account = bank.open("acc-1")
    bank.freeze(account, reason="kyc")
    closed_event = bank.close(account)  # an empty account may be closed while frozen
    doc = account_view(bank.log)
    assert (doc["status"], doc["status_reason"], doc["status_changed_at"]) == (
        "closed", None, closed_event.occurred_at)


def test_applying_an_event_does_not_change_the_document_it_was_given():
    bank = Bank()
    account = bank.open("acc-1", initial=100)
    before = apply_to_account(None, bank.log[0])
    kept = dict(before)
    after = apply_to_account(before, bank.deposit(account, 50))
    assert before == kept
    assert after is not before and after["balance_minor"] == 150


def test_an_account_event_before_account_opened_cannot_be_applied():
    bank = Bank()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 1)
    with pytest.raises(UnknownEventError, match="before AccountOpened"):
        apply_to_account(None, deposited)


def test_an_unknown_account_event_is_refused():
    bank = Bank()
    bank.open("acc-1")
    doc = account_view(bank.log)
    renamed = hand_made("AccountRenamed", "acc-1", 2, {"customer_id": ADA, "name": "x"})
    with pytest.raises(UnknownEventError, match="AccountRenamed"):
        apply_to_account(doc, renamed)


# -- transaction history ---------------------------------------------------------------------

def test_an_initial_deposit_is_a_deposit_transaction():
    bank = Bank()
    bank.open("acc-1", initial=2_500)
    [opened] = bank.log
    assert transaction_kind(opened) == "deposit"
    assert transaction_doc(opened) == {
        "_id": "tx-open-acc-1", "account_id": "acc-1", "customer_id": ADA,
        "account_version": 1, "kind": "deposit", "currency": "USD", "amount_minor": 2_500,
        "balance_after_minor": 2_500, "occurred_at": opened.occurred_at, "reference": None,
        "counterparty_account_id": None, "transfer_id": None, "event_id": opened.event_id,
    }


def test_deposits_and_withdrawals_become_positive_amounts_with_a_direction():
    bank = Bank()
    account = bank.open("acc-1", initial=1_000)
    deposited = transaction_doc(bank.deposit(account, 250, reference="salary"))
    withdrawn = transaction_doc(bank.withdraw(account, 400))
    assert (deposited["kind"], deposited["amount_minor"], deposited["balance_after_minor"]) == \
        ("deposit", 250, 1_250)
    assert deposited["reference"] == "salary"
    assert (withdrawn["kind"], withdrawn["amount_minor"], withdrawn["balance_after_minor"]) == \
        ("withdrawal", 400, 850)
    assert withdrawn["account_version"] == 3
    assert deposited["_id"] != withdrawn["_id"]


def test_a_transfer_produces_transfer_out_and_transfer_in_naming_the_counterparty():
    bank = Bank()
    sender, receiver = bank.open("acc-a", initial=1_000), bank.open("acc-b", initial=10)
    sent, received = (transaction_doc(e) for e in bank.transfer(sender, receiver, 300, "rent"))
    assert (sent["kind"], sent["account_id"], sent["counterparty_account_id"]) == \
        ("transfer_out", "acc-a", "acc-b")
    assert (received["kind"], received["account_id"], received["counterparty_account_id"]) == \
        ("transfer_in", "acc-b", "acc-a")
    assert sent["transfer_id"] == received["transfer_id"] is not None
    assert (sent["amount_minor"], sent["balance_after_minor"]) == (300, 700)
    assert (received["amount_minor"], received["balance_after_minor"]) == (300, 310)
    assert sent["reference"] == received["reference"] == "rent"
    assert sent["_id"] != received["_id"]


# -- the customer 360 view -------------------------------------------------------------------

def test_registration_fills_in_the_profile_at_version_1():
    bank = Bank()
    bank.register(name="Ada Lovelace", email="Ada@Example.com")
    [registered] = bank.log
    doc = apply_to_customer(None, registered)
    assert doc["_id"] == ADA
    assert (doc["name"], doc["email"], doc["version"]) == ("Ada Lovelace", "Ada@Example.com", 1)
    assert (doc["name_lower"], doc["email_lower"]) == ("ada lovelace", "ada@example.com")
    assert doc["created_at"] == doc["updated_at"] == registered.occurred_at
    assert doc["accounts"] == []
    assert doc["summary"] == {"account_count": 0, "transaction_count": 0, "balances_minor": {}}


def test_the_customer_view_lists_every_account_with_its_current_state():
    bank = Bank()
    bank.register()
    usd = bank.open("acc-usd", initial=1_000)
    bank.deposit(usd, 500)
    savings = bank.open("acc-sav", currency="EUR", account_type=AccountType.SAVINGS)
    bank.freeze(savings)
    doc = customer_view(bank.log)
    assert doc["version"] == 1  # the customer's own version; accounts carry theirs
    assert [a["account_id"] for a in doc["accounts"]] == ["acc-usd", "acc-sav"]
    usd_entry, sav_entry = entry(doc, "acc-usd"), entry(doc, "acc-sav")
    assert (usd_entry["balance_minor"], usd_entry["version"], usd_entry["status"]) == \
        (1_500, 2, "active")
    assert (usd_entry["type"], usd_entry["currency"], usd_entry["transaction_count"]) == \
        ("checking", "USD", 2)
    assert (sav_entry["type"], sav_entry["status"], sav_entry["version"]) == \
        ("savings", "frozen", 2)
    assert sav_entry["last_transaction_at"] is None
    assert doc["updated_at"] == bank.log[-1].occurred_at


def test_the_summary_totals_each_currency_including_zero_and_closed_accounts():
    bank = Bank()
    bank.register()
    a = bank.open("acc-a", initial=1_000)
    b = bank.open("acc-b", initial=250)
    bank.open("acc-eur", currency="EUR")  # zero balance, still listed
    gone = bank.open("acc-gbp", currency="GBP", initial=40)
    bank.withdraw(gone, 40)
    bank.close(gone)  # closed, still listed with its zero balance
    bank.transfer(a, b, 100)
    summary = customer_view(bank.log)["summary"]
    assert summary["balances_minor"] == {"EUR": 0, "GBP": 0, "USD": 1_250}
    assert list(summary["balances_minor"]) == ["EUR", "GBP", "USD"]
    assert summary["account_count"] == 4
    # initial deposits of a, b and gbp; the gbp withdrawal; two transfer legs
    assert summary["transaction_count"] == 6


def test_the_summary_transaction_count_equals_the_history_length_of_every_account():
    bank = Bank()
    bank.register()
    a, b = bank.open("acc-a", initial=900), bank.open("acc-b")
    for _ in range(3):
        bank.transfer(a, b, 100)
    bank.deposit(b, 1)
    doc = customer_view(bank.log)
    history = [t for t in map(transaction_doc, bank.log) if t is not None]
    assert doc["summary"]["transaction_count"] == len(history) == 8
    for account_id in ("acc-a", "acc-b"):
        count = sum(t["account_id"] == account_id for t in history)
        assert entry(doc, account_id)["transaction_count"] == count
        assert account_view(bank.of(account_id))["transaction_count"] == count


def test_customer_summary_of_no_accounts_is_empty():
    assert customer_summary([]) == {"account_count": 0, "transaction_count": 0,
                                    "balances_minor": {}}


def test_account_events_before_registration_create_a_customer_at_version_0():
    bank = Bank()
    bank.register()
    registered = bank.log.pop(0)  # the customer's partition lags behind
    account = bank.open("acc-1", initial=700)
    bank.deposit(account, 300)
    early = customer_view(bank.log)
    assert early["_id"] == ADA
    assert early["version"] == 0
    assert "name" not in early and "email" not in early
    assert early["created_at"] is None
    assert entry(early, "acc-1")["balance_minor"] == 1_000
    assert early["summary"]["balances_minor"] == {"USD": 1_000}

    late = apply_to_customer(early, registered)
    assert (late["version"], late["name"], late["email"]) == (1, "Ada Lovelace", "Ada@Example.com")
    assert late["created_at"] == registered.occurred_at
    assert late["accounts"] == early["accounts"]
    assert late["summary"] == early["summary"]
    assert late["updated_at"] == early["updated_at"]  # never moves backwards


def test_a_customer_account_entry_is_not_re_applied_once_at_that_version():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 50)
    doc = customer_view(bank.log)
    assert apply_to_customer(doc, deposited) == doc
    assert apply_to_customer(doc, bank.log[1]) == doc  # AccountOpened again
    assert entry(doc, "acc-1")["transaction_count"] == 2


def test_an_older_account_event_does_not_roll_a_customer_entry_back():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    old = bank.deposit(account, 50)
    bank.withdraw(account, 150)
    doc = customer_view(bank.log)
    again = apply_to_customer(doc, old)
    assert entry(again, "acc-1")["balance_minor"] == 0
    assert entry(again, "acc-1")["version"] == 3


def test_applying_to_a_customer_does_not_change_the_document_it_was_given():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    doc = customer_view(bank.log)
    snapshot = json.loads(json.dumps(doc, default=str))
    apply_to_customer(doc, bank.deposit(account, 1))
    bank.open("acc-2")
    apply_to_customer(doc, bank.log[-1])
    assert json.loads(json.dumps(doc, default=str)) == snapshot


def test_the_customer_view_refuses_a_change_to_an_account_it_never_saw_open():
    bank = Bank()
    bank.register()
    account = bank.open("acc-1", initial=100)
    deposited = bank.deposit(account, 1)
    with pytest.raises(UnknownEventError, match="lacks"):
        apply_to_customer(customer_view(bank.log[:1]), deposited)


def test_the_customer_view_refuses_an_unknown_customer_event():
    bank = Bank()
    bank.register()
    doc = customer_view(bank.log)
    nicknamed = hand_made("CustomerNicknamed", ADA, 2, {"nickname": "x"},
                          aggregate_type="customer")
    with pytest.raises(UnknownEventError, match="CustomerNicknamed"):
        apply_to_customer(doc, nicknamed)


# -- the API shapes (query_service/views.py) -------------------------------------------------

def _full_story() -> tuple[Bank, dict, dict]:
    bank = Bank()
    bank.register()
    usd = bank.open("acc-usd", initial=123_456)
    bank.open("acc-eur", currency="EUR")
    other = bank.open("acc-usd-2")
    bank.withdraw(usd, 6)
    bank.transfer(usd, other, 5)
    return bank, customer_view(bank.log), account_view(bank.of("acc-usd"))


def test_the_customer_360_view_prints_money_as_two_decimal_strings():
    _, doc, _ = _full_story()
    body = views.customer_360(doc)
    assert body["summary"]["balances"] == {"EUR": "0.00", "USD": "1234.50"}
    assert [a["balance"] for a in body["accounts"]] == ["1234.45", "0.00", "0.05"]
    assert body["summary"]["account_count"] == 3
    assert body["summary"]["transaction_count"] == 4
    assert (body["customer_id"], body["name"], body["email"], body["version"]) == \
        (ADA, "Ada Lovelace", "Ada@Example.com", 1)


def test_the_customer_360_view_has_exactly_the_contract_fields():
    _, doc, _ = _full_story()
    body = views.customer_360(doc)
    assert set(body) == {"customer_id", "name", "email", "status", "version", "accounts",
                         "summary", "updated_at"}
    assert set(body["summary"]) == {"account_count", "transaction_count", "balances"}
    for account in body["accounts"]:
        assert set(account) == {"account_id", "type", "currency", "balance", "status",
                                "version", "opened_at", "last_transaction_at"}
        assert MONEY.match(account["balance"])
    assert json.loads(json.dumps(body)) == body  # nothing but JSON types


def test_view_timestamps_are_utc_iso_with_a_z():
    bank, doc, account = _full_story()
    body = views.customer_360(doc)
    assert ISO_Z.match(body["updated_at"])
    assert body["updated_at"] == iso_utc(bank.log[-1].occurred_at)
    for item in body["accounts"]:
        assert ISO_Z.match(item["opened_at"])
    eur = next(a for a in body["accounts"] if a["account_id"] == "acc-eur")
    assert eur["last_transaction_at"] is None
    shown = views.account_view(account)
    assert ISO_Z.match(shown["opened_at"]) and ISO_Z.match(shown["updated_at"])


def test_naive_timestamps_from_the_read_store_are_shown_as_utc():
    # MongoDB hands back naive UTC datetimes unless the client is tz-aware.
    _, _, account = _full_story()
    naive = {**account, "opened_at": datetime(2026, 3, 1, 9, 0, 1),
             "updated_at": datetime(2026, 3, 1, 9, 0, 2, 500)}
    shown = views.account_view(naive)
    assert shown["opened_at"] == "2026-03-01T09:00:01.000000Z"
    assert shown["updated_at"] == "2026-03-01T09:00:02.000500Z"


def test_the_account_view_shape_matches_the_contract():
    _, _, doc = _full_story()
    body = views.account_view(doc)
    assert body == {
        "account_id": "acc-usd", "customer_id": ADA, "type": "checking", "currency": "USD",
        "balance": "1234.45", "status": "active", "status_reason": None,
        "status_changed_at": None, "version": 3, "transaction_count": 3,
        "opened_at": iso_utc(doc["opened_at"]), "updated_at": iso_utc(doc["updated_at"]),
    }


def test_transaction_items_show_positive_amounts_and_balances_as_strings():
    bank, _, _ = _full_story()
    items = [views.transaction_item(t) for t in map(transaction_doc, bank.of("acc-usd")) if t]
    assert [(i["kind"], i["amount"], i["balance_after"]) for i in items] == [
        ("deposit", "1234.56", "1234.56"),
        ("withdrawal", "0.06", "1234.50"),
        ("transfer_out", "0.05", "1234.45"),
    ]
    assert items[2]["counterparty_account_id"] == "acc-usd-2"
    assert items[0]["counterparty_account_id"] is None and items[0]["reference"] is None
    for item in items:
        assert set(item) == {"transaction_id", "account_id", "kind", "amount", "balance_after",
                             "occurred_at", "reference", "counterparty_account_id"}
        assert ISO_Z.match(item["occurred_at"])


def test_a_customer_search_item_is_id_name_email_and_status():
    _, doc, _ = _full_story()
    assert views.customer_item(doc) == {"customer_id": ADA, "name": "Ada Lovelace",
                                        "email": "Ada@Example.com", "status": "active"}
    # A view projected before customers could close has no status: it is an open customer.
    del doc["status"]
    assert views.customer_360(doc)["status"] == views.customer_item(doc)["status"] == "active"


def test_customer_changes_and_closure_reach_the_customer_view():
    bank = Bank()
    bank.register()
    bank.change_customer(name="Ada King", email="Ada.King@Example.com")
    closed = bank.close_customer(reason="moved abroad")
    doc = customer_view(bank.log)
    assert {k: doc[k] for k in ("name", "name_lower", "email", "email_lower", "status",
                                "status_reason", "version")} == {
        "name": "Ada King", "name_lower": "ada king", "email": "Ada.King@Example.com",
        "email_lower": "ada.king@example.com", "status": "closed",
        "status_reason": "moved abroad", "version": 4}
    assert doc["closed_at"] == closed.occurred_at
    assert customer_view(bank.log[:1])["status"] == "active"
