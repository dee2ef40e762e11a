"""Where an event's commit-to-visible time goes, stage by stage, from the histograms the relay
and the projector keep anyway (README, "Metrics"): each process's /metrics is read before and
after a run, and the difference is that run's events only.

The stages, and what measures each:
- commit → claim: the relay, from the outbox row's created_at (stamped in the command's
  transaction just before its commit) to its claim query returning it;
- claim → ack: the relay, from that claim to the broker acknowledging the row's whole batch;
- ack → fetch: not measured by itself. The projector measures send → fetch (the record's
  CreateTime, stamped when the relay hands it to its producer, to getmany returning it), which
  spans the acknowledgement; ack → fetch is send → fetch less claim → ack, as a mean (so a
  little low: the moments between claim and send count in neither);
- fetch → written: the projector, from getmany to the store's reply to the event's last write;
- written → visible: not measured by itself either. Both ends of the chain are anchored at the
  command's start: the projector's own lag histogram (cqrs_projector_commit_to_apply_seconds)
  runs from the event's occurred_at, stamped when the command service began the command, to
  written; the bench times each command from sending it to the poller seeing its version
  (its latency plus its commit-to-visible lag). The difference of the two means is written →
  visible: the poller's period (10 ms) and its find, a little high by the request's way in.
  It can be negative: the poller may see a view before the store's reply to that write
  reaches a projector whose store is busy.
- command → commit: the same histogram's mean less the four stages from commit to written:
  the command's own transaction, so that all six add up to request → visible.

p50 and p99 are read from the buckets by linear interpolation inside the bucket that holds
the rank (as Prometheus' histogram_quantile does), so they are only as fine as the buckets
(shared/metrics.py STAGE_BUCKETS: 1-2-5 steps from 1 ms, finer from 20 to 500 ms); means are
exact (_sum / _count), and only means add up, so the derived stages and the dominant stage
(the largest share of the mean) go by means.

Here too: whether a step of the rate search kept up, and which stage limited it.
"""

from __future__ import annotations

import asyncio
import math

from prometheus_client.parser import text_string_to_metric_families

from bench.procs import Service

RELAY = ("cqrs_relay_commit_to_claim_seconds", "cqrs_relay_claim_to_ack_seconds")
PROJECTOR = ("cqrs_projector_produce_to_fetch_seconds", "cqrs_projector_fetch_to_written_seconds",
             "cqrs_projector_commit_to_apply_seconds")
COMMAND = "command → commit"
STAGES = ("commit → claim", "claim → ack", "ack → fetch", "fetch → written",
          "written → visible")
# Whose time each stage is, to name a limit by the part of the system that spends it.
OWNERS = {"commit → claim": "the relay's outbox poll", "claim → ack": "the broker's ack",
          "ack → fetch": "the projector's loop: queued behind the batch before it, then "
                         "fetched", "fetch → written": "projector / read store",
          "written → visible": "read store / the poller"}

NOTE = ("- Where the time goes: per event, from the relay's and the projector's histograms "
        "(README, Metrics), read before and after each run (bench/stages.py). Commit → claim "
        "starts at the outbox row's created_at, stamped just before the commit; claim → ack "
        "ends at the broker's ack of the row's whole batch; fetch → written ends at the "
        "store's reply to the event's last write. Three are means by difference, not measured "
        "on their own: ack → fetch (send → fetch, from the record's CreateTime, less claim → "
        "ack), written → visible (the bench's request → visible, latency plus lag, less the "
        "projector's command start → written: the poller's 10 ms period and its find; "
        "negative when the poller saw the view before a busy store's reply reached the "
        "projector) and command → commit. p50/p99 are interpolated inside 1-2-5 ms buckets; "
        "the stage named is the one of the five after the commit with the largest mean.")

Histogram = dict  # {"buckets": [(upper bound, cumulative count)], "sum": s, "count": n}


