"""What only a real Kafka broker makes testable: exact consumer lag, a broker killed with -9 in
the middle of a stream, a message the broker refuses in the middle of a batch, and projectors
joining and leaving their group under load. The embedded Tansu keeps nothing on disk, enforces
no per-topic message limit and under-reports end offsets, so these tests skip on it."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from command_service.db.tables import outbox
from command_service.event_log import count_events
from command_service.outbox.backlog import outbox_backlog
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from operations.status import collect_status
from projector.consumer import Projector
from projector.health import CONSUMER_LAG
from projector.store import ReadStore
from shared.kafka import ensure_topic, make_consumer, make_producer, start_producer
from shared.readmodel import ViewDatabase
from tests.integration.test_relay import consume_all
from tests.stack import Stack
from tests.support.convergence import drift_once_converged
from tests.support.processes import Process


@pytest.fixture
def real_kafka(broker):
    if broker.kind != "kafka":
        pytest.skip(f"needs real Kafka; {broker.kind} keeps no data, enforces no per-topic "
                    "message limit and under-reports end offsets")
    return broker


@pytest.mark.every_pair("consumer offsets and lag")
async def test_consumer_lag_is_exactly_published_minus_consumed_per_partition(
        engine, settings, read_db, real_kafka):
    await ensure_topic(settings)
    producer = make_producer(settings)
    await producer.start()
    published: Counter[int] = Counter()
    try:
        for i in range(60):
            sent = await producer.send_and_wait(settings.kafka_topic, b"{}",
                                                key=f"aggregate-{i % 9}".encode())
            published[sent.partition] += 1
    finally:
        await producer.stop()

    consumer = make_consumer(settings)
    consumer.subscribe([settings.kafka_topic])
    await consumer.start()
    consumed: Counter[int] = Counter()
    try:
        deadline = time.monotonic() + 30
        while sum(consumed.values()) < 25 and time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200,
                                           max_records=25 - sum(consumed.values()))
            for partition, messages in batch.items():
                consumed[partition.partition] += len(messages)
        assert sum(consumed.values()) == 25
        await consumer.commit()  # what the projector does once the batch's writes are durable

        await Projector(consumer, ReadStore(ViewDatabase(read_db))).health.measure_partitions()
        expected = {p: published[p] - consumed[p] for p in range(settings.kafka_topic_partitions)}
        gauge = {p: CONSUMER_LAG.labels(str(p))._value.get() for p in expected}
        assert gauge == expected

        status = await collect_status(settings, engine, read_db)
        assert status.broker_error is None
        assert status.lag() == expected
        assert sum(status.lag().values()) == 60 - 25
    finally:
        await consumer.stop()


@pytest.mark.every_pair("a broker killed mid-stream, with each store's relay")
@pytest.mark.slow
async def test_a_broker_killed_with_9_mid_stream_loses_nothing_it_acknowledged(
        settings, engine, read_db, spare_broker, real_kafka):
    """The relay marks a row sent only after acks=all; the broker's log survives a kill -9, so
    the views converge with no --resend-from."""
    rng = random.Random(1201)
    broker = spare_broker
    await broker.astart()
    local = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    kills, commands, started = 0, 0, time.monotonic()
    async with Stack(local) as stack:
        customer = (await stack.commands.post("/v1/customers", json={
            "name": "Broker Chaos", "email": "broker-chaos@example.com"})).json()["customer_id"]
        accounts = [(await stack.commands.post("/v1/accounts", json={
            "customer_id": customer, "type": "checking", "currency": "EUR",
            "initial_deposit": "100.00"})).json()["account_id"] for _ in range(4)]
        chaos_over = asyncio.Event()

        async def stream() -> None:
            nonlocal commands
            while not chaos_over.is_set():
                source, target = rng.sample(accounts, 2)
                if rng.random() < 0.5:
                    response = await stack.commands.post(
                        f"/v1/accounts/{source}/deposits", json={"amount": "1.25"})
                else:
                    response = await stack.commands.post("/v1/transfers", json={
                        "from_account_id": source, "to_account_id": target,
                        "amount": "0.50"})
                assert response.status_code in (201, 409), response.text  # 409: funds
                commands += 1
                await asyncio.sleep(0.01)

        async def chaos() -> None:
            nonlocal kills
            try:
                for _ in range(3):
                    await asyncio.sleep(rng.uniform(1.0, 3.0))
                    broker.kill()
                    kills += 1
                    await asyncio.sleep(rng.uniform(0.2, 1.0))
                    await broker.astart()  # same folder, same ports
            finally:
                chaos_over.set()

        await asyncio.gather(stream(), chaos())
        streamed = time.monotonic() - started
        drift = await drift_once_converged(engine, read_db, timeout_s=180, poll_s=1)
        converged = time.monotonic() - started - streamed
        assert await outbox_backlog(engine) == (0, None)
    print(f"\nbroker chaos: {commands} commands, {await count_events(engine)} events, "
          f"{kills} kill -9 of Kafka, streamed in {streamed:.1f}s, converged {converged:.1f}s "
          "later, no re-publishing")
    assert kills == 3
    assert drift == [], drift[:10]


async def _topic_with_limit(settings, max_message_bytes: int) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await admin.create_topics([NewTopic(settings.kafka_topic, num_partitions=1,
                                        replication_factor=1, topic_configs={
                                            "max.message.bytes": str(max_message_bytes)})])
    return admin


async def test_a_message_the_broker_refuses_holds_back_only_its_aggregate_until_allowed(
        engine, settings, real_kafka):
    """One partition, so the refused message shares its batch with every other aggregate's:
    Kafka refuses the whole batch, and the relay must tell the culprit from its batch mates."""
    admin = await _topic_with_limit(settings, 4096)
    rows = [("A", 1, 100), ("B", 1, 100), ("A", 2, 8000), ("B", 2, 100), ("C", 1, 100),
            ("A", 3, 100), ("C", 2, 100), ("B", 3, 100)]
    async with engine.begin() as conn:
        for position, (key, version, size) in enumerate(rows, start=1):
            await conn.execute(outbox.insert().values(
                event_position=position, topic=settings.kafka_topic, message_key=key,
                headers="{}", payload=json.dumps({"v": version, "pad": "x" * size}),
                created_at=datetime.now(UTC).replace(tzinfo=None)))
    relay = OutboxRelay(engine, await start_producer(settings), LeaderLease(engine, 5),
                        renew_producer=lambda old: start_producer(settings, old))
    try:
        await relay.run_once()  # no exception: the other aggregates were published
        assert await outbox_backlog(engine) == (2, pytest.approx(0, abs=60))  # A2, A3
        assert "A" in relay.refused and len(relay.refused) == 1
        arrived = _versions_by_key(await consume_all(settings, 6))
        assert arrived == {"A": [1], "B": [1, 2, 3], "C": [1, 2]}

        # The cause removed: the topic takes larger messages now.
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, settings.kafka_topic,
                                                  configs={"max.message.bytes": "1048588"})])
        deadline = time.monotonic() + 30
        while (await outbox_backlog(engine))[0] and time.monotonic() < deadline:
            await relay.run_once()
            await asyncio.sleep(0.2)
        assert await outbox_backlog(engine) == (0, None)
        assert len(relay.refused) == 0
        arrived = _versions_by_key(await consume_all(settings, 8))
        assert arrived["A"] == [1, 2, 3]  # in order, after the wait
    finally:
        await relay.producer.stop()
        await admin.close()


def _versions_by_key(messages) -> dict[str, list[int]]:
    """Per key, the versions in the order they first arrived (repeats are allowed)."""
    seen: dict[str, list[int]] = {}
    for message in messages:
        versions = seen.setdefault(message.key.decode(), [])
        version = json.loads(message.value)["v"]
        if version not in versions:
            versions.append(version)
    return seen


@pytest.mark.every_pair("consumer-group rebalances and offsets")
@pytest.mark.slow
async def test_three_projectors_joining_and_leaving_under_load_double_and_skip_nothing(
        settings, engine, read_db, real_kafka, tmp_path):
    """Real processes: a projector killed with -9 stops heartbeating, as in production, and its
    partitions move to the others when its session times out."""
    rng = random.Random(77)
    members = [Process("projector", settings, tmp_path, name=f"projector-{i}") for i in range(3)]
    joins = leaves = 0
    async with Stack(settings) as stack:
        await stack.projector.stop()  # the group is the three processes alone
        members[0].start()
        await members[0].ready()
        customer = (await stack.commands.post("/v1/customers", json={
            "name": "Group Churn", "email": f"{uuid.uuid4().hex}@example.com"})).json()
        accounts = [(await stack.commands.post("/v1/accounts", json={
            "customer_id": customer["customer_id"], "type": "savings", "currency": "USD",
            "initial_deposit": "50.00"})).json()["account_id"] for _ in range(8)]
        churn_over = asyncio.Event()

        async def load() -> None:
            async def one() -> None:
                source, target = rng.sample(accounts, 2)
                response = await stack.commands.post("/v1/transfers", json={
                    "from_account_id": source, "to_account_id": target, "amount": "0.10"})
                assert response.status_code in (201, 409), response.text
            while not churn_over.is_set():
                await asyncio.gather(*(one() for _ in range(8)))
                await asyncio.sleep(0.02)

        async def churn() -> None:
            nonlocal joins, leaves
            running = {0}
            try:
                for step in range(10):
                    await asyncio.sleep(rng.uniform(0.5, 1.5))
                    member = rng.randrange(3)
                    if member in running and len(running) > 1:
                        if step % 2:
                            members[member].terminate()  # leaves the group cleanly
                        else:
                            members[member].kill()  # vanishes; its session times out
                        running.discard(member)
                        leaves += 1
                    elif member not in running:
                        members[member].start()
                        running.add(member)
                        joins += 1
            finally:
                churn_over.set()
            for member in set(range(3)) - running:
                members[member].start()  # all three at the end, so the group settles

        try:
            await asyncio.gather(load(), churn())
            drift = await drift_once_converged(engine, read_db, timeout_s=120)
        finally:
            for member in members:
                if member.process and member.process.poll() is None:
                    member.terminate()
    print(f"\ngroup churn: {await count_events(engine)} events, {joins} joins, {leaves} leaves")
    assert joins >= 2 and leaves >= 2
    assert drift == [], drift[:10]
