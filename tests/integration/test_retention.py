"""Retention against a real write model, broker and read store: what is pruned, and that pruning
never costs an event (command_service/retention.py, projector/dead_letters.py)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import sqlalchemy as sa

from command_service.db.tables import commands, events, outbox, utc_now
from command_service.domain import commands as c
from command_service.idempotency import IdempotencyKey, StoredResponse
from command_service.outbox.backlog import resend_from
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from command_service.retention import (
    clear_expired_responses,
    keep_pruned,
    prune,
    prune_outbox,
)
from command_service.service import CommandService
from projector.dead_letters import DeadLetters
from shared.envelope import EventEnvelope
from shared.envelope import utc_now as aware_now
from tests.integration.test_relay import consume_all, make_history
from tests.support.processes import Process

EVERYTHING_SENT_SO_FAR = timedelta(days=-1)  # a cutoff in the future: every sent row is old


async def count(engine, query) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(query)).scalar_one()


async def event_ids(engine) -> set[str]:
    async with engine.connect() as conn:
        return set((await conn.execute(sa.select(events.c.event_id))).scalars())


async def test_pruning_under_a_command_load_loses_nothing_unsent(engine, settings, producer):
    """Commands on four accounts at once (on MySQL their ids then commit out of order), the
    relay claiming and marking, and the pruner deleting everything sent, all at the same time."""
    accounts = [await make_history(engine, settings, deposits=0) for _ in range(4)]
    service = CommandService(engine, settings.kafka_topic)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    done = asyncio.Event()

    async def deposits() -> None:
        for _ in range(60):
            await asyncio.gather(*(service.execute(c.Deposit(
                account_id=account, amount_minor=1, reference=None)) for account in accounts))
        done.set()

    async def relay_loop() -> None:
        while not done.is_set():
            await relay.run_once()
            await asyncio.sleep(0)

    async def prune_loop() -> int:
        pruned = 0
        while not done.is_set():
            pruned += await prune_outbox(engine, utc_now() - EVERYTHING_SENT_SO_FAR)
            await asyncio.sleep(0.005)
        return pruned

    _, _, pruned = await asyncio.gather(deposits(), relay_loop(), prune_loop())
    while await relay.run_once():
        pass

    written = await event_ids(engine)
    assert len(written) == 4 * 2 + 240
    assert pruned > 0, "the pruner ran beside the relay, not after it"
    published = {EventEnvelope.from_json(m.value).event_id
                 for m in await consume_all(settings, len(written))}
    assert written <= published, "an event was pruned before it was published"
    assert await count(engine, sa.select(sa.func.count()).select_from(outbox)
                       .where(outbox.c.sent_at.is_(None))) == 0


async def test_pruning_keeps_an_unsent_row_below_rows_already_sent(engine, settings, producer):
    """Ids do not say what was sent: a row that commits late with a lower id (MySQL), or one
    of an aggregate held back after the broker refused it, waits below rows already sent."""
    await make_history(engine, settings, deposits=3)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    assert await relay.run_once() == 5
    await make_history(engine, settings, deposits=0)  # two rows, still waiting
    await make_history(engine, settings, deposits=0)  # two rows, sent past the waiting ones
    async with engine.begin() as conn:
        unsent = list((await conn.execute(sa.select(outbox.c.id).where(
            outbox.c.sent_at.is_(None)).order_by(outbox.c.id))).scalars())
        await conn.execute(outbox.update().where(outbox.c.id.in_(unsent[2:]))
                           .values(sent_at=utc_now()))

    assert await prune_outbox(engine, utc_now() - EVERYTHING_SENT_SO_FAR) == 7
    async with engine.connect() as conn:
        left = (await conn.execute(sa.select(outbox.c.id, outbox.c.sent_at))).all()
    assert left == [(unsent[0], None), (unsent[1], None)]
    assert await relay.run_once() == 2


async def test_rows_younger_than_the_retention_stay(engine, settings, producer):
    await make_history(engine, settings, deposits=2)
    assert await OutboxRelay(engine, producer, LeaderLease(engine, 5)).run_once() == 4

    week = settings.model_copy(update={"outbox_retention_s": 7 * 86_400})
    assert (await prune(engine, week)).outbox_rows == 0
    assert (await prune(engine, settings.model_copy(
        update={"outbox_retention_s": 0}))).outbox_rows == 4


async def test_resend_from_after_pruning_republishes_every_event(engine, settings, producer):
    await make_history(engine, settings, deposits=3)
    relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
    assert await relay.run_once() == 5
    assert await prune_outbox(engine, utc_now() - EVERYTHING_SENT_SO_FAR) == 5

    assert await resend_from(engine, 1, settings.kafka_topic) == 5
    assert await relay.run_once() == 5
    again = [EventEnvelope.from_json(m.value) for m in await consume_all(settings, 10)]
    assert sorted(e.position for e in again) == sorted([1, 2, 3, 4, 5] * 2)
    assert {e.event_id for e in again} == await event_ids(engine)


async def test_only_the_leading_relay_prunes(engine, settings, producer):
    await make_history(engine, settings, deposits=1)
    assert await OutboxRelay(engine, producer, LeaderLease(engine, 5)).run_once() == 3
    often = settings.model_copy(update={"outbox_retention_s": 0, "retention_interval_s": 0.01})
    asked: list[bool] = []
    leading = False

    def is_leader() -> bool:
        asked.append(leading)
        return leading

    async def outbox_rows() -> int:
        return await count(engine, sa.select(sa.func.count()).select_from(outbox))

    stop = asyncio.Event()
    pruner = asyncio.create_task(keep_pruned(engine, often, stop, is_leader))
    try:
        await wait_for(lambda: len(asked) >= 5)  # five passes came and went as a standby
        assert await outbox_rows() == 3
        leading = True
        await wait_for(lambda: True in asked)
        await wait_for_async(lambda: outbox_rows(), 0)
    finally:
        stop.set()
        await pruner


async def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the condition never held"
        await asyncio.sleep(0.01)


async def wait_for_async(read, expected, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while (value := await read()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"{value} != {expected}"
        await asyncio.sleep(0.02)


async def test_the_relay_process_prunes_what_it_sent_and_clears_expired_responses(
        engine, settings, tmp_path):
    """The console script's relay, as deployed: retention runs beside it on its own."""
    service = CommandService(engine, settings.kafka_topic)
    result = await service.execute(
        c.RegisterCustomer(name="Pruned", email=f"{uuid.uuid4().hex}@example.com",
                           customer_id=str(uuid.uuid4())),
        idempotency=IdempotencyKey(uuid.uuid4().hex, "f" * 64, timedelta(seconds=-1)),
        render=a_stored_response)
    await make_history(engine, settings, deposits=2)
    relay = Process("relay", settings.model_copy(update={
        "outbox_retention_s": 0, "retention_interval_s": 0.1}), tmp_path)
    relay.start()
    try:
        await relay.ready()
        await wait_for_async(lambda: count(engine, sa.select(sa.func.count())
                                           .select_from(outbox)), 0, timeout_s=30)
        await wait_for_async(lambda: count(engine, sa.select(sa.func.count()).select_from(
            commands).where(commands.c.command_id == result.command_id,
                            commands.c.response_body.is_not(None))), 0, timeout_s=30)
    finally:
        assert relay.terminate() == 0, relay.tail()
    published = {EventEnvelope.from_json(m.value).event_id
                 for m in await consume_all(settings, 5)}
    assert published == await event_ids(engine), "pruned, and every event published first"


