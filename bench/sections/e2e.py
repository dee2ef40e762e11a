"""4. End to end: the four processes of the system, each its own process, driven by deposits
over HTTP at a fixed offered rate (open loop: the rate does not bend to the service), and the
commit-to-visible lag of every command: from its response to the moment the account view
holds its version.

- Every command is watched by one poller that asks the read store for all outstanding
  accounts at once every 10 ms (so watching costs the store at most ~100 small finds a
  second, however high the rate); that is the lag reported for every command.
- One command in five is also read back through the query service with its
  X-Consistency-Token (read-your-writes): the lag as a client of the query API sees it.
- The sustainable rate is found in the run: offered rates rising by half each step until the
  pipeline stops keeping up (commands answered at the offered rate, every command visible
  soon after, lag not growing), then one step in between. The stage that fell behind first is
  the limit, named from the processes' own counters and CPU use.
- The floor: one event at a time through the bare components (driver commit, produce,
  consume, one upsert, one find_one), nothing batched or polled.
- Where the time goes: the relay's and the projector's stage histograms, read before and
  after each run (bench/stages.py): commit → claim → ack → fetch → written → visible.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import time

from pymongo import AsyncMongoClient

from bench.context import Context, open_accounts
from bench.procs import Service
from bench.raw import chain_floor
from bench.stages import (
    StageClock,
    breakdown,
    dominant_text,
    keeps_up,
    limiting_stage,
    target_at_half,
)
from bench.stats import CpuMeter, latency_summary, percentile, rate, ratio
from bench.visibility import Visibility

MAX_IN_FLIGHT = 256
QUERY_SAMPLE_EVERY = 5
# Each read-back that waits polls the store every 10 ms (query_service/consistency.py): a
# few of them at once are a client; hundreds would be a load test of the store instead.
MAX_READ_BACKS = 2


class Pipeline:
    def __init__(self, ctx: Context, settings, accounts: list[str]) -> None:
        self.ctx, self.settings, self.accounts = ctx, settings, accounts
        log_dir = ctx.log_dir
        self.command_api = Service("command-api", settings, log_dir)
        self.query_api = Service("query-api", settings, log_dir)
        self.relay = Service("relay", settings, log_dir)
        self.projector = Service("projector", settings, log_dir)
        self.client = AsyncMongoClient(settings.mongo_url, tz_aware=True)
        self.visibility = Visibility(self.client[settings.mongo_database])
        self.stage_clock = StageClock(self.relay, self.projector)

    @property
    def services(self) -> list[Service]:
        return [self.command_api, self.query_api, self.relay, self.projector]

    async def start(self) -> None:
        for service in self.services:
            await service.start()
        self.visibility.start()

    async def stop(self) -> None:
        await self.visibility.stop()
        for service in self.services:
            await service.stop()
        await self.client.drop_database(self.settings.mongo_database)
        await self.client.close()

    def cpu_meter(self) -> CpuMeter:
        backends = self.ctx.backends
        return CpuMeter({"command-api": self.command_api.pid, "query-api": self.query_api.pid,
                         "relay": self.relay.pid, "projector": self.projector.pid,
                         backends.broker_kind: backends.broker.pid,
                         "secantus": backends.read_store.pid,
                         "load generator": os.getpid()})

    async def counters(self) -> dict[str, float]:
        return {"published": await self.relay.metric("cqrs_relay_published_events_total"),
                "applied": await self.projector.metric("cqrs_projector_events_total",
                                                       {"outcome": "applied"})}

    async def offer(self, per_s: float, seconds: float, drain_s: float) -> dict:
        """Deposits at `per_s` for `seconds`, then wait up to `drain_s` for visibility."""
        vis = self.visibility
        vis.lags = []
        latencies: list[float] = []
        query_lags: list[float] = []
        errors = overload = skipped_read_backs = 0
        read_backs = 0
        tasks: set[asyncio.Task] = set()

        async def read_back(account: str, token: str, since: float) -> None:
            nonlocal read_backs, skipped_read_backs
            if read_backs >= MAX_READ_BACKS:
                skipped_read_backs += 1
                return
            read_backs += 1
            try:
                status, _, _ = await self.query_api.http.get(
                    f"/v1/accounts/{account}",
                    {"X-Consistency-Token": token, "X-Consistency-Wait-Ms": "10000"})
            finally:
                read_backs -= 1
            if status == 200:
                query_lags.append(time.perf_counter() - since)

        async def deposit(k: int) -> None:
            nonlocal errors
            account = self.accounts[k % len(self.accounts)]
            sent = time.perf_counter()
            try:
                status, headers, body = await self.command_api.http.post(
                    f"/v1/accounts/{account}/deposits", {"amount": "1.00"})
            except OSError:
                errors += 1
                return
            answered = time.perf_counter()
            if status != 201:
                errors += 1
                return
            latencies.append(answered - sent)
            vis.expect(account, json.loads(body)["version"], answered)
            if k % QUERY_SAMPLE_EVERY == 0:
                await read_back(account, headers["x-consistency-token"], answered)

        before = await self.counters()
        stages_before = await self.stage_clock.read()
        polls_before = vis.polls
        meter = self.cpu_meter().start()
        count = max(1, int(per_s * seconds))
        started = time.perf_counter()
        for k in range(count):
            delay = started + k / per_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= MAX_IN_FLIGHT:
                overload += 1
                continue
            task = asyncio.create_task(deposit(k))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        offered_for = time.perf_counter() - started
        if tasks:
            await asyncio.wait(set(tasks), timeout=30)
        answered_in = time.perf_counter() - started
        cpu = meter.stop()
        after = await self.counters()
        visible = await vis.drained(drain_s)
        # after the drain, so that the histograms hold every event the lags hold
        stages = breakdown(stages_before, await self.stage_clock.read(),
                           statistics.fmean(vis.lags) * 1000 if vis.lags else None,
                           statistics.fmean(latencies) * 1000 if latencies else None)
        window = max(answered_in, count / per_s)
        lags = list(vis.lags)
        thirds = max(1, len(lags) // 3)
        return {
            "offered_per_s": round(per_s, 1), "seconds": round(offered_for, 1),
            "answered_per_s": rate(len(latencies), window), "errors": errors,
            "not_sent_overloaded": overload,
            "command_latency": latency_summary(latencies),
            "lag": latency_summary(lags),
            "lag_via_query_api": latency_summary(query_lags),
            "read_backs_skipped": skipped_read_backs,
            "lag_p50_first_third_ms": _ms(percentile(lags[:thirds], 50)),
            "lag_p50_last_third_ms": _ms(percentile(lags[-thirds:], 50)),
            "not_visible_after_drain": vis.outstanding, "all_visible": visible,
            "relay_per_s": rate(int(after["published"] - before["published"]), window),
            "projector_per_s": rate(int(after["applied"] - before["applied"]), window),
            "cpu_cores": cpu,
            "store_polls_per_s": rate(vis.polls - polls_before, time.perf_counter() - started),
            "stages": stages,
        }

    async def settle(self) -> None:
        await self.visibility.drained(30)
        await asyncio.sleep(0.5)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


async def run(ctx: Context) -> dict:
    sizes = ctx.sizes
    database = await ctx.backends.new_write_database("e2e")
    settings = ctx.backends.settings(database, "e2e")
    pairs = await open_accounts(settings, sizes.e2e_accounts + 1)
    floor_account = pairs.pop()[1]
    accounts = [a for _, a in pairs]
    ctx.say(f"e2e: the floor, {sizes.floor_samples} events one at a time through bare "
            "components")
    floor = latency_summary(await chain_floor(settings, settings.database_url, floor_account,
                                              sizes.floor_samples))
    pipeline = Pipeline(ctx, settings, accounts)
    result: dict = {"what": __doc__.split("\n\n")[0].replace("\n", " "), "floor": floor,
                    "accounts": len(accounts)}
    try:
        await pipeline.start()
        for account in accounts:  # the opening events must be visible before we start
            pipeline.visibility.expect(account, 1, time.perf_counter())
        await pipeline.visibility.drained(60)
        # warm-up
        await pipeline.offer(10, min(2.0, sizes.e2e_step_seconds), 10)
        await pipeline.settle()

        ctx.say("e2e: finding the sustainable rate")
        steps, passed, failed = [], None, None
        per_s = 20.0 if sizes.name != "smoke" else 10.0
        for _ in range(sizes.e2e_max_steps):
            step = await pipeline.offer(per_s, sizes.e2e_step_seconds, 3.0)
            step["keeps_up"] = keeps_up(step)
            steps.append(step)
            ctx.say(f"e2e:   {per_s:7.1f}/s -> answered {step['answered_per_s']}/s, lag p50 "
                    f"{step['lag']['p50_ms']} ms p99 {step['lag']['p99_ms']} ms"
                    f"{'' if step['keeps_up'] else ' (falls behind)'}")
            await pipeline.settle()
            if not step["keeps_up"]:
                failed = step
                break
            passed = step
            per_s *= 1.5
        if passed and failed:
            between = math.sqrt(passed["offered_per_s"] * failed["offered_per_s"])
            step = await pipeline.offer(between, sizes.e2e_step_seconds, 3.0)
            step["keeps_up"] = keeps_up(step)
            steps.append(step)
            ctx.say(f"e2e:   {between:7.1f}/s -> "
                    f"{'keeps up' if step['keeps_up'] else 'falls behind'}")
            await pipeline.settle()
            if step["keeps_up"]:
                passed = step
            else:
                failed = step
        sustainable = passed["offered_per_s"] if passed else None
        result["search"] = {
            "steps": steps, "sustainable_per_s": sustainable,
            "limit": limiting_stage(failed, len(os.sched_getaffinity(0))) if failed else
            f"not reached by {steps[-1]['offered_per_s']}/s",
            "limit_step": failed}

        runs = []
        if sustainable:
            runs += [(f"{share}% of sustainable", sustainable * share / 100)
                     for share in (25, 50, 80)]
        # last, so that if it is beyond what this machine sustains, its backlog harms no other
        runs.append((f"fixed {sizes.e2e_fixed_rate:g}/s", sizes.e2e_fixed_rate))
        result["runs"] = []
        for label, per_s in runs:
            ctx.say(f"e2e: {label} ({per_s:.1f}/s) for {sizes.e2e_seconds:g} s")
            measured = await pipeline.offer(per_s, sizes.e2e_seconds, 15.0)
            measured["label"] = label
            measured["keeps_up"] = keeps_up(measured)
            measured["lag_p50_to_floor"] = ratio(measured["lag"]["p50_ms"], floor["p50_ms"], 2)
            result["runs"].append(measured)
            ctx.say(f"e2e:   lag p50 {measured['lag']['p50_ms']} ms p99 "
                    f"{measured['lag']['p99_ms']} ms; most in "
                    f"{dominant_text(measured['stages'])}")
            await pipeline.settle()
        result["target_at_50"] = target_at_half(result["runs"])
    finally:
        await pipeline.stop()
        await ctx.backends.drop_write_database(database)
    return result
