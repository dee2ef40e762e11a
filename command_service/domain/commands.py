"""Commands: what a client asks for, in the imperative, already validated and typed."""

from __future__ import annotations

from dataclasses import dataclass

from command_service.domain.model import AccountType


@dataclass(frozen=True)
class RegisterCustomer:
    name: str
    email: str
    customer_id: str


@dataclass(frozen=True)
class ChangeCustomer:
    customer_id: str
    name: str | None  # None: leave as it is
    email: str | None


@dataclass(frozen=True)
class CloseCustomer:
    customer_id: str
    reason: str | None


@dataclass(frozen=True)
class OpenAccount:
    customer_id: str
    account_type: AccountType
    currency: str
    initial_deposit_minor: int
    account_id: str


@dataclass(frozen=True)
class Deposit:
    account_id: str
    amount_minor: int
    reference: str | None


@dataclass(frozen=True)
class Withdraw:
    account_id: str
    amount_minor: int
    reference: str | None


@dataclass(frozen=True)
class Transfer:
    from_account_id: str
    to_account_id: str
    amount_minor: int
    reference: str | None


@dataclass(frozen=True)
class FreezeAccount:
    account_id: str
    reason: str


@dataclass(frozen=True)
class UnfreezeAccount:
    account_id: str


@dataclass(frozen=True)
class CloseAccount:
    account_id: str


Command = (
    RegisterCustomer | ChangeCustomer | CloseCustomer | OpenAccount | Deposit | Withdraw | Transfer
    | FreezeAccount | UnfreezeAccount | CloseAccount
)
