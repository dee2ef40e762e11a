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


async def account_states(engine: AsyncEngine) -> dict[str, AccountState]:
    query = sa.select(accounts.c.account_id, accounts.c.customer_id, accounts.c.version,
                      accounts.c.balance_minor, accounts.c.status, accounts.c.freeze_reason)
    async with read_only(engine).connect() as conn:
        return {row.account_id: AccountState(*row) for row in await conn.execute(query)}


async def customer_states(engine: AsyncEngine) -> dict[str, CustomerState]:
    query = sa.select(customers.c.customer_id, customers.c.name, customers.c.email,
                      customers.c.version, customers.c.status)
    async with read_only(engine).connect() as conn:
        return {row.customer_id: CustomerState(*row) for row in await conn.execute(query)}


async def account_ids_of(engine: AsyncEngine, customer_id: str) -> list[str]:
    async with read_only(engine).connect() as conn:
        return list((await conn.scalars(sa.select(accounts.c.account_id).where(
            accounts.c.customer_id == customer_id))).all())
