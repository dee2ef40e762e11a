"""3. Projector: events/s applied by the projector (its own `serve_projector`, consumer group
and all) from a topic pre-filled with a realistic bank history, side by side with raw
`bulk_write` upserts of the same documents (the planner's output for the same batches) into
the same store, and the read-store round trips per 1,000 events, counted on the wire and by
the projector's own counter. Every size of `projector_sizes` is measured (how cost grows);
the main size's read models stay for the query measurement."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from bench.context import Context
from bench.mongo_trips import ROUND_TRIPS
from bench.profiling import Recording
from bench.raw import raw_bulk_upserts
from bench.stats import CpuMeter, rate, ratio
from bench.workload import bank_envelopes, produce_envelopes
from projector.planner import plan_batch
from projector.worker import serve_projector
from shared.kafka import ensure_topic
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    TRANSACTIONS,
    ensure_indexes,
)

RAW_BATCH = 1000  # the projector's default getmany size


def _applied() -> float:
    """Events the projector has applied, from its own Prometheus counter. Read through the
    counter itself: REGISTRY.get_sample_value walks every metric of the process, which,
    done every few milliseconds, would cost the measured process a fifth of its CPU."""
    try:
        from projector.consumer import EVENTS
    except ImportError:
        return REGISTRY.get_sample_value("cqrs_projector_events_total",
                                         {"outcome": "applied"}) or 0.0
    return sum(sample.value for metric in EVENTS.collect() for sample in metric.samples
               if sample.name.endswith("_total") and sample.labels.get("outcome") == "applied")


def _projector_round_trips() -> float:
    total = 0.0
    for family in REGISTRY.collect():
        if family.name == "cqrs_projector_store_round_trips":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


async def project(settings, expected: int, timeout_s: float = 900.0,
                  profile: tuple | None = None) -> dict:
    """Run the projector worker until it has applied `expected` events. The rate leaves out
    its start (group join, index creation): it is measured from the first applied batch to
    the last, over the events after that first batch."""
    applied_before = _applied()
    trips_before = _projector_round_trips()
    wire_before = sum(ROUND_TRIPS.of(settings.mongo_database).values())
    stop = asyncio.Event()
    task = asyncio.create_task(serve_projector(settings, "127.0.0.1", 0, stop))
    marks: list[tuple[float, float]] = []
    started = time.perf_counter()
    try:
        while True:
            applied = _applied() - applied_before
            if not marks or applied != marks[-1][1]:
                marks.append((time.perf_counter(), applied))
            if applied >= expected:
                break
            if task.done():
                task.result()
                raise RuntimeError("the projector stopped")
            if time.perf_counter() - started > timeout_s:
                raise RuntimeError(f"the projector applied {applied:.0f} of {expected} events "
                                   f"in {timeout_s:.0f}s")
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    moving = [m for m in marks if m[1] > 0]
    first, last = moving[0], moving[-1]
    if len(moving) >= 3:
        events, seconds = last[1] - first[1], last[0] - first[0]
    else:  # too few batches to leave the first out
        events, seconds = last[1], last[0] - marks[0][0]
    wire = ROUND_TRIPS.of(settings.mongo_database)
    wire_trips = sum(wire.values()) - wire_before
    own_trips = _projector_round_trips() - trips_before
    return {"events": int(last[1]), "batches_seen": len(moving),
            "events_per_s": rate(int(events), seconds), "seconds": round(seconds, 2),
            "round_trips_per_1000_events": {
                "on_the_wire": round(1000 * wire_trips / expected, 1),
                "projector_counter": round(1000 * own_trips / expected, 1),
                "by_command": wire}}


def planned_batches(envelopes) -> list[dict[str, list[dict]]]:
    """The documents the projector writes, batch by batch: the project's own pure planner
    over batches of 1,000 events in topic order, carrying the views from batch to batch."""
    views = {ACCOUNTS: {}, CUSTOMERS: {}, DAILY_STATS: {}}
    batches = []
    for i in range(0, len(envelopes), RAW_BATCH):
        plan = plan_batch(envelopes[i:i + RAW_BATCH], views[ACCOUNTS], views[CUSTOMERS],
                          views[DAILY_STATS])
        views[ACCOUNTS].update(plan.accounts)
        views[CUSTOMERS].update(plan.customers)
        views[DAILY_STATS].update(plan.daily_stats)
        batches.append({HISTORY: plan.history, TRANSACTIONS: plan.transactions,
                        DAILY_STATS: list(plan.daily_stats.values()),
                        CUSTOMERS: list(plan.customers.values()),
                        ACCOUNTS: list(plan.accounts.values())})
    return batches


async def _one_size(ctx: Context, size: int, keep: bool) -> dict:
    backends = ctx.backends
    settings = backends.settings(backends.no_write_database(), f"proj{size}")
    ctx.say(f"projector: {size:,} events onto a topic "
            f"({ctx.sizes.projector_accounts:,} accounts)")
    envelopes = bank_envelopes(size, ctx.sizes.projector_accounts)
    await ensure_topic(settings)
    await produce_envelopes(backends.bootstrap, settings.kafka_topic, envelopes)
    ctx.say(f"projector: applying {size:,} events with the projector")
    meter = CpuMeter({"bench (projector)": os.getpid(),
                      "secantus": backends.read_store.pid,
                      backends.broker_kind: backends.broker.pid}).start()
    ours = await project(settings, size)
    ours["cpu_cores"] = meter.stop()
    batches = planned_batches(envelopes)
    client = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    raw_db = client[f"{settings.mongo_database}_raw"[:63]]
    try:
        await ensure_indexes(raw_db)
        documents = sum(len(docs) for b in batches for docs in b.values())
        ctx.say(f"projector: raw bulk_write of the same {documents:,} documents")
        raw_s = await raw_bulk_upserts(raw_db, batches)
        raw = {"events": size, "documents_written": documents, "seconds": round(raw_s, 2),
               "events_per_s": rate(size, raw_s),
               "round_trips_per_1000_events": round(
                   1000 * sum(1 for b in batches for d in b.values() if d) / size, 1)}
        await client.drop_database(raw_db.name)
        result = {"events": size, "accounts": ctx.sizes.projector_accounts, "ours": ours,
                  "raw": raw, "ratio": ratio(ours["events_per_s"], raw["events_per_s"])}
        if keep:
            ctx.shared["read_models"] = {
                "settings": settings,
                "customers": [e.aggregate_id for e in envelopes
                              if e.event_type == "CustomerRegistered"],
                "accounts": [e.aggregate_id for e in envelopes
                             if e.event_type == "AccountOpened"]}
            if ctx.profile:
                result["profile"] = await _profile(ctx, envelopes)
        else:
            await client.drop_database(settings.mongo_database)
        return result
    finally:
        await client.close()


async def _profile(ctx: Context, envelopes) -> dict:
    """The same events again into a new read model, with py-spy on the projector (this
    process) and on the read store."""
    backends = ctx.backends
    settings = backends.settings(backends.no_write_database(), "projprof")
    await ensure_topic(settings)
    await produce_envelopes(backends.bootstrap, settings.kafka_topic, envelopes)
    ctx.say("projector: profiling the projector and SecantusDB")
    seconds = ctx.sizes.profile_seconds
    async with Recording(os.getpid(), seconds, ctx.log_dir / "profile-projector.txt",
                         "projector (in the bench process)") as mine, \
            Recording(backends.read_store.pid, seconds, ctx.log_dir / "profile-secantus.txt",
                      "SecantusDB (read store)") as store:
        with contextlib.suppress(RuntimeError):  # bounded by time, not by events
            await project(settings, len(envelopes), timeout_s=seconds + 1)
    client = AsyncMongoClient(backends.mongo_url)
    await client.drop_database(settings.mongo_database)
    await client.close()
    return {"projector": mine.summary, "read_store": store.summary}


async def run(ctx: Context) -> dict:
    sizes = ctx.sizes
    runs = [await _one_size(ctx, size, keep=size == sizes.projector_main)
            for size in sizes.projector_sizes]
    main = next(r for r in runs if r["events"] == sizes.projector_main)
    return {"what": "serve_projector from a pre-filled topic (6 partitions) until every event "
                    "is applied, vs raw bulk_write upserts of the same documents",
            **main, "by_size": runs}
