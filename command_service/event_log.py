"""The event log's read API: the only way other packages read the write model's append-only
events table, the permanent log that rebuild, verify and repair project from (Kafka's
retention is finite; this table's is not). Every read here is read-only, so on SQLite none of
them queues for the write lock behind the command service."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only
from command_service.db.tables import events
from shared.envelope import EventEnvelope
from shared.upcasting import READER


def _as_written(row) -> EventEnvelope:
    """The stored event exactly as it was written: its schema version and payload as stored."""
    return EventEnvelope(
        event_id=row.event_id, event_type=row.event_type, schema_version=row.schema_version,
        aggregate_type=row.aggregate_type,
        aggregate_id=row.aggregate_id, version=row.version,
        occurred_at=row.occurred_at.replace(tzinfo=UTC), command_id=row.command_id,
        payload=json.loads(row.payload), position=row.position,
    )


def as_read(row) -> EventEnvelope:
    """The stored event as this release reads it: upcast from the version it was written
    with (raises UnreadableEvent for one a newer release wrote: upgrade before folding)."""
    return READER.read(_as_written(row))


async def read_events(engine: AsyncEngine, after_position: int = 0,
                      batch_size: int = 2000,
                      up_to_position: int | None = None, *,
                      as_written: bool = False) -> AsyncIterator[list[EventEnvelope]]:
    """Events with a position above `after_position` (and at most `up_to_position`: a reader
    slower than the writers would otherwise never reach the end), in position order, a batch
    at a time (keyset paging: each query is an index range scan, whatever the table's size).
    Upcast to what this release reads, unless `as_written` (to publish them again)."""
    envelope = _as_written if as_written else as_read
    last = after_position
    while True:
        query = sa.select(events).where(events.c.position > last)
        if up_to_position is not None:
            query = query.where(events.c.position <= up_to_position)
        async with read_only(engine).connect() as conn:
            rows = (await conn.execute(query.order_by(events.c.position).limit(batch_size))).all()
        if not rows:
            return
        yield [envelope(row) for row in rows]
        last = rows[-1].position


async def last_position(engine: AsyncEngine) -> int:
    async with read_only(engine).connect() as conn:
        return (await conn.scalar(sa.select(sa.func.max(events.c.position)))) or 0


async def count_events(engine: AsyncEngine, after_position: int = 0) -> int:
    async with read_only(engine).connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).where(
            events.c.position > after_position))


async def summary(engine: AsyncEngine) -> tuple[int, datetime | None]:
    """How many events the log holds, and when the newest one happened (UTC)."""
    async with read_only(engine).connect() as conn:
        count, newest = (await conn.execute(
            sa.select(sa.func.count(), sa.func.max(events.c.occurred_at)))).one()
    return count, newest.replace(tzinfo=UTC) if newest else None


async def latest_versions(engine: AsyncEngine,
                          after_position: int = 0) -> dict[tuple[str, str], int]:
    """(aggregate type, aggregate id) -> the latest version, for every aggregate that changed
    after `after_position`."""
    async with read_only(engine).connect() as conn:
        rows = await conn.execute(
            sa.select(events.c.aggregate_type, events.c.aggregate_id,
                      sa.func.max(events.c.version))
            .where(events.c.position > after_position)
            .group_by(events.c.aggregate_type, events.c.aggregate_id))
        return {(kind, aggregate): version for kind, aggregate, version in rows}


async def events_of(engine: AsyncEngine, aggregate_ids: list[str],
                    chunk: int = 500) -> list[EventEnvelope]:
    """Every event of these aggregates, in position order. Read by the (aggregate id, version)
    index, never as a position-ordered scan filtered by aggregate (which lets a planner walk
    the whole table): this costs what these aggregates hold, whatever the log's size (what
    `verify --customer` and `verify --watch` rely on)."""
    rows = []
    async with read_only(engine).connect() as conn:
        for i in range(0, len(aggregate_ids), chunk):
            rows += (await conn.execute(sa.select(events).where(
                events.c.aggregate_id.in_(aggregate_ids[i:i + chunk])))).all()
    return [as_read(row) for row in sorted(rows, key=lambda row: row.position)]


async def changes(engine: AsyncEngine, after_position: int,
                  up_to_position: int) -> list[tuple[int, str, str]]:
    """(position, aggregate type, aggregate id) of every event in (after, up to], by position:
    what changed since a checkpoint, read by the primary key's range."""
    async with read_only(engine).connect() as conn:
        return [tuple(row) for row in await conn.execute(
            sa.select(events.c.position, events.c.aggregate_type, events.c.aggregate_id)
            .where(events.c.position > after_position, events.c.position <= up_to_position)
            .order_by(events.c.position))]


async def events_at(engine: AsyncEngine, positions: list[int]) -> list[tuple[int, str, str]]:
    """The same for single positions: a gap a checkpoint skipped may fill later (on MySQL a
    transaction can commit after one that took a higher AUTO_INCREMENT id)."""
    if not positions:
        return []
    async with read_only(engine).connect() as conn:
        return [tuple(row) for row in await conn.execute(
            sa.select(events.c.position, events.c.aggregate_type, events.c.aggregate_id)
            .where(events.c.position.in_(positions[:1000])))]
