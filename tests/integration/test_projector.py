"""The projector against a real broker and a real read store: duplicates, gaps, crashes,
and an outage of the read store."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
import sqlalchemy as sa
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from command_service.db.tables import outbox
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.service import CommandService
from projector.consumer import Projector
from projector.dead_letters import DeadLetters
from projector.failures import RetryPolicy
from projector.health import LAG_SECONDS, PARKED, PARKED_EVERY_S
from projector.store import ReadStore
from shared.envelope import EventEnvelope
from shared.kafka import ensure_topic, make_consumer
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    TRANSACTIONS,
    ViewDatabase,
    make_mongo_client,
)
from tests.support.backends import new_read_store


async def write_history(engine, settings) -> tuple[str, str, list[EventEnvelope]]:
    """A customer with an account: opened with 10.00, +5.00, -3.00, frozen. Returns the
    customer id, the account id and the outbox's messages in commit order."""
    service = CommandService(engine, settings.kafka_topic)
    customer = await service.execute(c.RegisterCustomer(
        name="Projected", email=f"{uuid.uuid4().hex}@example.com", customer_id=str(uuid.uuid4())))
    customer_id = customer.body["customer_id"]
    account = await service.execute(c.OpenAccount(
        customer_id=customer_id, account_type=AccountType.CHECKING, currency="GBP",
        initial_deposit_minor=10_00, account_id=str(uuid.uuid4())))
    account_id = account.body["account_id"]
    await service.execute(c.Deposit(account_id=account_id, amount_minor=5_00, reference="r"))
    await service.execute(c.Withdraw(account_id=account_id, amount_minor=3_00, reference=None))
    await service.execute(c.FreezeAccount(account_id=account_id, reason="audit"))
    async with engine.connect() as conn:
        payloads = (await conn.scalars(sa.select(outbox.c.payload).order_by(outbox.c.id))).all()
    return customer_id, account_id, [EventEnvelope.from_json(p) for p in payloads]


async def publish(settings, messages: list[EventEnvelope | dict | str]) -> None:
    """Publish each message keyed by its aggregate: an envelope or a dict as its JSON, a string
    (a message value as some release wrote it) as it is."""
    await ensure_topic(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_idempotence=settings.kafka_enable_idempotence, acks="all")
    await producer.start()
    try:
        for message in messages:
            if isinstance(message, EventEnvelope):
                message = message.to_json()
            elif isinstance(message, dict):
                message = json.dumps(message)
            await producer.send_and_wait(settings.kafka_topic, message.encode(),
                                         key=json.loads(message)["aggregate_id"].encode())
    finally:
        await producer.stop()


class RunningProjector:
    def __init__(self, settings, store: ReadStore, retry: RetryPolicy | None = None) -> None:
        self.consumer = make_consumer(settings)
        self.projector = Projector(self.consumer, store, batch_size=200, poll_ms=50,
                                   retry=retry)
        self.settings = settings
        self.stop = asyncio.Event()

    async def __aenter__(self) -> RunningProjector:
        self.consumer.subscribe([self.settings.kafka_topic], listener=self.projector)
        await self.consumer.start()
        self.task = asyncio.create_task(self.projector.run(self.stop))
        return self

    async def __aexit__(self, *exc_info) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 30)
        await self.consumer.stop()


async def until(condition, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def assert_views_exact(read_db, customer_id: str, account_id: str) -> None:
    account = await read_db[ACCOUNTS].find_one({"_id": account_id})
    assert (account["version"], account["balance_minor"], account["status"],
            account["transaction_count"]) == (4, 12_00, "frozen", 3)
    customer = await read_db[CUSTOMERS].find_one({"_id": customer_id})
    assert customer["version"] == 1 and customer["name"] == "Projected"
    assert customer["summary"] == {"account_count": 1, "transaction_count": 3,
                                   "balances_minor": {"GBP": 12_00}}
    assert customer["accounts"][0]["version"] == 4
    history = await read_db[TRANSACTIONS].find({"account_id": account_id}) \
        .sort("account_version", 1).to_list()
    assert [(t["kind"], t["amount_minor"]) for t in history] == [
        ("deposit", 10_00), ("deposit", 5_00), ("withdrawal", 3_00)]
    days = await read_db[DAILY_STATS].find({"customer_id": customer_id}).to_list()
    assert [(d["currency"], d["deposits_minor"], d["withdrawals_minor"], d["count"])
            for d in days] == [("GBP", 15_00, 3_00, 3)]


async def account_version(read_db, account_id: str) -> int:
    doc = await read_db[ACCOUNTS].find_one({"_id": account_id})
    return doc["version"] if doc else 0


async def test_every_event_delivered_twice_is_applied_once(engine, settings, read_db):
    customer_id, account_id, events = await write_history(engine, settings)
    await publish(settings, events + events)  # a relay crash before marking, say

    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))) as running:
        await until(lambda: _consumed(running, len(events) * 2))

    await assert_views_exact(read_db, customer_id, account_id)


async def _consumed(running: RunningProjector, count: int) -> bool:
    positions = [await running.consumer.position(tp) for tp in running.consumer.assignment()]
    return sum(positions) >= count


