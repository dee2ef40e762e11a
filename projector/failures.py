"""The projector's judgement of events that do not apply (guarantee 6, bounded failure), apart
from the consumer loop's I/O: how many times an event has failed, when it is tried again,
when it is parked with every later event of its aggregate, and when a gap has stayed open so
long that its missing version is taken as lost.

Pure: the clock is injected, so every judgement is unit-tested without waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from projector.planner import BatchPlan
from shared.backoff import Backoff
from shared.envelope import EventEnvelope

EARLIER_PARKED = "an earlier event of this aggregate is parked"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    first_backoff_s: float = 0.2
    max_backoff_s: float = 30.0
    gap_timeout_s: float = 120.0  # a missing version that long overdue is parked, not awaited

    def backoff_s(self, attempts: int) -> float:
        return Backoff(self.first_backoff_s, self.max_backoff_s).delay_s(attempts)


@dataclass
class _Failure:
    attempts: int
    retry_at: float  # on the injected clock


class FailureJudge:
    def __init__(self, retry: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._failures: dict[tuple[str, int], _Failure] = {}
        self._gap_since: dict[tuple[str, int], float] = {}  # held event -> when first held

    def backing_off(self) -> set[str]:
        """Aggregates with a failed event whose next try is not due yet."""
        now = self._clock()
        return {aggregate for (aggregate, _), f in self._failures.items() if f.retry_at > now}

    def keep_only(self, aggregates: set[str]) -> None:
        """Forget the failures of aggregates no longer ours (their partition was revoked)."""
        self._failures = {key: f for key, f in self._failures.items() if key[0] in aggregates}

    def judge(self, plan: BatchPlan,
              planned: list[EventEnvelope]) -> list[tuple[EventEnvelope, str]]:
        """Count an attempt for each failed event of `plan`; return the events of `planned`
        that must now be parked, with why: an event out of attempts and every later event of
        its aggregate, and a gap overdue past the timeout with what follows it."""
        parked = self._out_of_attempts(plan, planned)
        already = {id(event) for event, _ in parked}
        return parked + [(e, why) for e, why in self._overdue_gaps(plan, planned)
                         if id(e) not in already]

    def _out_of_attempts(self, plan: BatchPlan,
                         planned: list[EventEnvelope]) -> list[tuple[EventEnvelope, str]]:
        for event in plan.applied:
            self._failures.pop((event.aggregate_id, event.version), None)
        exhausted: dict[str, tuple[int, str]] = {}
        now = self._clock()
        for event, error in plan.failed:
            key = (event.aggregate_id, event.version)
            failure = self._failures.get(key) or _Failure(0, now)
            failure.attempts += 1
            failure.retry_at = now + self.retry.backoff_s(failure.attempts)
            self._failures[key] = failure
            if failure.attempts >= self.retry.max_attempts:
                exhausted[event.aggregate_id] = (event.version, error)
        parked = []
        for event in planned:
            version, error = exhausted.get(event.aggregate_id, (None, ""))
            if version is not None and event.version >= version:
                parked.append((event, f"after {self.retry.max_attempts} attempts: {error}"
                               if event.version == version else EARLIER_PARKED))
        for aggregate_id, (version, _) in exhausted.items():
            self._failures.pop((aggregate_id, version), None)
        return parked

    def _overdue_gaps(self, plan: BatchPlan,
                      planned: list[EventEnvelope]) -> list[tuple[EventEnvelope, str]]:
        """A gap that stays open past the timeout (its missing version was lost, or
        discarded) would hold the partition's commit forever."""
        now = self._clock()
        held = {(e.aggregate_id, e.version) for e in plan.held}
        self._gap_since = {key: self._gap_since.get(key, now) for key in held}
        overdue: dict[str, int] = {}
        for (aggregate_id, version), since in self._gap_since.items():
            if now - since > self.retry.gap_timeout_s:
                overdue[aggregate_id] = min(version, overdue.get(aggregate_id, version))
        for key in [k for k in self._gap_since if k[0] in overdue]:
            del self._gap_since[key]
        reason = f"gap: an earlier version never arrived within {self.retry.gap_timeout_s:.0f}s"
        return [(event, reason) for event in planned
                if event.version >= overdue.get(event.aggregate_id, 1 << 62)]
