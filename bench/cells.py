"""How the report writes a figure in a table cell, and the rows of the live-update
measurement (bench/sections/streams.py)."""

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
