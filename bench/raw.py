"""The raw ceilings: what each component underneath the pipeline does when driven directly,
with nothing of ours in between.

- write model: "lock the account row, update it, insert an event row and an outbox row,
  commit", with the bare driver (aiosqlite / asyncmy) and the same pragmas or session
  settings the project's engine uses;
- broker: aiokafka producing the same messages with the same producer settings;
- read store: `bulk_write` upserts and `find_one`s with pymongo, nothing else.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from pymongo import AsyncMongoClient, ReplaceOne
from sqlalchemy.engine import make_url

from shared.config import Settings
from shared.kafka import FETCH_MAX_WAIT_MS, ensure_topic

# A MoneyDeposited envelope of typical size: the raw transaction writes rows as large as ours.
_PAYLOAD = json.dumps({
    "account_id": "00000000-0000-0000-0000-000000000000", "amount_minor": 100,
    "balance_after_minor": 123456, "currency": "USD",
    "customer_id": "00000000-0000-0000-0000-000000000000", "reference": None,
    "transaction_id": "00000000-0000-0000-0000-000000000000"})
_ENVELOPE = "x" * 560
_HEADERS = json.dumps({"event_id": "e" * 36, "event_type": "MoneyDeposited",
                       "aggregate_type": "account", "aggregate_id": "a" * 36, "version": "1"})


def _now_text() -> str:
    return datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


class RawWriteModel:
    """One bare driver connection that runs the command transaction of a deposit."""

    @staticmethod
    async def connect(database_url: str, timeout_s: float) -> RawWriteModel:
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            return await _RawSqlite.open(url.database, timeout_s)
        return await _RawMysql.open(url, timeout_s)

    async def deposit(self, account_id: str, topic: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


class _RawSqlite(RawWriteModel):
    def __init__(self, conn) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, path: str, timeout_s: float) -> _RawSqlite:
        import aiosqlite

        conn = await aiosqlite.connect(path, timeout=timeout_s * 6, isolation_level=None)
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON",
                       f"busy_timeout={int(timeout_s * 6000)}"):
            await conn.execute(f"PRAGMA {pragma}")
        return cls(conn)

    async def deposit(self, account_id: str, topic: str) -> None:
        c = self.conn
        now = _now_text()
        await c.execute("BEGIN IMMEDIATE")  # SQLite's row lock is the database write lock
        try:
            async with c.execute("SELECT balance_minor, version FROM accounts "
                                 "WHERE account_id = ?", (account_id,)) as cursor:
                balance, version = await cursor.fetchone()
            await c.execute("UPDATE accounts SET balance_minor = ?, version = ?, updated_at = ? "
                            "WHERE account_id = ? AND version = ?",
                            (balance + 100, version + 1, now, account_id, version))
            cursor = await c.execute(
                "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, "
                "event_type, payload, occurred_at, command_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (str(uuid.uuid4()), "account", account_id, version + 1, "MoneyDeposited",
                 _PAYLOAD, now, str(uuid.uuid4())))
            await c.execute(
                "INSERT INTO outbox (event_position, topic, message_key, headers, payload, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (cursor.lastrowid, topic, account_id, _HEADERS, _ENVELOPE, now))
            await c.execute("COMMIT")
        except BaseException:
            await c.execute("ROLLBACK")
            raise

    async def close(self) -> None:
        await self.conn.close()


class _RawMysql(RawWriteModel):
    def __init__(self, conn) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, url, timeout_s: float) -> _RawMysql:
        import asyncmy

        conn = await asyncmy.connect(host=url.host or "127.0.0.1", port=url.port or 3306,
                                     user=url.username or "root", password=url.password or "",
                                     database=url.database, autocommit=False)
        async with conn.cursor() as cursor:
            # The project's engine: READ COMMITTED, its lock-wait timeout, UTC.
            await cursor.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            await cursor.execute(
                f"SET SESSION innodb_lock_wait_timeout = {max(1, int(timeout_s))}")
            await cursor.execute("SET SESSION time_zone = '+00:00'")
        await conn.commit()
        return cls(conn)

    async def deposit(self, account_id: str, topic: str) -> None:
        now = datetime.now(UTC).replace(tzinfo=None)
        try:
            async with self.conn.cursor() as c:
                await c.execute("SELECT balance_minor, version FROM accounts "
                                "WHERE account_id = %s FOR UPDATE", (account_id,))
                balance, version = await c.fetchone()
                await c.execute(
                    "UPDATE accounts SET balance_minor = %s, version = %s, updated_at = %s "
                    "WHERE account_id = %s AND version = %s",
                    (balance + 100, version + 1, now, account_id, version))
                await c.execute(
                    "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, "
                    "event_type, payload, occurred_at, command_id) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                    (str(uuid.uuid4()), "account", account_id, version + 1, "MoneyDeposited",
                     _PAYLOAD, now, str(uuid.uuid4())))
                position = c.lastrowid
                await c.execute(
                    "INSERT INTO outbox (event_position, topic, message_key, headers, payload, "
                    "created_at) VALUES (%s, %s, %s, %s, %s, %s)",
                    (position, topic, account_id, _HEADERS, _ENVELOPE, now))
            await self.conn.commit()
        except BaseException:
            await self.conn.rollback()
            raise

    async def close(self) -> None:
        self.conn.close()


async def closed_loop(concurrency: int, duration_s: float,
                      operation: Callable[[int, int], Awaitable[bool]]) -> dict:
    """`concurrency` workers each calling `operation(worker, i)` back to back for
    `duration_s`; it returns False for a failed call. Returns count, errors, latencies."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration_s

    async def worker(w: int) -> None:
        nonlocal errors
        i = 0
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                ok = await operation(w, i)
            except Exception:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors += 1
            i += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    return {"elapsed_s": time.perf_counter() - started, "latencies": latencies,
            "errors": errors}


