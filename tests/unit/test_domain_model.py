"""The aggregates' rules (command_service/domain), exercised without any I/O: versions, fat
events, and every business refusal of docs/api.md with its error code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from command_service.domain import events as ev
from command_service.domain.errors import (
    AccountClosedError,
    AccountFrozenError,
    AccountNotFrozenError,
    AccountsOpenError,
    AlreadyExistsError,
    BalanceNotZeroError,
    CurrencyMismatchError,
    CustomerClosedError,
    DomainError,
    EmailTakenError,
    InsufficientFundsError,
    NotFoundError,
    SameAccountError,
)
from command_service.domain.model import (
    Account,
    AccountStatus,
    AccountType,
    Customer,
    CustomerStatus,
)

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)
CUSTOMER_ID = "4f1c2a9e-0000-4000-8000-000000000001"
OTHER_CUSTOMER_ID = "4f1c2a9e-0000-4000-8000-000000000002"


def open_account(account_id="acc-1", *, currency="USD", initial=0, customer_id=CUSTOMER_ID,
                 account_type=AccountType.CHECKING, transaction_id="tx-open") -> Account:
    return Account.open(account_id=account_id, customer_id=customer_id,
                        account_type=account_type, currency=currency,
                        initial_deposit_minor=initial, transaction_id=transaction_id, now=NOW)


def funded(balance=10_000, *, account_id="acc-1", currency="USD") -> Account:
    """An active account holding `balance`, with its opening event already persisted."""
    account = open_account(account_id, currency=currency, initial=balance)
    account.pending_events.clear()
    return account


def deposit(account: Account, amount: int, tx="tx-dep", reference=None) -> None:
    account.deposit(amount_minor=amount, transaction_id=tx, reference=reference, now=LATER)


def withdraw(account: Account, amount: int, tx="tx-wd", reference=None) -> None:
    account.withdraw(amount_minor=amount, transaction_id=tx, reference=reference, now=LATER)


def transfer(sender: Account, receiver: Account, amount: int, transfer_id="tr-1") -> None:
    """Both legs, as command_service/handlers.py `transfer` drives them."""
    sender.send_transfer(to=receiver, amount_minor=amount, transfer_id=transfer_id,
                         transaction_id="tx-out", reference="rent", now=LATER)
    receiver.receive_transfer(sender=sender, amount_minor=amount, transfer_id=transfer_id,
                              transaction_id="tx-in", reference="rent", now=LATER)


def snapshot(account: Account) -> tuple:
    return (account.balance_minor, account.status, account.version, account.freeze_reason,
            list(account.pending_events))


def frozen(balance=10_000, account_id="acc-1") -> Account:
    account = funded(balance, account_id=account_id)
    account.freeze(reason="suspicious activity", now=NOW)
    account.pending_events.clear()
    return account


def closed(account_id="acc-1") -> Account:
    account = funded(0, account_id=account_id)
    account.close(now=NOW)
    account.pending_events.clear()
    return account


# -- customers -------------------------------------------------------------------------------

def test_registering_a_customer_records_one_event_at_version_1():
    customer = Customer.register(customer_id=CUSTOMER_ID, name="Ada Lovelace",
                                 email="Ada@Example.com", now=NOW)
    assert customer.version == 1
    [event] = customer.pending_events
    assert isinstance(event, ev.CustomerRegistered)
    assert (event.aggregate_type, event.aggregate_id, event.version) == ("customer", CUSTOMER_ID, 1)
    assert event.occurred_at == NOW
    assert event.payload() == {"customer_id": CUSTOMER_ID, "name": "Ada Lovelace",
                               "email": "Ada@Example.com"}


# -- opening ---------------------------------------------------------------------------------

def test_opening_without_a_deposit_records_one_account_opened_event_at_version_1():
    account = open_account(initial=0)
    assert account.version == 1
    assert account.balance_minor == 0
    assert account.status is AccountStatus.ACTIVE
    [event] = account.pending_events
    assert isinstance(event, ev.AccountOpened)
    assert event.version == 1
    assert event.event_type == "AccountOpened"
    assert event.aggregate_type == "account"
    assert event.initial_deposit_minor == 0
    assert event.balance_after_minor == 0
    assert event.transaction_id is None  # no money moved, so no transaction


def test_opening_with_an_initial_deposit_is_still_one_event_at_version_1():
    account = open_account(initial=2_500, transaction_id="tx-open")
    assert account.version == 1
    assert account.balance_minor == 2_500
    [event] = account.pending_events
    assert isinstance(event, ev.AccountOpened)
    assert event.version == 1
    assert event.initial_deposit_minor == 2_500
    assert event.balance_after_minor == 2_500
    assert event.transaction_id == "tx-open"


def test_the_account_opened_payload_is_the_published_contract():
    event = open_account("acc-9", currency="EUR", initial=700,
                         account_type=AccountType.SAVINGS).pending_events[0]
    assert event.payload() == {
        "account_id": "acc-9", "customer_id": CUSTOMER_ID, "currency": "EUR",
        "type": "savings", "initial_deposit_minor": 700, "balance_after_minor": 700,
        "transaction_id": "tx-open",
    }
    assert type(event.payload()["type"]) is str  # JSON-ready, not the enum


def test_every_event_carries_the_account_customer_and_currency():
    account = open_account(currency="GBP", initial=100)
    deposit(account, 50)
    withdraw(account, 20)
    account.freeze(reason="audit", now=LATER)
    account.unfreeze(now=LATER)
    for event in account.pending_events:
        assert event.aggregate_id == event.account_id == "acc-1"
        assert event.customer_id == CUSTOMER_ID
        assert event.currency == "GBP"


# -- versions --------------------------------------------------------------------------------

def test_versions_start_at_1_and_grow_by_one_per_event():
    account = open_account(initial=1_000)
    deposit(account, 100)
    withdraw(account, 50)
    account.freeze(reason="audit", now=LATER)
    account.unfreeze(now=LATER)
    assert account.version == 5
    assert [e.version for e in account.pending_events] == [1, 2, 3, 4, 5]


def test_a_loaded_account_continues_from_its_stored_version():
    account = Account(account_id="acc-1", customer_id=CUSTOMER_ID,
                      account_type=AccountType.CHECKING, currency="USD",
                      balance_minor=500, version=41)
    deposit(account, 1)
    assert account.version == 42
    assert account.pending_events[0].version == 42


def test_events_are_immutable_facts():
    event = open_account().pending_events[0]
    with pytest.raises(AttributeError):
        event.version = 7  # type: ignore[misc]


# -- deposits and withdrawals ----------------------------------------------------------------

def test_a_deposit_raises_the_balance_and_records_a_fat_event():
    account = funded(1_000)
    deposit(account, 250, tx="tx-42", reference="salary")
    assert account.balance_minor == 1_250
    [event] = account.pending_events
    assert isinstance(event, ev.MoneyDeposited)
    assert event.kind == "deposit"
    assert event.payload() == {
        "account_id": "acc-1", "customer_id": CUSTOMER_ID, "currency": "USD",
        "transaction_id": "tx-42", "amount_minor": 250, "balance_after_minor": 1_250,
        "reference": "salary",
    }
    assert event.occurred_at == LATER


def test_a_withdrawal_lowers_the_balance_and_records_the_balance_after():
    account = funded(1_000)
    withdraw(account, 300, tx="tx-7")
    assert account.balance_minor == 700
    [event] = account.pending_events
    assert isinstance(event, ev.MoneyWithdrawn)
    assert event.kind == "withdrawal"
    assert (event.amount_minor, event.balance_after_minor) == (300, 700)
    assert event.transaction_id == "tx-7"
    assert event.reference is None


def test_a_withdrawal_of_the_whole_balance_leaves_exactly_zero():
    account = funded(1_000)
    withdraw(account, 1_000)
    assert account.balance_minor == 0
    assert account.pending_events[0].balance_after_minor == 0


def test_withdrawal_never_takes_the_balance_below_zero():
    account = funded(1_000)
    before = snapshot(account)
    with pytest.raises(InsufficientFundsError) as refused:
        withdraw(account, 1_001)
    assert refused.value.code == "insufficient_funds"
    assert snapshot(account) == before  # no balance change, no version, no event


def test_a_withdrawal_from_an_empty_account_is_refused():
    account = funded(0)
    with pytest.raises(InsufficientFundsError):
        withdraw(account, 1)
    assert account.version == 1
    assert account.pending_events == []


def test_balance_after_tracks_a_sequence_of_movements():
    account = funded(0)
    deposit(account, 500)
    withdraw(account, 120)
    deposit(account, 1)
    withdraw(account, 381)
    assert [e.balance_after_minor for e in account.pending_events] == [500, 380, 381, 0]
    assert account.balance_minor == 0


# -- frozen accounts -------------------------------------------------------------------------

def test_freezing_records_the_reason_and_changes_the_status():
    account = funded()
    account.freeze(reason="suspicious activity", now=LATER)
    assert account.status is AccountStatus.FROZEN
    assert account.freeze_reason == "suspicious activity"
    [event] = account.pending_events
    assert isinstance(event, ev.AccountFrozen)
    assert event.reason == "suspicious activity"
    assert event.payload()["reason"] == "suspicious activity"
    assert "balance_after_minor" not in event.payload()


def test_a_frozen_account_accepts_deposits():
    account = frozen(1_000)
    deposit(account, 500)
    assert account.balance_minor == 1_500
    assert account.status is AccountStatus.FROZEN


def test_a_frozen_account_accepts_an_incoming_transfer():
    sender, receiver = funded(1_000, account_id="acc-a"), frozen(0, account_id="acc-b")
    transfer(sender, receiver, 400)
    assert (sender.balance_minor, receiver.balance_minor) == (600, 400)


def test_a_frozen_account_refuses_a_withdrawal_even_when_the_balance_covers_it():
    account = frozen(1_000)
    before = snapshot(account)
    with pytest.raises(AccountFrozenError) as refused:
        withdraw(account, 1)
    assert refused.value.code == "account_frozen"
    assert snapshot(account) == before


def test_a_frozen_account_cannot_send_a_transfer():
    sender, receiver = frozen(1_000, "acc-a"), funded(0, account_id="acc-b")
    before = (snapshot(sender), snapshot(receiver))
    with pytest.raises(AccountFrozenError):
        sender.send_transfer(to=receiver, amount_minor=10, transfer_id="tr", transaction_id="t",
                             reference=None, now=LATER)
    assert (snapshot(sender), snapshot(receiver)) == before


def test_freezing_a_frozen_account_is_refused():
    account = frozen()
    with pytest.raises(AccountFrozenError):
        account.freeze(reason="again", now=LATER)
    assert account.pending_events == []


def test_unfreezing_makes_the_account_active_and_forgets_the_reason():
    account = frozen(1_000)
    account.unfreeze(now=LATER)
    assert account.status is AccountStatus.ACTIVE
    assert account.freeze_reason is None
    [event] = account.pending_events
    assert isinstance(event, ev.AccountUnfrozen)
    withdraw(account, 1_000)  # debits work again
    assert account.balance_minor == 0


def test_unfreezing_an_active_account_is_refused():
    account = funded()
    before = snapshot(account)
    with pytest.raises(AccountNotFrozenError) as refused:
        account.unfreeze(now=LATER)
    assert refused.value.code == "account_not_frozen"
    assert isinstance(refused.value, DomainError)
    assert snapshot(account) == before


# -- closing ---------------------------------------------------------------------------------

def test_closing_needs_a_zero_balance():
    account = funded(1)
    before = snapshot(account)
    with pytest.raises(BalanceNotZeroError) as refused:
        account.close(now=LATER)
    assert refused.value.code == "balance_not_zero"
    assert snapshot(account) == before


def test_closing_an_emptied_account_records_account_closed():
    account = funded(300)
    withdraw(account, 300)
    account.close(now=LATER)
    assert account.status is AccountStatus.CLOSED
    assert isinstance(account.pending_events[-1], ev.AccountClosed)
    assert account.version == 3


def test_a_frozen_account_with_a_zero_balance_can_be_closed():
    account = frozen(0)
    account.close(now=LATER)
    assert account.status is AccountStatus.CLOSED


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda a: deposit(a, 1), id="deposit"),
        pytest.param(lambda a: withdraw(a, 1), id="withdraw"),
        pytest.param(lambda a: a.freeze(reason="x", now=LATER), id="freeze"),
        pytest.param(lambda a: a.unfreeze(now=LATER), id="unfreeze"),
        pytest.param(lambda a: a.close(now=LATER), id="close-again"),
        pytest.param(lambda a: transfer(a, funded(0, account_id="acc-other"), 1),
                     id="send-transfer"),
        pytest.param(lambda a: a.receive_transfer(
            sender=funded(100, account_id="acc-other"), amount_minor=1, transfer_id="tr",
            transaction_id="t", reference=None, now=LATER), id="receive-transfer"),
    ],
)
def test_a_closed_account_accepts_nothing(action):
    account = closed()
    before = snapshot(account)
    with pytest.raises(AccountClosedError) as refused:
        action(account)
    assert refused.value.code == "account_closed"
    assert snapshot(account) == before


def test_a_transfer_to_a_closed_account_is_refused_before_the_sender_is_debited():
    sender, receiver = funded(1_000, account_id="acc-a"), closed("acc-b")
    before = (snapshot(sender), snapshot(receiver))
    with pytest.raises(AccountClosedError):
        sender.send_transfer(to=receiver, amount_minor=10, transfer_id="tr", transaction_id="t",
                             reference=None, now=LATER)
    assert (snapshot(sender), snapshot(receiver)) == before


# -- transfers -------------------------------------------------------------------------------

def test_a_transfer_moves_money_with_one_event_per_leg_sharing_the_transfer_id():
    sender, receiver = funded(1_000, account_id="acc-a"), funded(200, account_id="acc-b")
    transfer(sender, receiver, 300, transfer_id="tr-77")
    assert (sender.balance_minor, receiver.balance_minor) == (700, 500)
    assert (sender.version, receiver.version) == (2, 2)
    [sent] = sender.pending_events
    [received] = receiver.pending_events
    assert isinstance(sent, ev.TransferSent) and sent.kind == "transfer_out"
    assert isinstance(received, ev.TransferReceived) and received.kind == "transfer_in"
    assert sent.transfer_id == received.transfer_id == "tr-77"
    assert sent.counterparty_account_id == "acc-b"
    assert received.counterparty_account_id == "acc-a"
    assert (sent.amount_minor, sent.balance_after_minor) == (300, 700)
    assert (received.amount_minor, received.balance_after_minor) == (300, 500)
    assert sent.transaction_id != received.transaction_id
    assert sent.reference == received.reference == "rent"


def test_transfer_payloads_name_the_transfer_and_the_counterparty():
    sender, receiver = funded(1_000, account_id="acc-a"), funded(0, account_id="acc-b")
    transfer(sender, receiver, 1)
    assert sender.pending_events[0].payload() == {
        "account_id": "acc-a", "customer_id": CUSTOMER_ID, "currency": "USD",
        "transaction_id": "tx-out", "amount_minor": 1, "balance_after_minor": 999,
        "reference": "rent", "transfer_id": "tr-1", "counterparty_account_id": "acc-b",
    }
    assert receiver.pending_events[0].payload()["counterparty_account_id"] == "acc-a"


def test_a_transfer_between_customers_is_allowed():
    sender = funded(500, account_id="acc-a")
    receiver = open_account("acc-b", customer_id=OTHER_CUSTOMER_ID)
    transfer(sender, receiver, 500)
    assert receiver.pending_events[-1].customer_id == OTHER_CUSTOMER_ID
    assert sender.balance_minor == 0


def test_a_transfer_the_balance_does_not_cover_is_refused_and_changes_nothing():
    sender, receiver = funded(100, account_id="acc-a"), funded(0, account_id="acc-b")
    before = (snapshot(sender), snapshot(receiver))
    with pytest.raises(InsufficientFundsError):
        transfer(sender, receiver, 101)
    assert (snapshot(sender), snapshot(receiver)) == before


def test_a_transfer_between_currencies_is_refused():
    sender = funded(1_000, account_id="acc-a", currency="USD")
    receiver = funded(0, account_id="acc-b", currency="EUR")
    before = (snapshot(sender), snapshot(receiver))
    with pytest.raises(CurrencyMismatchError) as refused:
        transfer(sender, receiver, 10)
    assert refused.value.code == "currency_mismatch"
    assert "USD" in refused.value.message and "EUR" in refused.value.message
    assert (snapshot(sender), snapshot(receiver)) == before


def test_a_transfer_to_the_same_account_is_refused():
    account = funded(1_000)
    before = snapshot(account)
    with pytest.raises(SameAccountError) as refused:
        account.send_transfer(to=account, amount_minor=10, transfer_id="tr",
                              transaction_id="t", reference=None, now=LATER)
    assert refused.value.code == "same_account"
    assert snapshot(account) == before


def test_the_same_account_loaded_twice_is_still_the_same_account():
    account, twin = funded(1_000), funded(1_000)
    with pytest.raises(SameAccountError):
        account.send_transfer(to=twin, amount_minor=10, transfer_id="tr", transaction_id="t",
                              reference=None, now=LATER)


# -- error codes -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("error", "code"),
    [
        (InsufficientFundsError(), "insufficient_funds"),
        (AccountFrozenError(), "account_frozen"),
        (AccountClosedError(), "account_closed"),
        (BalanceNotZeroError(), "balance_not_zero"),
        (CurrencyMismatchError("USD", "GBP"), "currency_mismatch"),
        (EmailTakenError(), "email_taken"),
        (AlreadyExistsError("account", "acc-1"), "already_exists"),
        (SameAccountError(), "same_account"),
        (AccountNotFrozenError(), "account_not_frozen"),
    ],
)
def test_each_refusal_carries_the_contract_error_code_and_a_sentence(error, code):
    assert isinstance(error, DomainError)
    assert error.code == code
    assert error.message and str(error) == error.message


def test_a_refusal_can_carry_a_more_specific_message_without_losing_its_code():
    error = AccountFrozenError("the account is frozen and accepts no debits")
    assert error.code == "account_frozen"
    assert error.message == str(error) == "the account is frozen and accepts no debits"
    assert AccountFrozenError().message == "the account is frozen"  # class default untouched


def test_not_found_is_not_a_business_refusal():
    error = NotFoundError("account", "acc-404")
    assert not isinstance(error, DomainError)
    assert error.code == "account_not_found"
    assert error.message == "account acc-404 does not exist"
    assert (error.what, error.ident) == ("account", "acc-404")


def test_a_command_that_waited_for_the_lock_never_stamps_an_earlier_time():
    """Command A read the clock, then waited for the row lock while B committed with a later
    reading: A's event must not be older than B's, or history would run backwards."""
    from datetime import UTC, datetime, timedelta

    from command_service.domain.model import Account, AccountType

    later = datetime(2026, 11, 23, 12, 0, 1, tzinfo=UTC)
    account = Account(account_id="a", customer_id="c", account_type=AccountType.CHECKING,
                      currency="USD", balance_minor=100, version=5, changed_at=later)
    account.deposit(amount_minor=1, transaction_id="t", reference=None,
                    now=later - timedelta(seconds=1))
    assert account.pending_events[-1].occurred_at == later
    account.deposit(amount_minor=1, transaction_id="u", reference=None,
                    now=later + timedelta(seconds=1))
    assert account.pending_events[-1].occurred_at == later + timedelta(seconds=1)


# -- customer changes and closure ------------------------------------------------------------

def _customer() -> Customer:
    customer = Customer.register(customer_id="c", name="Ada", email="ada@example.com", now=NOW)
    customer.pending_events.clear()
    return customer


def test_a_change_records_one_event_per_field_whose_value_changes():
    customer = _customer()
    customer.change(name="Ada King", email="ada@example.com", now=NOW)
    assert [type(e).__name__ for e in customer.pending_events] == ["CustomerRenamed"]
    customer.change(name="Ada King", email="ada.king@example.com", now=NOW)
    assert [(type(e).__name__, e.version) for e in customer.pending_events] == [
        ("CustomerRenamed", 2), ("CustomerEmailChanged", 3)]
    assert (customer.name, customer.email, customer.version) == (
        "Ada King", "ada.king@example.com", 3)


def test_a_change_to_the_same_values_records_nothing():
    customer = _customer()
    customer.change(name="Ada", email=None, now=NOW)
    customer.change(name=None, email="ada@example.com", now=NOW)
    assert customer.pending_events == [] and customer.version == 1


def test_a_customer_with_an_open_account_cannot_be_closed():
    customer = _customer()
    with pytest.raises(AccountsOpenError):
        customer.close(reason=None, open_accounts=1, now=NOW)
    assert customer.status is CustomerStatus.ACTIVE and customer.pending_events == []


def test_a_closed_customer_refuses_every_command():
    customer = _customer()
    customer.close(reason="moved abroad", open_accounts=0, now=NOW)
    [closed] = customer.pending_events
    assert (type(closed).__name__, closed.reason, closed.version) == (
        "CustomerClosed", "moved abroad", 2)
    with pytest.raises(CustomerClosedError):
        customer.change(name="Someone Else", email=None, now=NOW)
    with pytest.raises(CustomerClosedError):
        customer.close(reason=None, open_accounts=0, now=NOW)
