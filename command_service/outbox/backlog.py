"""What waits in the outbox: the backlog the relay reports (how many rows, how old the oldest),
and queuing events again for a broker that lost them (`relay --resend-from`)."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from command_service.db.engine import read_only
from command_service.db.errors import is_transient_conflict
from command_service.db.tables import outbox, utc_now
from command_service.event_log import read_events
from command_service.outbox_envelope import outbox_row
from shared.envelope import EventEnvelope
from shared.stopping import sleep_unless_stopped

log = logging.getLogger(__name__)

# A fact of the database, polled: across processes (shared/metrics.py) the latest reading of
# a live one is the answer, not a sum.
BACKLOG = Gauge("cqrs_outbox_backlog_events", "Outbox rows not yet published",
                multiprocess_mode="livemostrecent")
OLDEST_UNSENT = Gauge("cqrs_outbox_oldest_unsent_age_seconds",
                      "Age of the oldest outbox row not yet published (0 when none)",
                      multiprocess_mode="livemostrecent")


async def outbox_backlog(engine: AsyncEngine) -> tuple[int, float | None]:
    """Unsent rows and the age in seconds of the oldest one."""
    async with read_only(engine).connect() as conn:
        count, oldest = (await conn.execute(
            sa.select(sa.func.count(), sa.func.min(outbox.c.created_at))
            .where(outbox.c.sent_at.is_(None))
        )).one()
    age = (utc_now() - oldest).total_seconds() if oldest else None
    return count, age


async def monitor_backlog(engine: AsyncEngine, stop: asyncio.Event,
                          interval_s: float = 2.0) -> None:
    """Keep the backlog gauges current (every relay reports it, leader or standby)."""
    while not stop.is_set():
        try:
            count, age = await outbox_backlog(engine)
            BACKLOG.set(count)
            OLDEST_UNSENT.set(age or 0)
        except Exception as exc:  # a database outage shows in /readyz; keep the last figures
            log.warning("could not measure the outbox backlog: %s", exc.__class__.__name__)
        await sleep_unless_stopped(stop, interval_s)


async def resend_from(engine: AsyncEngine, position: int, topic: str) -> int:
    """Queue every event from global `position` on to be published again (for a broker that
    lost data); returns how many rows were queued.

    The messages are built from the events table, the permanent log, so this works however
    long ago retention pruned their first outbox rows: each event goes out as it was written
    (its schema version and payload as stored; readers upcast it), in a new outbox row, in
    position order. A row still waiting to be sent for an event it queues is replaced in the
    same transaction (the relay down since the loss leaves such rows, with lower ids): they
    would otherwise go out before the older events of their aggregate, and the projector
    would hold them back as gaps until the resent ones arrived. The reading follows the log
    to its end, so events committed meanwhile are queued in order too. Consumers' version
    guards make the repeats harmless. The command's correlation id and trace are not in the
    log; the headers carry its command id in their place."""
    queued = 0
    async for batch in read_events(engine, after_position=position - 1, as_written=True):
        # A running relay may be marking a row this replaces: the two can meet at its row
        # lock (a lock wait timeout, a deadlock; SQLite's busy lock from another process).
        # A batch that loses rolls back whole, so it is simply run again.
        async for attempt in AsyncRetrying(retry=retry_if_exception(is_transient_conflict),
                                           stop=stop_after_attempt(5),
                                           wait=wait_exponential(multiplier=0.05, max=1),
                                           reraise=True):
            with attempt:
                await _queue_again(engine, batch, topic)
        queued += len(batch)
    return queued


async def _queue_again(engine: AsyncEngine, batch: list[EventEnvelope], topic: str) -> None:
    now = utc_now()
    async with engine.begin() as conn:
        # Only unsent rows are read (ix_outbox_unsent), however long the sent history, and
        # only those of events in hand: one that commits late with a position in this range
        # was not read, and its row must stay.
        await conn.execute(outbox.delete().where(
            outbox.c.sent_at.is_(None),
            outbox.c.event_position.in_([e.position for e in batch])))
        await conn.execute(outbox.insert(), [outbox_row(e, topic, now) for e in batch])
