"""1. Commands: deposits over HTTP against the command service (its own process), at
concurrency 1, 8 and 32, each level side by side with the raw ceiling at the same
concurrency: the bare driver doing the deposit's transaction (lock the account row, update
it, insert the event and outbox rows, commit) on the same database."""

from __future__ import annotations

import asyncio
import contextlib
import os

from bench.context import Context, open_accounts
from bench.procs import Service
from bench.profiling import Recording
from bench.raw import RawWriteModel, closed_loop
from bench.stats import CpuMeter, latency_summary, rate, ratio
from bench.workload import fill_write_model
from command_service.db.engine import create_engine


async def _ours(api: Service, accounts: list[str], concurrency: int, seconds: float) -> dict:
    async def deposit(worker: int, _i: int) -> bool:
        account = accounts[worker % len(accounts)]
        status, _, _ = await api.http.post(f"/v1/accounts/{account}/deposits",
                                           {"amount": "1.00", "reference": "bench"})
        return status == 201

    return await closed_loop(concurrency, seconds, deposit)


async def _raw(database_url: str, timeout_s: float, topic: str, accounts: list[str],
               concurrency: int, seconds: float) -> dict:
    # SQLite has one writer at a time. Connections that wait for it sleep in its busy
    # handler (1, 2, 5, ... 100 ms), and each commit by one connection empties the page cache
    # of every other. The fastest a client can go is one connection that its workers queue
    # for, so that is the ceiling. MySQL locks rows: a connection per worker, no queue.
    sqlite = database_url.startswith("sqlite")
    connections = [await RawWriteModel.connect(database_url, timeout_s)
                   for _ in range(1 if sqlite else concurrency)]
    connections *= concurrency if sqlite else 1
    queue = asyncio.Lock() if sqlite else contextlib.nullcontext()
    try:
        async def deposit(worker: int, _i: int) -> bool:
            async with queue:
                await connections[worker].deposit(accounts[worker % len(accounts)], topic)
            return True

        return await closed_loop(concurrency, seconds, deposit)
    finally:
        for conn in set(connections):
            await conn.close()


def _figures(run: dict) -> dict:
    return {"throughput_per_s": rate(len(run["latencies"]), run["elapsed_s"]),
            "errors": run["errors"], **latency_summary(run["latencies"])}


async def _levels(ctx: Context, api: Service, settings, accounts: list[str],
                  levels: tuple[int, ...], label: str) -> list[dict]:
    rows = []
    for concurrency in levels:
        ctx.say(f"commands{label}: concurrency {concurrency}, ours then raw")
        meter = CpuMeter({"command-api": api.pid, "load generator": os.getpid()}).start()
        ours = _figures(await _ours(api, accounts, concurrency, ctx.sizes.command_seconds))
        ours["cpu_cores"] = meter.stop()
        raw = _figures(await _raw(settings.database_url, settings.database_timeout_s,
                                  settings.kafka_topic, accounts, concurrency,
                                  ctx.sizes.command_seconds))
        rows.append({
            "concurrency": concurrency, "ours": ours, "raw": raw,
            "throughput_ratio": ratio(ours["throughput_per_s"], raw["throughput_per_s"]),
            "p50_ratio": ratio(ours["p50_ms"], raw["p50_ms"]),
            "p99_ratio": ratio(ours["p99_ms"], raw["p99_ms"]),
        })
    return rows


async def run(ctx: Context) -> dict:
    sizes = ctx.sizes
    database = await ctx.backends.new_write_database("commands")
    settings = ctx.backends.settings(database, "commands")
    pairs = await open_accounts(settings, sizes.command_accounts)
    accounts = [account for _, account in pairs]
    api = await Service("command-api", settings, ctx.log_dir).start()
    result: dict = {"what": "POST /v1/accounts/{id}/deposits over HTTP, closed loop, each "
                            "worker on its own account; raw = the bare driver doing the same "
                            "transaction at the same concurrency",
                    "seconds_per_level": sizes.command_seconds}
    try:
        await _ours(api, accounts, 4, min(1.0, sizes.command_seconds))  # warm-up
        result["levels"] = await _levels(ctx, api, settings, accounts,
                                         sizes.command_concurrency, "")
        if ctx.profile:
            result["profile"] = {}
            for concurrency in (1, 32):
                ctx.say(f"commands: profiling the command service at concurrency {concurrency}")
                async with Recording(api.pid, sizes.profile_seconds,
                                     ctx.log_dir / f"profile-command-api-c{concurrency}.txt",
                                     f"command-api, concurrency {concurrency}") as rec:
                    await _ours(api, accounts, concurrency, sizes.profile_seconds + 0.5)
                result["profile"][f"concurrency {concurrency}"] = rec.summary
        if sizes.history_events:
            ctx.say(f"commands: writing {sizes.history_events:,} events of history first")
            engine = create_engine(settings)
            try:
                await fill_write_model(engine, settings.kafka_topic, sizes.history_events,
                                       sent=True)
            finally:
                await engine.dispose()
            levels = tuple(c for c in sizes.command_concurrency if c in (1, 32))
            with_history = await _levels(ctx, api, settings, accounts, levels,
                                         f" with {sizes.history_events:,} events of history")
            result["with_history"] = {"history_events": sizes.history_events,
                                      "levels": with_history}
    finally:
        await api.stop()
        await asyncio.shield(ctx.backends.drop_write_database(database))
    return result
