"""The projector's consumer loop: getmany a batch, plan it, write it, then commit offsets.

Offsets are committed only after the writes of the batch are durable, and never past an event
that is still held back (a gap), so a crash at any point re-delivers, and the version guard
turns re-delivery into no-ops. A read-store outage stops the loop where it is: the batch is
retried with backoff, nothing is committed, nothing is skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Histogram
from pymongo.errors import PyMongoError

from projector.planner import (
    BatchPlan,
    account_ids_of,
    customer_ids_of,
    daily_stats_ids_of,
    plan_batch,
)
from projector.store import ReadStore, WriteConflictError
from shared.envelope import EventEnvelope, utc_now
from shared.readmodel import ACCOUNTS, CUSTOMERS, DAILY_STATS, DEAD_LETTERS
from shared.worker import sleep_unless_stopped

log = logging.getLogger(__name__)

EVENTS = Counter("cqrs_projector_events_total", "Events seen by the projector, by outcome",
                 ["outcome"])
BATCH_SIZE = Histogram("cqrs_projector_batch_size_events", "Events per consumed batch",
                       buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000))
APPLY_LAG = Histogram("cqrs_projector_commit_to_apply_seconds",
                      "Age of an event (since its command committed) when its views were written",
                      buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))

MAX_CONFLICT_RETRIES = 20


class _Pending:
    """An event and where it came from, so its offset can bound the commit."""

    __slots__ = ("event", "partition", "offset")

    def __init__(self, event: EventEnvelope, partition: TopicPartition, offset: int) -> None:
        self.event, self.partition, self.offset = event, partition, offset


class Projector(ConsumerRebalanceListener):
    def __init__(self, consumer: AIOKafkaConsumer, store: ReadStore, *, batch_size: int = 1000,
                 poll_ms: int = 100) -> None:
        self._consumer = consumer
        self._store = store
        self._batch_size = batch_size
        self._poll_ms = poll_ms
        self._held: list[_Pending] = []
        self._dead_letters: list[dict] = []  # undecodable messages, parked with the next write
        self.last_plan: BatchPlan | None = None

    # -- rebalancing: what we held for a partition we lose is the next owner's to re-read ----

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        lost = set(revoked)
        self._held = [p for p in self._held if p.partition not in lost]

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self._consumer.getmany(timeout_ms=self._poll_ms,
                                                 max_records=self._batch_size)
            pending = self._decode(batch)
            if not batch and not self._held:
                continue
            if not await self._project_until_done(pending, stop):
                return  # stopping mid-outage: nothing committed, everything re-delivered
            await self._commit(batch)

    def _decode(self, batch: dict[TopicPartition, list]) -> list[_Pending]:
        pending: list[_Pending] = []
        for partition, messages in batch.items():
            for message in messages:
                try:
                    event = EventEnvelope.from_json(message.value)
                except (ValueError, TypeError, KeyError) as exc:
                    log.error("undecodable message at %s@%d: %s", partition, message.offset, exc)
                    EVENTS.labels("undecodable").inc()
                    self._dead_letters.append({
                        "partition": partition.partition, "offset": message.offset,
                        "key": (message.key or b"").decode(errors="replace"),
                        "value": (message.value or b"").decode(errors="replace"),
                        "error": f"undecodable: {exc}", "parked_at": utc_now(),
                    })
                    continue
                pending.append(_Pending(event, partition, message.offset))
        BATCH_SIZE.observe(len(pending))
        return pending

    async def _project_until_done(self, pending: list[_Pending], stop: asyncio.Event) -> bool:
        """Plan and write `pending` plus what was held; retry outages with backoff."""
        delay = 0.1
        conflicts = 0
        while not stop.is_set():
            try:
                await self.project(self._held + pending)
                return True
            except WriteConflictError as exc:
                conflicts += 1
                if conflicts > MAX_CONFLICT_RETRIES:
                    raise
                log.info("write conflict, planning the batch again: %s", exc)
            except PyMongoError as exc:
                log.warning("read store unavailable (%s); retrying in %.1fs",
                            exc.__class__.__name__, delay)
                await sleep_unless_stopped(stop, delay)
                delay = min(delay * 2, 5.0)
        return False

    async def project(self, pending: list[_Pending]) -> BatchPlan:
        events = [p.event for p in pending]
        loaded = {
            ACCOUNTS: await self._store.load(ACCOUNTS, account_ids_of(events)),
            CUSTOMERS: await self._store.load(CUSTOMERS, customer_ids_of(events)),
            DAILY_STATS: await self._store.load(DAILY_STATS, daily_stats_ids_of(events)),
        }
        plan = plan_batch(events, loaded[ACCOUNTS], loaded[CUSTOMERS], loaded[DAILY_STATS])
        await self._store.write(plan, loaded)
        if self._dead_letters:
            await self._store.db[DEAD_LETTERS].insert_many(self._dead_letters)
            self._dead_letters.clear()

        not_done = {id(e) for e in plan.held} | {id(e) for e, _ in plan.failed}
        self._held = [p for p in pending if id(p.event) in not_done]
        for event, error in plan.failed:
            log.error("cannot apply %s v%d of %s: %s", event.event_type, event.version,
                      event.aggregate_id, error)
        now = time.time()
        for event in plan.applied:
            APPLY_LAG.observe(max(0.0, now - event.occurred_at.timestamp()))
        EVENTS.labels("applied").inc(len(plan.applied))
        EVENTS.labels("duplicate").inc(len(plan.duplicates))
        EVENTS.labels("held").inc(len(plan.held))
        EVENTS.labels("failed").inc(len(plan.failed))
        self.last_plan = plan
        return plan

    async def _commit(self, batch: dict[TopicPartition, list]) -> None:
        """Commit each partition up to its last message, or up to its oldest held event."""
        offsets: dict[TopicPartition, int] = {
            tp: messages[-1].offset + 1 for tp, messages in batch.items() if messages
        }
        for held in self._held:
            offsets[held.partition] = min(offsets.get(held.partition, held.offset), held.offset)
        if offsets:
            await self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
