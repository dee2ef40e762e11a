"""With `--workers N` one scrape answers for every worker (shared/metrics.py): each gauge must
say how the workers' values combine, or prometheus_client's default shows one series per
process id, dead workers' included."""

from __future__ import annotations

import importlib
import pkgutil

from prometheus_client import REGISTRY, Gauge

PACKAGES = ("command_service", "query_service", "projector", "operations", "shared")


def every_gauge() -> list[Gauge]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            importlib.import_module(module.name)
    return [c for c in list(REGISTRY._collector_to_names) if isinstance(c, Gauge)]


def test_every_gauge_says_how_the_worker_processes_combine_it():
    gauges = every_gauge()
    assert len(gauges) >= 12  # the modules were imported: their gauges are registered
    for gauge in gauges:
        assert gauge._multiprocess_mode != "all", f"{gauge._name} needs a multiprocess_mode"


def test_gauges_of_what_each_worker_holds_add_up_over_the_live_workers():
    gauges = {gauge._name: gauge._multiprocess_mode for gauge in every_gauge()}
    assert gauges["cqrs_query_streams_open"] == "livesum"
    assert gauges["cqrs_query_stream_watched_views"] == "livesum"