def histograms(text: str, names: tuple[str, ...]) -> dict[str, Histogram]:
    """The unlabelled histograms called `names` in a Prometheus exposition (summed over
    their label sets, none for these), parsed by prometheus_client."""
    found: dict[str, Histogram] = {name: {"buckets": [], "sum": 0.0, "count": 0.0}
                                   for name in names}
    for family in text_string_to_metric_families(text):
        histogram = found.get(family.name)
        if histogram is None:
            continue
        buckets: dict[float, float] = {}
        for sample in family.samples:
            if sample.name == f"{family.name}_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name in (f"{family.name}_sum", f"{family.name}_count"):
                kind = sample.name.rsplit("_", 1)[1]
                histogram[kind] += sample.value
        histogram["buckets"] = sorted(buckets.items())
    return found


def difference(after: Histogram, before: Histogram) -> Histogram:
    earlier = dict(before["buckets"])
    return {"buckets": [(le, n - earlier.get(le, 0.0)) for le, n in after["buckets"]],
            "sum": after["sum"] - before["sum"], "count": after["count"] - before["count"]}


def quantile(histogram: Histogram, q: float) -> float | None:
    """The q-quantile (0..1), interpolated inside its bucket; the last finite bound when it
    falls in +Inf."""
    total = histogram["count"]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, cumulative in histogram["buckets"]:
        if cumulative >= rank:
            if math.isinf(upper):
                return lower
            inside = cumulative - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, cumulative
    return lower


def summary(histogram: Histogram) -> dict:
    """count, mean, p50, p99 in milliseconds."""
    count = histogram["count"]

    def ms(seconds: float | None) -> float | None:
        return None if seconds is None else round(seconds * 1000, 1)

    return {"count": int(count), "mean_ms": ms(histogram["sum"] / count) if count else None,
            "p50_ms": ms(quantile(histogram, 0.5)), "p99_ms": ms(quantile(histogram, 0.99))}


class StageClock:
    """Reads the stage histograms of the relay and the projector processes."""

    def __init__(self, relay: Service, projector: Service) -> None:
        self.relay, self.projector = relay, projector

    async def read(self) -> dict[str, Histogram]:
        relay, projector = await asyncio.gather(self.relay.http.get("/metrics"),
                                                self.projector.http.get("/metrics"))
        return {**histograms(relay[2].decode(), RELAY),
                **histograms(projector[2].decode(), PROJECTOR)}


def breakdown(before: dict[str, Histogram], after: dict[str, Histogram],
              lag_mean_ms: float | None, latency_mean_ms: float | None) -> dict:
    """The stages of the events between two readings, and the one of the five after the
    commit that dominates. `lag_mean_ms`: the bench's mean commit-to-visible lag (from the
    response); `latency_mean_ms`: the commands' mean latency."""
    measured = {name: summary(difference(after[name], before[name])) for name in after}
    claim, ack = measured[RELAY[0]], measured[RELAY[1]]
    send_fetch, written = measured[PROJECTOR[0]], measured[PROJECTOR[1]]
    started_to_written = measured[PROJECTOR[2]]

    def less(a: float | None, *b: float | None) -> float | None:
        return None if a is None or None in b else round(a - sum(b), 1)

    request_to_visible = None if lag_mean_ms is None or latency_mean_ms is None \
        else round(lag_mean_ms + latency_mean_ms, 1)
    stages = {
        COMMAND: {"mean_ms": less(started_to_written["mean_ms"], claim["mean_ms"],
                                  send_fetch["mean_ms"], written["mean_ms"]),
                  "derived": "command start → written less the four stages after the commit"},
        "commit → claim": claim, "claim → ack": ack,
        "ack → fetch": {"mean_ms": less(send_fetch["mean_ms"], ack["mean_ms"]),
                        "derived": "send → fetch less claim → ack"},
        "fetch → written": written,
        "written → visible": {"mean_ms": less(request_to_visible, started_to_written["mean_ms"]),
                              "derived": "request → visible less command start → written"},
    }
    means = {name: stages[name]["mean_ms"] for name in STAGES
             if stages[name].get("mean_ms") is not None}
    total = sum(max(0.0, m) for m in means.values())
    dominant = max(means, key=lambda name: means[name]) if means else None
    return {"stages": stages, "send → fetch": send_fetch,
            "command start → written": started_to_written,
            "lag_mean_ms": None if lag_mean_ms is None else round(lag_mean_ms, 1),
            "request_to_visible_mean_ms": request_to_visible,
            "dominant": dominant,
            "dominant_share": round(max(0.0, means[dominant]) / total, 3)
            if dominant and total else None}


