"""The outbox relay: publishes committed outbox rows to Kafka in order, then marks them sent.

Guarantees it carries (docs/design.md):
1. No lost event: a row is marked sent only after the broker acknowledged it (acks=all). A crash
   before the mark re-sends it; the projector's version guard makes the duplicate harmless.
2. No skipped event: it claims rows by `sent_at IS NULL`, never by "id > last id", so a row that
   commits late with a lower AUTO_INCREMENT id is still picked up.
3. Per-aggregate order: one relay holds the leader lease at a time and publishes rows in id
   order with the aggregate id as key. One aggregate's rows are written by transactions that
   hold its row lock, so their ids are in commit order; after a failed send, the aggregate's
   later rows in the batch are not marked sent, so they go out again after it. A message the
   broker refuses for what it is holds back only its own aggregate (refusals.py). A relay that
   stalls past its lease while a standby takes over can send a row twice (the read side
   skips the duplicate); the projector holds any version that arrives before its predecessor.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.engine import read_only
from command_service.db.tables import outbox, utc_now
from command_service.outbox.lease import LeaderLease
from command_service.outbox.refusals import RefusedKeys, is_record_refusal, needs_lone_resend
from command_service.outbox.rows import OutboxRow, acknowledged_ids, id_in, kafka_headers
from shared.metrics import STAGE_BUCKETS, observe_all, observe_n
from shared.observability import LOG_CONTEXT, bind
from shared.stopping import sleep_unless_stopped
from shared.tracing import child_traceparent
from shared.tracing import enabled as tracing_enabled

log = logging.getLogger(__name__)

PUBLISHED = Counter("cqrs_relay_published_events_total", "Outbox rows published and acknowledged")
PUBLISH_FAILURES = Counter("cqrs_relay_publish_failures_total", "Outbox rows the broker refused")
BATCH_SIZE = Histogram("cqrs_relay_batch_size_events", "Rows per published batch",
                       buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000))
PUBLISH_SECONDS = Histogram("cqrs_relay_publish_seconds",
                            "Time from sending a batch to all its acknowledgements",
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
# Two stages of an event's way to the views (the projector measures the next ones), per row:
# how long a committed row waited to be claimed (the idle poll, a backlog ahead of it), and
# from its claim to the broker's acknowledgement of its whole batch.
COMMIT_TO_CLAIM = Histogram("cqrs_relay_commit_to_claim_seconds",
                            "Time from an outbox row's commit to the relay claiming it",
                            buckets=STAGE_BUCKETS)
CLAIM_TO_ACK = Histogram("cqrs_relay_claim_to_ack_seconds",
                         "Time from claiming an outbox row to the broker acknowledging its batch",
                         buckets=STAGE_BUCKETS)
# Multiprocess modes (shared/metrics.py) matter only if a relay ever shares a metrics
# directory: the leaders and the refused aggregates of the processes alive, added up.
IS_LEADER = Gauge("cqrs_relay_is_leader", "1 while this relay holds the leader lease",
                  multiprocess_mode="livesum")
REFUSED_AGGREGATES = Gauge("cqrs_relay_refused_aggregates",
                           "Aggregates held back because the broker refuses their next message",
                           multiprocess_mode="livesum")


RenewProducer = Callable[[AIOKafkaProducer], Awaitable[AIOKafkaProducer]]


class OutboxRelay:
    def __init__(self, engine: AsyncEngine, producer: AIOKafkaProducer, lease: LeaderLease, *,
                 batch_size: int = 500, idle_poll_s: float = 0.025,
                 renew_producer: RenewProducer | None = None) -> None:
        """`renew_producer` stops a producer and returns a new, started one: an idempotent
        producer must be replaced after the broker refused one of its batches."""
        self._engine = engine
        self._reader = read_only(engine)
        self.producer = producer
        self._renew_producer = renew_producer
        self._lease = lease
        self._batch_size = batch_size
        self._idle_poll_s = idle_poll_s
        self.refused = RefusedKeys()
        self.is_leader = False

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; the batch under way is finished, never half-marked."""
        while not stop.is_set():
            try:
                published = await self.run_once(stop)
            except Exception:
                log.exception("relay iteration failed; backing off")
                await sleep_unless_stopped(stop, 1.0)
                continue
            if not published:
                pause = self._idle_poll_s if self.is_leader else self._lease.renew_interval_s
                await sleep_unless_stopped(stop, pause)
        if self.is_leader:
            try:
                await self._lease.release()
            except Exception as exc:  # the lease then simply expires; a standby takes over
                log.warning("could not release the leader lease: %s", exc.__class__.__name__)

    async def run_once(self, stop: asyncio.Event | None = None) -> int:
        """Claim, publish and mark batches until the outbox is drained, `stop` is set or the
        lease is lost; returns how many rows were published.

        Pipelined: while one batch's acknowledgements are awaited and its rows marked sent,
        the next batch is already claimed and handed to the producer, so the broker always
        has work and the relay never idles on a round trip. aiokafka keeps one request per
        partition in flight, so a key's messages still reach the broker in claim order."""
        self.is_leader = await self._lease.hold()
        IS_LEADER.set(1 if self.is_leader else 0)
        if not self.is_leader:
            return 0
        published = 0
        failed_keys: set[str] = set()  # keys with a refused row: nothing later of theirs is marked
        suspects: list[OutboxRow] = []  # refused with their batch: each is sent again alone
        settling: asyncio.Task[int] | None = None  # acks + mark of the batch before
        in_flight: list[int] = []
        try:
            while not failed_keys and not (stop is not None and stop.is_set()):
                rows = await self._claim(exclude=in_flight)
                if not rows:
                    break
                claimed = time.perf_counter()
                acks = await self._send(rows)
                if settling is not None:
                    previous, settling = settling, None
                    try:
                        published += await previous
                    except BaseException:
                        # Not marked: this batch goes out again next run. Collect its acks.
                        await asyncio.gather(*acks, return_exceptions=True)
                        raise
                settling = asyncio.create_task(
                    self._settle(rows, acks, failed_keys, suspects, claimed))
                in_flight = [row.id for row in rows]
                if not await self._lease.hold():
                    self.is_leader = False
                    break
        except BaseException:
            if settling is not None:  # mark what was acknowledged, then raise the first error
                await _settle_quietly(settling)
            raise
        if settling is not None:
            published += await settling
        resolved: set[str] = set()
        if suspects:  # nothing is in flight now
            resent, resolved = await self._resend_alone(suspects)
            published += resent
        REFUSED_AGGREGATES.set(len(self.refused))
        # Refused records hold back only their aggregates; anything else is an outage.
        if unsent := [key for key in failed_keys if key not in resolved]:
            raise RuntimeError(f"the broker did not acknowledge rows of {len(unsent)} "
                               "aggregate(s)")
        return published

    async def _claim(self, exclude: list[int]) -> list[OutboxRow]:
        """The oldest unsent rows, leaving out the batch still in flight (not marked yet) and
        the aggregates held back after a refusal until their retry is due."""
        query = (sa.select(outbox.c.id, outbox.c.topic, outbox.c.message_key, outbox.c.headers,
                           outbox.c.payload, outbox.c.created_at)
                 .where(outbox.c.sent_at.is_(None))
                 .order_by(outbox.c.id)
                 .limit(self._batch_size))
        if exclude:
            query = query.where(id_in(exclude, negate=True))
        if waiting := self.refused.waiting():
            query = query.where(outbox.c.message_key.not_in(waiting))
        async with self._reader.connect() as conn:
            found = (await conn.execute(query)).all()
        # created_at is stamped in the command's transaction just before its commit
        # (unit_of_work.py): the row's age now is how long it waited for the relay.
        now = utc_now()
        observe_all(COMMIT_TO_CLAIM, [max(0.0, (now - row[5]).total_seconds()) for row in found])
        return [OutboxRow(*row[:5]) for row in found]

    async def _send(self, rows: list[OutboxRow]) -> list[asyncio.Future]:
        """Hand the whole batch to the producer (it batches and pipelines per partition, in
        order); returns one acknowledgement future per row."""
        acks = []
        tracing = tracing_enabled()
        for row in rows:
            fields = json.loads(row.headers)
            if tracing:  # the projector's span continues from this publish span
                fields["traceparent"] = child_traceparent(
                    "relay publish", fields.get("traceparent"), event_id=fields.get("event_id"))
            acks.append(await self._send_one(row, kafka_headers(fields)))
        return acks

    async def _send_one(self, row: OutboxRow, headers: list[tuple[str, bytes]]) -> asyncio.Future:
        try:
            return await self.producer.send(row.topic, value=row.payload.encode(),
                                              key=row.key.encode(), headers=headers)
        except Exception as exc:
            if not is_record_refusal(exc):  # over the producer's own max_request_size
                raise
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(exc)
            return refused

    async def _resend_alone(self, suspects: list[OutboxRow]) -> tuple[int, set[str]]:
        """Kafka refuses a whole partition batch for one bad record: send each suspect row
        again on its own, in order, to tell the culprit from its batch mates, and hold the
        culprit's aggregate back. Returns the rows now sent and the keys this settled."""
        sent, resolved, culprits = [], set(), set()
        await self._after_refusal()
        for row in sorted(suspects, key=lambda r: r.id):
            if row.key in culprits:
                continue
            try:
                await (await self._send_one(row, kafka_headers(json.loads(row.headers))))
            except Exception as exc:
                if not is_record_refusal(exc):
                    log.warning("could not resend outbox row %d alone: %s", row.id, exc)
                    break  # the broker is away: the next run starts over
                culprits.add(row.key)
                await self._after_refusal()
                retry_in = self.refused.refuse(row.key)
                log.warning("the broker refuses outbox row %d (%s); aggregate %s is held back, "
                            "next try in %.0fs", row.id, exc, row.key, retry_in)
            else:
                sent.append(row.id)
                self.refused.accepted(row.key)
            resolved.add(row.key)
        await self._mark_sent(sent)
        PUBLISHED.inc(len(sent))
        return len(sent), resolved

    async def _after_refusal(self) -> None:
        """A refused batch took sequence numbers the broker never saw: an idempotent producer
        answers OutOfOrderSequenceNumber on that partition from then on, so it is replaced."""
        if self._renew_producer is not None:
            self.producer = await self._renew_producer(self.producer)

    async def _settle(self, rows: list[OutboxRow], acks: list[asyncio.Future],
                      failed_keys: set[str], suspects: list[OutboxRow],
                      claimed: float) -> int:
        """Wait for every acknowledgement of a batch, then mark the acknowledged rows sent;
        rows refused with their batch are added to `suspects`. `claimed`: when the batch's
        claim query returned (perf_counter)."""
        started = time.perf_counter()
        results = await asyncio.gather(*acks, return_exceptions=True)
        acked = time.perf_counter()
        sent = acknowledged_ids(rows, results, failed_keys)
        if len(sent) < len(rows) or self.refused or log.isEnabledFor(logging.DEBUG):
            # Only then is there more to do than marking: the usual batch skips this pass.
            for row, result in zip(rows, results, strict=True):
                failed = isinstance(result, BaseException)
                if failed and needs_lone_resend(result):
                    suspects.append(row)
                elif not failed and row.key in self.refused:
                    self.refused.accepted(row.key)  # a held-back aggregate got through
                if failed or log.isEnabledFor(logging.DEBUG):
                    _log_publish(row, result)
        PUBLISH_SECONDS.observe(acked - started)
        # Every row of the batch waited for the batch's last ack.
        observe_n(CLAIM_TO_ACK, acked - claimed, len(rows))
        BATCH_SIZE.observe(len(rows))
        PUBLISHED.inc(len(sent))
        PUBLISH_FAILURES.inc(len(rows) - len(sent))
        await self._mark_sent(sent)
        return len(sent)

    async def _mark_sent(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                outbox.update().where(id_in(ids)).values(sent_at=utc_now())
            )


async def _settle_quietly(settling: asyncio.Task[int]) -> None:
    try:
        await settling
    except Exception as exc:  # the error already on its way up is the one to report
        log.warning("could not settle the batch in flight: %s", exc.__class__.__name__)


def _log_publish(row: OutboxRow, result: object) -> None:
    """One line per event, in the context of the command that caused it."""
    headers = json.loads(row.headers)
    token = bind(correlation_id=headers.get("correlation_id"),
                 causation_id=headers.get("causation_id"), event_id=headers.get("event_id"))
    try:
        if isinstance(result, BaseException):
            log.warning("broker refused outbox row %d: %s", row.id, result)
        else:
            log.debug("published %s v%s of %s", headers.get("event_type"),
                      headers.get("version"), row.key)
    finally:
        LOG_CONTEXT.reset(token)
