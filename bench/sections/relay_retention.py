"""2b. The relay beside retention (command_service/retention.py), part of the relay section:

- relay throughput when the outbox already holds a long history of sent rows, against the
  same rows in an outbox with no history: the claim reads only unsent rows (ix_outbox_unsent),
  so the two should be the same;
- a steady command load with the relay and the pruner running, once without retention and
  once with a short one: the outbox grows with the load without it and stays bounded with
  it, and the commands' latency says whether pruning beside them slowed them."""

from __future__ import annotations

import asyncio
import time
import uuid

import sqlalchemy as sa

from bench.context import Context, open_accounts
from bench.procs import Service
from bench.stats import latency_summary, ratio
from bench.workload import fill_write_model
from command_service.db.engine import create_engine
from command_service.db.tables import outbox
from command_service.domain import commands as c
from command_service.service import CommandService

STEADY_RATE = 150  # commands/s: well below what one process sustains on SQLite (~650/s)
SHORT_RETENTION_S = 1
RETENTION_INTERVAL_S = 0.5
NO_RETENTION_S = 10 * 365 * 86_400


async def with_history(ctx: Context, rows: int, history: int, drain, repeats: int = 2) -> dict:
    """`rows` unsent rows published from an outbox without history and from one holding
    `history` sent rows before them (`drain` is the relay section's drain_outbox). The two
    alternate, `repeats` times each, and the best of each counts: on a shared machine the
    first runs pay for warming up. Each run without history gets a fresh outbox; the one
    with history keeps its database, whose history grows by `rows` a run."""
    kept = await ctx.backends.new_write_database("relayhist")
    kept_settings = ctx.backends.settings(kept, "relayhist")
    kept_engine = create_engine(kept_settings)
    runs: dict[str, list[dict]] = {"no_history": [], "with_history": []}
    try:
        ctx.say(f"relay: a history of {history:,} sent rows")
        await fill_write_model(kept_engine, kept_settings.kafka_topic, history, sent=True)
        for _ in range(repeats):
            fresh = await ctx.backends.new_write_database("relaynohist")
            fresh_settings = ctx.backends.settings(fresh, "relaynohist")
            fresh_engine = create_engine(fresh_settings)
            try:
                for label, settings, engine in (
                        ("no_history", fresh_settings, fresh_engine),
                        ("with_history", kept_settings, kept_engine)):
                    await fill_write_model(engine, settings.kafka_topic, rows)
                    ctx.say(f"relay: publishing {rows:,} rows, {label.replace('_', ' ')}")
                    runs[label].append(await drain(settings, engine, rows))
            finally:
                await fresh_engine.dispose()
                await ctx.backends.drop_write_database(fresh)
    finally:
        await kept_engine.dispose()
        await ctx.backends.drop_write_database(kept)
    best = {label: max(done, key=lambda r: r["events_per_s"]) for label, done in runs.items()}
    return {"outbox_rows": rows, "history_rows": history, **best,
            "runs_per_s": {label: [r["events_per_s"] for r in done]
                           for label, done in runs.items()},
            "ratio": ratio(best["with_history"]["events_per_s"],
                           best["no_history"]["events_per_s"])}


async def steady_load(ctx: Context, seconds: float) -> dict:
    """The outbox's size and the commands' latency under a steady load, without retention
    and with a short one."""
    result = {"rate_per_s": STEADY_RATE, "seconds": seconds,
              "retention_s": SHORT_RETENTION_S, "interval_s": RETENTION_INTERVAL_S}
    for label, pruning in (("without_retention", False), ("with_retention", True)):
        ctx.say(f"relay: {seconds:.0f} s of {STEADY_RATE} commands/s, "
                f"{'with' if pruning else 'without'} retention")
        result[label] = await _one_steady_run(ctx, seconds, pruning)
    return result


async def _one_steady_run(ctx: Context, seconds: float, pruning: bool) -> dict:
    """The relay runs as shipped, in its own process (`bench.service relay`), as it does
    beside the command API: on SQLite they meet at the one writer's lock, as in production.
    Without retention its window is ten years, so the pruner runs and finds nothing."""
    database = await ctx.backends.new_write_database(f"steady{int(pruning)}")
    settings = ctx.backends.settings(database, f"steady{int(pruning)}").model_copy(update={
        "outbox_retention_s": SHORT_RETENTION_S if pruning else NO_RETENTION_S,
        "retention_interval_s": RETENTION_INTERVAL_S})
    accounts = [account for _, account in await open_accounts(settings, 8)]
    engine = create_engine(settings)
    relay = await Service("relay", settings, ctx.log_dir).start()
    service = CommandService(engine, settings.kafka_topic)
    latencies: list[float] = []
    samples: list[tuple[float, int]] = []  # (seconds into the run, outbox rows)

    async def one_deposit(account: str) -> None:
        started = time.perf_counter()
        await service.execute(c.Deposit(account_id=account, amount_minor=1,
                                        reference=uuid.uuid4().hex[:8]))
        latencies.append(time.perf_counter() - started)

    try:
        started, sent, in_flight = time.perf_counter(), 0, set()
        next_sample = 0.0
        while (elapsed := time.perf_counter() - started) < seconds:
            due = int(elapsed * STEADY_RATE)  # open loop: the offered rate does not wait
            for _ in range(due - sent):
                task = asyncio.create_task(one_deposit(accounts[sent % len(accounts)]))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                sent += 1
            if elapsed >= next_sample:
                samples.append((round(elapsed, 1), await _outbox_rows(engine)))
                next_sample += seconds / 12
            await asyncio.sleep(0.005)
        await asyncio.gather(*in_flight)
        samples.append((round(time.perf_counter() - started, 1), await _outbox_rows(engine)))
    finally:
        await relay.stop()
        await engine.dispose()
        await ctx.backends.drop_write_database(database)
    return {"commands": sent, "latency": latency_summary(latencies),
            "outbox_rows": samples, "max_outbox_rows": max(n for _, n in samples)}


async def _outbox_rows(engine) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(outbox))
