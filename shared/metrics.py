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
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest, multiprocess

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


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


def process_exited(path: str, pid: int) -> None:
    """Forget the gauges of an exited worker whose mode counts only live processes
    (`livesum`, `livemax`, ...): streams it held open are no longer open. Its counters stay."""
    multiprocess.mark_process_dead(pid, path)
