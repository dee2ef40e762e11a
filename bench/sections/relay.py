"""2. Relay: events/s published by `OutboxRelay` from a pre-filled outbox, side by side with
raw aiokafka producing the very same messages (read back from that outbox) with the same
producer settings, to a topic with the same partitions on the same broker. Every size of
`relay_sizes` is measured (how cost grows); the main size also serves the peer."""

from __future__ import annotations

import asyncio
import os
import time

import sqlalchemy as sa

from bench.context import Context
from bench.profiling import Recording
from bench.raw import raw_produce
from bench.sections import relay_retention
from bench.stats import CpuMeter, latency_summary, rate, ratio
from bench.workload import fill_write_model
from command_service.db.engine import create_engine
from command_service.db.tables import outbox
from command_service.outbox.backlog import outbox_backlog, resend_from
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from shared.kafka import ensure_topic, make_producer

BIGGER_BATCH = 5000


async def drain_outbox(settings, engine, expected: int, max_seconds: float | None = None
                       ) -> dict:
    """The project's relay, `run_once` after `run_once`, until `expected` rows are published
    (or `max_seconds` pass). Returns the rate and each batch's publish latency: the time a row
    waits from its claim until its sent mark is committed."""
    await ensure_topic(settings)
    producer = make_producer(settings)
    await producer.start()
    lease = LeaderLease(engine, settings.relay_lease_s)
    stop = asyncio.Event()
    try:
        relay = OutboxRelay(engine, producer, lease, batch_size=settings.relay_batch_size,
                            idle_poll_s=settings.relay_idle_poll_ms / 1000)
        phases, batch_latencies = _time_phases(relay)
        published, empty = 0, 0
        started = time.perf_counter()
        if max_seconds is not None:
            asyncio.get_running_loop().call_later(max_seconds, stop.set)
        while published < expected and not stop.is_set():
            n = await relay.run_once(stop)
            published += n
            if not n:
                empty += 1
                if empty > 200:
                    raise RuntimeError(f"the relay stopped at {published} of {expected} rows")
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
        await lease.release()  # the next measurement's relay must not wait out the lease
    return {"events": published, "seconds": round(elapsed, 2),
            "events_per_s": rate(published, elapsed),
            "batch_size": settings.relay_batch_size,
            "row_publish_latency": latency_summary(batch_latencies),
            "share_of_time": {name: round(spent / elapsed, 3) for name, spent in phases.items()}}


def _time_phases(relay: OutboxRelay) -> tuple[dict[str, float], list[float]]:
    """Time spent in each step of the relay's cycle, by wrapping the instance's own methods
    (the claim query, handing rows to the producer, the acks with the sent mark; the last
    overlaps the next batch's claim, so the shares can add up to more than 1), and each
    batch's latency from the start of its claim to its committed mark."""
    spent: dict[str, float] = {}
    claimed_at: dict[int, float] = {}  # first row id of a batch -> when its claim started
    latencies: list[float] = []
    for name, label in (("_claim", "claim query"), ("_send", "hand to producer"),
                        ("_settle", "acks + mark sent")):
        method = getattr(relay, name)
        spent[label] = 0.0

        async def timed(*args, _method=method, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                result = await _method(*args, **kwargs)
                if _label == "claim query" and result:
                    claimed_at[result[0].id] = started
                return result
            finally:
                now = time.perf_counter()
                spent[_label] += now - started
                if _label == "acks + mark sent":
                    latencies.append(now - claimed_at.pop(args[0][0].id))

        setattr(relay, name, timed)
    return spent, latencies


async def outbox_messages(engine) -> list[tuple[bytes, bytes, list]]:
    """(key, value, headers) of every outbox row, as the relay sends them."""
    import json

    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(outbox.c.message_key, outbox.c.payload,
                                             outbox.c.headers).order_by(outbox.c.id))).all()
    return [(key.encode(), payload.encode(),
             [(k, v.encode()) for k, v in json.loads(headers).items()])
            for key, payload, headers in rows]


async def _one_size(ctx: Context, size: int, keep: bool) -> dict:
    database = await ctx.backends.new_write_database(f"relay{size}")
    settings = ctx.backends.settings(database, f"relay{size}")
    engine = create_engine(settings)
    try:
        ctx.say(f"relay: filling an outbox of {size:,} rows")
        await fill_write_model(engine, settings.kafka_topic, size)
        ctx.say(f"relay: publishing {size:,} rows with OutboxRelay")
        meter = CpuMeter({"bench (relay)": os.getpid(),
                          ctx.backends.broker_kind: ctx.backends.broker.pid}).start()
        ours = await drain_outbox(settings, engine, size)
        ours["cpu_cores"] = meter.stop()
        backlog, _ = await outbox_backlog(engine)
        ours["unsent_after"] = backlog
        messages = await outbox_messages(engine)
        raw_settings = settings.model_copy(update={"kafka_topic": settings.kafka_topic + "-raw"})
        await ensure_topic(raw_settings)
        ctx.say(f"relay: producing the same {len(messages):,} messages with raw aiokafka")
        raw_s = await raw_produce(raw_settings, raw_settings.kafka_topic, messages)
        raw = {"events": len(messages), "seconds": round(raw_s, 2),
               "events_per_s": rate(len(messages), raw_s)}
        result = {"outbox_rows": size, "ours": ours, "raw": raw,
                  "ratio": ratio(ours["events_per_s"], raw["events_per_s"])}
        if keep:
            # The same rows again with a bigger claim (CQRS_RELAY_BATCH_SIZE): the knob.
            await resend_from(engine, 1, settings.kafka_topic)
            bigger = settings.model_copy(update={"relay_batch_size": BIGGER_BATCH})
            ctx.say(f"relay: the same rows again with batches of {BIGGER_BATCH:,}")
            tuned = await drain_outbox(bigger, engine, size)
            result["ours_bigger_batch"] = {
                **tuned, "ratio": ratio(tuned["events_per_s"], raw["events_per_s"])}
        if keep and ctx.profile:
            ctx.say("relay: profiling OutboxRelay (the same outbox, queued again)")
            await resend_from(engine, 1, settings.kafka_topic)
            async with Recording(os.getpid(), ctx.sizes.profile_seconds,
                                 ctx.log_dir / "profile-relay.txt", "relay (in the bench "
                                 "process)") as rec:
                await drain_outbox(settings, engine, size, ctx.sizes.profile_seconds + 0.5)
            result["profile"] = rec.summary
        if keep:
            ctx.shared["outbox"] = {"database": database, "settings": settings,
                                    "messages": messages, "ours": ours, "raw": raw}
        return result
    finally:
        await engine.dispose()
        if not keep:
            await ctx.backends.drop_write_database(database)


async def run(ctx: Context) -> dict:
    sizes = ctx.sizes
    runs = []
    for size in sizes.relay_sizes:
        runs.append(await _one_size(ctx, size, keep=size == sizes.relay_main))
    main = next(r for r in runs if r["outbox_rows"] == sizes.relay_main)
    history = await relay_retention.with_history(ctx, sizes.relay_sizes[0], sizes.relay_history,
                                                 drain_outbox)
    steady = await relay_retention.steady_load(ctx, sizes.steady_seconds)
    return {"what": "OutboxRelay.run_once until a pre-filled outbox is sent, vs aiokafka "
                    "producing the same messages (acks=all, same linger and batch size)",
            **main, "by_size": runs, "with_history": history, "steady_load": steady}