def dominant_text(stages: dict | None) -> str | None:
    """'fetch → written, projector / read store (62%: 130 of a 210 ms mean)', or None."""
    if not stages or not stages.get("dominant"):
        return None
    name = stages["dominant"]
    mean = stages["stages"][name]["mean_ms"]
    return (f"{name}, {OWNERS[name]} ({stages['dominant_share']:.0%} of the time after the "
            f"commit: {mean:,.0f} ms of a {_fig(stages['lag_mean_ms'])} ms mean lag)")


def stage_row(run: dict, row) -> None:
    """One report row: the stages of a run's events (bench/report.py)."""
    stages = run.get("stages")
    if not stages:
        return

    def cell(name: str) -> str:
        s = stages["stages"][name]
        mean = "n/a" if s.get("mean_ms") is None else f"{s['mean_ms']:,.1f}"
        if "p50_ms" in s:
            return (f"{name} mean {mean} (p50 {_fig(s['p50_ms'])} / p99 {_fig(s['p99_ms'])})")
        return f"{name} mean {mean}"

    check = stages["command start → written"]
    row(f"4. …where the time goes, {run['label']} (ms)",
        "; ".join(cell(n) for n in (COMMAND, *STAGES)),
        f"request → visible mean {_fig(stages['request_to_visible_mean_ms'])}; command start → "
        f"written (the projector's lag histogram) mean {_fig(check['mean_ms'])} "
        f"(p50 {_fig(check['p50_ms'])} / p99 {_fig(check['p99_ms'])})",
        f"most in {dominant_text(stages) or 'n/a'}", "", "")


def keeps_up(step: dict) -> bool:
    """The pipeline kept up with a step's offered rate (bench/sections/e2e.py)."""
    first, last = step["lag_p50_first_third_ms"], step["lag_p50_last_third_ms"]
    growing = first is not None and last is not None and last > 2 * first + 50
    return (step["errors"] == 0 and step["not_sent_overloaded"] == 0
            and step["answered_per_s"] >= 0.9 * step["offered_per_s"]
            and step["all_visible"] and (step["lag"]["p99_ms"] or 0) <= 1000 and not growing)


def limiting_stage(step: dict, cpus: int) -> str:
    """The first stage that fell behind, and how busy the machine was while it did."""
    offered, answered = step["offered_per_s"], step["answered_per_s"]
    if step["not_sent_overloaded"] or answered < 0.9 * offered or step["errors"]:
        stage = "command service (answers fell behind the offered rate)"
    elif step["relay_per_s"] < 0.9 * answered:
        stage = "relay (published fewer events than commands were answered)"
    elif step["projector_per_s"] < 0.9 * step["relay_per_s"]:
        stage = "projector (applied fewer events than were published)"
    elif most := dominant_text(step.get("stages")):
        stage = f"{most} (every stage kept the rate, but events became visible later " \
                "and later)"
    else:
        stage = "projector / read store (every stage kept the rate, but events became " \
                "visible later and later)"
    cpu = step.get("cpu_cores") or {}
    busy = sum(cpu.values())
    top = ", ".join(f"{name} {cores:.2f}" for name, cores in
                    sorted(cpu.items(), key=lambda kv: -kv[1])[:3])
    machine = (f"; the machine was saturated ({busy:.2f} of {cpus} cores busy: {top})"
               if busy >= 0.8 * cpus else f"; {busy:.2f} of {cpus} cores busy ({top})")
    return stage + machine


def target_at_half(runs: list[dict]) -> dict | None:
    """Issue 17's target at 50% of the sustainable rate (p50 <= 50 ms, p99 <= 250 ms), and
    when it is missed, the stage that spent most of the time."""
    run = next((r for r in runs if r["label"].startswith("50%")), None)
    if run is None or run["lag"]["p50_ms"] is None:
        return None
    met = run["lag"]["p50_ms"] <= 50 and run["lag"]["p99_ms"] <= 250
    return {"met": met, "most_in": None if met else dominant_text(run.get("stages"))}


def _fig(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.1f}"
