"""A run's results as a scaling summary, a profile summary and one markdown table: every
figure beside the ceiling it was measured against in the same run, as a ratio."""

from __future__ import annotations

from typing import Any

from bench.cells import _div, _lat, _met, _n, _pct, _x, commands_rows, verify_note, verify_rows
from bench.cells import stream_rows as _stream_rows
from bench.stages import NOTE as _STAGE_NOTE
from bench.stages import stage_row as _stage_row

FLAT = 0.75  # the largest size keeps at least this share of the smallest size's rate


def scaling(sections: dict) -> dict:
    """How throughput moves with the size of the backlog/history: per size, ours, the raw
    ceiling and their ratio; flat when our rate at the largest size is at least FLAT of our
    rate at the smallest (a per-event cost that grew with history would pull it down; the
    raw rates are beside it to show how much the machine itself drifted)."""
    out: dict[str, Any] = {"status": "ok", "rule": f"flat: our rate at the largest size >= "
                                                    f"{FLAT:.0%} of our rate at the smallest"}
    for name, key in (("relay", "outbox_rows"), ("projector", "events")):
        section = sections.get(name) or {}
        runs = section.get("by_size") or []
        if not runs:
            continue
        rows = [{"size": r[key], "ours_per_s": r["ours"]["events_per_s"],
                 "raw_per_s": r["raw"]["events_per_s"], "ratio": r["ratio"]} for r in runs]
        first, last = rows[0], rows[-1]
        flat = bool(first["ours_per_s"]) and last["ours_per_s"] >= FLAT * first["ours_per_s"]
        out[name] = {"by_size": rows, "flat": bool(flat),
                     "largest_vs_smallest_ours": _div(last["ours_per_s"], first["ours_per_s"]),
                     "largest_vs_smallest_ratio": _div(last["ratio"], first["ratio"])}
    commands = sections.get("commands") or {}
    history = commands.get("with_history")
    if history:
        base = {lv["concurrency"]: lv for lv in commands.get("levels", [])}
        out["commands_with_history"] = [
            {"history_events": history["history_events"], "concurrency": lv["concurrency"],
             "ours_per_s": lv["ours"]["throughput_per_s"],
             "ours_per_s_empty": base.get(lv["concurrency"], {}).get("ours", {}).get(
                 "throughput_per_s"),
             "ratio": lv["throughput_ratio"],
             "ratio_empty": base.get(lv["concurrency"], {}).get("throughput_ratio")}
            for lv in history["levels"]]
    return out


def profiles(sections: dict, enabled: bool) -> dict:
    if not enabled:
        return {"status": "skipped", "reason": "profiling off (smoke run or --no-profile)"}
    found = {}
    for name in ("commands", "relay", "projector", "queries"):
        profile = (sections.get(name) or {}).get("profile")
        if not profile:
            continue
        if "samples" in profile or "error" in profile:
            found[name] = profile
        else:
            for part, nested in profile.items():
                found[f"{name}, {part}"] = nested
    return {"status": "ok", "profiles": found}


