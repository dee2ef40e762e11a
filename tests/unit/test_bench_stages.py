"""The bench's stage breakdown (bench/stages.py) reads what Prometheus writes: quantiles
interpolated inside a bucket, a run's events only, and the stages' means adding up."""

from __future__ import annotations

import pytest

from bench.stages import PROJECTOR, RELAY, breakdown, histograms, quantile


def exposition(name: str, counts: dict[str, int], total: float) -> str:
    """A histogram as prometheus_client's /metrics writes one."""
    lines = [f"# HELP {name} x", f"# TYPE {name} histogram",
             *(f'{name}_bucket{{le="{le}"}} {n}.0' for le, n in counts.items())]
    return "\n".join([*lines, f"{name}_count {max(counts.values())}.0", f"{name}_sum {total}",
                      f"{name}_created 1.7e9"])


def test_a_quantile_is_interpolated_inside_the_bucket_that_holds_its_rank():
    text = exposition("x_seconds", {"0.01": 0, "0.02": 50, "0.05": 100, "+Inf": 100}, 2.0)
    h = histograms(text, ("x_seconds",))["x_seconds"]
    assert h["count"] == 100 and h["sum"] == 2.0
    assert quantile(h, 0.5) == pytest.approx(0.02)
    assert quantile(h, 0.25) == pytest.approx(0.015)
    assert quantile(h, 0.99) == pytest.approx(0.0494)


def test_the_stages_are_the_run_s_events_and_their_means_add_up_to_the_lag():
    def reading(seconds_each: dict[str, float], events: int) -> dict:
        text = "\n".join(exposition(name, {"0.1": events, "+Inf": events},
                                    seconds_each.get(name, 0.0) * events)
                         for name in RELAY + PROJECTOR)
        return histograms(text, RELAY + PROJECTOR)

    each = {RELAY[0]: 0.010, RELAY[1]: 0.004, PROJECTOR[0]: 0.006, PROJECTOR[1]: 0.050,
            PROJECTOR[2]: 0.070}
    before = reading(each, 10)
    after = reading(each, 30)
    result = breakdown(before, after, lag_mean_ms=80.0, latency_mean_ms=10.0)
    stages = result["stages"]
    assert stages["commit → claim"]["count"] == 20
    assert stages["commit → claim"]["mean_ms"] == pytest.approx(10.0)
    assert stages["ack → fetch"]["mean_ms"] == pytest.approx(2.0)  # 6 ms send → fetch less 4
    # request → visible is 10 ms latency + 80 ms lag; command start → written is 70
    assert stages["written → visible"]["mean_ms"] == pytest.approx(20.0)
    assert stages["command → commit"]["mean_ms"] == pytest.approx(4.0)  # 70 less 10+6+50
    assert result["dominant"] == "fetch → written"

    # Without the commands' latency, what it would be derived from is not made up.
    unknown = breakdown(before, after, lag_mean_ms=80.0, latency_mean_ms=None)["stages"]
    assert unknown["written → visible"]["mean_ms"] is None
    assert unknown["fetch → written"]["mean_ms"] == pytest.approx(50.0)
