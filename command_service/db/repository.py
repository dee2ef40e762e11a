"""Loading and saving the aggregates (customers, accounts) of one transaction: rows to
aggregates and back, each saved with a check that nobody changed it since it was loaded."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from command_service.db import mysql_driver, sqlite_writes
from command_service.db.errors import ConcurrentUpdateError
from command_service.db.tables import accounts, customers, naive_utc
from command_service.domain.model import (
    Account,
    AccountStatus,
    AccountType,
    Customer,
    CustomerStatus,
)
from command_service.ports import Aggregates


class SqlAggregates(Aggregates):
    """The aggregates one command read or added, on that command's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._conn = connection
        # aggregate -> the version it had when loaded (None: new, to be inserted)
        self._tracked: dict[int, tuple[Customer | Account, int | None]] = {}

    async def customer(self, customer_id: str, *, for_update: bool = False) -> Customer | None:
        row = await self._first(_CUSTOMER_FOR_UPDATE if for_update else _CUSTOMER,
                                {"customer_id": customer_id})
        if row is None:
            return None
        customer = Customer(customer_id=row["customer_id"], name=row["name"],
                            email=row["email"], version=row["version"],
                            status=CustomerStatus(row["status"]))
        return self._track(customer, customer.version)

    async def email_owner(self, email: str) -> str | None:
        return await self._scalar(_EMAIL_OWNER, {"email": email.lower()})

    async def open_account_count(self, customer_id: str) -> int:
        return await self._scalar(_OPEN_ACCOUNTS, {"customer_id": customer_id})

    async def accounts_for_update(self, *account_ids: str) -> dict[str, Account]:
        """Lock the accounts' rows in one stable order (sorted ids), so two commands touching the
        same accounts in opposite roles queue up instead of deadlocking."""
        loaded: dict[str, Account] = {}
        for account_id in sorted(set(account_ids)):
            row = await self._first(_ACCOUNT_FOR_UPDATE, {"account_id": account_id})
            if row is None:
                continue
            account = Account(
                account_id=row["account_id"], customer_id=row["customer_id"],
                account_type=AccountType(row["account_type"]), currency=row["currency"],
                balance_minor=row["balance_minor"], status=AccountStatus(row["status"]),
                version=row["version"], freeze_reason=row["freeze_reason"],
                changed_at=row["updated_at"].replace(tzinfo=UTC),
            )
            loaded[account_id] = self._track(account, account.version)
        return loaded

    async def account_owner(self, account_id: str) -> str | None:
        return await self._scalar(_ACCOUNT_OWNER, {"account_id": account_id})

    async def account_exists(self, account_id: str) -> bool:
        return await self.account_owner(account_id) is not None

    async def _first(self, statement: sa.Select, values: dict) -> dict | None:
        """The statement's first row. On MySQL straight through the driver, and the
        transaction is the server's own (db/mysql_driver.py); on SQLite through SQLAlchemy,
        whose BEGIN IMMEDIATE takes the write lock (db/engine.py)."""
        if self._conn.dialect.name == "sqlite":
            return (await self._conn.execute(statement, values)).mappings().first()
        found = await mysql_driver.rows(self._conn, statement, values)
        return found[0] if found else None

    async def _scalar(self, statement: sa.Select, values: dict):
        row = await self._first(statement, values)
        return None if row is None else next(iter(row.values()))

    def add(self, aggregate: Customer | Account) -> None:
        self._track(aggregate, None)

    def _track(self, aggregate, loaded_version):
        self._tracked[id(aggregate)] = (aggregate, loaded_version)
        return aggregate

    def changed(self) -> list[Customer | Account]:
        """The aggregates with events not saved yet, in the order they were first seen."""
        return [a for a, _ in self._tracked.values() if a.pending_events]

    def state_write(self, aggregate: Customer | Account, now: datetime) -> StateWrite:
        """What saving an aggregate writes: a new one's row, or the columns that change on the
        row it was loaded from, guarded by the version it was loaded at. `now` is naive UTC."""
        if isinstance(aggregate, Customer):
            table, key_id = customers, aggregate.customer_id
            values = dict(name=aggregate.name, email=aggregate.email,
                          email_normalized=aggregate.email.lower(),
                          status=str(aggregate.status), version=aggregate.version,
                          updated_at=now)
            insert_only = dict(customer_id=key_id, created_at=now)
        else:
            table, key_id = accounts, aggregate.account_id
            values = dict(balance_minor=aggregate.balance_minor, status=str(aggregate.status),
                          version=aggregate.version,
                          updated_at=naive_utc(aggregate.changed_at) if aggregate.changed_at
                          else now,
                          freeze_reason=aggregate.freeze_reason)
            insert_only = dict(account_id=key_id, customer_id=aggregate.customer_id,
                               account_type=str(aggregate.account_type),
                               currency=aggregate.currency, opened_at=now)
        loaded_version = self._tracked[id(aggregate)][1]
        if loaded_version is None:
            return StateWrite(table, {**insert_only, **values})
        return StateWrite(table, values, key_id, loaded_version)

    async def save_write(self, write: StateWrite) -> None:
        """Write an aggregate's state (see `state_write`) on the command's SQLite connection,
        straight to the driver (db/sqlite_writes.py); MySQL batches it (db/write_batch.py)."""
        if write.loaded_version is None:
            await sqlite_writes.execute(self._conn, _INSERT[write.table], write.values)
            return
        cursor = await sqlite_writes.execute(
            self._conn, _UPDATE_IF_VERSION[write.table],
            {**write.values, "b_key": write.key_id, "b_loaded_version": write.loaded_version})
        write.check_matched(cursor.rowcount)


@dataclass(frozen=True)
class StateWrite:
    """An aggregate's row to insert (no `loaded_version`), or the values to set on the row of
    `key_id` if it still has `loaded_version`."""

    table: sa.Table
    values: dict
    key_id: str | None = None
    loaded_version: int | None = None

    def check_matched(self, rows: int) -> None:
        # The row lock already serialises writers; the version check makes a lost update
        # impossible even on a backend or code path that forgot to lock.
        if rows != 1:
            raise ConcurrentUpdateError(f"{self.table.name} changed concurrently")


# The statements, built once: building one per call (and its cache key) was a quarter of a
# command's CPU. Parameters are bound at execution; an UPDATE sets the columns it is given.
_CUSTOMER = sa.select(customers).where(customers.c.customer_id == sa.bindparam("customer_id"))
_CUSTOMER_FOR_UPDATE = _CUSTOMER.with_for_update()
_EMAIL_OWNER = sa.select(customers.c.customer_id).where(
    customers.c.email_active == sa.bindparam("email"))
_OPEN_ACCOUNTS = sa.select(sa.func.count().label("open_accounts")).select_from(accounts).where(
    accounts.c.customer_id == sa.bindparam("customer_id"), accounts.c.status != "closed")
_ACCOUNT_FOR_UPDATE = sa.select(accounts).where(
    accounts.c.account_id == sa.bindparam("account_id")).with_for_update()
_ACCOUNT_OWNER = sa.select(accounts.c.customer_id).where(
    accounts.c.account_id == sa.bindparam("account_id"))
_INSERT = {table: table.insert() for table in (customers, accounts)}
_UPDATE_IF_VERSION = {
    table: table.update().where(key == sa.bindparam("b_key"),
                                table.c.version == sa.bindparam("b_loaded_version"))
    for table, key in ((customers, customers.c.customer_id), (accounts, accounts.c.account_id))
}