async def raw_produce(settings: Settings, topic: str,
                      messages: list[tuple[bytes, bytes, list]]) -> float:
    """Seconds to produce (key, value, headers) messages and have every acknowledgement,
    with the relay's producer settings (acks=all, linger, batch size)."""
    producer = raw_producer(settings)
    await producer.start()
    try:
        started = time.perf_counter()
        pending = []
        for key, value, headers in messages:
            pending.append(await producer.send(topic, value=value, key=key, headers=headers))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        return time.perf_counter() - started
    finally:
        await producer.stop()


def raw_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers, acks="all",
                            enable_idempotence=settings.kafka_enable_idempotence, linger_ms=2,
                            max_batch_size=512 * 1024, request_timeout_ms=15_000)


async def raw_bulk_upserts(db, batches: list[dict[str, list[dict]]]) -> float:
    """Seconds to write, per batch, one unordered `bulk_write` of ReplaceOne upserts per
    collection: the same documents the projector writes, without reads, guards or Kafka."""
    started = time.perf_counter()
    for batch in batches:
        for collection, docs in batch.items():
            if docs:
                await db[collection].bulk_write(
                    [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs],
                    ordered=False)
    return time.perf_counter() - started


async def chain_floor(settings: Settings, database_url: str, account_id: str,
                      samples: int) -> list[float]:
    """The physical floor of commit-to-visible: one event at a time through the bare
    components (driver commit, produce with acks=all, consume, one upsert, one find_one),
    with nothing batched and nothing polled. Returns the seconds each event took."""
    topic = f"{settings.kafka_topic}-floor"
    raw = await RawWriteModel.connect(database_url, settings.database_timeout_s)
    producer = raw_producer(settings)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.bootstrap_servers,
                                group_id=None, auto_offset_reset="latest",
                                enable_auto_commit=False, fetch_max_wait_ms=FETCH_MAX_WAIT_MS)
    client = AsyncMongoClient(settings.mongo_url)
    coll = client[settings.mongo_database]["floor"]
    # Created explicitly: real Kafka (as in production) creates no topic on first produce.
    await ensure_topic(settings.model_copy(update={"kafka_topic": topic,
                                                   "kafka_topic_partitions": 1}))
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up", key=b"w")
    await consumer.start()
    await consumer.getmany(timeout_ms=500)
    took: list[float] = []
    try:
        for i in range(samples):
            started = time.perf_counter()
            await raw.deposit(account_id, topic)
            await producer.send_and_wait(topic, _ENVELOPE.encode(), key=account_id.encode())
            got = None
            while not got:
                got = await consumer.getmany(timeout_ms=1000)
            await coll.bulk_write([ReplaceOne({"_id": account_id}, {"version": i},
                                              upsert=True)])
            await coll.find_one({"_id": account_id})
            took.append(time.perf_counter() - started)
    finally:
        await consumer.stop()
        await producer.stop()
        await raw.close()
        await client.close()
    return took

