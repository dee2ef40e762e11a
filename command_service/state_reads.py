"""The write model's current state as other packages may read it: what `verify` compares the
read models with, and which accounts a customer has (for a one-customer repair). The state
tables stay the command side's own; everything here reads without taking SQLite's write lock."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only
from command_service.db.tables import accounts, customers


@dataclass(frozen=True, slots=True)
class AccountState:
    account_id: str
    customer_id: str
    version: int
    balance_minor: int
    status: str
    freeze_reason: str | None


@dataclass(frozen=True, slots=True)
class CustomerState:
    customer_id: str
    name: str
    email: str
    version: int
    status: str


IN_LIST = 500  # ids per IN (...): far below SQLite's and MySQL's limits on bound parameters


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i:i + IN_LIST] for i in range(0, len(ids), IN_LIST)]


async def account_states(engine: AsyncEngine,
                         customer_ids: list[str] | None = None) -> dict[str, AccountState]:
    """Every account, or only those of `customer_ids` (one index lookup per customer)."""
    query = sa.select(accounts.c.account_id, accounts.c.customer_id, accounts.c.version,
                      accounts.c.balance_minor, accounts.c.status, accounts.c.freeze_reason)
    wheres = [None] if customer_ids is None else [
        accounts.c.customer_id.in_(chunk) for chunk in _chunks(customer_ids)]
    async with read_only(engine).connect() as conn:
        return {row.account_id: AccountState(*row) for where in wheres for row in
                await conn.execute(query if where is None else query.where(where))}


async def customer_states(engine: AsyncEngine,
                          customer_ids: list[str] | None = None) -> dict[str, CustomerState]:
    query = sa.select(customers.c.customer_id, customers.c.name, customers.c.email,
                      customers.c.version, customers.c.status)
    wheres = [None] if customer_ids is None else [
        customers.c.customer_id.in_(chunk) for chunk in _chunks(customer_ids)]
    async with read_only(engine).connect() as conn:
        return {row.customer_id: CustomerState(*row) for where in wheres for row in
                await conn.execute(query if where is None else query.where(where))}


async def owners_of(engine: AsyncEngine, account_ids: list[str]) -> dict[str, str]:
    """Account id -> its customer's id, for the accounts that exist."""
    async with read_only(engine).connect() as conn:
        return {row.account_id: row.customer_id for chunk in _chunks(account_ids)
                for row in await conn.execute(sa.select(
                    accounts.c.account_id, accounts.c.customer_id).where(
                    accounts.c.account_id.in_(chunk)))}


async def account_ids_of(engine: AsyncEngine, customer_id: str) -> list[str]:
    async with read_only(engine).connect() as conn:
        return list((await conn.scalars(sa.select(accounts.c.account_id).where(
            accounts.c.customer_id == customer_id))).all())
