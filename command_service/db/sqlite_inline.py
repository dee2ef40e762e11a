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
import threading
from collections.abc import Callable
from functools import partial

import aiosqlite

from command_service.db.errors import Meaning, meaning

QUICK, BEGIN, ON_THREAD = "quick", "begin", "on thread"


def _kind(fn: Callable, args: tuple) -> str:
    name = getattr(fn, "__name__", "")
    if name == "close" and isinstance(getattr(fn, "__self__", None), sqlite3.Connection):
        return ON_THREAD  # the connection itself: after everything queued on its thread
    if name in ("execute", "executescript") and args and isinstance(args[0], str):
        keyword = args[0].lstrip()[:6].upper()
        if keyword.startswith("BEGIN"):
            return BEGIN
        if keyword.startswith("PRAGMA"):
            return ON_THREAD
    return QUICK


class InlineConnection(aiosqlite.Connection):
    """An aiosqlite connection that runs quick calls inline (see the module's docstring). Its
    sqlite3 connection is made with check_same_thread=False: calls come from the event loop
    and the connection's thread, never both at once. While a call sent to the thread has not
    finished there (its caller may have been cancelled and moved on: a waiting BEGIN cannot be
    interrupted), every later call queues behind it on the thread too."""

    def __init__(self, connector: Callable[[], sqlite3.Connection],
                 busy_timeout_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._busy_timeout_ms = busy_timeout_ms
        self._on_thread = 0  # calls queued or running on the thread; changed under the lock
        self._count_lock = threading.Lock()

    async def _execute(self, fn, *args, **kwargs):
        if not self._running or self._connection is None:
            raise ValueError("Connection closed")
        if not self._on_thread:
            kind = _kind(fn, args)
            if kind == QUICK:
                return fn(*args, **kwargs)
            if kind == BEGIN:
                try:
                    return self._without_waiting(fn, *args, **kwargs)
                except sqlite3.OperationalError as exc:
                    if meaning(exc) is not Meaning.BUSY:
                        raise
        return await self._on_connection_thread(fn, *args, **kwargs)

    async def _on_connection_thread(self, fn, *args, **kwargs):
        def call():
            try:
                return fn(*args, **kwargs)
            finally:  # on the thread: counts the call done when it is, cancelled or not
                with self._count_lock:
                    self._on_thread -= 1

        with self._count_lock:
            self._on_thread += 1
        return await super()._execute(call)

    def _without_waiting(self, fn, *args, **kwargs):
        self._connection.execute("PRAGMA busy_timeout = 0")
        try:
            return fn(*args, **kwargs)
        finally:
            self._connection.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")


def inline_connector(database: str, busy_timeout_s: float) -> Callable[[], InlineConnection]:
    """An `async_creator` for create_async_engine: the connections above, on `database`,
    waiting at most `busy_timeout_s` for another process's write lock."""

    async def connect() -> InlineConnection:
        connection = InlineConnection(
            partial(sqlite3.connect, database, timeout=busy_timeout_s, check_same_thread=False),
            busy_timeout_ms=int(busy_timeout_s * 1000))
        connection._thread.daemon = True  # as SQLAlchemy's own aiosqlite connect does
        return await connection

    return connect
