"""Refusals: why a command was not carried out. Each carries the contract's error `code`, a
sentence, and the id of the command it refused; the API maps business refusals to 409 (or 422
/ 404 / 403 where the contract says so) without the domain knowing about HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_DECIDING: ContextVar[str] = ContextVar("command_being_decided", default="")


@contextmanager
def deciding(command_id: str) -> Iterator[None]:
    """While the command `command_id` is being decided, every refusal raised names it. The
    aggregates that refuse know nothing of commands; this way nobody has to stamp the id on
    a refusal after it was raised."""
    token = _DECIDING.set(command_id)
    try:
        yield
    finally:
        _DECIDING.reset(token)


class Refusal(Exception):
    """The root of every refusal: the contract's error code, a sentence, and the command it
    refused ("" outside `deciding`)."""

    code: str = "refused"
    message: str = "the command was refused"

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.command_id = _DECIDING.get()


class DomainError(Refusal):
    """A business rule refused the command."""

    code = "business_rule_violated"
    message = "the command breaks a business rule"


class InsufficientFundsError(DomainError):
    code = "insufficient_funds"
    message = "the balance does not cover this debit"


class AccountFrozenError(DomainError):
    code = "account_frozen"
    message = "the account is frozen"


class AccountNotFrozenError(DomainError):
    code = "account_not_frozen"
    message = "the account is not frozen"


class AccountClosedError(DomainError):
    code = "account_closed"
    message = "the account is closed and accepts nothing"


class BalanceNotZeroError(DomainError):
    code = "balance_not_zero"
    message = "only an account with a zero balance can be closed"


class CurrencyMismatchError(DomainError):
    code = "currency_mismatch"

    def __init__(self, from_currency: str, to_currency: str) -> None:
        super().__init__(
            f"a transfer needs two accounts of one currency, not {from_currency} and {to_currency}"
        )


class SameAccountError(DomainError):
    """Checked by request validation first (422); kept here so the rule holds everywhere."""

    code = "same_account"
    message = "a transfer needs two different accounts"


class AccountsOpenError(DomainError):
    code = "accounts_open"
    message = "a customer can be closed only once every account of it is closed"


class CustomerClosedError(DomainError):
    code = "customer_closed"
    message = "the customer is closed and accepts no command"


class EmailTakenError(DomainError):
    code = "email_taken"
    message = "a customer with this email already exists"


class AlreadyExistsError(DomainError):
    code = "already_exists"

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident} already exists")


class NotFoundError(Refusal):
    """The named customer/account/command does not exist (404, not a business refusal)."""

    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident} does not exist")
        self.what = what
        self.ident = ident
        self.code = f"{what}_not_found"
