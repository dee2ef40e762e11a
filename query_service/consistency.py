"""Read-your-writes: a query that names aggregate versions (X-Consistency-Token) waits, for a
bounded time, until its view holds them; past the wait it is 503 `read_model_behind`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client import Counter, Histogram

from shared.http import ApiError

T = TypeVar("T")
POLL_S = 0.01
MAX_POLL_S = 0.2

WAITS = Histogram("cqrs_query_consistency_wait_seconds",
                  "Time queries with a consistency token waited for their view",
                  buckets=(0, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
TIMEOUTS = Counter("cqrs_query_consistency_timeouts_total",
                   "Queries answered 503 read_model_behind")


@dataclass(frozen=True)
class Consistency:
    versions: dict[str, int] = field(default_factory=dict)  # empty: never wait
    wait_s: float = 0.0

    def wants(self, aggregate_id: str, version: int | None) -> bool:
        """True while the view's `version` of that aggregate is older than the token's."""
        needed = self.versions.get(aggregate_id)
        return needed is not None and (version is None or version < needed)


async def read_consistent(fetch: Callable[[], Awaitable[T]], behind: Callable[[T], bool],
                          consistency: Consistency) -> T:
    """Fetch until `behind(result)` is false or the wait is over."""
    result = await fetch()
    if not consistency.versions or not behind(result):
        return result
    started = time.monotonic()
    deadline = started + consistency.wait_s
    pause = POLL_S
    while time.monotonic() < deadline:
        # 10 ms at first (a caught-up view answers fast), then less often: a slow view must
        # not be hammered by the requests waiting for it.
        await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, MAX_POLL_S)
        result = await fetch()
        if not behind(result):
            WAITS.observe(time.monotonic() - started)
            return result
    WAITS.observe(time.monotonic() - started)
    TIMEOUTS.inc()
    raise ApiError(503, "read_model_behind",
                   "the view does not reflect the requested versions yet; retry shortly",
                   headers={"Retry-After": "1"})
