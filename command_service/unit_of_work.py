"""One database transaction per command: its aggregates are loaded and locked through it, then
their new state, the command record, the events and the outbox rows are written together, or
nothing at all.

This is where guarantee 1 (no lost event) starts: an event exists in the outbox exactly when
the state change it describes was committed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from command_service.db import mysql_driver, sqlite_writes
from command_service.db.engine import mark_clean, write_lock
from command_service.db.errors import ConcurrentUpdateError, unique_violation
from command_service.db.repository import SqlAggregates, StateWrite
from command_service.db.tables import commands, events, naive_utc, outbox
from command_service.db.write_batch import POSITION_PLACEHOLDER, MysqlWriteBatch
from command_service.domain.errors import AlreadyExistsError, EmailTakenError
from command_service.domain.model import Account, Customer
from command_service.idempotency import IdempotencyKey, IdempotencyRaceError, StoredResponse
from command_service.outbox_envelope import envelope_of, event_row, outbox_row
from command_service.ports import UnitOfWork
from shared.envelope import EventEnvelope


@dataclass(frozen=True)
class CommandRecord:
    command_id: str
    command_type: str
    created_at: datetime
    idempotency: IdempotencyKey | None = None
    response: StoredResponse | None = None  # stored only for an idempotent command
    subject: str = "system"  # who sent it: the token's `sub` (audit; scopes idempotency keys)
    # The command log's view of the command (command_service/command_log.py).
    customer_id: str | None = None
    aggregate_ids: tuple[str, ...] = ()
    payload: dict = field(default_factory=dict)

    def row(self, status: str, error: str | None = None) -> dict:
        values = dict(command_id=self.command_id, command_type=self.command_type,
                      status=status, created_at=naive_utc(self.created_at),
                      completed_at=naive_utc(datetime.now(UTC)), error=error,
                      subject=self.subject, customer_id=self.customer_id,
                      aggregate_ids=json.dumps(list(self.aggregate_ids)),
                      payload=json.dumps(self.payload, ensure_ascii=False))
        if self.idempotency is not None and self.response is not None:
            values.update(
                idempotency_key=self.idempotency.key,
                request_fingerprint=self.idempotency.fingerprint,
                expires_at=self.idempotency.expires_at(self.created_at),
                response_status=self.response.status, response_body=self.response.body,
                response_headers=json.dumps(self.response.headers),
            )
        return values


class SqlUnitOfWork(UnitOfWork):
    """`async with SqlUnitOfWork(engine, topic) as uow: ...; await uow.commit(record)`."""

    def __init__(self, engine: AsyncEngine, topic: str) -> None:
        self._engine = engine
        self._topic = topic
        self._conn: AsyncConnection | None = None
        self._aggregates: SqlAggregates | None = None
        self._lock = None
        self._on_sqlite = engine.dialect.name == "sqlite"
        self._deadline: mysql_driver.CommandDeadline | None = None
        # Whether COMMIT was sent: a connection lost after it leaves the outcome unknown, so the
        # command must not be run again (command_service/service.py).
        self.commit_sent = False
        self._committed = False  # COMMIT succeeded: the pool need not roll back

    async def __aenter__(self) -> SqlUnitOfWork:
        lock = write_lock(self._engine)
        if lock is not None:
            await lock.acquire()
        self._lock = lock  # only once held, so _release never frees another task's hold
        try:
            self._conn = await self._engine.connect()
            if self._on_sqlite:
                await self._conn.begin()  # BEGIN IMMEDIATE: the write lock (db/engine.py)
            else:
                # The first statement opens the server's transaction; the whole unit of
                # work runs under one deadline (db/mysql_driver.py).
                self._deadline = mysql_driver.CommandDeadline(self._conn)
                await self._deadline.start()
        except BaseException:
            try:
                if self._conn is not None:
                    await self._conn.close()
            finally:
                self._release()
            raise
        self._aggregates = SqlAggregates(self._conn)
        return self

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    async def __aexit__(self, *exc_info) -> None:
        assert self._conn is not None
        leaving = exc_info  # what leaves the unit of work: its body's error, or cleanup's
        try:
            if self._deadline is not None:
                self._deadline.give_back()
            try:
                if self._conn.in_transaction():
                    await self._conn.rollback()
                elif self._committed:
                    mark_clean(self._conn)  # committed, and nothing ran after
                # MySQL, not committed: the pool rolls the server's transaction back on return.
            finally:
                try:
                    await self._conn.close()
                finally:
                    self._release()
        except BaseException as exc:  # e.g. the deadline passing during the pool's ROLLBACK
            leaving = (type(exc), exc, exc.__traceback__)
            raise
        finally:
            if self._deadline is not None:
                await self._deadline.end(self._conn, *leaving)

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    @property
    def aggregates(self) -> SqlAggregates:
        assert self._aggregates is not None, "use the unit of work inside `async with`"
        return self._aggregates

    def owners(self) -> dict[str, str]:
        """account id -> customer id, for every account this command touched."""
        return {a.account_id: a.customer_id for a in self.aggregates.changed()
                if isinstance(a, Account)}

    def changed_ids(self) -> tuple[str, ...]:
        """The ids of the aggregates this command changed, in the order they were first seen."""
        return tuple(a.customer_id if isinstance(a, Customer) else a.account_id
                     for a in self.aggregates.changed())

    async def commit(self, record: CommandRecord) -> None:
        """Write state, command, events and outbox rows, then commit."""
        now = naive_utc(record.created_at)
        changed = self.aggregates.changed()
        envelopes = [envelope_of(e, record.command_id)
                     for aggregate in changed for e in aggregate.pending_events]
        writes = [self.aggregates.state_write(aggregate, now) for aggregate in changed]
        try:
            if self._on_sqlite:
                await self._write_one_by_one(writes, record, envelopes)
            else:
                await self._write_batch(writes, record, envelopes)
        except DBAPIError as exc:
            race = _race_lost_to(unique_violation(exc))
            if race is None:
                raise
            raise race from exc
        self.commit_sent = True  # from here a lost connection leaves the outcome unknown
        if self._conn.in_transaction():  # SQLite's, or a statement run through SQLAlchemy
            await self._conn.commit()
        else:
            await mysql_driver.commit(self._conn)
        self._committed = True
        for aggregate in changed:
            aggregate.pending_events.clear()

    async def _write_batch(self, writes: list[StateWrite], record: CommandRecord,
                           envelopes: list[EventEnvelope]) -> None:
        """MySQL/MariaDB: every write in one round trip (db/write_batch.py)."""
        batch = MysqlWriteBatch()
        for write in writes:
            batch.save(write)
        batch.insert_command(record.row("completed"))
        created_at = naive_utc(datetime.now(UTC))
        for envelope in envelopes:
            batch.insert_event(event_row(envelope), outbox_row(
                replace(envelope, position=POSITION_PLACEHOLDER), self._topic, created_at))
        await batch.execute(self.connection)

    async def _write_one_by_one(self, writes: list[StateWrite], record: CommandRecord,
                                envelopes: list[EventEnvelope]) -> None:
        """SQLite: each statement on its own (a call in this process, not a round trip),
        straight to the driver (db/sqlite_writes.py). Event rows first, which assigns their
        global positions, then the outbox rows that carry each event, position included, as
        the exact message the relay will send."""
        for write in writes:
            await self.aggregates.save_write(write)
        await sqlite_writes.execute(self.connection, _INSERT_COMMAND, record.row("completed"))
        stored: list[EventEnvelope] = []
        for envelope in envelopes:
            cursor = await sqlite_writes.execute(self.connection, _INSERT_EVENT,
                                                 event_row(envelope))
            stored.append(replace(envelope, position=cursor.lastrowid))
        if stored:
            now = naive_utc(datetime.now(UTC))
            await sqlite_writes.execute(
                self.connection, _INSERT_OUTBOX, [outbox_row(e, self._topic, now) for e in stored])



# Built once: building a statement per call (and its cache key) was a quarter of a command's CPU.
_INSERT_COMMAND = commands.insert()
_INSERT_EVENT = events.insert()
_INSERT_OUTBOX = outbox.insert()


def _race_lost_to(violation: str | None) -> Exception | None:
    """A unique index caught a race the pre-checks could not (two requests at once): what the
    command answers instead, or None when the violation is no such race."""
    if violation == "idempotency":
        return IdempotencyRaceError()
    if violation == "aggregate_version":
        return ConcurrentUpdateError("another command appended to the aggregate first")
    if violation == "email":
        return EmailTakenError()
    if violation == "id":
        return AlreadyExistsError("a customer or account", "with this id")
    return None
