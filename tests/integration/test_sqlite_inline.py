"""The SQLite connection that runs quick calls on the event loop (command_service/db/
sqlite_inline.py): a BEGIN that meets another process's write lock must wait on the
connection's thread, never freeze the event loop, and go on once the lock is released."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time

import sqlalchemy as sa

from command_service.db.engine import create_engine, write_lock
from shared.config import Settings


def _settings(path) -> Settings:
    return Settings(database_url=f"sqlite+aiosqlite:///{path}", auth_jwt_secret="x" * 32,
                    database_timeout_s=2)


def hold_the_write_lock(path, seconds: float) -> sqlite3.Connection:
    """Another process's writer (a plain sqlite3 connection, released by a timer thread)."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    threading.Timer(seconds, holder.commit).start()
    return holder


async def watch_the_loop(stalls: list[float]) -> None:
    """Ticks every 10 ms until cancelled, recording how late each tick came."""
    while True:
        before = time.monotonic()
        await asyncio.sleep(0.01)
        stalls.append(time.monotonic() - before - 0.01)


async def test_a_busy_write_lock_is_awaited_off_the_event_loop(tmp_path):
    path = tmp_path / "w.db"
    engine = create_engine(_settings(path))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        holder = hold_the_write_lock(path, 0.5)

        stalls: list[float] = []
        ticker = asyncio.create_task(watch_the_loop(stalls))
        started = time.monotonic()
        async with engine.begin() as conn:  # BEGIN IMMEDIATE: busy, so it waits on the thread
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        waited = time.monotonic() - started
        ticker.cancel()

        assert waited >= 0.4  # it did wait for the lock...
        assert len(stalls) >= 20  # ...while the event loop went on running (10 ms ticks)
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM t")) == 1
        holder.close()
    finally:
        await engine.dispose()


async def test_writers_of_one_process_take_turns_and_lose_nothing(tmp_path):
    engine = create_engine(_settings(tmp_path / "w.db"))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE counter (n INTEGER)"))
            await conn.execute(sa.text("INSERT INTO counter VALUES (0)"))

        async def increment() -> None:
            async with write_lock(engine), engine.begin() as conn:
                n = await conn.scalar(sa.text("SELECT n FROM counter"))
                await asyncio.sleep(0)  # let the others run between read and write
                await conn.execute(sa.text("UPDATE counter SET n = :n"), {"n": n + 1})

        await asyncio.gather(*(increment() for _ in range(50)))
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT n FROM counter")) == 50
    finally:
        await engine.dispose()


async def test_a_cancelled_wait_for_the_lock_neither_stalls_the_loop_nor_breaks_the_engine(
        tmp_path):
    """A caller that gives up on a BEGIN waiting on the connection's thread (a readiness
    check's timeout, a shutdown) leaves that BEGIN running there; closing the connection must
    queue behind it instead of closing it under the thread on the event loop."""
    path = tmp_path / "w.db"
    engine = create_engine(_settings(path))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        holder = hold_the_write_lock(path, 1.0)

        stalls: list[float] = []
        watcher = asyncio.create_task(watch_the_loop(stalls))

        async def write() -> None:
            async with engine.begin() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (1)"))

        with contextlib.suppress(TimeoutError):  # the caller gives up while BEGIN waits
            await asyncio.wait_for(write(), 0.3)
        await asyncio.sleep(1.2)  # the holder commits; the abandoned BEGIN ends on the thread
        watcher.cancel()
        assert max(stalls) < 0.2

        await write()  # the engine still works
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text("SELECT count(*) FROM t")) >= 1
        holder.close()
    finally:
        await engine.dispose()
