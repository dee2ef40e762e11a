"""The one back-off policy of every loop that retries: the relay's refused aggregates, the
projector's failing events, write conflicts and read-store outages, the repair's conflicts and
the processes' wait for their dependencies. (The start-up retry loops of the workers use
tenacity's `wait_exponential`, the same curve.)"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential: `first_s` after the first failure, doubling with each failure after it,
    never more than `max_s`."""

    first_s: float
    max_s: float

    def delay_s(self, failures: int) -> float:
        return min(self.first_s * 2 ** min(max(failures, 1) - 1, 30), self.max_s)
