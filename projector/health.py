"""How the projector keeps up, for Prometheus and the alert rules in deploy/alerts.yml: the
messages each partition has not consumed, how far behind that is in time, and how many dead
letters wait for an operator. Measured once a second beside the loop, so that no batch waits on
the round trips."""

from __future__ import annotations

import asyncio
import time

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError, KafkaError
from prometheus_client import Gauge

from projector.dead_letters import DeadLetters
from projector.delivery import Delivered

# Multiprocess modes (shared/metrics.py), for a projector that ever shares a metrics
# directory: lag is a reading of the broker or the store (the latest of a live process wins);
# the oldest wait is the longest among live processes.
CONSUMER_LAG = Gauge("cqrs_projector_consumer_lag_events",
                     "Messages on the broker not yet consumed, per partition (exact on Kafka; "
                     "approximate on Tansu, whose end offsets can under-report)", ["partition"],
                     multiprocess_mode="livemostrecent")
LAG_SECONDS = Gauge("cqrs_projector_lag_seconds",
                    "Age (since its command committed) of the oldest event this projector has "
                    "consumed and not yet applied or parked; 0 when none waits",
                    multiprocess_mode="livemax")
PARKED = Gauge("cqrs_dead_letters_parked",
               "Dead letters parked now, waiting for `dlq retry` or `dlq discard`",
               multiprocess_mode="livemostrecent")
PARKED_EVERY_S = 5.0  # a count of the dead letters is a read-store query: not every second


class Health:
    """The loop says when it fetches a batch and when the batch is settled (applied or parked,
    and committed); `measure` turns that into the gauges."""

    def __init__(self, consumer: AIOKafkaConsumer, dead_letters: DeadLetters) -> None:
        self._consumer = consumer
        self._dead_letters = dead_letters
        # When the oldest event waiting here was committed; None when none waits. Ages, not
        # "time since the last apply": after an idle hour, the next event is not an hour late.
        self._waiting_since: float | None = None
        self._parked_counted_at = float("-inf")

    def fetched(self, pending: list[Delivered]) -> None:
        if self._waiting_since is None and pending:
            self._waiting_since = min(p.event.occurred_at.timestamp() for p in pending)

    def settled(self, held: list[Delivered]) -> None:
        """What still waits is only what is held for an earlier event (a gap)."""
        self._waiting_since = min((p.event.occurred_at.timestamp() for p in held), default=None)

    def lag_seconds(self, now: float) -> float:
        """Grows while a batch is stuck (a read-store outage, a failing event being retried)
        or an event is held: what the ProjectorLagging alert must see."""
        return 0.0 if self._waiting_since is None else max(0.0, now - self._waiting_since)

    async def measure(self) -> None:
        LAG_SECONDS.set(self.lag_seconds(time.time()))
        await self.measure_partitions()
        if time.monotonic() - self._parked_counted_at >= PARKED_EVERY_S:
            PARKED.set(await self._dead_letters.count_parked())
            self._parked_counted_at = time.monotonic()

    async def measure_partitions(self) -> int | None:
        """How far each assigned partition's end is ahead of what we consumed, and the sum;
        None when it could not be read. The ends come from one ListOffsets request, exact on
        Kafka (a fetch's high watermark would be stale, and unknown for a partition not
        fetched yet)."""
        assigned = list(self._consumer.assignment())
        try:
            # Bounded: with the broker away this must not hold up the loop (or a stop).
            ends = await asyncio.wait_for(self._consumer.end_offsets(assigned), 2.0) \
                if assigned else {}
            total = 0
            for partition, end in ends.items():
                position = await self._consumer.position(partition)
                CONSUMER_LAG.labels(str(partition.partition)).set(max(0, end - position))
                total += max(0, end - position)
            return total
        except (AssertionError, IllegalStateError, KafkaError, TimeoutError):
            return None  # reassigned or unreachable while we looked: measured again in a second
