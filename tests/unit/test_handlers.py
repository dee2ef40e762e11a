"""The command handlers and the in-transaction access check against an in-memory unit of work:
no database, no SQL class. The fakes subclass the Protocols the handlers are typed on
(command_service/ports.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from command_service import handlers
from command_service.access import Forbidden, check_in_transaction
from command_service.domain import commands as c
from command_service.domain.errors import (
    AccountsOpenError,
    AlreadyExistsError,
    CustomerClosedError,
    EmailTakenError,
    InsufficientFundsError,
    NotFoundError,
    Refusal,
    deciding,
)
from command_service.domain.model import (
    Account,
    AccountStatus,
    AccountType,
    Customer,
    CustomerStatus,
)
from command_service.ports import Aggregates, UnitOfWork
from shared.auth.principal import WRITE, Principal

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


class FakeAggregates(Aggregates):
    def __init__(self, *existing: Customer | Account) -> None:
        self.customers = {a.customer_id: a for a in existing if isinstance(a, Customer)}
        self.accounts = {a.account_id: a for a in existing if isinstance(a, Account)}
        self.added: list[Customer | Account] = []
        self.locked: list[str] = []

    async def customer(self, customer_id: str, *, for_update: bool = False) -> Customer | None:
        if for_update and customer_id in self.customers:
            self.locked.append(customer_id)
        return self.customers.get(customer_id)

    async def email_owner(self, email: str) -> str | None:
        return next((c.customer_id for c in self.customers.values()
                     if c.email.lower() == email.lower() and c.status is CustomerStatus.ACTIVE),
                    None)

    async def open_account_count(self, customer_id: str) -> int:
        return sum(a.customer_id == customer_id and a.status is not AccountStatus.CLOSED
                   for a in self.accounts.values())

    async def accounts_for_update(self, *account_ids: str) -> dict[str, Account]:
        found = {i: self.accounts[i] for i in sorted(set(account_ids)) if i in self.accounts}
        self.locked.extend(found)
        return found

    async def account_owner(self, account_id: str) -> str | None:
        account = self.accounts.get(account_id)
        return account.customer_id if account else None

    async def account_exists(self, account_id: str) -> bool:
        return account_id in self.accounts

    def add(self, aggregate: Customer | Account) -> None:
        self.added.append(aggregate)


class FakeUnitOfWork(UnitOfWork):
    def __init__(self, *existing: Customer | Account) -> None:
        self._aggregates = FakeAggregates(*existing)

    @property
    def aggregates(self) -> FakeAggregates:
        return self._aggregates


def an_account(account_id: str, customer_id: str = "c1", balance_minor: int = 0) -> Account:
    return Account(account_id=account_id, customer_id=customer_id,
                   account_type=AccountType.CHECKING, currency="USD",
                   balance_minor=balance_minor, version=1, changed_at=NOW)


ALICE = Customer(customer_id="c1", name="Alice", email="alice@example.com", version=1)


async def test_registering_adds_the_customer_and_answers_its_version():
    uow = FakeUnitOfWork()
    outcome = await handlers.register_customer(
        uow, c.RegisterCustomer("Bob", "bob@example.com", "c2"), NOW)
    [bob] = uow.aggregates.added
    assert (bob.customer_id, bob.version, len(bob.pending_events)) == ("c2", 1, 1)
    assert outcome.body == {"customer_id": "c2", "version": 1}
    assert outcome.versions == {"c2": 1}


@pytest.mark.parametrize("command,refusal", [
    (c.RegisterCustomer("Al", "ALICE@example.com", "c2"), EmailTakenError),
    (c.RegisterCustomer("Al", "al@example.com", "c1"), AlreadyExistsError),
    (c.RegisterCustomer("Al", "al@example.com", "a1"), AlreadyExistsError),  # an account's id
    (c.OpenAccount("c9", AccountType.CHECKING, "USD", 0, "a2"), NotFoundError),
    (c.OpenAccount("c1", AccountType.CHECKING, "USD", 0, "a1"), AlreadyExistsError),
    (c.Deposit("a9", 100, None), NotFoundError),
    (c.Transfer("a1", "a9", 100, None), NotFoundError),
])
async def test_a_refused_command_adds_nothing(command, refusal):
    uow = FakeUnitOfWork(ALICE, an_account("a1"))
    _, handler = handlers.HANDLERS[type(command)]
    with pytest.raises(refusal):
        await handler(uow, command, NOW)
    assert uow.aggregates.added == []


def alice() -> Customer:  # a fresh one: a handler changes the customer it is given
    return Customer(customer_id="c1", name="Alice", email="alice@example.com", version=1)


async def test_a_change_writes_one_event_per_changed_field_and_nothing_for_the_same_value():
    customer = alice()
    uow = FakeUnitOfWork(customer)
    outcome = await handlers.change_customer(
        uow, c.ChangeCustomer("c1", "Alice", "Alice@Example.org"), NOW)
    assert [type(e).__name__ for e in customer.pending_events] == ["CustomerEmailChanged"]
    assert outcome.body == {"customer_id": "c1", "version": 2} and uow.aggregates.locked == ["c1"]
    customer.pending_events.clear()
    same = await handlers.change_customer(uow, c.ChangeCustomer("c1", "Alice", None), NOW)
    assert customer.pending_events == [] and same.versions == {"c1": 2}


async def test_an_address_held_by_another_open_customer_is_taken_and_one_of_a_closed_is_free():
    bob = Customer(customer_id="c2", name="Bob", email="bob@example.com", version=1)
    uow = FakeUnitOfWork(alice(), bob)
    with pytest.raises(EmailTakenError):
        await handlers.change_customer(uow, c.ChangeCustomer("c1", None, "BOB@example.com"), NOW)
    # Its own address in another case is no clash.
    await handlers.change_customer(uow, c.ChangeCustomer("c1", None, "ALICE@example.com"), NOW)
    bob.status = CustomerStatus.CLOSED
    await handlers.change_customer(uow, c.ChangeCustomer("c1", None, "bob@example.com"), NOW)
    await handlers.register_customer(uow, c.RegisterCustomer("B", "Alice@example.com", "c3"),
                                     NOW)


async def test_closing_needs_every_account_closed_and_a_closed_customer_accepts_nothing():
    customer, account = alice(), an_account("a1", "c1")
    uow = FakeUnitOfWork(customer, account)
    with pytest.raises(AccountsOpenError):
        await handlers.close_customer(uow, c.CloseCustomer("c1", "moved abroad"), NOW)
    account.status = AccountStatus.CLOSED
    outcome = await handlers.close_customer(uow, c.CloseCustomer("c1", "moved abroad"), NOW)
    assert outcome.body == {"customer_id": "c1", "status": "closed", "version": 2}
    for command in (c.CloseCustomer("c1", None), c.ChangeCustomer("c1", "Al", None),
                    c.OpenAccount("c1", AccountType.CHECKING, "USD", 0, "a2")):
        with pytest.raises(CustomerClosedError):
            await handlers.HANDLERS[type(command)][1](uow, command, NOW)
    assert uow.aggregates.added == []
    with pytest.raises(NotFoundError):
        await handlers.close_customer(uow, c.CloseCustomer("c9", None), NOW)


async def test_opening_an_account_locks_its_customer_as_closing_the_customer_does():
    uow = FakeUnitOfWork(alice())
    await handlers.open_account(uow, c.OpenAccount("c1", AccountType.CHECKING, "USD", 0, "a1"),
                                NOW)
    assert uow.aggregates.locked == ["c1"]


async def test_a_transfer_locks_both_accounts_and_answers_both_versions():
    uow = FakeUnitOfWork(an_account("a2", balance_minor=500), an_account("a1"))
    outcome = await handlers.transfer(uow, c.Transfer("a2", "a1", 200, "rent"), NOW)
    assert uow.aggregates.locked == ["a1", "a2"]  # one stable order
    assert outcome.body["from"] == {"account_id": "a2", "balance": "3.00", "version": 2}
    assert outcome.body["to"] == {"account_id": "a1", "balance": "2.00", "version": 2}
    assert outcome.versions == {"a2": 2, "a1": 2}


async def test_a_refusal_names_the_command_being_decided():
    uow = FakeUnitOfWork(an_account("a1", balance_minor=50))
    with deciding("cmd-1"), pytest.raises(InsufficientFundsError) as refused:
        await handlers.withdraw(uow, c.Withdraw("a1", 100, None), NOW)
    assert refused.value.command_id == "cmd-1"
    assert NotFoundError("account", "a1").command_id == ""  # outside a command


async def test_a_customer_token_acts_on_its_own_accounts_only():
    uow = FakeUnitOfWork(an_account("a1", "c1"), an_account("a2", "c2"))
    alice = Principal("alice", frozenset({WRITE}), "c1")
    await check_in_transaction(uow, alice, c.Withdraw("a1", 1, None))
    await check_in_transaction(uow, alice, c.Transfer("a1", "a2", 1, None))  # to anyone
    with pytest.raises(Forbidden):
        await check_in_transaction(uow, alice, c.Withdraw("a2", 1, None))
    with pytest.raises(NotFoundError):
        await check_in_transaction(uow, alice, c.CloseAccount("a9"))


def test_every_refusal_shares_one_root():
    for refusal in (InsufficientFundsError(), NotFoundError("account", "a1"), Forbidden("no")):
        assert isinstance(refusal, Refusal)
        assert refusal.code and refusal.message and refusal.command_id == ""
