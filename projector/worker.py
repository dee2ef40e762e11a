"""The projector process: consumer group member, read store, dead-letter retention beside it,
ops HTTP port, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from projector.consumer import Projector
from projector.dead_letters import DeadLetters
from projector.failures import RetryPolicy
from projector.store import ReadStore
from shared.config import Settings
from shared.envelope import utc_now
from shared.kafka import ensure_topic, make_consumer
from shared.readmodel import ViewDatabase, ensure_indexes, make_mongo_client, read_registry
from shared.tracing import configure_tracing
from shared.worker import every, run_worker, stop_on_signals

log = logging.getLogger(__name__)


async def serve_projector(settings: Settings, host: str, port: int,
                          stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    configure_tracing("cqrs-accounts-projector")
    client = make_mongo_client(settings)
    db = client[settings.mongo_database]
    store = ReadStore(ViewDatabase(db))
    retry = RetryPolicy(max_attempts=settings.projector_max_attempts,
                        first_backoff_s=settings.projector_first_backoff_ms / 1000,
                        gap_timeout_s=settings.projector_gap_timeout_s)
    consumer = make_consumer(settings)  # the one to probe and to stop

    async def read_store_answers() -> None:
        await db.command("ping")

    async def broker_answers() -> None:
        await consumer.topics()

    async def start() -> Projector:
        nonlocal consumer
        await ensure_indexes(db, await read_registry(db))
        await ensure_topic(settings)
        # A consumer whose start failed cannot start again: each attempt gets a fresh one.
        with contextlib.suppress(Exception):
            await consumer.stop()
        consumer = make_consumer(settings)
        projector = Projector(consumer, store, batch_size=settings.projector_batch_size,
                              poll_ms=settings.projector_poll_ms, retry=retry)
        consumer.subscribe([settings.kafka_topic], listener=projector)
        await consumer.start()
        log.info("projector started in group %s", settings.kafka_consumer_group)
        return projector

    async def forget_discarded_dead_letters() -> None:
        before = utc_now() - timedelta(seconds=settings.dead_letter_retention_s)
        if deleted := await DeadLetters(db).delete_discarded(before):
            log.info("retention: deleted %d discarded dead letter(s)", deleted)

    async def work(projector: Projector) -> None:
        retention = asyncio.create_task(every(settings.retention_interval_s,
                                              forget_discarded_dead_letters, stop,
                                              "dead-letter retention"))
        try:
            await projector.run(stop)
        finally:
            retention.cancel()

    async def close(projector: Projector | None) -> None:
        if projector is not None:
            await consumer.stop()
        await client.close()

    await run_worker("projector", {"read_store": read_store_answers, "broker": broker_answers},
                     host, port, stop, start=start, work=work, close=close)
