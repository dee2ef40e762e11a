"""Domain events: facts in the past tense, one per change of an aggregate.

Events are "fat": each carries the state the read side needs (balance after, customer id,
currency), so projections never have to look anything up or redo arithmetic. Money is in
integer minor units.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar


@dataclass(frozen=True, kw_only=True)
class DomainEvent:
    aggregate_type: ClassVar[str]
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
    aggregate_type: ClassVar[str] = "customer"
    customer_id: str
    name: str
    email: str


@dataclass(frozen=True, kw_only=True)
class AccountEvent(DomainEvent):
    aggregate_type: ClassVar[str] = "account"
    account_id: str
    customer_id: str
    currency: str


@dataclass(frozen=True, kw_only=True)
class AccountOpened(AccountEvent):
    account_type: str
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
    kind: ClassVar[str] = "deposit"


@dataclass(frozen=True, kw_only=True)
class MoneyWithdrawn(MoneyMoved):
    kind: ClassVar[str] = "withdrawal"


@dataclass(frozen=True, kw_only=True)
class TransferSent(MoneyMoved):
    kind: ClassVar[str] = "transfer_out"
    transfer_id: str
    counterparty_account_id: str


@dataclass(frozen=True, kw_only=True)
class TransferReceived(MoneyMoved):
    kind: ClassVar[str] = "transfer_in"
    transfer_id: str
    counterparty_account_id: str


@dataclass(frozen=True, kw_only=True)
class AccountFrozen(AccountEvent):
    reason: str


@dataclass(frozen=True, kw_only=True)
class AccountUnfrozen(AccountEvent):
    pass


@dataclass(frozen=True, kw_only=True)
class AccountClosed(AccountEvent):
    pass
