"""`observe_all` (shared/metrics.py) reaches into prometheus_client's Histogram to count a
batch with one increment per bucket: it must leave exactly what `observe` one by one leaves,
or the stage latencies the bench and the dashboards read would be wrong without a sound."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Histogram

from shared.metrics import STAGE_BUCKETS, observe_all, observe_n


def _samples(histogram: Histogram) -> dict[tuple[str, str], float]:
    (metric,) = histogram.collect()
    return {(s.name, s.labels.get("le", "")): s.value for s in metric.samples
            if not s.name.endswith("_created")}


def test_observing_a_batch_counts_what_observing_each_value_counts():
    values = [0.0, 0.0005, 0.001, 0.0011, 0.002, 0.05, 0.0501, 0.3, 7.0, 60.0, 61.0, 1e6]
    one_by_one = Histogram("one_seconds", "x", buckets=STAGE_BUCKETS,
                           registry=CollectorRegistry())
    batched = Histogram("one_seconds", "x", buckets=STAGE_BUCKETS, registry=CollectorRegistry())
    for value in values:
        one_by_one.observe(value)
    observe_all(batched, values)
    observe_all(batched, [])  # an empty batch changes nothing
    assert _samples(batched) == pytest.approx(_samples(one_by_one))
    assert _samples(batched)[("one_seconds_count", "")] == len(values)


def test_a_labelled_histogram_is_observed_through_its_child_only():
    parent = Histogram("two_seconds", "x", ["stage"], registry=CollectorRegistry())
    with pytest.raises(ValueError):
        observe_all(parent, [0.1])


def test_observing_one_value_n_times_counts_what_observing_it_n_times_counts():
    one_by_one = Histogram("three_seconds", "x", buckets=STAGE_BUCKETS,
                           registry=CollectorRegistry())
    batched = Histogram("three_seconds", "x", buckets=STAGE_BUCKETS,
                        registry=CollectorRegistry())
    for value, n in ((0.02, 500), (0.0501, 3), (1e6, 1)):
        for _ in range(n):
            one_by_one.observe(value)
        observe_n(batched, value, n)
    observe_n(batched, 0.3, 0)  # no rows changes nothing
    assert _samples(batched) == pytest.approx(_samples(one_by_one))
