"""Command handlers: plain functions that load aggregates, ask them to act, and say what to
answer. They run inside a unit of work; they never commit and never talk HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from command_service.domain import commands as c
from command_service.domain.errors import (
    AlreadyExistsError,
    EmailTakenError,
    NotFoundError,
    SameAccountError,
)
from command_service.domain.model import Account, Customer
from command_service.ports import UnitOfWork
from shared.money import format_minor


@dataclass(frozen=True)
class Outcome:
    body: dict  # the response body, without command_id
    versions: dict[str, int]  # aggregate id -> version after the command


Handler = Callable[[UnitOfWork, c.Command, datetime], Awaitable[Outcome]]


async def register_customer(uow: UnitOfWork, cmd: c.RegisterCustomer, now: datetime) -> Outcome:
    if await uow.aggregates.customer(cmd.customer_id) is not None:
        raise AlreadyExistsError("customer", cmd.customer_id)
    # Ids are client-chosen, and customers and accounts share one event log keyed by id.
    if await uow.aggregates.account_exists(cmd.customer_id):
        raise AlreadyExistsError("account", cmd.customer_id)
    if await uow.aggregates.email_owner(cmd.email) is not None:
        raise EmailTakenError()
    customer = Customer.register(customer_id=cmd.customer_id, name=cmd.name, email=cmd.email,
                                 now=now)
    uow.aggregates.add(customer)
    return Outcome({"customer_id": customer.customer_id, "version": customer.version},
                   {customer.customer_id: customer.version})


async def _locked_customer(uow: UnitOfWork, customer_id: str) -> Customer:
    customer = await uow.aggregates.customer(customer_id, for_update=True)
    if customer is None:
        raise NotFoundError("customer", customer_id)
    return customer


async def change_customer(uow: UnitOfWork, cmd: c.ChangeCustomer, now: datetime) -> Outcome:
    customer = await _locked_customer(uow, cmd.customer_id)
    if cmd.email is not None and await uow.aggregates.email_owner(cmd.email) \
            not in (None, customer.customer_id):
        raise EmailTakenError()
    customer.change(name=cmd.name, email=cmd.email, now=now)
    return Outcome({"customer_id": customer.customer_id, "version": customer.version},
                   {customer.customer_id: customer.version})


async def close_customer(uow: UnitOfWork, cmd: c.CloseCustomer, now: datetime) -> Outcome:
    # The customer's row lock is also what every account opening takes, so no account can be
    # opened between this count and the commit.
    customer = await _locked_customer(uow, cmd.customer_id)
    customer.close(reason=cmd.reason, now=now,
                   open_accounts=await uow.aggregates.open_account_count(customer.customer_id))
    return Outcome({"customer_id": customer.customer_id, "status": str(customer.status),
                    "version": customer.version},
                   {customer.customer_id: customer.version})


async def open_account(uow: UnitOfWork, cmd: c.OpenAccount, now: datetime) -> Outcome:
    # Locked, so that closing the customer waits for this account (see close_customer).
    customer = await _locked_customer(uow, cmd.customer_id)
    customer.require_open()
    if await uow.aggregates.account_exists(cmd.account_id):
        raise AlreadyExistsError("account", cmd.account_id)
    if await uow.aggregates.customer(cmd.account_id) is not None:  # see register_customer
        raise AlreadyExistsError("customer", cmd.account_id)
    account = Account.open(
        account_id=cmd.account_id, customer_id=cmd.customer_id, account_type=cmd.account_type,
        currency=cmd.currency, initial_deposit_minor=cmd.initial_deposit_minor,
        transaction_id=str(uuid.uuid4()), now=now,
    )
    uow.aggregates.add(account)
    return Outcome(
        {"account_id": account.account_id, "customer_id": account.customer_id,
         "balance": format_minor(account.balance_minor), "version": account.version},
        {account.account_id: account.version},
    )


async def _locked_account(uow: UnitOfWork, account_id: str) -> Account:
    found = await uow.aggregates.accounts_for_update(account_id)
    if account_id not in found:
        raise NotFoundError("account", account_id)
    return found[account_id]


async def deposit(uow: UnitOfWork, cmd: c.Deposit, now: datetime) -> Outcome:
    account = await _locked_account(uow, cmd.account_id)
    transaction_id = str(uuid.uuid4())
    account.deposit(amount_minor=cmd.amount_minor, transaction_id=transaction_id,
                    reference=cmd.reference, now=now)
    return _money_outcome(account, transaction_id)


async def withdraw(uow: UnitOfWork, cmd: c.Withdraw, now: datetime) -> Outcome:
    account = await _locked_account(uow, cmd.account_id)
    transaction_id = str(uuid.uuid4())
    account.withdraw(amount_minor=cmd.amount_minor, transaction_id=transaction_id,
                     reference=cmd.reference, now=now)
    return _money_outcome(account, transaction_id)


def _money_outcome(account: Account, transaction_id: str) -> Outcome:
    return Outcome(
        {"account_id": account.account_id, "transaction_id": transaction_id,
         "balance": format_minor(account.balance_minor), "version": account.version},
        {account.account_id: account.version},
    )


async def transfer(uow: UnitOfWork, cmd: c.Transfer, now: datetime) -> Outcome:
    if cmd.from_account_id == cmd.to_account_id:
        raise SameAccountError()
    found = await uow.aggregates.accounts_for_update(cmd.from_account_id, cmd.to_account_id)
    for account_id in (cmd.from_account_id, cmd.to_account_id):
        if account_id not in found:
            raise NotFoundError("account", account_id)
    sender, receiver = found[cmd.from_account_id], found[cmd.to_account_id]
    transfer_id = str(uuid.uuid4())
    sender.send_transfer(to=receiver, amount_minor=cmd.amount_minor, transfer_id=transfer_id,
                         transaction_id=str(uuid.uuid4()), reference=cmd.reference, now=now)
    receiver.receive_transfer(sender=sender, amount_minor=cmd.amount_minor,
                              transfer_id=transfer_id, transaction_id=str(uuid.uuid4()),
                              reference=cmd.reference, now=now)
    return Outcome(
        {"transfer_id": transfer_id,
         "from": _leg(sender), "to": _leg(receiver)},
        {sender.account_id: sender.version, receiver.account_id: receiver.version},
    )


def _leg(account: Account) -> dict:
    return {"account_id": account.account_id, "balance": format_minor(account.balance_minor),
            "version": account.version}


async def freeze_account(uow: UnitOfWork, cmd: c.FreezeAccount, now: datetime) -> Outcome:
    account = await _locked_account(uow, cmd.account_id)
    account.freeze(reason=cmd.reason, now=now)
    return _status_outcome(account)


async def unfreeze_account(uow: UnitOfWork, cmd: c.UnfreezeAccount, now: datetime) -> Outcome:
    account = await _locked_account(uow, cmd.account_id)
    account.unfreeze(now=now)
    return _status_outcome(account)


async def close_account(uow: UnitOfWork, cmd: c.CloseAccount, now: datetime) -> Outcome:
    account = await _locked_account(uow, cmd.account_id)
    account.close(now=now)
    return _status_outcome(account)


def _status_outcome(account: Account) -> Outcome:
    return Outcome(
        {"account_id": account.account_id, "status": str(account.status),
         "version": account.version},
        {account.account_id: account.version},
    )


HANDLERS: dict[type, tuple[str, Handler]] = {
    c.RegisterCustomer: ("register_customer", register_customer),
    c.ChangeCustomer: ("change_customer", change_customer),
    c.CloseCustomer: ("close_customer", close_customer),
    c.OpenAccount: ("open_account", open_account),
    c.Deposit: ("deposit", deposit),
    c.Withdraw: ("withdraw", withdraw),
    c.Transfer: ("transfer", transfer),
    c.FreezeAccount: ("freeze_account", freeze_account),
    c.UnfreezeAccount: ("unfreeze_account", unfreeze_account),
    c.CloseAccount: ("close_account", close_account),
}
