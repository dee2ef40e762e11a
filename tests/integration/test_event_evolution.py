"""Events that evolve, on a real broker and read store: a newer producer's extra fields park
nothing, older schema versions project and rebuild exactly as current events, and an event
this release cannot read is parked with that reason and applied, in order, by `dlq retry`
once a release that reads it is deployed."""

from __future__ import annotations

import asyncio
import json

import sqlalchemy as sa

from command_service.db.tables import events as events_table
from command_service.db.tables import naive_utc
from command_service.outbox.backlog import resend_from
from command_service.outbox.lease import LeaderLease
from command_service.outbox.relay import OutboxRelay
from operations.rebuild import rebuild
from operations.verify import fold_event_log
from projector.dead_letters import DeadLetters
from projector.failures import EARLIER_PARKED
from projector.planner import BatchPlan, plan_batch
from projector.store import ReadStore
from shared.envelope import EventEnvelope
from shared.kafka import ensure_topic, make_producer
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    TRANSACTIONS,
    ViewDatabase,
)
from shared.upcasting import READABLE_VERSIONS, UPCASTERS, EventReader
from tests.integration.test_cli import run_cli
from tests.integration.test_projector import RunningProjector, publish, until
from tests.support.bank import ADA
from tests.support.history import ADA_USD, BOB_USD, drive, frozen_messages

VIEWS = {"accounts": ACCOUNTS, "customers": CUSTOMERS, "daily_stats": DAILY_STATS}


def current_plan(events: int | None = None) -> BatchPlan:
    """What the views must hold: today's events of the scenario (the first `events` of them,
    the part an older frozen history has), planned by the pure planner."""
    return plan_batch(drive().log[:events], {}, {})


def _comparable(doc: dict) -> dict:
    """A customer's accounts are listed in the order the projector met them, which differs
    between partitions and runs: compare them by id."""
    if "accounts" in doc:
        doc = {**doc, "accounts": sorted(doc["accounts"], key=lambda a: a["account_id"])}
    return doc


async def assert_views_are(read_db, expected: BatchPlan) -> None:
    views = ViewDatabase(read_db)  # wherever a rebuild switched them
    await views.refresh()
    for name, collection in VIEWS.items():
        # `_rev` is the store's optimistic-concurrency counter, not content.
        stored = {doc["_id"]: _comparable(doc)
                  async for doc in views[collection].find({}, {"_rev": 0})}
        want = {key: _comparable(doc) for key, doc in getattr(expected, name).items()}
        assert stored == want, name
    for collection, entries in ((TRANSACTIONS, expected.transactions),
                                (HISTORY, expected.history)):
        stored = await views[collection].find({}).sort("_id", 1).to_list()
        assert stored == sorted(entries, key=lambda t: t["_id"]), collection


async def views_applied(read_db, versions: dict[tuple[str, str], int]) -> bool:
    for (collection, doc_id), version in versions.items():
        doc = await read_db[collection].find_one({"_id": doc_id})
        if not doc or doc["version"] < version:
            return False
    return True


def last_versions(plan: BatchPlan) -> dict[tuple[str, str], int]:
    """(view, id) -> the version each account and customer view must reach."""
    return {(collection, doc_id): doc["version"]
            for collection, docs in ((ACCOUNTS, plan.accounts), (CUSTOMERS, plan.customers))
            for doc_id, doc in docs.items()}


async def assert_projected_as(settings, read_db, expected: BatchPlan) -> None:
    """Run the projector over what the topic holds until the views reach `expected`'s
    versions: nothing parked, and every view exactly as planned."""
    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))):
        await until(lambda: views_applied(read_db, last_versions(expected)))
    assert await DeadLetters(read_db).list() == []
    await assert_views_are(read_db, expected)


async def test_a_newer_producer_that_adds_fields_makes_this_projector_park_nothing(
        settings, read_db):
    newer = [json.loads(e.to_json()) | {"tenant": "eu-1"} for e in drive().log]
    for message in newer:
        message["payload"]["channel"] = "mobile"
    await publish(settings, newer)
    await assert_projected_as(settings, read_db, current_plan())


async def test_the_messages_of_a_release_before_schema_versions_project_as_current_ones(
        settings, read_db):
    await publish(settings, frozen_messages())
    await assert_projected_as(settings, read_db, current_plan(len(frozen_messages())))


async def test_a_newer_schema_version_is_parked_with_that_reason_and_applied_after_the_upgrade(
        settings, read_db):
    messages = [json.loads(e.to_json()) for e in drive().log]
    [deposit] = [m for m in messages if m["aggregate_id"] == ADA_USD
                 and m["event_type"] == "MoneyDeposited"]
    deposit["schema_version"] = 2  # the next release's deposit: one more field
    deposit["payload"]["channel"] = "mobile"
    await publish(settings, messages)
    expected = current_plan()
    store = ReadStore(ViewDatabase(read_db))
    dead_letters = DeadLetters(read_db)
    others = {key: v for key, v in last_versions(expected).items()
              if key != (ACCOUNTS, ADA_USD) and key[1] != ADA}
    async with RunningProjector(settings, store):
        await until(lambda: views_applied(read_db, others))
        await until(lambda: _parked_count(dead_letters, ADA_USD, 4))
    parked = await dead_letters.list(ADA_USD)
    assert [(p["version"], p["error"]) for p in parked] == [
        (2, "MoneyDeposited schema version 2 is newer than this release reads (1); deploy a "
            "projector that reads it, then `cqrs-accounts dlq retry`"),
        (3, EARLIER_PARKED), (4, EARLIER_PARKED), (5, EARLIER_PARKED)]
    assert (await read_db[ACCOUNTS].find_one({"_id": ADA_USD}))["version"] == 1  # v1 applied
    assert (await dead_letters.retry(store)).still_parked == {ADA_USD: parked[0]["error"]}

    upgraded = EventReader({**READABLE_VERSIONS, "MoneyDeposited": 2}, UPCASTERS)
    report = await DeadLetters(read_db, upgraded).retry(store)
    assert (report.applied, report.still_parked) == (4, {})
    await assert_views_are(read_db, expected)


