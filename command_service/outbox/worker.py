"""The relay process: leader lease, producer, the backlog gauges and retention beside it, ops
HTTP port, SIGTERM handling."""

from __future__ import annotations

import asyncio
import logging

from command_service.db.engine import create_engine, ping
from command_service.outbox.backlog import monitor_backlog
from command_service.outbox.backlog import resend_from as queue_resend
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from command_service.retention import keep_pruned
from shared.config import Settings
from shared.kafka import ensure_topic, make_producer, start_producer
from shared.tracing import configure_tracing
from shared.worker import run_worker, stop_on_signals

log = logging.getLogger(__name__)


async def serve_relay(settings: Settings, host: str, port: int,
                      stop: asyncio.Event | None = None, resend_from: int | None = None) -> None:
    stop = stop or stop_on_signals()
    configure_tracing("cqrs-accounts-relay")
    engine = create_engine(settings)
    if resend_from is not None:
        queued = await queue_resend(engine, resend_from, settings.kafka_topic)
        log.info("queued %d event(s) from position %d to be published again", queued,
                 resend_from)
    producer = make_producer(settings)  # the one to probe and to stop: the relay's, once it runs
    relay: OutboxRelay | None = None

    async def broker_answers() -> None:
        await (relay.producer if relay else producer).client.fetch_all_metadata()

    async def start() -> OutboxRelay:
        nonlocal producer, relay
        await ensure_topic(settings)
        producer = await start_producer(settings, producer)  # a failed start: a fresh one
        lease = LeaderLease(engine, settings.relay_lease_s)
        relay = OutboxRelay(engine, producer, lease, batch_size=settings.relay_batch_size,
                            idle_poll_s=settings.relay_idle_poll_ms / 1000,
                            renew_producer=lambda old: start_producer(settings, old))
        log.info("relay %s started", lease.holder)
        return relay

    async def work(started: OutboxRelay) -> None:
        side_tasks = [asyncio.create_task(monitor_backlog(engine, stop)),
                      asyncio.create_task(keep_pruned(engine, settings, stop,
                                                      lambda: started.is_leader))]
        try:
            await started.run(stop)
        finally:
            for task in side_tasks:
                task.cancel()

    async def close(_: OutboxRelay | None) -> None:
        await (relay.producer if relay else producer).stop()
        await engine.dispose()

    await run_worker("relay", {"database": lambda: ping(engine), "broker": broker_answers},
                     host, port, stop, start=start, work=work, close=close)
