"""SQLite through aiosqlite, without most of its thread handoffs.

aiosqlite runs every call (cursor, execute, fetch, cursor close) on the connection's own thread
and wakes the event loop for each result: about 40 handoffs per command, each one waiting for
the GIL while the event loop is busy, and SQLite's one writer is held through all of them (a
command took ~8 ms under load, of which ~0.5 ms was SQLite's own work). Most of those calls are
microseconds of work on pages SQLite holds in memory, so they run on the event loop itself.
Only what can wait for another process stays on the connection's thread:

- PRAGMA: changing the journal mode takes an exclusive lock (at connect only);
- BEGIN, when it has to wait: a write transaction (BEGIN IMMEDIATE) needs the write lock,
  which another process (the relay, an operator's command) may hold. It is tried here first
  without waiting, which is almost always enough, and only when the lock is busy is it
  started again on the thread, which waits with the connection's busy timeout.

Every transaction starts with an explicit BEGIN (see engine.py), so the write lock is always
taken as above; in WAL mode nothing else a transaction runs waits for another process. COMMIT
runs here too: it appends to the WAL without syncing (synchronous=NORMAL), except that about
every 1,000 pages written it checkpoints the WAL into the database file, which stalls the
event loop for ~12 ms on this machine's disk. Running COMMIT on the thread instead avoided that
stall but cost a quarter of the throughput at 32 concurrent commands (one more handoff while
holding the one writer's lock), and SQLite's lock is held through a checkpoint either way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite

QUICK, BEGIN, ON_THREAD = "quick", "begin", "on thread"


def _kind(fn: Callable, args: tuple) -> str:
    name = getattr(fn, "__name__", "")
    if name in ("execute", "executescript") and args and isinstance(args[0], str):
        keyword = args[0].lstrip()[:6].upper()
        if keyword.startswith("BEGIN"):
            return BEGIN
        if keyword.startswith("PRAGMA"):
            return ON_THREAD
    return QUICK


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return "database is locked" in str(exc) or "database is busy" in str(exc)


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs quick calls inline (see the module's docstring). Its
    sqlite3 connection is made with check_same_thread=False: calls come from the event loop
    and the connection's thread, one at a time (each is awaited before the next)."""

    async def _execute(self, fn, *args, **kwargs):
        if self._connection is None:
            raise ValueError("Connection closed")
        kind = _kind(fn, args)
        if kind == QUICK:
            return fn(*args, **kwargs)
        if kind == BEGIN:
            try:
                return self._without_waiting(fn, *args, **kwargs)
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
        return await super()._execute(fn, *args, **kwargs)

    def _without_waiting(self, fn, *args, **kwargs):
        conn = self._connection
        timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            return fn(*args, **kwargs)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_ms)}")


def inline_connector(database: str, **kwargs: Any) -> Callable[[], InlineConnection]:
    """An `async_creator` for create_async_engine: the connections above, on `database`."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, database, check_same_thread=False, **kwargs),
            iter_chunk_size=64)
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite connect does
        return await connection

    return connect
