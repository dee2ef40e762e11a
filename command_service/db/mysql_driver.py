"""MySQL/MariaDB: a command's reads and its COMMIT sent straight to the driver (asyncmy), on the
connection SQLAlchemy's pool lent the command.

Through SQLAlchemy each statement costs a greenlet switch, an execution context and a result
object, and its transaction a BEGIN and a COMMIT of its own bookkeeping. For a deposit's locking
read and COMMIT that was ~0.2 ms of CPU per command, measured on one pooled connection: 484 us
per transaction through SQLAlchemy, 290 us here. The statements are still SQLAlchemy's, built
in repository.py and compiled once for the connection's dialect (db/compiled.py); values come
back as the driver reads them (no column of these reads has a result processor on MySQL:
checked as each is compiled). The server opens the transaction at the first statement (the
driver does not autocommit), so SQLAlchemy never begins one on these connections.

A driver error is wrapped as SQLAlchemy wraps it, so `db/errors.py` reads it the same way. A
lost connection is handled as SQLAlchemy handles one: the connection is invalidated, and so is
every connection the pool opened before it (a server restart killed them all), so that the
command's one retry (command_service/service.py) gets a fresh one. The write batch
(write_batch.py) reports its errors through here too.
"""

from __future__ import annotations

import asyncio

import asyncmy.errors
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from command_service.db.compiled import compiled as compiled_once
from command_service.db.engine import pooled

CLIENT_ERRORS_FROM = 2000  # MySQL's client error codes (CR_*): 2000-2999


async def rows(conn: AsyncConnection, statement: Select, values: dict) -> list[dict]:
    """Run `statement` with `values` on `conn`'s driver connection: its rows, by column key."""
    compiled = compiled_once(statement, conn.dialect)
    parameters = compiled.parameters(values)
    cursor = pooled(conn).driver_connection.cursor()
    try:
        await cursor.execute(compiled.sql, parameters)
        found = await cursor.fetchall()
    except asyncmy.errors.Error as exc:
        raise await wrapped(conn, exc, compiled.sql, parameters) from exc
    except BaseException:
        await _abandoned(conn)
        raise
    return [dict(zip(compiled.columns, row, strict=True)) for row in found]


async def commit(conn: AsyncConnection) -> None:
    """COMMIT the transaction the command's statements opened on `conn`'s driver connection."""
    try:
        await pooled(conn).driver_connection.commit()
    except asyncmy.errors.Error as exc:
        raise await wrapped(conn, exc, "COMMIT", ()) from exc
    except BaseException:
        await _abandoned(conn)
        raise


async def _abandoned(conn: AsyncConnection) -> None:
    """Interrupted mid-statement (a cancelled request): the server's answer may still be on
    its way, and a later reader would take it for its own. The connection is dropped, as
    SQLAlchemy's execution drops one on an exit exception."""
    await conn.invalidate()


class CommandDeadline:
    """One deadline for a command's whole unit of work, in place of the driver's timeout on
    each of its reads.

    db/engine.py gives every connection a read timeout, so that a server that stops answering
    cannot hold a request for ever. asyncmy enforces it with an `asyncio.wait_for` around each
    wait for the server, and each creates a task; a command waits several times (the locking
    read, each statement's result in the batch, COMMIT). A four-statement batch and COMMIT
    cost 178 us of CPU with the read timeout and 110 us without it. So the unit of work lifts
    the connection's read timeout while it runs, and bounds the whole of it by that same
    time instead: one timer. The connection gets its timeout back before it returns to the
    pool. A deadline that passes cancels the command wherever it waits; its connection is
    dropped (`_abandoned`, write_batch.py), and the command is answered 503 at once
    (TimeoutError): a server silent for that long is not tried again within the request."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._pooled = pooled(conn)
        self._driver = self._pooled.driver_connection
        self._read_timeout = self._driver._read_timeout
        self._timeout = asyncio.timeout(self._read_timeout) if self._read_timeout else None

    async def start(self) -> None:
        if self._timeout is not None:
            await self._timeout.__aenter__()
        self._driver._read_timeout = None

    def give_back(self) -> None:
        """The connection's own read timeout again, for whatever it does next (the pool's
        ROLLBACK on its return among them)."""
        self._driver._read_timeout = self._read_timeout

    async def end(self, conn: AsyncConnection, *exc_info) -> None:
        """Always called, once the unit of work is done, with the exception leaving it: the
        timer is cancelled, and a deadline that passed turns the cancellation it caused into
        TimeoutError. A server silent for that long may have left every pooled connection
        hanging, as a read timeout's lost connection said before: all are replaced."""
        if self._timeout is None:
            return
        try:
            await self._timeout.__aexit__(*exc_info)
        finally:
            if self._timeout.expired():
                _older_connections_stale(conn, self._pooled, exc_info[1])


def is_server_error(exc: asyncmy.errors.Error, dialect: Dialect) -> bool:
    """The server refused a statement and the connection is in step. A disconnect as
    SQLAlchemy's MySQL dialect knows them (2006, 2013, ... and a killed connection, 1927), or
    any client error (2000-2999, or none at all: asyncmy's own), is not. Server errors also
    use codes from 3000 up (a CHECK constraint: 3819 on MySQL, 4025 on MariaDB)."""
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    if code == 0 or CLIENT_ERRORS_FROM <= code < 3000:
        return False
    return not dialect.is_disconnect(exc, None, None)


async def wrapped(conn: AsyncConnection, exc: asyncmy.errors.Error, sql: str,
                  parameters: object) -> DBAPIError:
    """`exc` as SQLAlchemy would have raised it; a client's error invalidates the connection
    and every older one of the pool first, as SQLAlchemy does on a disconnect."""
    lost = not is_server_error(exc, conn.dialect)
    if lost:
        _older_connections_stale(conn, pooled(conn), exc)
        await conn.invalidate(exc)
    return DBAPIError.instance(sql, parameters, exc, asyncmy.errors.Error,
                               hide_parameters=True, connection_invalidated=lost)


def _older_connections_stale(conn: AsyncConnection, lent, exc: BaseException | None) -> None:
    """Every connection the pool opened no later than `lent` (the pool's connection `conn`
    held) is replaced at its next checkout: the pool's own step that SQLAlchemy's execution
    takes on a disconnect (no public API does only this). Connections opened since an earlier
    such step are kept."""
    conn.sync_engine.pool._invalidate(lent, exc, _checkin=False)
