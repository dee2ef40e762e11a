"""How the report writes a figure in a table cell, and the rows of the live-update and the
continuous-verification measurements (bench/sections/streams.py, bench/sections/verify.py)."""

from __future__ import annotations


def _div(a, b) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _n(value, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and value >= 100 or isinstance(value, int):
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.1f}" if value >= 10 else f"{value:,.2f}"
    return text + unit


def _pct(value) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _x(value) -> str:
    return "n/a" if value is None else f"{value:.2f}×"


def _lat(figures: dict) -> str:
    return f"p50 {_n(figures.get('p50_ms'))} / p99 {_n(figures.get('p99_ms'))} ms"


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("yes" if ok else "**no**")


def stream_rows(streams: dict, row) -> None:
    for level in streams.get("levels", []):
        n = level["streams"]
        row(f"7. SSE push, {n:,} stream(s) on {level['views_watched']:,} account view(s)",
            f"{_lat(level['push_latency'])} (commit to event at the client)",
            f"poll every {streams['poll_ms']} ms", "", "", "")
        row(f"7. …with {n:,} idle stream(s) open",
            f"{_n(level['memory_per_stream_kib'])} KiB per stream, "
            f"{_n((level['idle_cpu_cores'] or 0) * 1000)} ms CPU per second",
            "", "", "", "")


PASS_GROWTH = 1.5  # a pass after the largest history may take at most this × the smallest's


def verify_rows(verify: dict, row) -> None:
    """One row per history size: the pass beside the whole-log check of the same data."""
    sizes = verify.get("by_size") or []
    for run in sizes:
        first = sizes[0]
        later = run is not first
        ok = (first["pass_s"] and run["pass_s"] <= PASS_GROWTH * first["pass_s"]
              and run["drift"] == 0) if later else None
        row(f"8. verify --watch pass, {verify['changed_accounts']:,} changed accounts after "
            f"{run['history_events']:,} events of history",
            f"{_n(run['pass_s'])} s ({run['checked_aggregates']:,} aggregates checked, "
            f"{run['drift']} drift)",
            f"whole-log verify {_n(run['whole_log_verify_s'])} s",
            _x(_div(run["pass_s"], run["whole_log_verify_s"])),
            f"≤ {PASS_GROWTH:g}× the {first['history_events']:,} pass" if later else "",
            _met(bool(ok)) if later else "")


def verify_note(verify: dict) -> str | None:
    sizes = verify.get("by_size") or []
    if not sizes:
        return None
    built = "; ".join(f"{r['history_events']:,} events in {_n(r['history_build_s'])} s "
                      f"(indexes {_n(r['history_index_s'])} s)" for r in sizes)
    return ("- verify --watch: each history is built in bulk (the command service's event "
            "rows; the views computed by the projector's planner and inserted unordered, "
            f"indexes last): {built}. The changed accounts' events are projected the "
            "projector's own way after it; the pass checks their customers only.")
