"""The aggregates: pure Python, no I/O. Each rule lives here once.

An aggregate method checks its rules, then records an event and applies it to itself; the
unit of work later persists the new state and the recorded events in one transaction.
`version` counts the events of an aggregate: 1 after creation, +1 per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from command_service.domain import events as ev
from command_service.domain.errors import (
    AccountClosedError,
    AccountFrozenError,
    AccountNotFrozenError,
    AccountsOpenError,
    BalanceNotZeroError,
    CurrencyMismatchError,
    CustomerClosedError,
    InsufficientFundsError,
    SameAccountError,
)


class AccountType(StrEnum):
    CHECKING = "checking"
    SAVINGS = "savings"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    FROZEN = "frozen"
    CLOSED = "closed"


class CustomerStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass
class Customer:
    customer_id: str
    name: str
    email: str
    version: int = 0
    status: CustomerStatus = CustomerStatus.ACTIVE
    pending_events: list[ev.DomainEvent] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def register(cls, *, customer_id: str, name: str, email: str, now: datetime) -> Customer:
        customer = cls(customer_id=customer_id, name=name, email=email)
        customer._record(ev.CustomerRegistered, now, name=name, email=email)
        return customer

    def change(self, *, name: str | None, email: str | None, now: datetime) -> None:
        """One event per field whose value changes; a field equal to its value changes
        nothing, so a request that changes nothing records nothing."""
        self.require_open()
        if name is not None and name != self.name:
            self.name = name
            self._record(ev.CustomerRenamed, now, name=name)
        if email is not None and email != self.email:
            self.email = email
            self._record(ev.CustomerEmailChanged, now, email=email)

    def close(self, *, reason: str | None, open_accounts: int, now: datetime) -> None:
        """`open_accounts`: how many of the customer's accounts are not closed."""
        self.require_open()
        if open_accounts:
            raise AccountsOpenError()
        self.status = CustomerStatus.CLOSED
        self._record(ev.CustomerClosed, now, reason=reason)

    def require_open(self) -> None:
        """A closed customer accepts no command."""
        if self.status is CustomerStatus.CLOSED:
            raise CustomerClosedError()

    def _record(self, event_type: type[ev.CustomerRegistered | ev.CustomerEvent], now: datetime,
                **fields) -> None:
        self.version += 1
        self.pending_events.append(event_type(
            aggregate_id=self.customer_id, version=self.version, occurred_at=now,
            customer_id=self.customer_id, **fields))


@dataclass
class Account:
    account_id: str
    customer_id: str
    account_type: AccountType
    currency: str
    balance_minor: int = 0
    status: AccountStatus = AccountStatus.ACTIVE
    freeze_reason: str | None = None
    version: int = 0
    # When the last event was recorded. A command that waited for this account's lock may
    # carry an earlier clock reading than the one that went first; its events are stamped no
    # earlier than this, so time never runs backwards along an account's versions.
    changed_at: datetime | None = None
    pending_events: list[ev.DomainEvent] = field(default_factory=list, repr=False, compare=False)

    @classmethod
    def open(
        cls, *, account_id: str, customer_id: str, account_type: AccountType, currency: str,
        initial_deposit_minor: int, transaction_id: str | None, now: datetime,
    ) -> Account:
        account = cls(
            account_id=account_id, customer_id=customer_id,
            account_type=account_type, currency=currency,
        )
        account._record(
            ev.AccountOpened, now,
            type=str(account_type),
            initial_deposit_minor=initial_deposit_minor,
            balance_after_minor=initial_deposit_minor,
            transaction_id=transaction_id if initial_deposit_minor else None,
        )
        account.balance_minor = initial_deposit_minor
        return account

    # -- money -----------------------------------------------------------------------------

    def deposit(
        self, *, amount_minor: int, transaction_id: str, reference: str | None, now: datetime
    ) -> None:
        self._require_not_closed()
        self._credit(ev.MoneyDeposited, amount_minor, now,
                     transaction_id=transaction_id, reference=reference)

    def withdraw(
        self, *, amount_minor: int, transaction_id: str, reference: str | None, now: datetime
    ) -> None:
        self._require_debitable(amount_minor)
        self._debit(ev.MoneyWithdrawn, amount_minor, now,
                    transaction_id=transaction_id, reference=reference)

    def send_transfer(
        self, *, to: Account, amount_minor: int, transfer_id: str, transaction_id: str,
        reference: str | None, now: datetime,
    ) -> None:
        if to.account_id == self.account_id:
            raise SameAccountError()
        if to.currency != self.currency:
            raise CurrencyMismatchError(self.currency, to.currency)
        self._require_debitable(amount_minor)
        to._require_not_closed()
        self._debit(ev.TransferSent, amount_minor, now, transaction_id=transaction_id,
                    reference=reference, transfer_id=transfer_id,
                    counterparty_account_id=to.account_id)

    def receive_transfer(
        self, *, sender: Account, amount_minor: int, transfer_id: str, transaction_id: str,
        reference: str | None, now: datetime,
    ) -> None:
        self._require_not_closed()
        self._credit(ev.TransferReceived, amount_minor, now, transaction_id=transaction_id,
                     reference=reference, transfer_id=transfer_id,
                     counterparty_account_id=sender.account_id)

    # -- lifecycle -------------------------------------------------------------------------

    def freeze(self, *, reason: str, now: datetime) -> None:
        self._require_not_closed()
        if self.status is AccountStatus.FROZEN:
            raise AccountFrozenError("the account is already frozen")
        self.status = AccountStatus.FROZEN
        self.freeze_reason = reason
        self._record(ev.AccountFrozen, now, reason=reason)

    def unfreeze(self, *, now: datetime) -> None:
        self._require_not_closed()
        if self.status is not AccountStatus.FROZEN:
            raise AccountNotFrozenError()
        self.status = AccountStatus.ACTIVE
        self.freeze_reason = None
        self._record(ev.AccountUnfrozen, now)

    def close(self, *, now: datetime) -> None:
        self._require_not_closed()
        if self.balance_minor != 0:
            raise BalanceNotZeroError()
        self.status = AccountStatus.CLOSED
        self._record(ev.AccountClosed, now)

    # -- internals -------------------------------------------------------------------------

    def _require_not_closed(self) -> None:
        if self.status is AccountStatus.CLOSED:
            raise AccountClosedError()

    def _require_debitable(self, amount_minor: int) -> None:
        self._require_not_closed()
        if self.status is AccountStatus.FROZEN:
            raise AccountFrozenError("the account is frozen and accepts no debits")
        if amount_minor > self.balance_minor:
            raise InsufficientFundsError()

    def _credit(self, event_type: type[ev.MoneyMoved], amount_minor: int, now: datetime,
                **fields) -> None:
        self.balance_minor += amount_minor
        self._record(event_type, now, amount_minor=amount_minor,
                     balance_after_minor=self.balance_minor, **fields)

    def _debit(self, event_type: type[ev.MoneyMoved], amount_minor: int, now: datetime,
               **fields) -> None:
        self.balance_minor -= amount_minor
        self._record(event_type, now, amount_minor=amount_minor,
                     balance_after_minor=self.balance_minor, **fields)

    def _record(self, event_type: type[ev.AccountEvent], now: datetime, **fields) -> None:
        if self.changed_at is not None and now < self.changed_at:
            now = self.changed_at
        self.changed_at = now
        self.version += 1
        self.pending_events.append(
            event_type(
                aggregate_id=self.account_id, version=self.version, occurred_at=now,
                account_id=self.account_id, customer_id=self.customer_id,
                currency=self.currency, **fields,
            )
        )
