"""How the report writes a figure in a table cell, and the rows of three measurements: the
deposits beside their ceilings (bench/sections/commands.py), the live updates
(bench/sections/streams.py) and continuous verification (bench/sections/verify.py)."""

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


# Issue 17's targets, at concurrency 32: our deposits/s against each ceiling, our p99, and
# the CPU the command service spends per deposit.
RAW_SHARE, BARE_SHARE, P99_MS, CPU_MS = 0.35, 0.70, 50.0, 1.0


def level_rows(lv: dict, row) -> None:
    """One concurrency level of deposits: against the raw driver, against the bare FastAPI
    endpoint, the CPU per deposit of each server, and (at 32) our p99."""
    c, ours, raw, bare = lv["concurrency"], lv["ours"], lv["raw"], lv.get("bare")
    at_32 = c == 32

    def judged(ok: bool | None, target: str) -> tuple[str, str]:
        return (target, _met(ok)) if at_32 else ("", "")

    share = lv["throughput_ratio"]
    row(f"1. Deposits over HTTP, concurrency {c}",
        f"{_n(ours['throughput_per_s'])}/s, {_lat(ours)}",
        f"raw driver {_n(raw['throughput_per_s'])}/s, {_lat(raw)}", _pct(share),
        *judged(share >= RAW_SHARE if share is not None else None, f"≥ {RAW_SHARE:.0%}"))
    if not bare:  # a run from before the bare endpoint was measured
        return
    share = lv["bare_throughput_ratio"]
    row(f"1. …beside a bare FastAPI endpoint, concurrency {c}",
        f"{_n(ours['throughput_per_s'])}/s, {_lat(ours)}",
        f"bare endpoint {_n(bare['throughput_per_s'])}/s, {_lat(bare)}", _pct(share),
        *judged(share >= BARE_SHARE if share is not None else None, f"≥ {BARE_SHARE:.0%}"))
    cpu = ours.get("cpu_ms_per_deposit")
    row(f"1. …CPU per deposit in the server process, concurrency {c}",
        f"command-api {_n(cpu, ' ms')}",
        f"bare endpoint {_n(bare.get('cpu_ms_per_deposit'), ' ms')}", _x(lv.get("cpu_ratio")),
        *judged(cpu <= CPU_MS if cpu is not None else None, f"≤ {CPU_MS:g} ms"))
    if at_32:
        p99 = ours["p99_ms"]
        row(f"1. …p99 of a deposit, concurrency {c}", f"{_n(p99, ' ms')}",
            f"bare endpoint {_n(bare['p99_ms'], ' ms')}; raw driver {_n(raw['p99_ms'], ' ms')}",
            _x(lv.get("bare_p99_ratio")),
            *judged(p99 <= P99_MS if p99 is not None else None, f"≤ {P99_MS:g} ms"))


def commands_rows(commands: dict, row) -> None:
    """Section 1: each concurrency level, the runs on a long history, the run on every core
    and the write model's round trips per command."""
    for lv in commands.get("levels", []):
        level_rows(lv, row)
    for lv in (commands.get("with_history") or {}).get("levels", []):
        events = commands["with_history"]["history_events"]
        row(f"1. …with {events:,} events of history, concurrency {lv['concurrency']}",
            f"{_n(lv['ours']['throughput_per_s'])}/s, {_lat(lv['ours'])}",
            f"{_n(lv['raw']['throughput_per_s'])}/s, {_lat(lv['raw'])}",
            _pct(lv["throughput_ratio"]), "flat", "")

    every_core = commands.get("every_core") or {}
    if every_core.get("status") == "ok":
        n, ours = every_core["workers"], every_core["ours"]
        one = next((lv for lv in commands.get("levels", []) if lv["concurrency"] == 32), None)
        gain = (f"; {_x(ours['throughput_per_s'] / one['ours']['throughput_per_s'])} one "
                "worker's rate" if one and one["ours"]["throughput_per_s"] else "")
        row(f"1. Deposits, concurrency 32, {n} workers each (`--workers {n}`)",
            f"{_n(ours['throughput_per_s'])}/s, {_lat(ours)}{gain}",
            f"bare endpoint ({n} workers) {_n(every_core['bare']['throughput_per_s'])}/s; "
            f"raw driver {_n(every_core['raw']['throughput_per_s'])}/s",
            f"{_pct(every_core['bare_throughput_ratio'])} of bare, "
            f"{_pct(every_core['throughput_ratio'])} of raw", "", "")

    trips = commands.get("round_trips") or {}
    if trips.get("status") == "ok":
        per = trips["per_command"]
        row("1. Write-model round trips per command (on the wire)",
            ", ".join(f"{kind.replace('_', ' ')} {_n(n)}" for kind, n in per.items()),
            f"raw driver deposit {_n(trips['raw_deposit'])} (a statement each)", "",
            f"deposit ≤ {trips['target_deposit']}", _met(trips["met"]))


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