def a_stored_response(_result) -> StoredResponse:
    return StoredResponse(201, '{"ok": true}', {"Location": "/somewhere"})


async def test_expired_idempotency_responses_are_cleared_and_live_ones_kept(engine, settings):
    service = CommandService(engine, settings.kafka_topic)

    async def register(ttl: timedelta) -> str:
        result = await service.execute(
            c.RegisterCustomer(name="Kept Or Not", email=f"{uuid.uuid4().hex}@example.com",
                               customer_id=str(uuid.uuid4())),
            idempotency=IdempotencyKey(uuid.uuid4().hex, "f" * 64, ttl), render=a_stored_response)
        return result.command_id

    expired, live = await register(timedelta(seconds=-1)), await register(timedelta(days=1))
    assert await clear_expired_responses(engine, utc_now()) == 1

    async with engine.connect() as conn:
        rows = {row.command_id: row for row in await conn.execute(
            sa.select(commands).where(commands.c.command_id.in_([expired, live])))}
    assert rows[expired].response_body is None and rows[expired].idempotency_key is None
    assert rows[expired].status == "completed", "the command log keeps the command itself"
    assert rows[live].response_body == '{"ok": true}' and rows[live].idempotency_key


async def test_discarded_dead_letters_go_after_their_retention_and_parked_ones_stay(read_db):
    dead_letters = DeadLetters(read_db)
    await read_db.dead_letters.insert_many([
        {"_id": "old-discarded", "status": "discarded",
         "discarded_at": aware_now() - timedelta(days=31)},
        {"_id": "new-discarded", "status": "discarded", "discarded_at": aware_now()},
        {"_id": "old-parked", "status": "parked",
         "parked_at": aware_now() - timedelta(days=365)},
    ])

    assert await dead_letters.delete_discarded(aware_now() - timedelta(days=30)) == 1
    left = {d["_id"] async for d in read_db.dead_letters.find({}, {"_id": 1})}
    assert left == {"new-discarded", "old-parked"}


async def test_the_projector_process_deletes_discarded_dead_letters(settings, read_db, tmp_path):
    await read_db.dead_letters.insert_many([
        {"_id": "discarded", "status": "discarded", "discarded_at": aware_now()},
        {"_id": "parked", "status": "parked", "parked_at": aware_now()}])
    projector = Process("projector", settings.model_copy(update={
        "dead_letter_retention_s": 0, "retention_interval_s": 0.1}), tmp_path)
    projector.start()
    try:
        await projector.ready()
        await wait_for_async(lambda: read_db.dead_letters.count_documents({}), 1, timeout_s=30)
    finally:
        assert projector.terminate() == 0, projector.tail()
    assert await read_db.dead_letters.find_one({}, {"_id": 1}) == {"_id": "parked"}

