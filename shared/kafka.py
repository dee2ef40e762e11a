"""Kafka clients configured one way for every process, and explicit topic creation (production
clusters usually forbid auto-creation, and Tansu would pick its own partition count)."""

from __future__ import annotations

import contextlib
import logging

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from shared.config import Settings

log = logging.getLogger(__name__)
_TOPIC_ALREADY_EXISTS = 36
# How long a fetch may wait on the broker for data. Kafka answers a fetch as soon as data
# arrives; a broker that sits out the whole wait (Tansu does) adds it to the lag of an idle
# system, so keep it short.
FETCH_MAX_WAIT_MS = 20


def make_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="cqrs-accounts-relay",
        acks="all",
        enable_idempotence=settings.kafka_enable_idempotence,
        linger_ms=2,
        max_batch_size=512 * 1024,
        request_timeout_ms=15_000,
    )


async def start_producer(settings: Settings,
                         previous: AIOKafkaProducer | None = None) -> AIOKafkaProducer:
    """Stop `previous` (if any) and start a new producer: a failed start leaves a client that
    cannot be started again, and an idempotent producer whose batch the broker refused must
    be replaced (a new producer id starts its sequence numbers afresh)."""
    if previous is not None:
        with contextlib.suppress(Exception):
            await previous.stop()
    producer = make_producer(settings)
    try:
        await producer.start()
    except Exception:
        with contextlib.suppress(Exception):
            await producer.stop()
        raise
    return producer


def make_consumer(settings: Settings) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(
        bootstrap_servers=settings.bootstrap_servers,
        client_id="cqrs-accounts-projector",
        group_id=settings.kafka_consumer_group,
        # Offsets are committed by hand, only after the read-model writes they cover are done.
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=settings.projector_batch_size,
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 5),
        isolation_level="read_committed",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
    )


async def ensure_topic(settings: Settings) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers,
                                client_id="cqrs-accounts-admin", request_timeout_ms=10_000)
    await admin.start()
    try:
        if settings.kafka_topic in await admin.list_topics():
            return
        response = await admin.create_topics([NewTopic(
            settings.kafka_topic, num_partitions=settings.kafka_topic_partitions,
            replication_factor=settings.kafka_replication_factor,
        )])
        for topic, code, message in _topic_errors(response):
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                raise RuntimeError(f"could not create topic {topic}: {message} (code {code})")
        log.info("created topic %s with %d partitions", settings.kafka_topic,
                 settings.kafka_topic_partitions)
    except TopicAlreadyExistsError:
        pass
    finally:
        await admin.close()


def _topic_errors(response) -> list[tuple[str, int, str]]:
    return [(error[0], error[1], error[2] if len(error) > 2 else "") for error in
            response.topic_errors]
