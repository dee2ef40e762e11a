"""Retention of the write model: what it may forget, so that it does not grow for years.

The events table is the permanent log and is never pruned. What goes:
- sent outbox rows older than CQRS_OUTBOX_RETENTION_S: each is a copy of its event, needed only
  until the broker acknowledged it (`relay --resend-from` builds its messages from the events
  table, outbox/backlog.py, so it does not need them);
- the stored responses of expired Idempotency-Keys: once a key has expired a retry is a new
  command (idempotency.py already releases such a key when it is sent again), so the response
  is dead weight; the command record itself stays (the command log).

Both run on the active relay only (`keep_pruned`), a batch at a time, each batch its own short
transaction that deletes (or clears) rows by primary key. Pruning and the relay never touch the
same row: the relay claims and marks only unsent rows, a command only inserts new ones, and
a delete re-checks "sent, and sent before the cutoff", so nothing unsent is ever a candidate.
The candidates are read first without locks, so a delete locks exactly its batch. On SQLite a
write transaction holds the one writer's lock, and on MySQL a big delete still costs redo and
binlog, so `_Pace` keeps each batch near PRUNE_BATCH_TARGET_S and rests REST_FACTOR times as
long before the next: a backlog of a million rows is worked off without slowing commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only, write_lock
from command_service.db.tables import commands, outbox, utc_now
from shared.config import Settings
from shared.worker import every

log = logging.getLogger(__name__)

# Measured on SQLite and MariaDB (2026-12-03): deleting 1,000 sent outbox rows took 25-30 ms,
# a command waiting on SQLite's writer that long. A few milliseconds per batch is a command's
# own order of time; resting four times as long leaves the writer to commands 80% of the time.
PRUNE_BATCH_TARGET_S = 0.005
REST_FACTOR = 4
FIRST_BATCH, MIN_BATCH, MAX_BATCH = 200, 20, 5000

PRUNED = Counter("cqrs_retention_pruned_rows_total",
                 "Rows removed by retention: sent outbox rows, expired idempotency responses",
                 ["what"])


@dataclass
class Pruned:
    outbox_rows: int = 0
    idempotency_responses: int = 0


def _always() -> bool:
    return True


async def prune_outbox(engine: AsyncEngine, sent_before: datetime,
                       go_on: Callable[[], bool] = _always) -> int:
    """Delete every outbox row sent before `sent_before` (while `go_on()`); returns how many."""
    old = sa.and_(outbox.c.sent_at.is_not(None), outbox.c.sent_at < sent_before)
    return await _in_batches(
        engine, go_on, what="outbox",
        # An index range scan of ix_outbox_unsent (sent_at, id), oldest first.
        candidates=sa.select(outbox.c.id).where(old).order_by(outbox.c.sent_at),
        apply=lambda ids: outbox.delete().where(outbox.c.id.in_(ids), old))


async def clear_expired_responses(engine: AsyncEngine, now: datetime,
                                  go_on: Callable[[], bool] = _always) -> int:
    """Release every Idempotency-Key that expired before `now` and drop its stored response
    (while `go_on()`); returns how many."""
    expired = commands.c.expires_at < now  # ix_commands_expires_at; cleared rows are NULL
    return await _in_batches(
        engine, go_on, what="idempotency",
        candidates=sa.select(commands.c.command_id).where(expired)
        .order_by(commands.c.expires_at),
        apply=lambda ids: commands.update().where(commands.c.command_id.in_(ids), expired)
        .values(idempotency_key=None, request_fingerprint=None, response_status=None,
                response_body=None, response_headers=None, expires_at=None))


class _Pace:
    """The size of the next batch, and the rest after the last: a batch that held the lock
    longer than the target (a slow disk, a checkpoint) makes the next one smaller, a quick one
    makes it bigger."""

    def __init__(self) -> None:
        self.size = FIRST_BATCH

    def after(self, rows: int, seconds: float) -> float:
        per_row = max(seconds, 1e-6) / max(rows, 1)
        self.size = max(MIN_BATCH, min(MAX_BATCH, int(PRUNE_BATCH_TARGET_S / per_row)))
        return seconds * REST_FACTOR


async def _in_batches(engine: AsyncEngine, go_on: Callable[[], bool], *, candidates,
                      apply: Callable[[list], sa.Executable], what: str) -> int:
    done, pace = 0, _Pace()
    while go_on():
        asked = pace.size
        async with read_only(engine).connect() as conn:
            ids = list((await conn.execute(candidates.limit(asked))).scalars())
        if not ids:
            break
        async with _writing(engine):
            async with engine.begin() as conn:
                # Timed from when the lock is ours to the commit: waiting for it costs the
                # writer nothing, and counting it would starve the pruner under a busy load.
                started = time.perf_counter()
                changed = (await conn.execute(apply(ids))).rowcount
            held_s = time.perf_counter() - started
        rest_s = pace.after(len(ids), held_s)
        done += changed
        PRUNED.labels(what).inc(changed)
        if len(ids) < asked:  # that was the last of them
            break
        await asyncio.sleep(rest_s)
    return done


def _writing(engine: AsyncEngine) -> contextlib.AbstractAsyncContextManager:
    """On SQLite, queue with the process's other writers (commands, when the relay runs in
    their process as in the bench): SQLite's own busy handler would make them sleep and retry
    while a batch holds the lock."""
    return write_lock(engine) or contextlib.nullcontext()


async def prune(engine: AsyncEngine, settings: Settings,
                go_on: Callable[[], bool] = _always) -> Pruned:
    """One retention pass."""
    now = utc_now()
    return Pruned(
        outbox_rows=await prune_outbox(
            engine, now - timedelta(seconds=settings.outbox_retention_s), go_on),
        idempotency_responses=await clear_expired_responses(engine, now, go_on))


async def keep_pruned(engine: AsyncEngine, settings: Settings, stop: asyncio.Event,
                      is_leader: Callable[[], bool]) -> None:
    """A retention pass every CQRS_RETENTION_INTERVAL_S while this relay leads; a pass stops
    between two batches when the relay stops or loses the lease (a standby that takes over
    prunes from there)."""
    def go_on() -> bool:
        return is_leader() and not stop.is_set()

    async def one_pass() -> None:
        if not go_on():
            return
        pruned = await prune(engine, settings, go_on)
        if pruned.outbox_rows or pruned.idempotency_responses:
            log.info("retention: pruned %d sent outbox row(s) and %d expired idempotency "
                     "response(s)", pruned.outbox_rows, pruned.idempotency_responses)

    await every(settings.retention_interval_s, one_pass, stop, "retention pass")
