"""Prometheus metrics of one process, or of several worker processes answering as one service.

With `--workers N` (shared/supervisor.py) every worker keeps its own counters, and a scrape
reaches whichever worker accepts it: alone, that worker's numbers would jump back and forth
between scrapes. prometheus_client's multiprocess mode writes each process's values to files in
`PROMETHEUS_MULTIPROC_DIR` instead, and `/metrics` reads them all: counters and histograms are
summed over every worker that ever ran (a restarted worker's counts stay, so a counter never
goes back), and each gauge is combined by its `multiprocess_mode` (`livesum`, `livemostrecent`,
...: every Gauge in the code base names one). prometheus_client picks the mode when it is first
imported, from that variable: that is why workers are started as fresh interpreters with the
variable already set, never forked from a parent that imported it.

What multiprocess mode cannot give: the per-process collectors (`process_*`, `python_gc_*`)
are left out of such a scrape, as prometheus_client documents.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest, multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The buckets of the per-stage latencies of an event's way from commit to view (relay,
# projector): from a millisecond (one local round trip) to a minute (a backlog being worked off).
# Finer between 20 and 500 ms, where the end-to-end targets lie (p50 50 ms, p99 250 ms): a
# quantile is interpolated inside its bucket, so it is only as exact as the bucket is narrow.
STAGE_BUCKETS = (.001, .002, .005, .01, .02, .03, .05, .075, .1, .15, .2, .25, .3, .4, .5,
                 1, 2, 5, 10, 30, 60)


def metrics_text() -> bytes:
    """The Prometheus exposition of this process, or of every worker of its service when the
    process is one of several (multiprocess mode)."""
    if not os.environ.get(MULTIPROC_DIR):
        return generate_latest()
    registry = CollectorRegistry()  # a new one per scrape, as prometheus_client requires
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry)


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A fresh, empty directory for the workers' metric files, deleted afterwards. Never one
    given from outside: files left by an earlier run would be added to this run's counters."""
    path = tempfile.mkdtemp(prefix="cqrs-metrics-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def observe_all(histogram: Histogram, values: Iterable[float]) -> None:
    """`histogram.observe(v)` for every value, at the cost of one locked increment per bucket
    touched instead of two per value: a relay batch is 500 rows, and the relay and the
    projector observe every event of it. The same counts as `observe` (same bucket rule:
    the first upper bound >= the value); tests/unit/test_observe_all.py holds it to that."""
    histogram._raise_if_not_observable()  # a labelled parent: as `observe` would refuse
    bounds = histogram._upper_bounds
    counts = [0] * len(bounds)
    total = 0.0
    for value in values:
        counts[bisect_left(bounds, value)] += 1
        total += value
    if not any(counts):
        return
    histogram._sum.inc(total)
    for index, count in enumerate(counts):
        if count:
            histogram._buckets[index].inc(count)


def observe_n(histogram: Histogram, value: float, n: int) -> None:
    """`histogram.observe(value)` `n` times, as one increment of its bucket (a batch's rows
    that all waited the same time)."""
    histogram._raise_if_not_observable()
    if n <= 0:
        return
    histogram._sum.inc(value * n)
    histogram._buckets[bisect_left(histogram._upper_bounds, value)].inc(n)


def process_exited(path: str, pid: int) -> None:
    """Forget the gauges of an exited worker whose mode counts only live processes
    (`livesum`, `livemax`, ...): streams it held open are no longer open. Its counters stay."""
    multiprocess.mark_process_dead(pid, path)
