"""Who may send which command. A refusal here is recorded like a business refusal (a failed
command naming its subject) and answered 403; it writes nothing else.

- Every command needs the `accounts:write` scope (or `admin`).
- A customer's token (one with a `customer_id` claim and without `admin`) acts for that customer
  only: it registers that customer, changes or closes it, opens accounts for it, and deposits
  to, withdraws from, closes or transfers out of that customer's accounts. A transfer may go to
  anyone's account.
  Freezing and unfreezing are the bank's decisions, never the customer's.
"""

from __future__ import annotations

from command_service.domain import commands as c
from command_service.domain.errors import NotFoundError, Refusal
from command_service.ports import UnitOfWork
from shared.auth.principal import WRITE, Principal


class Forbidden(Refusal):  # noqa: N818 (named for the HTTP status it becomes)
    """The sender may not send this command; `scope` names a scope its token lacks."""

    code = "forbidden"

    def __init__(self, message: str, scope: str | None = None) -> None:
        super().__init__(message)
        self.scope = scope


def check_command(principal: Principal, command: c.Command) -> None:
    """What can be decided from the token and the command alone."""
    if not principal.has(WRITE):
        raise Forbidden(f"the token lacks the {WRITE} scope", WRITE)
    if not principal.restricted:
        return
    if isinstance(command, c.RegisterCustomer | c.ChangeCustomer | c.CloseCustomer
                  | c.OpenAccount) \
            and command.customer_id != principal.customer_id:
        raise Forbidden("this token acts for another customer")
    if isinstance(command, c.FreezeAccount | c.UnfreezeAccount):
        raise Forbidden("a customer's token cannot freeze or unfreeze an account")


def acting_account(command: c.Command) -> str | None:
    """The account a command acts on (a transfer's sender), if it acts on one."""
    if isinstance(command, c.Deposit | c.Withdraw | c.CloseAccount | c.FreezeAccount
                  | c.UnfreezeAccount):
        return command.account_id
    if isinstance(command, c.Transfer):
        return command.from_account_id
    return None


async def check_in_transaction(uow: UnitOfWork, principal: Principal,
                               command: c.Command) -> None:
    """The account a customer's token acts on must be that customer's. An account never
    changes hands, so reading its owner in the command's own transaction is final."""
    account_id = acting_account(command)
    if not principal.restricted or account_id is None:
        return
    owner = await uow.aggregates.account_owner(account_id)
    if owner is None:
        raise NotFoundError("account", account_id)
    if owner != principal.customer_id:
        raise Forbidden(f"account {account_id} belongs to another customer")
