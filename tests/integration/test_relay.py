"""The outbox relay against a real broker and a real write model."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from command_service.db.tables import outbox
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.outbox.backlog import outbox_backlog, resend_from
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from command_service.service import CommandService
from shared.envelope import EventEnvelope
from shared.kafka import ensure_topic


async def consume_all(settings, expected: int, timeout_s: float = 20.0,
                      bootstrap: str | None = None) -> list:
    consumer = AIOKafkaConsumer(settings.kafka_topic,
                                bootstrap_servers=bootstrap or settings.kafka_bootstrap_servers,
                                group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)  # no group: no join delay
    await consumer.start()
    messages = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(messages) < expected and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for partition_messages in batch.values():
                messages.extend(partition_messages)
        # A short extra read proves there is nothing beyond what was expected.
        for partition_messages in (await consumer.getmany(timeout_ms=300)).values():
            messages.extend(partition_messages)
    finally:
        await consumer.stop()
    return messages


async def make_history(engine, settings, deposits: int = 5) -> str:
    service = CommandService(engine, settings.kafka_topic)
    customer = await service.execute(c.RegisterCustomer(
        name="Relay Tester", email=f"{uuid.uuid4().hex}@example.com",
        customer_id=str(uuid.uuid4())))
    account = await service.execute(c.OpenAccount(
        customer_id=customer.body["customer_id"], account_type=AccountType.SAVINGS,
        currency="EUR", initial_deposit_minor=0, account_id=str(uuid.uuid4())))
    for _ in range(deposits):
        await service.execute(c.Deposit(account_id=account.body["account_id"],
                                        amount_minor=1_00, reference=None))
    return account.body["account_id"]


async def test_relay_publishes_in_order_with_headers_and_marks_rows_sent_after_the_ack(
        engine, settings, producer):
    account_id = await make_history(engine, settings, deposits=5)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))

    assert await relay.run_once() == 7
    assert await relay.run_once() == 0
    assert await outbox_backlog(engine) == (0, None)

    messages = await consume_all(settings, 7)
    assert len(messages) == 7
    account_versions = [EventEnvelope.from_json(m.value).version for m in messages
                        if m.key == account_id.encode()]
    assert account_versions == [1, 2, 3, 4, 5, 6]  # one partition per key, in version order
    headers = dict(messages[-1].headers)
    assert {"event_id", "event_type", "aggregate_type", "version"} <= set(headers)


async def test_one_run_pipelines_batch_after_batch_in_order_until_the_outbox_is_empty(
        engine, settings, producer):
    account_id = await make_history(engine, settings, deposits=9)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5), batch_size=2)

    assert await relay.run_once() == 11  # six batches in one run, each claimed while the last
    assert await outbox_backlog(engine) == (0, None)  # batch's acks were still in flight

    messages = await consume_all(settings, 11)
    assert len(messages) == 11  # no row claimed twice while its batch was in flight
    account_versions = [EventEnvelope.from_json(m.value).version for m in messages
                        if m.key == account_id.encode()]
    assert account_versions == list(range(1, 11))


@pytest.mark.every_pair("the order of commits is each store's")
async def test_relay_never_skips_a_row_that_commits_late_with_a_lower_id(
        engine, settings, producer):
    """A row with a lower id appearing after higher ids were sent (an AUTO_INCREMENT id taken
    by a transaction that committed late) is still published."""
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))

    async def insert(row_id: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(outbox.insert().values(
                id=row_id, event_position=row_id, topic=settings.kafka_topic,
                message_key=f"k{row_id}", headers=json.dumps({"n": str(row_id)}),
                payload=json.dumps({"n": row_id}),
                created_at=datetime.now(UTC).replace(tzinfo=None)))

    await insert(10)
    await insert(11)
    assert await relay.run_once() == 2
    await insert(5)  # committed after 10 and 11 were already sent
    assert await relay.run_once() == 1

    published = sorted(json.loads(m.value)["n"] for m in await consume_all(settings, 3))
    assert published == [5, 10, 11]


@pytest.mark.skipif(not os.environ.get("CQRS_TEST_MYSQL_URL"),
                    reason="needs MySQL/MariaDB: SQLite has a single writer, so no concurrent "
                           "transactions can commit out of id order")
@pytest.mark.every_pair("the order of commits is each store's")
async def test_relay_picks_up_a_transaction_that_commits_after_a_later_one_on_mysql(
        engine, settings, producer):
    if engine.dialect.name != "mysql":
        pytest.skip("the concurrent-commit variant runs on MySQL/MariaDB only")
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    row = dict(event_position=1, topic=settings.kafka_topic, message_key="k",
               headers="{}", created_at=datetime.now(UTC).replace(tzinfo=None))

    async with engine.connect() as slow:
        await slow.begin()
        await slow.execute(outbox.insert().values(**row, payload='"slow"'))  # takes the lower id
        async with engine.begin() as fast:
            await fast.execute(outbox.insert().values(**row, payload='"fast"'))
        assert await relay.run_once() == 1  # only "fast" is visible yet
        await slow.commit()
    assert await relay.run_once() == 1

    assert sorted(json.loads(m.value) for m in await consume_all(settings, 2)) == ["fast", "slow"]


@pytest.mark.every_pair("each broker's client fails a send its own way; each store keeps the rows")
@pytest.mark.slow
async def test_rows_stay_unsent_while_the_broker_is_down_and_go_out_when_it_returns(
        engine, settings, spare_broker):
    broker = spare_broker
    broker.start()
    bootstrap = broker.bootstrap_servers
    local = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
    await ensure_topic(local)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=broker.idempotent,
                                acks="all", request_timeout_ms=2000)
    await producer.start()
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    try:
        await make_history(engine, settings, deposits=1)
        broker.stop()
        # Tansu's client fails the send at once. Kafka's keeps the batch while the partition's
        # leader is still known and waits for it to come back, so the run is still waiting
        # when the test's patience ends: either way, nothing may be marked sent.
        with pytest.raises(Exception):  # noqa: B017 (any send failure will do)
            await asyncio.wait_for(relay.run_once(), 5)
        unsent, _ = await outbox_backlog(engine)
        assert unsent == 3  # nothing marked sent without an acknowledgement

        broker.start()  # on the same address (Tansu: empty; Kafka: with its data)
        await ensure_topic(local)
        published = 0
        for _ in range(50):
            try:
                published += await relay.run_once()
            except Exception:  # the producer reconnects
                await asyncio.sleep(0.2)
            if published == 3:
                break
        assert published == 3
        # Every event arrives. Kafka may also deliver a batch whose send timed out while it
        # was down (at-least-once: the read side's version guard drops the repeat).
        delivered = [EventEnvelope.from_json(m.value) for m in await consume_all(local, 3)]
        assert len({event.event_id for event in delivered}) == 3
        assert len(delivered) == 3 or broker.keeps_data
    finally:
        await producer.stop()


@pytest.mark.every_pair("the lease is each store's own row lock")
async def test_only_the_lease_holder_publishes_and_a_standby_takes_over_when_it_dies(engine):
    leader, standby = LeaderLease(engine, 1.0), LeaderLease(engine, 1.0)

    assert await leader.hold()
    assert not await standby.hold()
    assert await leader.current_holder() == leader.holder

    # The leader dies without releasing: the standby waits out the lease, then takes over.
    await asyncio.sleep(1.2)
    assert await standby.hold()
    await asyncio.sleep(0.4)  # past the old leader's renew interval: it must re-check
    assert not await leader.hold()

    await standby.release()
    assert await leader.hold()


async def test_resend_from_a_position_publishes_those_events_again(engine, settings, producer):
    await make_history(engine, settings, deposits=3)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    assert await relay.run_once() == 5

    assert await resend_from(engine, 3, settings.kafka_topic) == 3
    assert await relay.run_once() == 3

    positions = defaultdict(int)
    for message in await consume_all(settings, 8):
        positions[EventEnvelope.from_json(message.value).position] += 1
    assert sorted(positions.values()) == [1, 1, 2, 2, 2]


async def test_resend_from_replaces_rows_still_waiting_so_each_aggregate_stays_in_order(
        engine, settings, producer):
    """The relay was down since the broker lost its data: the rows written meanwhile are
    still unsent, with ids below the ones the resend adds. Sent first, they would reach the
    projector before the older events of their aggregate."""
    account = await make_history(engine, settings, deposits=3)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    assert await relay.run_once() == 5
    await asyncio.gather(*(CommandService(engine, settings.kafka_topic).execute(c.Deposit(
        account_id=account, amount_minor=1, reference=None)) for _ in range(2)))

    assert await resend_from(engine, 1, settings.kafka_topic) == 7
    assert await relay.run_once() == 7
    published = [EventEnvelope.from_json(m.value) for m in await consume_all(settings, 12)]
    of_the_account = [e.version for e in published if e.aggregate_id == account]  # one partition
    assert of_the_account == [1, 2, 3, 4] + [1, 2, 3, 4, 5, 6], of_the_account
