"""What the command log says of a command (command_service/command_log.py): its payload under
the request body's names with money as decimal strings, the ids it names, and the customer it
acts for. Derived from the dataclass fields, so a command added later needs no change."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from command_service.command_log import acting_customer, named_ids, payload
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.ports import Aggregates

C1, A1, A2 = "c-1", "a-1", "a-2"


@pytest.mark.parametrize(("command", "expected"), [
    (c.RegisterCustomer(name="Ada", email="ada@example.com", customer_id=C1),
     {"name": "Ada", "email": "ada@example.com", "customer_id": C1}),
    (c.OpenAccount(customer_id=C1, account_type=AccountType.SAVINGS, currency="EUR",
                   initial_deposit_minor=1250, account_id=A1),
     {"customer_id": C1, "type": "savings", "currency": "EUR", "initial_deposit": "12.50",
      "account_id": A1}),
    (c.Deposit(account_id=A1, amount_minor=5, reference="r"),
     {"account_id": A1, "amount": "0.05", "reference": "r"}),
    (c.Withdraw(account_id=A1, amount_minor=100_000_000_000, reference=None),
     {"account_id": A1, "amount": "1000000000.00", "reference": None}),
    (c.Transfer(from_account_id=A1, to_account_id=A2, amount_minor=1, reference=None),
     {"from_account_id": A1, "to_account_id": A2, "amount": "0.01", "reference": None}),
    (c.FreezeAccount(account_id=A1, reason="fraud"), {"account_id": A1, "reason": "fraud"}),
    (c.UnfreezeAccount(account_id=A1), {"account_id": A1}),
    (c.CloseAccount(account_id=A1), {"account_id": A1}),
])
def test_the_payload_is_the_request_body_as_accepted(command, expected):
    body = payload(command)
    assert body == expected
    assert not any(isinstance(v, float) or k.endswith("_minor") for k, v in body.items())


@dataclass(frozen=True)
class ChangeCustomer:  # a command this module has never heard of
    customer_id: str
    name: str | None
    email: str | None


@dataclass(frozen=True)
class CloseCustomer:
    customer_id: str
    reason: str | None


async def test_a_new_command_dataclass_needs_no_change():
    assert payload(ChangeCustomer(C1, "Ada", None)) == {
        "customer_id": C1, "name": "Ada", "email": None}
    assert payload(CloseCustomer(C1, None)) == {"customer_id": C1, "reason": None}
    assert named_ids(CloseCustomer(C1, None)) == [C1]
    assert await acting_customer(Owners(), CloseCustomer(C1, None)) == C1


def test_named_ids_are_the_customer_and_account_ids_each_once():
    assert named_ids(c.OpenAccount(C1, AccountType.CHECKING, "USD", 0, A1)) == [C1, A1]
    assert named_ids(c.Transfer(A1, A2, 1, None)) == [A1, A2]
    assert named_ids(c.Deposit(A1, 1, None)) == [A1]
    # The same id twice (a client may pick a customer's id for its account) is named once.
    assert named_ids(c.OpenAccount(C1, AccountType.CHECKING, "USD", 0, C1)) == [C1]


class Owners(Aggregates):
    """Account owners, and a record of the owners asked for."""

    def __init__(self, **owners: str) -> None:
        self.owners, self.asked = owners, []

    async def account_owner(self, account_id: str) -> str | None:
        self.asked.append(account_id)
        return self.owners.get(account_id)


async def test_the_acting_customer_is_the_named_one_else_the_acting_accounts_owner():
    owners = Owners(**{A1: "owner-1", A2: "owner-2"})
    assert await acting_customer(owners, c.OpenAccount(C1, AccountType.CHECKING, "USD", 0,
                                                       A1)) == C1
    assert await acting_customer(owners, c.Deposit(A1, 1, None)) == "owner-1"
    # A transfer acts for its sender, not its receiver.
    assert await acting_customer(owners, c.Transfer(A2, A1, 1, None)) == "owner-2"
    # An account that does not exist has no owner.
    assert await acting_customer(owners, c.CloseAccount("nowhere")) is None
    # An owner the command already loaded is not read again.
    owners.asked.clear()
    assert await acting_customer(owners, c.FreezeAccount(A1, "x"), {A1: "owner-1"}) \
        == "owner-1"
    assert owners.asked == []
