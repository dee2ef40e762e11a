"""The projector's consumer loop: getmany a batch, plan it, write it, then commit offsets.

Offsets are committed only after the writes of the batch are durable, and never past an event
that is still held back (a gap, or a failure waiting for its retry), so a crash at any point
re-delivers, and the version guard turns re-delivery into no-ops.

Failures are bounded (guarantee 6):
- a read-store outage is not the events' fault: the batch is retried with backoff, nothing is
  committed, nothing is skipped, nothing is parked;
- an event whose projection fails is retried with exponential backoff; after the configured
  attempts it is parked in the dead-letter store, and so is every later event of the same
  aggregate (its order is kept) until an operator retries or discards them. Other aggregates
  keep flowing the whole time;
- an event this release cannot read (projector/delivery.py) is parked at once with that
  reason, and so is every later event of its aggregate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import Counter, Histogram
from pymongo.errors import PyMongoError

from projector.dead_letters import DeadLetters, ParkedAggregates
from projector.delivery import Delivered, decode_batch
from projector.failures import EARLIER_PARKED, FailureJudge, RetryPolicy
from projector.health import Health
from projector.planner import BatchPlan
from projector.store import ReadStore, WriteConflictError, project_events
from shared.backoff import Backoff
from shared.metrics import STAGE_BUCKETS, observe_all
from shared.stopping import sleep_unless_stopped
from shared.tracing import enabled as tracing_enabled
from shared.tracing import record_span
from shared.upcasting import READER, EventReader

log = logging.getLogger(__name__)

EVENTS = Counter("cqrs_projector_events_total", "Events seen by the projector, by outcome",
                 ["outcome"])
BATCH_SIZE = Histogram("cqrs_projector_batch_size_events", "Events per consumed batch",
                       buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000))
APPLY_LAG = Histogram("cqrs_projector_commit_to_apply_seconds",
                      "Age of an event (since its command committed) when its views were written",
                      buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))
# The stages of an event's way that the projector sees (the relay measures the ones before):
# from the relay handing it to its producer (the record's CreateTime, the relay's clock) to
# this consumer fetching it, which covers the broker's acknowledgement and the fetch; and from
# the fetch to its views being written (decoding, planning, the store's round trips).
PRODUCE_TO_FETCH = Histogram("cqrs_projector_produce_to_fetch_seconds",
                             "Time from the relay producing an event to the projector fetching it",
                             buckets=STAGE_BUCKETS)
FETCH_TO_WRITTEN = Histogram("cqrs_projector_fetch_to_written_seconds",
                             "Time from fetching an event to its views being written",
                             buckets=STAGE_BUCKETS)



# A write conflict is another projector's overlapping write: plan again soon. A read-store
# outage: back off further, up to 5 s between tries.
CONFLICT_BACKOFF = Backoff(first_s=0.02, max_s=5.0)
OUTAGE_BACKOFF = Backoff(first_s=0.1, max_s=5.0)


class Projector(ConsumerRebalanceListener):
    def __init__(self, consumer: AIOKafkaConsumer, store: ReadStore, *, batch_size: int = 1000,
                 poll_ms: int = 100, retry: RetryPolicy | None = None,
                 reader: EventReader = READER) -> None:
        self._consumer = consumer
        self._store = store
        self._reader = reader
        self._dead_letters = DeadLetters(store.db, reader)
        self._parked = ParkedAggregates(self._dead_letters)
        self.health = Health(consumer, self._dead_letters)
        self._batch_size = batch_size
        self._poll_ms = poll_ms
        self._judge = FailureJudge(retry)
        self._held: list[Delivered] = []
        self._undecodable: list[tuple[TopicPartition, object, str]] = []
        self._unreadable: list[tuple[Delivered, str]] = []
        self.last_plan: BatchPlan | None = None

    # -- rebalancing: what we held for a partition we lose is the next owner's to re-read ----

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        lost = set(revoked)
        self._held = [p for p in self._held if p.partition not in lost]
        self._judge.keep_only({p.event.aggregate_id for p in self._held})

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self._parked.forget()  # the previous owner may have parked events of these partitions
        log.info("assigned partitions %s", sorted(tp.partition for tp in assigned))

    # -- the loop ----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set. The batch under way is finished (or, in an outage,
        abandoned uncommitted) before returning. The lag is measured beside the loop, so that
        no batch waits on that round trip to the broker."""
        lag = asyncio.create_task(self._measure_lag_every_second(stop))
        try:
            await self._consume(stop)
        finally:
            lag.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lag

    async def _consume(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batch = await self._consumer.getmany(timeout_ms=self._poll_ms,
                                                 max_records=self._batch_size)
            pending = self._decode(batch)
            self.health.fetched(pending)
            if not batch and not self._held and not self._unreadable:
                continue
            if not await self._project_until_done(pending, stop):
                return  # stopping mid-outage: nothing committed, everything re-delivered
            try:
                await self._commit(batch)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:
                # A rebalance or a coordinator hiccup: what we wrote is durable and idempotent,
                # and whoever owns the partitions now re-reads from the last commit.
                log.warning("offset commit failed (%s); the batch will be re-delivered",
                            exc.__class__.__name__)
            self.health.settled(self._held)

    def _decode(self, batch: dict[TopicPartition, list]) -> list[Delivered]:
        """The batch's readable events; the rest waits in `_undecodable` and `_unreadable`
        until `project` has parked it (durably, before the batch's offsets are committed)."""
        decoded = decode_batch(batch, self._reader, time.time())
        observe_all(PRODUCE_TO_FETCH, decoded.produce_to_fetch)
        self._undecodable += decoded.undecodable
        self._unreadable += decoded.unreadable
        EVENTS.labels("undecodable").inc(len(decoded.undecodable))
        BATCH_SIZE.observe(len(decoded.readable) + len(decoded.unreadable))
        return decoded.readable

    async def _project_until_done(self, pending: list[Delivered], stop: asyncio.Event) -> bool:
        """Plan and write `pending` plus what was held; retry outages with backoff."""
        outages = conflicts = 0
        while not stop.is_set():
            try:
                await self.project(self._held + pending)
                return True
            except WriteConflictError as exc:
                # Another projector wrote the same documents (a rebalance overlap): plan again
                # from fresh reads, backing off a little more each time.
                conflicts += 1
                log.info("write conflict, planning the batch again: %s", exc)
                await sleep_unless_stopped(stop, CONFLICT_BACKOFF.delay_s(conflicts))
            except PyMongoError as exc:
                outages += 1
                delay = OUTAGE_BACKOFF.delay_s(outages)
                log.warning("read store unavailable (%s); retrying in %.1fs",
                            exc.__class__.__name__, delay)
                await sleep_unless_stopped(stop, delay)
        return False

    async def project(self, pending: list[Delivered]) -> BatchPlan:
        """Apply what can be applied; park what must be parked; hold the rest."""
        if self._undecodable:
            await self._dead_letters.park_undecodable(self._undecodable)
            self._undecodable.clear()

        parked_aggregates = await self._parked.among({p.event.aggregate_id for p in pending})
        # An unreadable event blocks its aggregate from its version on: what follows it is
        # parked behind it, what precedes it still applies.
        blocked_from: dict[str, int] = {}
        for unreadable, _ in self._unreadable:
            aggregate, version = unreadable.event.aggregate_id, unreadable.event.version
            blocked_from[aggregate] = min(version, blocked_from.get(aggregate, version))

        def must_park(p: Delivered) -> bool:
            blocked = blocked_from.get(p.event.aggregate_id)
            return (p.event.aggregate_id in parked_aggregates
                    or (blocked is not None and p.event.version >= blocked))

        waiting = self._judge.backing_off()
        to_park = [p for p in pending if must_park(p)]
        to_plan = [p for p in pending if not must_park(p) and p.event.aggregate_id not in waiting]
        backing_off = [p for p in pending if not must_park(p) and p.event.aggregate_id in waiting]

        started_ns = time.time_ns()
        plan = await project_events(self._store, [p.event for p in to_plan])
        written = time.time()
        if tracing_enabled():
            by_event = {id(p.event): p for p in to_plan}
            for event in plan.applied:
                record_span("projector apply", by_event[id(event)].headers.get("traceparent"),
                            started_ns, time.time_ns(), event_id=event.event_id,
                            event_type=event.event_type, aggregate_id=event.aggregate_id)

        parking = list(self._unreadable) + [(p, EARLIER_PARKED) for p in to_park]
        by_event = {id(p.event): p for p in to_plan}
        observe_all(FETCH_TO_WRITTEN, [written - by_event[id(e)].fetched_at
                                       for e in plan.applied])
        parking += [(by_event[id(event)], reason) for event, reason in
                    self._judge.judge(plan, [p.event for p in to_plan])]
        if parking:
            await self._dead_letters.park(
                [(p.event, error, p.partition.partition, p.offset) for p, error in parking],
                as_sent={p.event.event_id: p.raw for p, _ in parking if p.raw is not None})
            self._parked.add({p.event.aggregate_id for p, _ in parking})
            EVENTS.labels("parked").inc(len(parking))
            self._unreadable.clear()
        parked_ids = {id(p) for p, _ in parking}
        not_done = {id(e) for e in plan.held} | {id(e) for e, _ in plan.failed}
        self._held = backing_off + [p for p in to_plan
                                    if id(p.event) in not_done and id(p) not in parked_ids]
        self._observe(plan)
        self._log(plan, to_plan, parking)
        return plan

    def _log(self, plan: BatchPlan, to_plan: list[Delivered],
             parking: list[tuple[Delivered, str]]) -> None:
        by_event = {id(p.event): p for p in to_plan}
        for event, error in plan.failed:
            by_event[id(event)].log(logging.ERROR, "cannot apply %s v%d of %s: %s",
                                    event.event_type, event.version, event.aggregate_id, error)
        for pending, reason in parking:
            pending.log(logging.ERROR, "parked %s v%d of %s: %s", pending.event.event_type,
                        pending.event.version, pending.event.aggregate_id, reason)
        if log.isEnabledFor(logging.DEBUG):
            for event in plan.applied:
                by_event[id(event)].log(logging.DEBUG, "applied %s v%d of %s",
                                        event.event_type, event.version, event.aggregate_id)

    def _observe(self, plan: BatchPlan) -> None:
        now = time.time()
        for event in plan.applied:
            APPLY_LAG.observe(max(0.0, now - event.occurred_at.timestamp()))
        EVENTS.labels("applied").inc(len(plan.applied))
        EVENTS.labels("duplicate").inc(len(plan.duplicates))
        EVENTS.labels("held").inc(len(plan.held))
        EVENTS.labels("failed").inc(len(plan.failed))
        self.last_plan = plan

    async def _measure_lag_every_second(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.health.measure()
            except Exception as exc:  # a gauge must never end the projector, nor stop itself
                log.warning("could not measure the lag: %s", exc.__class__.__name__)
            await sleep_unless_stopped(stop, 1.0)

    async def _commit(self, batch: dict[TopicPartition, list]) -> None:
        """Commit each partition we still own up to its last message, or up to its oldest
        held event. Partitions revoked while the batch was written are someone else's now."""
        owned = self._consumer.assignment()
        self._held = [p for p in self._held if p.partition in owned]
        offsets: dict[TopicPartition, int] = {
            tp: messages[-1].offset + 1 for tp, messages in batch.items()
            if messages and tp in owned
        }
        for held in self._held:
            offsets[held.partition] = min(offsets.get(held.partition, held.offset), held.offset)
        if offsets:
            await self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in offsets.items()})
