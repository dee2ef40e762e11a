"""What the command log says of a command besides its outcome: its input as the HTTP API spells
it (`payload`), the customer it acts for and the aggregates it names. Derived from the command
dataclass's fields, so a new command needs no change here unless it holds money or renames a
field of its request body."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from enum import Enum

from command_service.access import acting_account
from command_service.domain.commands import Command
from command_service.ports import Aggregates
from shared.money import format_minor

# Fields whose API name differs for another reason than being money in minor units.
RENAMED = {"account_type": "type"}
MINOR_UNITS = "_minor"  # an integer of cents, shown as the API's decimal string without it


def payload(command: Command) -> dict:
    """The command's input as accepted, under the names of the request body: money as a
    decimal string ("12.50"), enumerations as their value."""
    body = {}
    for field in dataclasses.fields(command):
        name, value = field.name, getattr(command, field.name)
        if name.endswith(MINOR_UNITS):
            name, value = name.removesuffix(MINOR_UNITS), format_minor(value)
        elif isinstance(value, Enum):
            value = value.value
        body[RENAMED.get(name, name)] = value
    return body


def named_ids(command: Command) -> list[str]:
    """The customer and account ids the command names, in field order, each once."""
    ids = (getattr(command, f.name) for f in dataclasses.fields(command)
           if f.name in ("customer_id", "account_id") or f.name.endswith("_account_id"))
    return list(dict.fromkeys(ids))


async def acting_customer(aggregates: Aggregates, command: Command,
                          known_owners: Mapping[str, str] | None = None) -> str | None:
    """The customer the command acts for: the one it names, else the owner of the account it
    acts on (a transfer's sender), None when it names neither or that account does not exist.
    `known_owners` (account id -> customer id, of the accounts a command changed) spares a
    read of an owner already loaded."""
    customer_id = getattr(command, "customer_id", None)
    if customer_id is not None:
        return customer_id
    account_id = acting_account(command)
    if account_id is None:
        return None
    if known_owners and account_id in known_owners:
        return known_owners[account_id]
    return await aggregates.account_owner(account_id)
