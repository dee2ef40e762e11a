"""Operator tools against real servers: verify and repair, dead letters, rebuild under load,
several projectors and relays at once."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from operations.rebuild import rebuild
from operations.repair import repair
from operations.verify import find_drift
from projector.dead_letters import DeadLetters
from projector.store import ReadStore
from shared.readmodel import (
    ACCOUNTS,
    CUSTOMERS,
    DAILY_STATS,
    HISTORY,
    TRANSACTIONS,
    ViewDatabase,
)
from tests.integration.test_query_api_contract import walk_pages
from tests.stack import Stack


async def open_accounts(stack: Stack, count: int, deposit: str = "100.00") -> list[dict]:
    customer = (await stack.commands.post("/v1/customers", json={
        "name": "Operator Tester", "email": f"{uuid.uuid4().hex}@example.com"})).json()
    opened = []
    for _ in range(count):
        response = await stack.commands.post("/v1/accounts", json={
            "customer_id": customer["customer_id"], "type": "checking", "currency": "EUR",
            "initial_deposit": deposit})
        assert response.status_code == 201, response.text
        opened.append(response.json())
    return opened


async def settle(stack: Stack, account_id: str, version: int) -> None:
    await stack.eventually(f"/v1/accounts/{account_id}",
                           lambda r: r.status_code == 200 and r.json()["version"] >= version,
                           timeout_s=60)


async def test_verify_reports_each_kind_of_drift_and_repair_removes_it(settings, engine, read_db):
    async with Stack(settings) as stack:
        first, second = await open_accounts(stack, 2)
        last = await stack.commands.post(f"/v1/accounts/{first['account_id']}/withdrawals",
                                         json={"amount": "10.00"})
        await settle(stack, first["account_id"], last.json()["version"])
        await settle(stack, second["account_id"], 1)
        views = ViewDatabase(read_db)
        assert await find_drift(engine, views) == []

        await read_db[ACCOUNTS].update_one({"_id": first["account_id"]},
                                           {"$set": {"balance_minor": 1}})
        await read_db[TRANSACTIONS].delete_one({"account_id": second["account_id"]})
        await read_db[DAILY_STATS].update_many({}, {"$inc": {"count": 1}})
        await read_db[CUSTOMERS].update_one({"_id": first["customer_id"]},
                                            {"$set": {"name": "Mallory"}})

        drift = await find_drift(engine, views)
        found = {(d.view, d.field) for d in drift}
        assert {(ACCOUNTS, "balance_minor"), (TRANSACTIONS, "count"), (DAILY_STATS, "count"),
                (CUSTOMERS, "name")} <= found

        assert await repair(engine, views, {d.customer_id for d in drift}) == 1
        assert await find_drift(engine, views) == []
        view = (await stack.queries.get(f"/v1/accounts/{first['account_id']}")).json()
        assert view["balance"] == "90.00"


async def test_verify_finds_a_missing_an_extra_and_a_wrong_history_entry_and_repair_fixes_them(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        [account] = await open_accounts(stack, 1)
        account_id, customer_id = account["account_id"], account["customer_id"]
        frozen = await stack.commands.post(f"/v1/accounts/{account_id}/freeze",
                                           json={"reason": "audit"})
        await settle(stack, account_id, frozen.json()["version"])
        views = ViewDatabase(read_db)
        assert await find_drift(engine, views) == []
        entries = await read_db[HISTORY].find({"aggregate_id": account_id}).sort(
            "version", 1).to_list()
        assert [e["type"] for e in entries] == ["AccountOpened", "AccountFrozen"]
        before = await stack.queries.get(f"/v1/accounts/{account_id}/history")

        await read_db[HISTORY].delete_one({"aggregate_id": customer_id, "version": 1})
        await read_db[HISTORY].update_one({"_id": entries[1]["_id"]},
                                          {"$set": {"details.reason": "forged"}})
        await read_db[HISTORY].insert_one({**entries[1], "_id": f"{account_id}|3", "version": 3})

        drift = await find_drift(engine, views)
        assert {(d.view, d.doc_id, d.field) for d in drift} == {
            (HISTORY, f"{customer_id}|1", "_id"), (HISTORY, entries[1]["_id"], "details"),
            (HISTORY, f"{account_id}|3", "_id")}
        assert {d.customer_id for d in drift} == {customer_id}

        assert await repair(engine, views, {customer_id}) == 1
        assert await find_drift(engine, views) == []
        after = await stack.queries.get(f"/v1/accounts/{account_id}/history")
        assert after.json() == before.json()


async def test_a_poison_event_parks_only_its_aggregate_and_retry_applies_in_order(
        settings, engine, read_db):
    settings = settings.model_copy(update={"projector_max_attempts": 2,
                                           "projector_first_backoff_ms": 50})
    async with Stack(settings) as stack:
        poisoned, healthy = await open_accounts(stack, 2)
        await settle(stack, poisoned["account_id"], 1)
        await settle(stack, healthy["account_id"], 1)
        # A corrupted view document makes the next event of that account fail to project.
        await read_db[ACCOUNTS].update_one({"_id": poisoned["account_id"]},
                                           {"$set": {"transaction_count": "corrupt"}})
        for amount in ("1.00", "2.00", "3.00"):
            await stack.commands.post(f"/v1/accounts/{poisoned['account_id']}/deposits",
                                      json={"amount": amount})
        flowing = await stack.commands.post(f"/v1/accounts/{healthy['account_id']}/deposits",
                                            json={"amount": "5.00"})
        await settle(stack, healthy["account_id"], flowing.json()["version"])

        dead_letters = DeadLetters(read_db)
        for _ in range(200):
            parked = await dead_letters.list(poisoned["account_id"])
            if len(parked) == 3:
                break
            await asyncio.sleep(0.05)
        assert [e["version"] for e in parked] == [2, 3, 4]
        assert "after 2 attempts" in parked[0]["error"]
        assert "earlier event" in parked[1]["error"]
        later = await stack.commands.post(f"/v1/accounts/{poisoned['account_id']}/deposits",
                                          json={"amount": "4.00"})
        for _ in range(200):  # an event arriving after the park queues behind it
            if len(await dead_letters.list(poisoned["account_id"])) == 4:
                break
            await asyncio.sleep(0.05)
        assert len(await dead_letters.list(poisoned["account_id"])) == 4

        # The operator fixes the cause, then retries: everything applies, in order.
        await read_db[ACCOUNTS].update_one({"_id": poisoned["account_id"]},
                                           {"$set": {"transaction_count": 1}})
        report = await dead_letters.retry(ReadStore(ViewDatabase(read_db)))
        assert (report.applied, report.still_parked) == (4, {})
        assert await dead_letters.list() == []
        view = (await stack.queries.get(f"/v1/accounts/{poisoned['account_id']}")).json()
        assert (view["version"], view["balance"]) == (later.json()["version"], "110.00")
        history = (await stack.queries.get(
            f"/v1/accounts/{poisoned['account_id']}/transactions")).json()["items"]
        assert [t["amount"] for t in history] == ["4.00", "3.00", "2.00", "1.00", "100.00"]

        after = await stack.commands.post(f"/v1/accounts/{poisoned['account_id']}/deposits",
                                          json={"amount": "1.00"})
        await settle(stack, poisoned["account_id"], after.json()["version"])
        assert await find_drift(engine, ViewDatabase(read_db)) == []


async def test_a_rebuild_under_write_load_ends_equal_to_the_live_model(settings, engine, read_db):
    rng = random.Random(7)
    async with Stack(settings) as stack:
        accounts = [a["account_id"] for a in await open_accounts(stack, 4)]
        for _ in range(40):
            await stack.commands.post(f"/v1/accounts/{rng.choice(accounts)}/deposits",
                                      json={"amount": "1.00"})
        writing = True

        async def keep_writing() -> int:
            sent = 0
            while writing:
                source, target = rng.sample(accounts, 2)
                await stack.commands.post("/v1/transfers", json={
                    "from_account_id": source, "to_account_id": target, "amount": "0.50"})
                sent += 1
                await asyncio.sleep(0.01)
            return sent

        writer = asyncio.create_task(keep_writing())
        report = await rebuild(engine, read_db)
        writing = False
        sent = await writer
        assert sent > 0 and report.events > 40

        registry = await read_db["view_registry"].find_one({"_id": "views"})
        assert registry[ACCOUNTS].startswith("accounts__r")
        assert registry[HISTORY].startswith("history__r")
        assert ACCOUNTS not in await read_db.list_collection_names()  # old one dropped
        assert HISTORY not in await read_db.list_collection_names()
        for account_id in accounts:  # the query service followed the switch
            await stack.eventually(f"/v1/accounts/{account_id}",
                                   lambda r: r.status_code == 200, timeout_s=10)
        # Let the live projector finish the last writes, then compare everything.
        last = await stack.commands.post(f"/v1/accounts/{accounts[0]}/deposits",
                                         json={"amount": "1.00"})
        await settle(stack, accounts[0], last.json()["version"])
        for _ in range(100):
            drift = await find_drift(engine, ViewDatabase(read_db))
            if not drift:
                break
            await asyncio.sleep(0.2)
        assert drift == []
        # The rebuilt history serves, from its own indexes, every event of the account.
        pages = await walk_pages(stack, f"/v1/accounts/{accounts[0]}/history", 500)
        assert [e["version"] for page in pages for e in page] == list(
            range(last.json()["version"], 0, -1))
        indexes = await read_db[registry[HISTORY]].index_information()
        assert indexes["aggregate_version"]["unique"]


@pytest.mark.every_pair("consumer-group partition sharing")
async def test_two_projectors_share_the_partitions_and_together_apply_everything(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        from projector.worker import serve_projector
        from tests.stack import Worker

        second = Worker("projector-2", serve_projector, settings)
        second.start()
        try:
            accounts = [a["account_id"] for a in await open_accounts(stack, 6, "10.00")]
            for account_id in accounts:
                await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                          json={"amount": "1.00"})
            for account_id in accounts:
                await settle(stack, account_id, 2)
            assert await find_drift(engine, ViewDatabase(read_db)) == []
        finally:
            await second.stop()


@pytest.mark.every_pair("the lease is each store's own row lock")
async def test_a_standby_relay_takes_over_when_the_active_one_dies(settings, read_db):
    settings = settings.model_copy(update={"relay_lease_s": 1.0})
    async with Stack(settings) as stack:
        from command_service.outbox.worker import serve_relay
        from tests.stack import Worker

        standby = Worker("relay-2", serve_relay, settings)
        standby.start()
        try:
            account = (await open_accounts(stack, 1))[0]
            await settle(stack, account["account_id"], 1)
            stack.relay.kill()  # no release of the lease: the standby must wait it out
            deposit = await stack.commands.post(
                f"/v1/accounts/{account['account_id']}/deposits", json={"amount": "1.00"})
            await stack.eventually(
                f"/v1/accounts/{account['account_id']}",
                lambda r: r.json()["version"] == deposit.json()["version"], timeout_s=10)
        finally:
            await standby.stop()
