"""The relay process: leader lease, producer, ops HTTP port, SIGTERM handling."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from command_service.db.engine import create_engine, read_only
from command_service.relay import LeaderLease, OutboxRelay, monitor_backlog
from command_service.relay import resend_from as queue_resend
from shared.config import Settings
from shared.kafka import ensure_topic, make_producer, start_producer
from shared.tracing import configure_tracing
from shared.worker import OpsServer, stop_on_signals

log = logging.getLogger(__name__)


async def serve_relay(settings: Settings, host: str, port: int,
                      stop: asyncio.Event | None = None, resend_from: int | None = None) -> None:
    stop = stop or stop_on_signals()
    configure_tracing("cqrs-accounts-relay")
    engine = create_engine(settings)
    if resend_from is not None:
        queued = await queue_resend(engine, resend_from)
        log.info("queued %d event(s) from position %d to be published again", queued,
                 resend_from)
    producer = make_producer(settings)
    relay: OutboxRelay | None = None

    async def database_answers() -> None:
        # Read-only: on SQLite it must not queue for the write lock behind a busy writer.
        async with read_only(engine).connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def broker_answers() -> None:
        await (relay.producer if relay else producer).client.fetch_all_metadata()

    ops = OpsServer("cqrs-accounts relay", {"database": database_answers,
                                            "broker": broker_answers}, host, port)
    bound = await ops.start()
    log.info("relay ops endpoints on http://%s:%d (/healthz /readyz /metrics)", host, bound)
    try:
        # The broker may come up after us: keep trying until it answers or we are stopped.
        async for attempt in AsyncRetrying(retry=retry_if_exception_type(Exception),
                                           wait=wait_exponential(multiplier=0.2, max=5)):
            with attempt:
                if stop.is_set():
                    return
                await ensure_topic(settings)
                producer = await start_producer(settings, producer)
        lease = LeaderLease(engine, settings.relay_lease_s)
        relay = OutboxRelay(engine, producer, lease, batch_size=settings.relay_batch_size,
                            idle_poll_s=settings.relay_idle_poll_ms / 1000,
                            renew_producer=lambda old: start_producer(settings, old))
        log.info("relay %s started", lease.holder)
        monitor = asyncio.create_task(monitor_backlog(engine, stop))
        try:
            await relay.run(stop)
        finally:
            monitor.cancel()
    finally:
        await (relay.producer if relay else producer).stop()
        await ops.stop()
        await engine.dispose()
        log.info("relay stopped")