async def test_an_unknown_event_type_is_parked_with_that_reason_not_as_undecodable(
        settings, read_db):
    messages = [json.loads(e.to_json()) for e in drive().log]
    bob = [m for m in messages if m["aggregate_id"] == BOB_USD]
    assert [m["event_type"] for m in bob[-2:]] == ["AccountFrozen", "AccountUnfrozen"]
    bob[-2]["event_type"] = "AccountNicknamed"  # a type a later release adds,
    bob[-2]["tenant"] = "eu-1"  # with an envelope field this release does not know
    await publish(settings, messages)
    dead_letters = DeadLetters(read_db)
    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))):
        await until(lambda: _parked_count(dead_letters, BOB_USD, 2))
    parked = await dead_letters.list(BOB_USD)
    assert [(p["version"], p["event_type"], p["error"].split(" (")[0]) for p in parked] == [
        (4, "AccountNicknamed", "unknown event type AccountNicknamed"),
        (5, "AccountUnfrozen", EARLIER_PARKED)]
    # Kept as sent, unknown fields included: they are the next release's to read.
    assert json.loads(parked[0]["envelope"]) == bob[-2]
    assert (await read_db[ACCOUNTS].find_one({"_id": BOB_USD}))["version"] == 3


async def _parked_count(dead_letters: DeadLetters, aggregate_id: str, count: int) -> bool:
    return len(await dead_letters.list(aggregate_id)) >= count


async def store_the_earlier_release_s_events(engine) -> None:
    """The events table as migration 0003 leaves that of a deployment that ran the earlier
    release: its rows, each given schema version 1 by the column's default."""
    async with engine.begin() as conn:
        for message in map(EventEnvelope.from_json, frozen_messages()):
            await conn.execute(events_table.insert().values(
                event_id=message.event_id, aggregate_type=message.aggregate_type,
                aggregate_id=message.aggregate_id, version=message.version,
                event_type=message.event_type, payload=json.dumps(message.payload),
                occurred_at=naive_utc(message.occurred_at), command_id=message.command_id))
        stored = await conn.execute(sa.select(sa.func.min(events_table.c.schema_version),
                                              sa.func.max(events_table.c.schema_version)))
        assert stored.one() == (1, 1)


async def test_an_events_table_of_older_versions_rebuilds_and_folds_as_current_events(
        engine, read_db):
    await store_the_earlier_release_s_events(engine)
    expected = current_plan(len(frozen_messages()))
    report = await rebuild(engine, read_db)
    assert report.events == len(frozen_messages())
    await assert_views_are(read_db, expected)
    folded = await fold_event_log(engine)
    assert folded.accounts == expected.accounts and folded.customers == expected.customers


async def test_rebuild_and_verify_refuse_in_one_line_an_event_log_a_newer_release_wrote(
        engine, settings, read_db):
    """A rollback after the next release wrote a version this one does not know."""
    newer = EventEnvelope.from_json(frozen_messages()[0])
    async with engine.begin() as conn:
        await conn.execute(events_table.insert().values(
            event_id=newer.event_id, aggregate_type=newer.aggregate_type,
            aggregate_id=newer.aggregate_id, version=newer.version, schema_version=9,
            event_type=newer.event_type, payload=json.dumps(newer.payload),
            occurred_at=naive_utc(newer.occurred_at), command_id=newer.command_id))
    env = {"CQRS_DATABASE_URL": settings.database_url, "CQRS_MONGO_URL": settings.mongo_url,
           "CQRS_MONGO_DATABASE": settings.mongo_database,
           "CQRS_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers}
    for command in (["rebuild"], ["verify"]):
        result = await asyncio.to_thread(run_cli, *command, env=env)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr
        assert "CustomerRegistered schema version 9 is newer than this release reads" in lines[0]
    # The rebuild left none of the fresh collections it had begun to fill.
    assert [name for name in await read_db.list_collection_names() if "__" in name] == []


async def test_resend_from_publishes_the_earlier_release_s_events_and_the_views_converge(
        engine, settings, read_db):
    """A broker that lost data, after an upgrade and long after retention pruned the earlier
    release's outbox rows: its events go out again from the events table as they were
    written, and this release's projector reads them."""
    await store_the_earlier_release_s_events(engine)
    assert await resend_from(engine, 1, settings.kafka_topic) == len(frozen_messages())
    await ensure_topic(settings)
    producer = make_producer(settings)
    await producer.start()
    try:
        relay = OutboxRelay(engine, producer, LeaderLease(engine, 5))
        assert await relay.run_once() == len(frozen_messages())
    finally:
        await producer.stop()
    await assert_projected_as(settings, read_db, current_plan(len(frozen_messages())))