def markdown(results: dict) -> str:
    s = results["sections"]
    rows: list[tuple[str, ...]] = []

    def row(*cells: str) -> None:
        rows.append(cells)

    commands_rows(s.get("commands", {}), row)

    relay = s.get("relay", {})
    if relay.get("ours"):
        ok = relay["ratio"] is not None and relay["ratio"] >= 0.7
        row(f"2. Relay, {relay['outbox_rows']:,}-row outbox",
            f"{_n(relay['ours']['events_per_s'])} events/s; row publish latency "
            f"{_lat(relay['ours']['row_publish_latency'])}",
            f"raw aiokafka {_n(relay['raw']['events_per_s'])}/s",
            _pct(relay["ratio"]), "≥ 70%", _met(ok))
        bigger = relay.get("ours_bigger_batch")
        if bigger:
            row(f"2. …the same rows, CQRS_RELAY_BATCH_SIZE={bigger['batch_size']:,}",
                f"{_n(bigger['events_per_s'])} events/s; row publish latency "
                f"{_lat(bigger['row_publish_latency'])}",
                f"raw aiokafka {_n(relay['raw']['events_per_s'])}/s",
                _pct(bigger["ratio"]), "≥ 70%", _met(bigger["ratio"] >= 0.7))

    _retention_rows(relay, row)

    projector = s.get("projector", {})
    if projector.get("ours"):
        ours = projector["ours"]
        ok = projector["ratio"] is not None and projector["ratio"] >= 0.7
        row(f"3. Projector, {projector['events']:,} events",
            f"{_n(ours['events_per_s'])} events/s",
            f"raw bulk_write {_n(projector['raw']['events_per_s'])} events/s",
            _pct(projector["ratio"]), "≥ 70%", _met(ok))
        trips = ours["round_trips_per_1000_events"]
        row("3. Store round trips per 1,000 events",
            f"{_n(trips['on_the_wire'])} on the wire ({_n(trips['projector_counter'])} by "
            "the projector's counter)",
            f"raw {_n(projector['raw']['round_trips_per_1000_events'])}",
            "", "≤ 10", _met(trips["on_the_wire"] <= 10))

    e2e = s.get("e2e", {})
    floor = e2e.get("floor", {})
    search = e2e.get("search", {})
    for run in e2e.get("runs", []):
        q, every = run["lag_via_query_api"], run["lag"]
        at_half = run["label"].startswith("50%")
        ok = (every["p50_ms"] is not None and every["p50_ms"] <= 50
              and every["p99_ms"] <= 250) if at_half else None
        row(f"4. Commit-to-visible, {run['label']} ({_n(run['offered_per_s'])}/s offered, "
            f"{_n(run['answered_per_s'])}/s answered)",
            f"{_lat(every)}, max {_n(every['max_ms'])} ms (read back through the query API: "
            f"{_lat(q)})",
            f"bare chain {_lat(floor)}",
            _x(_div(every["p50_ms"], floor.get("p50_ms"))),
            "p50 ≤ 50, p99 ≤ 250 ms" if at_half else "", _met(ok) if at_half else "")
        _stage_row(run, row)
    if search:
        target = e2e.get("target_at_50") or {}
        missed = (f"; at 50% of it the target is missed, most of the time in "
                  f"{target['most_in']}" if target.get("most_in") else "")
        row("4. Sustainable rate (projector keeps up)",
            f"{_n(search.get('sustainable_per_s'))} commands/s",
            f"limit: {search.get('limit')}{missed}", "", "", "")

    queries = s.get("queries", {})
    for key, label in (("customer_360", "Customer 360"), ("transaction_page",
                                                          "Transaction page (50)")):
        q = queries.get(key)
        if not q:
            continue
        ok = q["p50_ratio"] is not None and q["p50_ratio"] <= 2 and q["p99_ratio"] <= 2
        row(f"5. {label}, concurrency {queries['concurrency']}",
            f"{_lat(q['ours'])} ({_n(q['ours']['per_s'])}/s)",
            f"raw find_one {_lat(q['raw_find_one'])}",
            f"{_x(q['p50_ratio'])} p50, {_x(q['p99_ratio'])} p99", "≤ 2×", _met(ok))
        if nm := q.get("not_modified"):
            row(f"5. {label} revalidated (If-None-Match → 304)",
                f"{_lat(nm)} ({_n(nm['per_s'])}/s)", f"the full answer {_lat(q['ours'])}",
                f"{_x(q['not_modified_throughput_ratio'])} throughput", "", "")

    _stream_rows(s.get("streams", {}), row)
    verify_rows(s.get("verify", {}), row)

    peer = s.get("peer", {})
    if peer.get("status") == "unavailable":
        row("6. Peer: python-cqrs outbox relay", "not measured", peer.get("reason", ""),
            "", "ours ≥ 50× ahead", "n/a")
    for key, label in (("defaults", "defaults"), ("tuned", "tuned")):
        p = peer.get(key)
        if not p:
            continue
        row(f"6. Peer python-cqrs, {label} (batch {p['batch_size']}, poll {p['poll_s']:g} s)",
            f"{_n(p['events_per_s'])} events/s; row publish latency "
            f"{_lat(p['row_publish_latency'])}",
            f"ours {_n(peer['ours']['events_per_s'])}/s; raw "
            f"{_n(peer['raw']['events_per_s'])}/s",
            f"ours {_n(p['ours_ahead_by'])}× ahead", "≥ 50×",
            _met(p["ours_ahead_by"] is not None and p["ours_ahead_by"] >= 50))

    scale = s.get("scaling", {})
    for name, unit in (("relay", "rows"), ("projector", "events")):
        sc = scale.get(name)
        if not sc:
            continue
        ours = ", ".join(f"{r['size']:,}: {_n(r['ours_per_s'])}/s" for r in sc["by_size"])
        raw = ", ".join(f"{_n(r['raw_per_s'])}/s" for r in sc["by_size"])
        ratios = ", ".join(_pct(r["ratio"]) for r in sc["by_size"])
        row(f"7. {name.capitalize()} as the {unit} grow", ours, raw, ratios, "flat",
            _met(sc["flat"]))

    lines = [
        f"# Benchmark results, {results['started_at']} ({results['kind']} run)",
        "",
        f"Write model **{results['write_model']}**, broker **{results['broker']}**, read "
        f"store **{results['read_store']}**, on {results['machine']['cpus']} CPUs, Python "
        f"{results['machine']['python']}. Each figure sits beside the raw ceiling of the "
        "component underneath, measured in the same run; the ratio is ours / ceiling for "
        "rates and ours / ceiling for latencies (lower is better there). The machine is "
        "shared and noisy: compare ratios, not absolute numbers, across runs.",
        "",
        "| Measurement | Ours | Ceiling (same run) | Ratio | Target | Met |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in rows]
    lines += ["", *_notes(results)]
    return "\n".join(lines) + "\n"


def _notes(results: dict) -> list[str]:
    s = results["sections"]
    notes = ["Notes:", ""]
    sizes = results["sizes"]
    notes.append(f"- Sizes: relay {', '.join(f'{n:,}' for n in sizes['relay_sizes'])} rows; "
                 f"projector {', '.join(f'{n:,}' for n in sizes['projector_sizes'])} events "
                 f"over {sizes['projector_accounts']:,} accounts; commands "
                 f"{sizes['command_seconds']:g} s per level; end to end "
                 f"{sizes['e2e_seconds']:g} s per run. SecantusDB (a Python server) is far "
                 "slower than MongoDB, so the read-side rates are SecantusDB's, not MongoDB's; "
                 "for it the default run measures the projector at 5k/20k/40k events, not the "
                 "issue's 5k/20k/80k (80k alone costs it ~5 minutes; `make bench-large` runs "
                 "80k).")
    commands = s.get("commands", {})
    if commands.get("levels"):
        notes.append(f"- Commands: the bare endpoint is one FastAPI POST route running the raw "
                     f"transaction on a pool of raw connections as large as the service's, "
                     f"served like the command service ({commands.get('api_workers', 1)} "
                     "worker(s)) and driven by the same load generator. CPU per deposit is "
                     "the server process's CPU time over the run / deposits answered.")
    if results["write_model"] == "sqlite" and commands.get("levels"):
        notes.append("- Commands on SQLite: one writer at a time. The raw ceiling queues its "
                     "writers in-process (an asyncio lock), which is the best a client can "
                     "do; connections left to SQLite's busy handler sleep and retry.")
    e2e = s.get("e2e", {})
    if e2e.get("runs"):
        notes.append("- Commit-to-visible, from each command's HTTP response to the account "
                     "view holding its version: measured for every command by one poller that "
                     "asks the store every 10 ms for all outstanding accounts (so up to ~10 ms "
                     "late); and read back through the query API with the command's "
                     "X-Consistency-Token on one command in five (at most two waiting at "
                     "once). The bare chain is one event at a time through driver commit, "
                     "produce, consume, upsert and find_one. The sustainable rate is found "
                     "with 8-second steps; a 60-second run near it can still fall behind.")
        if any(run.get("stages") for run in e2e["runs"]):
            notes.append(_STAGE_NOTE)
    if note := verify_note(s.get("verify", {})):
        notes.append(note)
    peer = s.get("peer", {})
    if peer.get("installed"):
        notes.append(f"- Peer: {peer['installed']}. Defaults are its README's loop (batch "
                     "100, sleep 10 s); tuned is batch 1,000 and poll 0. Each run is bounded "
                     "in time (rate = rows published / time, polls included).")
    for name, section in s.items():
        if section.get("status") == "failed":
            notes.append(f"- **{name} failed**: {section.get('error')}")
        elif section.get("status") == "unavailable":
            notes.append(f"- **{name} not measured**: {section.get('reason')}")
    profiles = s.get("profiles", {}).get("profiles") or {}
    if profiles:
        notes += ["", "Where the CPU goes (py-spy, share of samples with that function on "
                      "the stack):", ""]
        for name, profile in profiles.items():
            if "error" in profile:
                notes.append(f"- {name}: {profile['error']}")
                continue
            top = "; ".join(f"{name_} {pct}%" for pct, name_ in
                            (profile.get("project_functions_inclusive_pct") or [])[:5])
            packages = ", ".join(f"{pkg} {pct}%" for pct, pkg in
                                 (profile.get("packages_pct") or [])[:6])
            notes.append(f"- {name} ({profile.get('samples', 0)} samples): packages "
                         f"{packages}. Project: {top or 'none'}")
    notes.append(f"- Whole run: {results.get('seconds', 0):.0f} s; JSON beside this file.")
    return notes


def _retention_rows(relay: dict, row) -> None:
    """The relay beside retention (bench/sections/relay_retention.py)."""
    history = relay.get("with_history")
    if history:
        row(f"2. Relay, {history['outbox_rows']:,} rows after {history['history_rows']:,} "
            "sent rows of history",
            f"{_n(history['with_history']['events_per_s'])} events/s",
            f"no history: {_n(history['no_history']['events_per_s'])} events/s",
            _pct(history["ratio"]), "same", _met(history["ratio"] is not None
                                                  and history["ratio"] >= 0.9))
    steady = relay.get("steady_load")
    if steady:
        without, pruned = steady["without_retention"], steady["with_retention"]
        row(f"2. Outbox under {steady['rate_per_s']} commands/s for {steady['seconds']:.0f} s, "
            f"retention {steady['retention_s']} s",
            f"at most {pruned['max_outbox_rows']:,} rows (end: "
            f"{pruned['outbox_rows'][-1][1]:,}); commands p50 {_n(pruned['latency']['p50_ms'])}"
            f" / p99 {_n(pruned['latency']['p99_ms'])} ms",
            f"no retention: {without['outbox_rows'][-1][1]:,} rows; commands p50 "
            f"{_n(without['latency']['p50_ms'])} / p99 {_n(without['latency']['p99_ms'])} ms",
            "", "bounded", "")