async def test_a_gap_is_held_back_until_the_missing_event_arrives(engine, settings, read_db):
    customer_id, account_id, events = await write_history(engine, settings)
    account_events = [e for e in events if e.aggregate_id == account_id]
    missing = account_events[1]  # version 2
    await publish(settings, [e for e in events if e is not missing])

    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))):
        await until(lambda: _at_version(read_db, account_id, 1))
        await asyncio.sleep(0.5)
        assert await account_version(read_db, account_id) == 1  # v3, v4 wait for v2
        # The lag gauge sees the held events waiting, and how long (the alert's signal).
        await until(lambda: _gauge_above(LAG_SECONDS, 0.5))

        await publish(settings, [missing])
        await until(lambda: _at_version(read_db, account_id, 4))
        await until(lambda: _gauge_at(LAG_SECONDS, 0))

    await assert_views_exact(read_db, customer_id, account_id)


async def _gauge_above(gauge, value: float) -> bool:
    return gauge._value.get() > value


async def _gauge_at(gauge, value: float) -> bool:
    return gauge._value.get() == value


async def _at_version(read_db, account_id: str, version: int) -> bool:
    return await account_version(read_db, account_id) >= version


async def test_a_crash_after_the_writes_but_before_the_commit_reapplies_nothing(
        engine, settings, read_db):
    customer_id, account_id, events = await write_history(engine, settings)
    await publish(settings, events)
    store = ReadStore(ViewDatabase(read_db))

    # First run: apply everything, then "crash" before committing any offset (a consumer
    # outside the group stands in for the crashed member, so the group has nothing committed).
    crashed = AIOKafkaConsumer(settings.kafka_topic, group_id=None,
                               bootstrap_servers=settings.kafka_bootstrap_servers,
                               auto_offset_reset="earliest", enable_auto_commit=False)
    await crashed.start()
    batch: dict = {}
    while sum(len(m) for m in batch.values()) < len(events):
        for tp, messages in (await crashed.getmany(timeout_ms=1000)).items():
            batch.setdefault(tp, []).extend(messages)
    first = Projector(crashed, store)
    await first.project(first._decode(batch))
    await crashed.stop()
    await assert_views_exact(read_db, customer_id, account_id)

    # Second run: everything is re-delivered from the last committed offset (none).
    async with RunningProjector(settings, store) as second:
        await until(lambda: _consumed(second, len(events)))
        committed = [await second.consumer.committed(tp)
                     for tp in second.consumer.assignment()]

    assert second.projector.last_plan is not None
    await assert_views_exact(read_db, customer_id, account_id)
    assert any(offset for offset in committed)


@pytest.mark.slow
async def test_a_read_store_outage_pauses_the_projector_without_committing_or_skipping(
        engine, settings, tmp_path):
    store_server = new_read_store(tmp_path / "outage")
    store_server.start()
    local = settings.model_copy(update={"mongo_url": store_server.mongo_url,
                                        "mongo_timeout_ms": 500})
    client = make_mongo_client(local)
    read_db = client[local.mongo_database]
    customer_id, account_id, events = await write_history(engine, settings)
    try:
        store_server.stop()
        await publish(settings, events)
        async with RunningProjector(local, ReadStore(ViewDatabase(read_db))) as running:
            await asyncio.sleep(3)  # consumes, fails to write, backs off
            committed = [await running.consumer.committed(tp)
                         for tp in running.consumer.assignment()]
            assert not any(committed), "offsets committed while the writes failed"

            store_server.start()  # same data directory, same port
            await until(lambda: _at_version(read_db, account_id, 4), timeout_s=30)
        await assert_views_exact(read_db, customer_id, account_id)
    finally:
        await client.close()
        store_server.stop()


@pytest.mark.parametrize("partitions", [1])
@pytest.mark.every_pair("consumer offsets")
async def test_offsets_are_committed_only_up_to_a_held_event(engine, settings, read_db,
                                                             partitions):
    settings = settings.model_copy(update={"kafka_topic_partitions": partitions})
    _, account_id, events = await write_history(engine, settings)
    account_events = [e for e in events if e.aggregate_id == account_id]
    held_back = [e for e in events if e is not account_events[1]]
    await publish(settings, held_back)

    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))) as running:
        await until(lambda: _at_version(read_db, account_id, 1))
        await asyncio.sleep(0.5)
        committed = await running.consumer.committed(TopicPartition(settings.kafka_topic, 0))

    # Offsets: 0 customer, 1 account v1, 2 account v3 (held) -> commit stops at 2.
    assert committed == 2


async def test_a_gap_that_never_fills_is_parked_after_its_timeout(engine, settings, read_db):
    _, account_id, events = await write_history(engine, settings)
    account_events = [e for e in events if e.aggregate_id == account_id]
    await publish(settings, [e for e in events if e is not account_events[1]])  # v2 is lost

    retry = RetryPolicy(gap_timeout_s=0.5)
    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db)), retry):
        dead_letters = DeadLetters(read_db)
        for _ in range(200):
            parked = await dead_letters.list(account_id)
            if len(parked) == 2:
                break
            await asyncio.sleep(0.05)
        # The parked count reaches the gauge the DeadLetterParked alert watches; parked, the
        # events no longer wait in the projector.
        await until(lambda: _gauge_at(PARKED, 2), timeout_s=PARKED_EVERY_S * 3)
        await until(lambda: _gauge_at(LAG_SECONDS, 0))
    assert [(e["version"], e["error"].split(":")[0]) for e in parked] == [(3, "gap"), (4, "gap")]
    assert await account_version(read_db, account_id) == 1  # nothing applied out of order
