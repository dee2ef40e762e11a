"""A token bucket per key, and the 429 both services answer past it (each keys it by the
token's subject: the command service for commands, the query service for queries, each with
its own buckets and settings).

Each key's bucket holds at most `burst` tokens and refills at `rate` tokens per second; a
request takes one token or is told how long until one is there. Buckets live in this process,
and the number of keys is bounded: the least recently used bucket is dropped first, which can
only ever be generous.

Per process means per worker: with `--workers N` (shared/supervisor.py) each worker has its
own buckets, and a sender whose connections reach every worker may get up to N times the rate
and the burst (so may one reaching N replicas of the service). That is said in the CLI help and
the docs rather than fixed with a shared store: the limit is there to stop a runaway client,
which N times a limit still does, and a store every request must ask would cost more than the
bucket it guards.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from shared.auth.principal import Principal
from shared.http import ApiError


class TokenBucketLimiter:
    def __init__(self, rate: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float:
        """Take a token for `key`: 0.0 when granted, else the seconds until one is there."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        if tokens >= 1.0:
            self._remember(key, tokens - 1.0, now)
            return 0.0
        self._remember(key, tokens, now)
        return (1.0 - tokens) / self.rate

    def _remember(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


def retry_after_header(wait_s: float) -> str:
    """Retry-After is whole seconds; never 0, so a client that honours it does wait."""
    return str(max(1, math.ceil(wait_s)))


def ensure_within_rate(limiter: TokenBucketLimiter, principal: Principal, what: str) -> None:
    """Take a token of `principal`'s subject, or refuse with 429 `rate_limited` and
    Retry-After. `what` names what is counted ("commands", "queries") in the message. With
    authentication off there is no subject, and no limit: that mode is for a closed network
    or a benchmark."""
    if not principal.authenticated:
        return
    wait_s = limiter.acquire(principal.subject)
    if wait_s > 0:
        raise ApiError(429, "rate_limited",
                       f"too many {what} from this sender; retry in {wait_s:.2f} s",
                       headers={"Retry-After": retry_after_header(wait_s)})
