"""Small statistics: percentiles of latency samples, rates, ratios, CPU time of processes."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


def percentile(samples: list[float], q: float) -> float | None:
    """Nearest-rank percentile, q in [0, 100]."""
    if not samples:
        return None
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def latency_summary(samples_s: list[float]) -> dict:
    """p50/p99/max in milliseconds, and how many samples they come from."""
    return {"count": len(samples_s), "p50_ms": ms(percentile(samples_s, 50)),
            "p99_ms": ms(percentile(samples_s, 99)),
            "max_ms": ms(max(samples_s) if samples_s else None)}


def ratio(value: float | None, ceiling: float | None, digits: int = 3) -> float | None:
    if value is None or not ceiling:
        return None
    return round(value / ceiling, digits)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


@dataclass
class Stopwatch:
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time a process (all its threads) has used so far."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_seconds(pid: int | None) -> float | None:
    """CPU time of a process and all its descendants: a server with several workers is a
    supervisor whose children serve, and it is their time that serving costs."""
    total = cpu_seconds(pid)
    if total is None:
        return None
    for child in _children(pid):
        total += tree_cpu_seconds(child) or 0.0
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    except OSError:  # gone meanwhile
        pass
    return found


class CpuMeter:
    """CPU seconds used by named processes between `start()` and `stop()`, as a share of the
    wall time (1.0 = one core busy the whole time); the processes named in `trees` count with
    their descendants. `seconds` keeps the CPU seconds themselves, for a cost per operation."""

    def __init__(self, pids: dict[str, int | None], trees: tuple[str, ...] = ()) -> None:
        self._pids = {name: pid for name, pid in pids.items() if pid}
        self._trees = set(trees)
        self._before: dict[str, float | None] = {}
        self._started = 0.0
        self.seconds: dict[str, float] = {}

    def _now(self, name: str) -> float | None:
        pid = self._pids[name]
        return tree_cpu_seconds(pid) if name in self._trees else cpu_seconds(pid)

    def start(self) -> CpuMeter:
        self._before = {name: self._now(name) for name in self._pids}
        self._started = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        wall = max(time.perf_counter() - self._started, 1e-9)
        used = {}
        for name in self._pids:
            now, before = self._now(name), self._before.get(name)
            if now is not None and before is not None:
                self.seconds[name] = now - before
                used[name] = round((now - before) / wall, 2)
        return used
