"""The projector process: consumer group member, read store, ops HTTP port, SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from projector.consumer import Projector, RetryPolicy
from projector.store import ReadStore
from shared.config import Settings
from shared.kafka import ensure_topic, make_consumer
from shared.readmodel import ViewDatabase, ensure_indexes, make_mongo_client, read_registry
from shared.tracing import configure_tracing
from shared.worker import OpsServer, stop_on_signals

log = logging.getLogger(__name__)


async def serve_projector(settings: Settings, host: str, port: int,
                          stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    configure_tracing("cqrs-accounts-projector")
    client = make_mongo_client(settings)
    db = client[settings.mongo_database]
    consumer = make_consumer(settings)

    async def read_store_answers() -> None:
        await db.command("ping")

    async def broker_answers() -> None:
        await consumer.topics()

    ops = OpsServer("cqrs-accounts projector", {"read_store": read_store_answers,
                                                "broker": broker_answers}, host, port)
    bound = await ops.start()
    log.info("projector ops endpoints on http://%s:%d (/healthz /readyz /metrics)", host, bound)
    retry = RetryPolicy(max_attempts=settings.projector_max_attempts,
                        first_backoff_s=settings.projector_first_backoff_ms / 1000,
                        gap_timeout_s=settings.projector_gap_timeout_s)
    store = ReadStore(ViewDatabase(db))
    started = False
    try:
        # The broker and the read store may come up after us: keep trying until both answer
        # or we are stopped. A consumer whose start failed cannot start again: a fresh one.
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(Exception),
                                           wait=wait_exponential(multiplier=0.2, max=5)):
            with attempt:
                if stop.is_set():
                    return
                await ensure_indexes(db, await read_registry(db))
                await ensure_topic(settings)
                with contextlib.suppress(Exception):
                    await consumer.stop()
                consumer = make_consumer(settings)
                projector = Projector(consumer, store, batch_size=settings.projector_batch_size,
                                      poll_ms=settings.projector_poll_ms, retry=retry)
                consumer.subscribe([settings.kafka_topic], listener=projector)
                await consumer.start()
                started = True
        log.info("projector started in group %s", settings.kafka_consumer_group)
        await projector.run(stop)
    finally:
        if started:
            await consumer.stop()
        await ops.stop()
        await client.close()
        log.info("projector stopped")
