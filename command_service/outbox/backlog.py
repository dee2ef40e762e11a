"""What waits in the outbox: the backlog the relay reports (how many rows, how old the oldest),
and queuing already-sent events again for a broker that lost them (`relay --resend-from`)."""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from prometheus_client import Gauge
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only
from command_service.db.tables import outbox, utc_now
from shared.worker import sleep_unless_stopped

log = logging.getLogger(__name__)

BACKLOG = Gauge("cqrs_outbox_backlog_events", "Outbox rows not yet published")
OLDEST_UNSENT = Gauge("cqrs_outbox_oldest_unsent_age_seconds",
                      "Age of the oldest outbox row not yet published (0 when none)")


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


async def resend_from(engine: AsyncEngine, position: int) -> int:
    """Queue every already-sent event from global `position` on for publishing again (for a
    broker that lost data). The relay sends them in order like new rows; consumers' version
    guards make the repeats harmless. Returns how many rows were queued again."""
    async with engine.begin() as conn:
        result = await conn.execute(
            outbox.update()
            .where(outbox.c.event_position >= position, outbox.c.sent_at.is_not(None))
            .values(sent_at=None)
        )
    return result.rowcount
