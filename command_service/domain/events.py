"""Domain events: facts in the past tense, one per change of an aggregate.

Events are "fat": each carries the state the read side needs (balance after, customer id,
currency), so projections never have to look anything up or redo arithmetic. Money is in
integer minor units.

Each event type has a schema version (`schema_version`, from 1): the version of its payload's
shape. Change a field and the version goes up by one, with an upcaster from the old version in
shared/upcasting.py and the old shape frozen in past_events.py (docs/events/README.md).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    aggregate_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    aggregate_id: str
    version: int
    occurred_at: datetime

    _ENVELOPE_FIELDS: ClassVar[frozenset[str]] = frozenset(
        {"aggregate_id", "version", "occurred_at"})

    @property
    def event_type(self) -> str:
        return type(self).__name__

    def payload(self) -> dict:
        """The event's own fields, JSON-ready (the envelope carries id, version and time)."""
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in self._ENVELOPE_FIELDS
        }


@dataclass(frozen=True, kw_only=True)
class CustomerRegistered(DomainEvent):
    """A customer was registered (their email is unique among customers, case-insensitive)."""

    aggregate_type: ClassVar[str] = "customer"
    customer_id: str
    name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerEvent(DomainEvent):
    """Base of the customer's own events after its registration."""

    aggregate_type: ClassVar[str] = "customer"
    customer_id: str


@dataclass(frozen=True, kw_only=True)
class CustomerRenamed(CustomerEvent):
    """The customer's name was changed."""

    name: str


@dataclass(frozen=True, kw_only=True)
class CustomerEmailChanged(CustomerEvent):
    """The customer's email address was changed; the old one is free for others."""

    email: str


@dataclass(frozen=True, kw_only=True)
class CustomerClosed(CustomerEvent):
    """The customer was closed, every account closed first: it accepts no command any more,
    and its email address is free for a new customer."""

    reason: str | None


@dataclass(frozen=True, kw_only=True)
class AccountEvent(DomainEvent):
    """Base of every event of an account: which account, whose, and in what currency."""

    aggregate_type: ClassVar[str] = "account"
    account_id: str
    customer_id: str
    currency: str


@dataclass(frozen=True, kw_only=True)
class AccountOpened(AccountEvent):
    """An account was opened, with its initial deposit when one was made."""

    schema_version: ClassVar[int] = 2  # v1 called `type` `account_type`
    type: str  # checking | savings
    initial_deposit_minor: int
    balance_after_minor: int
    transaction_id: str | None


@dataclass(frozen=True, kw_only=True)
class MoneyMoved(AccountEvent):
    """Base of every event that changes a balance and appears in the transaction history."""

    kind: ClassVar[str]
    transaction_id: str
    amount_minor: int
    balance_after_minor: int
    reference: str | None


@dataclass(frozen=True, kw_only=True)
class MoneyDeposited(MoneyMoved):
    """Money was paid into the account."""

    kind: ClassVar[str] = "deposit"


@dataclass(frozen=True, kw_only=True)
class MoneyWithdrawn(MoneyMoved):
    """Money was taken out of the account."""

    kind: ClassVar[str] = "withdrawal"


@dataclass(frozen=True, kw_only=True)
class TransferSent(MoneyMoved):
    """Money left the account for another account (its TransferReceived has the same
    transfer_id and was committed in the same transaction)."""

    kind: ClassVar[str] = "transfer_out"
    transfer_id: str
    counterparty_account_id: str


@dataclass(frozen=True, kw_only=True)
class TransferReceived(MoneyMoved):
    """Money arrived from another account (see TransferSent)."""

    kind: ClassVar[str] = "transfer_in"
    transfer_id: str
    counterparty_account_id: str


@dataclass(frozen=True, kw_only=True)
class AccountFrozen(AccountEvent):
    """The account was frozen: it accepts no debit (withdrawal or outgoing transfer) until it
    is unfrozen; deposits and incoming transfers still arrive."""

    reason: str


@dataclass(frozen=True, kw_only=True)
class AccountUnfrozen(AccountEvent):
    """The account was unfrozen and is active again."""


@dataclass(frozen=True, kw_only=True)
class AccountClosed(AccountEvent):
    """The account was closed (with a zero balance); it accepts no command any more."""


# Every event type the service publishes, in the order the contract lists them.
PUBLISHED_EVENTS: tuple[type[DomainEvent], ...] = (
    CustomerRegistered, CustomerRenamed, CustomerEmailChanged, CustomerClosed,
    AccountOpened, MoneyDeposited, MoneyWithdrawn, TransferSent, TransferReceived,
    AccountFrozen, AccountUnfrozen, AccountClosed,
)
