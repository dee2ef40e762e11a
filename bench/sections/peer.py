"""6. The peer: python-cqrs's outbox relay (`EventProducer` over
`SqlAlchemyOutboxedEventRepository` and `KafkaMessageBroker`), the closest Python peer,
publishing the same rows from the same database to the same broker, run the way its README
documents: `async for batch in producer.event_batch_generator(batch_size)`, `send_message`
for each, `repository.commit()`, then `asyncio.sleep(poll)`.

- defaults: its `event_batch_generator` default batch (100) and the README's poll (10 s);
- tuned: its documented knobs turned up: batch 1,000 and poll 0.

Its outbox is its own table (`OutboxModel`, renamed with its documented
`rebind_outbox_model` so it sits beside ours), filled with the same messages as ours: each
row is a `NotificationEvent` whose payload is our event envelope. Each run is bounded in
time; the rate is rows published over the time taken, and a row's publish latency is the
time from the claim that returned it to the commit of its status, as for our relay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from datetime import datetime

from bench.context import Context
from bench.stats import CpuMeter, latency_summary, rate, ratio

TABLE = "python_cqrs_outbox"


def _unavailable(reason: str) -> dict:
    return {"status": "unavailable", "reason": reason}


async def run(ctx: Context) -> dict:
    try:
        import cqrs
        from cqrs.adapters.kafka import kafka_producer_factory
        from cqrs.message_brokers.kafka import KafkaMessageBroker
        from cqrs.outbox.repository import EventStatus
        from cqrs.outbox.sqlalchemy import OutboxModel
        from cqrs.serializers.json import JsonEventSerializer
    except ImportError as exc:
        return _unavailable(f"python-cqrs is not installed ({exc}); install the bench extra: "
                            "pip install -e '.[bench]'")
    shared = ctx.shared.get("outbox")
    if shared is None:
        return _unavailable("needs the relay measurement's outbox (run with the relay section)")
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
    from sqlalchemy.orm import declarative_base

    settings, messages = shared["settings"], shared["messages"]
    topic_base = f"{settings.kafka_topic}-peer"
    event_map = cqrs.OutboxedEventMap()
    names = {json.loads(value)["event_type"] for _, value, _ in messages}
    for name in names:
        event_map.register(name, cqrs.NotificationEvent)
    base = declarative_base()
    cqrs.rebind_outbox_model(OutboxModel, base, table_name=TABLE)
    table = OutboxModel.__table__
    # Its documented set-up: a plain async engine and session factory on the same database.
    engine = create_async_engine(settings.database_url)
    sessions = async_sessionmaker(engine)
    serializer = JsonEventSerializer()
    result: dict = {
        "what": "python-cqrs EventProducer + SqlAlchemyOutboxedEventRepository + "
                "KafkaMessageBroker, as its README runs it",
        "installed": f"python-cqrs {_version('python-cqrs')}, on this project's SQLAlchemy "
                     f"{_version('sqlalchemy')} and aiokafka {_version('aiokafka')} (its "
                     "sqlalchemy/kafka extras pin SQLAlchemy 2.0.* and aiokafka 0.10.0; "
                     "they are not installed, to leave the project's versions alone)",
        "rows": len(messages),
        "ours": shared["ours"], "raw": shared["raw"],
    }

    async def fill(topic: str) -> None:
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: table.drop(sync, checkfirst=True))
            await conn.run_sync(lambda sync: table.create(sync))
        rows = []
        for i, (_key, value, _headers) in enumerate(messages, start=1):
            envelope = json.loads(value)
            event = cqrs.NotificationEvent(event_name=envelope["event_type"], topic=topic,
                                           payload=envelope, event_id=uuid.uuid4(),
                                           event_timestamp=datetime.now())
            # What SqlAlchemyOutboxedEventRepository.add stores for the event, with the id
            # given: its BIGINT identity column does not auto-increment on SQLite.
            rows.append(dict(id=i, event_id=event.event_id, event_id_bin=event.event_id.bytes,
                             event_name=event.event_name, created_at=event.event_timestamp,
                             payload=serializer.serialize(event), topic=event.topic,
                             event_status=EventStatus.NEW, flush_counter=0))
            if len(rows) == 5000:
                async with engine.begin() as conn:
                    await conn.execute(table.insert(), rows)
                rows.clear()
        if rows:
            async with engine.begin() as conn:
                await conn.execute(table.insert(), rows)

    already_produced = [0]

    async def publish(label: str, batch_size: int, poll_s: float, window_s: float) -> dict:
        broker = KafkaMessageBroker(producer=kafka_producer_factory(
            dsn=settings.kafka_bootstrap_servers))
        producer_holder = broker._producer._producer  # the AIOKafkaProducer it made
        ctx.say(f"peer: publishing ({label}: batch {batch_size}, poll {poll_s:g} s, "
                f"at most {window_s:g} s)")
        published, cycles, sends, claims = 0, [], [], []
        already = already_produced[0]
        meter = CpuMeter({"bench (peer)": os.getpid(),
                          ctx.backends.broker_kind: ctx.backends.broker.pid}).start()
        started = time.perf_counter()
        try:
            async with sessions() as session:
                repository = cqrs.SqlAlchemyOutboxedEventRepository(session,
                                                                   event_map=event_map)
                producer = cqrs.EventProducer(broker, repository)
                claim = time.perf_counter()
                async for batch in producer.event_batch_generator(batch_size):
                    claims.append(time.perf_counter() - claim)
                    if not batch:
                        break
                    for message in batch:
                        sent = time.perf_counter()
                        await producer.send_message(message)
                        sends.append(time.perf_counter() - sent)
                    await producer.repository.commit()
                    cycles.append(time.perf_counter() - claim)
                    published += len(batch)
                    # The poll is part of its steady state, so the rate includes it.
                    left = window_s - (time.perf_counter() - started)
                    if left <= 0 or published + already >= len(messages):
                        break
                    await asyncio.sleep(min(poll_s, left))
                    if time.perf_counter() - started >= window_s:
                        break
                    claim = time.perf_counter()
        finally:
            elapsed = time.perf_counter() - started
            cpu = meter.stop()
            await producer_holder.stop()
        async with engine.connect() as conn:
            produced = await conn.scalar(sa.select(sa.func.count()).select_from(table).where(
                table.c.event_status == EventStatus.PRODUCED)) - already
        already_produced[0] += produced
        return {"batch_size": batch_size, "poll_s": poll_s, "window_s": window_s,
                "events": published, "marked_produced": produced, "seconds": round(elapsed, 2),
                "events_per_s": rate(published, elapsed),
                "row_publish_latency": latency_summary(cycles),
                "send_message_latency": latency_summary(sends),
                "claim_query_latency": latency_summary(claims), "cpu_cores": cpu}

    # python-cqrs sets its "cqrs" logger to DEBUG at import; the project's own loggers are
    # called "cqrs.*" too (cqrs.audit) and would start printing INFO. Put it back afterwards.
    cqrs_logger = logging.getLogger("cqrs")
    try:
        sizes = ctx.sizes
        ctx.say(f"peer: filling its outbox with the same {len(messages):,} rows")
        await fill(topic_base)
        # The tuned run goes on from where the defaults run stopped (a few hundred rows in).
        result["defaults"] = await publish("defaults", 100, 10.0, sizes.peer_default_window_s)
        result["tuned"] = await publish("tuned", 1000, 0.0, sizes.peer_tuned_window_s)
    except Exception as exc:
        result.update(status="unavailable",
                      reason=f"python-cqrs could not be run here: {exc.__class__.__name__}: "
                             f"{exc}")
        return result
    finally:
        cqrs_logger.setLevel(logging.NOTSET)
        async with engine.begin() as conn:
            await conn.run_sync(lambda sync: table.drop(sync, checkfirst=True))
        await engine.dispose()
        await ctx.backends.drop_write_database(shared["database"])
    ours = shared["ours"]
    for key in ("defaults", "tuned"):
        peer = result[key]
        peer["ours_ahead_by"] = ratio(ours["events_per_s"], peer["events_per_s"], 1)
        peer["ratio_to_raw"] = ratio(peer["events_per_s"], shared["raw"]["events_per_s"], 4)
    return result


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
