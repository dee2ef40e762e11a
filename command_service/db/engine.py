"""The write model's async engine, tuned per backend. Created in a lifespan, never at import."""

from __future__ import annotations

import asyncio
import inspect
import weakref
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from command_service.db.sqlite_inline import inline_connector
from shared.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings)
    timeout = max(1, int(settings.database_timeout_s))
    engine = create_async_engine(
        url,
        async_creator=_bounded_connect(url, settings.database_timeout_s, timeout),
        # A fixed pool: connections are opened as needed and kept. With an overflow above
        # the pool, a load hovering around its size closed a connection on one return and
        # opened one on a later checkout, 30-80 times in 8 s at concurrency 32: a TCP and
        # login handshake each, ~12% of the CPU per deposit (1.12-1.26 -> 0.97-1.10 ms).
        pool_size=settings.database_pool_size,
        max_overflow=0,
        # No pre-ping: it was a round trip on every checkout. A pooled connection that died
        # (a server restart) fails its command's first statement instead; SQLAlchemy then
        # drops every connection of the pool made before, and the command service runs the
        # command once more (command_service/service.py).
        pool_recycle=1800,
        # The pool's ROLLBACK on return, but not after a clean COMMIT (`_reset` below).
        pool_reset_on_return=None,
        pool_timeout=settings.database_timeout_s,
        # READ COMMITTED: no gap locks on the outbox/event inserts, so fewer deadlocks; each
        # command locks the rows it changes explicitly (SELECT ... FOR UPDATE).
        isolation_level="READ COMMITTED",
    )

    @sa.event.listens_for(engine.sync_engine, "connect")
    def _session_timeouts(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION innodb_lock_wait_timeout = {timeout}, time_zone = '+00:00'")
        cursor.close()

    @sa.event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection, record, state) -> None:
        # A connection back from a clean COMMIT (`mark_clean`) has no transaction to end;
        # anything else (a read, a rollback that failed, a checkout that ended early) is
        # rolled back as the pool's default would, unless its Connection just did that.
        clean = record.info.pop(CLEAN, False) if record is not None else False
        if clean or state.transaction_was_reset or not state.asyncio_safe:
            return
        dbapi_connection.rollback()

    # No statement-level listener on this engine (any one makes SQLAlchemy dispatch its
    # connection events on every statement: 2.5% of a deposit's CPU): `mark_clean` is
    # called only as the connection is closed, when no statement ran after the COMMIT.
    return engine


CLEAN = "cqrs_clean_after_commit"


def pooled(conn: AsyncConnection):
    """The pool's connection `conn` holds (its `driver_connection` is the driver's). Not
    `await conn.get_raw_connection()`: a greenlet switch for an attribute read, on every
    statement of the write path (1.4% of a deposit's CPU)."""
    return conn.sync_connection.connection


def mark_clean(conn: AsyncConnection) -> None:
    """Say that `conn` committed and ran nothing after (no transaction open: a statement
    after COMMIT begins one), just before it returns to the pool: the pool then sends no
    ROLLBACK for it (one round trip less per command)."""
    assert not conn.in_transaction(), "a connection with a transaction open is not clean"
    pooled(conn).info[CLEAN] = True


def _bounded_connect(url, timeout_s: float, timeout: int):
    """asyncmy's connect_timeout covers the TCP connect only; a server that accepts and then
    never greets would hold the connecting request forever. The whole connect (greeting and
    login included) is bounded here, and every later read by `read_timeout`: far above the
    lock-wait timeout, so a lock wait still ends as the retryable lock timeout, and long enough
    for an operator's big scan."""
    import asyncmy
    import asyncmy.connection
    import asyncmy.constants.CLIENT

    # The dialect's own arguments (host, user, client_flag FOUND_ROWS, ...), as without a creator.
    _, kwargs = url.get_dialect()().create_connect_args(url)
    kwargs["connect_timeout"] = timeout
    # A command's writes go to the server as one multi-statement query (db/write_batch.py).
    kwargs["client_flag"] = kwargs.get("client_flag", 0) | asyncmy.constants.CLIENT.MULTI_STATEMENTS
    if _accepts(asyncmy.connection.Connection, "read_timeout"):
        kwargs["read_timeout"] = max(30, 6 * timeout)

    async def connect():
        return await asyncio.wait_for(asyncmy.connect(**kwargs), timeout_s)

    return connect


def _accepts(callable_, name: str) -> bool:
    try:
        return name in inspect.signature(callable_).parameters
    except (TypeError, ValueError):  # a compiled class without a signature: assume not
        return False


def _sqlite_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.database_url)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, async_creator=inline_connector(
        url.database or ":memory:", busy_timeout_s=settings.database_timeout_s * 6))

    # SQLite has one writer at a time. BEGIN IMMEDIATE takes the write lock when a transaction
    # starts, so two commands never both read a balance and then race to write it; pysqlite's
    # own deferred BEGIN is switched off so that this is the only BEGIN issued.
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection, _record) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine.sync_engine, "begin")
    def _begin(connection) -> None:
        # Readers (the relay's claim, backlogs, health checks, log scans) take no write lock:
        # in WAL mode they read a snapshot while the one writer writes.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN DEFERRED")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


READ_ONLY = "cqrs_read_only"


def read_only(engine: AsyncEngine) -> AsyncEngine:
    """The same engine (same pool) for reads only: on SQLite its transactions do not take the
    write lock; elsewhere nothing changes."""
    return engine.execution_options(**{READ_ONLY: True})


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers: a SELECT 1 on a read-only connection, so that on
    SQLite a health check never queues for the write lock behind a busy writer."""
    async with read_only(engine).connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


_WRITE_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def write_lock(engine: AsyncEngine) -> asyncio.Lock | None:
    """On SQLite, the process's writers queue here instead of in SQLite's busy handler, which
    sleeps and retries (and so wastes most of the one writer's time under contention). Other
    processes still meet at SQLite's lock; MySQL needs none of this (row locks)."""
    if engine.dialect.name != "sqlite":
        return None
    lock = _WRITE_LOCKS.get(engine.sync_engine)
    if lock is None:
        lock = _WRITE_LOCKS[engine.sync_engine] = asyncio.Lock()
    return lock
