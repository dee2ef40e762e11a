"""1. Commands: deposits over HTTP against the command service (its own process), at
concurrency 1, 8 and 32, each level side by side with two ceilings at the same concurrency:

- a bare FastAPI endpoint (bench/bare_api.py, its own process, as many workers as the
  command service) running the raw transaction below, driven by the same load generator:
  what the framework and server cost, so the gap to it is what our own code costs;
- the bare driver doing the deposit's transaction (lock the account row, update it, insert
  the event and outbox rows, commit) on the same database, with no HTTP at all.

Each HTTP run also measures the CPU its server process used per deposit answered."""

from __future__ import annotations

import asyncio
import contextlib
import os

from bench.context import Context, open_accounts
from bench.procs import Service
from bench.profiling import Recording
from bench.raw import RawWriteModel, closed_loop
from bench.sections.command_trips import round_trips
from bench.stats import CpuMeter, latency_summary, rate, ratio
from bench.workload import fill_write_model
from command_service.db.engine import create_engine


async def _deposits(server: Service, accounts: list[str], concurrency: int,
                    seconds: float) -> dict:
    """The load generator of every HTTP run: the command service's or the bare endpoint's."""
    async def deposit(worker: int, _i: int) -> bool:
        account = accounts[worker % len(accounts)]
        status, _, _ = await server.http.post(f"/v1/accounts/{account}/deposits",
                                              {"amount": "1.00", "reference": "bench"})
        return status == 201

    return await closed_loop(concurrency, seconds, deposit)


async def _measured(server: Service, accounts: list[str], concurrency: int,
                    seconds: float) -> dict:
    # The server counts with its worker processes, if it has any; the load generator alone.
    meter = CpuMeter({server.role: server.pid, "load generator": os.getpid()},
                     trees=(server.role,)).start()
    figures = _figures(await _deposits(server, accounts, concurrency, seconds))
    figures["cpu_cores"] = meter.stop()
    used = meter.seconds.get(server.role)
    figures["cpu_ms_per_deposit"] = (round(used * 1000 / figures["count"], 3)
                                     if used is not None and figures["count"] else None)
    return figures


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


async def _levels(ctx: Context, api: Service, bare: Service, settings, accounts: list[str],
                  levels: tuple[int, ...], label: str) -> list[dict]:
    rows = []
    seconds = ctx.sizes.command_seconds
    for concurrency in levels:
        ctx.say(f"commands{label}: concurrency {concurrency}, ours, the bare endpoint, raw")
        ours = await _measured(api, accounts, concurrency, seconds)
        bare_figures = await _measured(bare, accounts, concurrency, seconds)
        raw = _figures(await _raw(settings.database_url, settings.database_timeout_s,
                                  settings.kafka_topic, accounts, concurrency, seconds))
        rows.append({
            "concurrency": concurrency, "ours": ours, "bare": bare_figures, "raw": raw,
            "throughput_ratio": ratio(ours["throughput_per_s"], raw["throughput_per_s"]),
            "p50_ratio": ratio(ours["p50_ms"], raw["p50_ms"]),
            "p99_ratio": ratio(ours["p99_ms"], raw["p99_ms"]),
            "bare_throughput_ratio": ratio(ours["throughput_per_s"],
                                           bare_figures["throughput_per_s"]),
            "bare_p99_ratio": ratio(ours["p99_ms"], bare_figures["p99_ms"]),
            "cpu_ratio": ratio(ours["cpu_ms_per_deposit"],
                               bare_figures["cpu_ms_per_deposit"]),
        })
    return rows


async def _every_core(ctx: Context, settings, accounts: list[str]) -> dict:
    """Concurrency 32 again, with the command service and the bare endpoint each serving
    one worker process per core (`command-api --workers N`): what the other cores add."""
    workers = len(os.sched_getaffinity(0))
    if workers < 2:
        return {"status": "skipped", "reason": "one core: nothing to add"}
    # Each worker opens its own pool: the one-worker budget of connections is split between
    # them (as docs/operations.md advises), which also keeps this run, beside the one-worker
    # servers still up, within MySQL's default max_connections (151).
    settings = settings.model_copy(update={
        "database_pool_size": -(-settings.database_pool_size // workers)})
    api = await Service("command-api", settings, ctx.log_dir, workers=workers).start()
    bare = Service("bare-api", settings, ctx.log_dir, module="bench.bare_api",
                   workers=workers)
    try:
        await bare.start()
        for server in (api, bare):  # warm-up: every worker's pool and caches
            await _deposits(server, accounts, 8, min(1.0, ctx.sizes.command_seconds))
        rows = await _levels(ctx, api, bare, settings, accounts, (32,),
                             f" with {workers} workers")
    finally:
        await bare.stop()
        await api.stop()
    return {"status": "ok", "workers": workers,
            "pool_size_per_worker": settings.database_pool_size, **rows[0]}


async def run(ctx: Context) -> dict:
    sizes = ctx.sizes
    database = await ctx.backends.new_write_database("commands")
    settings = ctx.backends.settings(database, "commands")
    pairs = await open_accounts(settings, sizes.command_accounts)
    accounts = [account for _, account in pairs]
    api = await Service("command-api", settings, ctx.log_dir).start()
    # The same worker count as the command service under test, whatever it is.
    bare = Service("bare-api", settings, ctx.log_dir, module="bench.bare_api",
                   workers=api.workers)
    result: dict = {"what": "POST /v1/accounts/{id}/deposits over HTTP, closed loop, each "
                            "worker on its own account; bare = a bare FastAPI endpoint "
                            "running the raw transaction, same load generator; raw = the "
                            "bare driver doing the same transaction at the same concurrency; "
                            "cpu_ms_per_deposit = the server's CPU time (its process and any "
                            "workers) over the run / deposits answered 201",
                    "seconds_per_level": sizes.command_seconds, "api_workers": api.workers}
    try:
        ctx.say("commands: round trips per command, on the wire")
        result["round_trips"] = await round_trips(settings)
        await bare.start()
        for server in (api, bare):  # warm-up
            await _deposits(server, accounts, 4, min(1.0, sizes.command_seconds))
        result["levels"] = await _levels(ctx, api, bare, settings, accounts,
                                         sizes.command_concurrency, "")
        result["every_core"] = await _every_core(ctx, settings, accounts)
        if ctx.profile:
            result["profile"] = {}
            for concurrency in (1, 32):
                ctx.say(f"commands: profiling the command service at concurrency {concurrency}")
                async with Recording(api.pid, sizes.profile_seconds,
                                     ctx.log_dir / f"profile-command-api-c{concurrency}.txt",
                                     f"command-api, concurrency {concurrency}") as rec:
                    await _deposits(api, accounts, concurrency, sizes.profile_seconds + 0.5)
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
            with_history = await _levels(ctx, api, bare, settings, accounts, levels,
                                         f" with {sizes.history_events:,} events of history")
            result["with_history"] = {"history_events": sizes.history_events,
                                      "levels": with_history}
    finally:
        await bare.stop()
        await api.stop()
        await asyncio.shield(ctx.backends.drop_write_database(database))
    return result
