"""An account's and a customer's history over real HTTP against the whole stack: every event
newest first with its details, cursors that hold while events arrive, redelivery that changes
nothing, 404/422, confinement, read-your-writes, and query plans that never scan."""

from __future__ import annotations

import asyncio

from projector.planner import plan_batch
from projector.store import ReadStore
from query_service.app import create_app as create_query_app
from shared.auth import READ
from shared.consistency import encode_token
from shared.readmodel import HISTORY, ViewDatabase
from tests.integration.test_auth import token
from tests.integration.test_projector import RunningProjector, _consumed, publish, until
from tests.integration.test_query_api_contract import Checks, parse_utc, post
from tests.stack import Stack, admin_headers, http_client, in_loop_server
from tests.support.bank import ADA
from tests.support.contract import check_error, open_account, register
from tests.support.history import BOB_USD, CY, drive
from tests.support.query_plans import query_plan

UNKNOWN = "00000000-0000-4000-8000-000000000000"
ENTRY_FIELDS = {"version", "type", "occurred_at", "command_id", "details"}


async def _pages(client, path: str, limit: int) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        response = await client.get(path, params=query)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


def _newest_is(version: int):
    """A check for `Stack.eventually` on a history: it exists and its newest entry is that."""
    return lambda r: r.status_code == 200 and r.json()["items"][0]["version"] == version


def _at_version(version: int):
    return lambda r: r.status_code == 200 and r.json()["version"] == version


async def _lifecycle(stack: Stack) -> dict:
    """An account through every kind of event, and the command responses that made them."""
    customer_id = await register(stack, "Hedy Lamarr")
    other = await open_account(stack, customer_id)
    opened = await post(stack, "/v1/accounts", {"customer_id": customer_id, "type": "savings",
                                                "currency": "USD", "initial_deposit": "12.50"})
    account_id = opened.json()["account_id"]
    deposit = await post(stack, f"/v1/accounts/{account_id}/deposits",
                         {"amount": "5.00", "reference": "salary"})
    withdrawal = await post(stack, f"/v1/accounts/{account_id}/withdrawals", {"amount": "0.50"})
    sent = await post(stack, "/v1/transfers", {"from_account_id": account_id,
                                               "to_account_id": other, "amount": "7.00"})
    received = await post(stack, "/v1/transfers", {"from_account_id": other,
                                                   "to_account_id": account_id,
                                                   "amount": "1.00", "reference": "back"})
    frozen = await post(stack, f"/v1/accounts/{account_id}/freeze", {"reason": "audit"}, 200)
    unfrozen = await post(stack, f"/v1/accounts/{account_id}/unfreeze", {}, 200)
    emptied = await post(stack, f"/v1/accounts/{account_id}/withdrawals", {"amount": "11.00"})
    closed = await post(stack, f"/v1/accounts/{account_id}/close", {}, 200)
    return {"customer_id": customer_id, "account_id": account_id, "other": other,
            "responses": [opened, deposit, withdrawal, sent, received, frozen, unfrozen,
                          emptied, closed]}


async def test_an_account_s_history_lists_every_event_newest_first_with_its_details(
        settings, read_db):
    async with Stack(settings) as stack:
        bank = await _lifecycle(stack)
        account_id, customer_id, other = bank["account_id"], bank["customer_id"], bank["other"]
        last = bank["responses"][-1]
        # Read-your-writes: the token of the last command makes the query wait for it.
        waited = await stack.queries.get(f"/v1/accounts/{account_id}/history", headers={
            "X-Consistency-Token": last.headers["X-Consistency-Token"]})
        assert waited.status_code == 200, waited.text
        items = waited.json()["items"]
        assert waited.json()["next_cursor"] is None
        assert all(set(item) == ENTRY_FIELDS for item in items)
        assert [i["version"] for i in items] == list(range(9, 0, -1))
        assert [i["type"] for i in items] == [
            "AccountClosed", "MoneyWithdrawn", "AccountUnfrozen", "AccountFrozen",
            "TransferReceived", "TransferSent", "MoneyWithdrawn", "MoneyDeposited",
            "AccountOpened"]
        assert [i["command_id"] for i in reversed(items)] == [
            r.json()["command_id"] for r in bank["responses"]]
        times = [parse_utc(i["occurred_at"]) for i in items]
        assert times == sorted(times, reverse=True)
        details = {i["version"]: i["details"] for i in items}
        money = {"customer_id": customer_id, "currency": "USD"}
        deposit_tx = bank["responses"][1].json()["transaction_id"]
        assert details[1] == money | {"type": "savings", "initial_deposit": "12.50",
                                      "balance_after": "12.50",
                                      "transaction_id": details[1]["transaction_id"]}
        assert details[2] == money | {"transaction_id": deposit_tx, "amount": "5.00",
                                      "balance_after": "17.50", "reference": "salary"}
        assert details[3]["amount"] == "0.50" and details[3]["reference"] is None
        transfer_id = bank["responses"][3].json()["transfer_id"]
        assert details[4] | {"transaction_id": None} == money | {
            "transaction_id": None, "amount": "7.00", "balance_after": "10.00",
            "reference": None, "transfer_id": transfer_id, "counterparty_account_id": other}
        assert (details[5]["amount"], details[5]["balance_after"], details[5]["reference"],
                details[5]["counterparty_account_id"]) == ("1.00", "11.00", "back", other)
        assert details[6] == money | {"reason": "audit"}
        assert details[7] == details[9] == money
        assert details[8]["balance_after"] == "0.00"

        customer = (await stack.queries.get(f"/v1/customers/{customer_id}/history")).json()
        assert [(i["version"], i["type"]) for i in customer["items"]] == [
            (1, "CustomerRegistered")]
        assert customer["items"][0]["details"]["name"] == "Hedy Lamarr"
        assert set(customer["items"][0]["details"]) == {"name", "email"}


async def test_paging_holds_while_events_arrive_between_pages(settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="1.00")
        for _ in range(6):
            last = await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"})
        path = f"/v1/accounts/{account_id}/history"
        await stack.eventually(path, _newest_is(7))
        before = await _pages(stack.queries, path, 500)
        assert [i["version"] for i in before] == list(range(7, 0, -1))
        for limit in (1, 2, 3, 7):
            assert await _pages(stack.queries, path, limit) == before

        pages, cursor = [], None
        for _ in range(10):
            params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await stack.queries.get(path, params=params)).json()
            pages += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            # Newer events land between pages: they sort before the cursor, never after it.
            last = await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"})
            await stack.eventually(path, _newest_is(last.json()["version"]))
        assert pages == before  # nothing twice, nothing missed
        assert len(await _pages(stack.queries, path, 500)) == last.json()["version"]


async def test_refusals_confinement_and_consistency_tokens(settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id)
        other = await register(stack)
        others_account = await open_account(stack, other)
        paths = [f"/v1/accounts/{account_id}/history", f"/v1/customers/{customer_id}/history"]
        for path in paths:
            await stack.eventually(path, lambda r: r.status_code == 200)
        await stack.eventually(f"/v1/accounts/{others_account}", lambda r: r.status_code == 200)

        checks = Checks()
        for path in paths:
            for params, field in [({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                                  ({"limit": "many"}, "limit"),
                                  ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
                                  ({"cursor": "eyJiZWZvcmUiOiJ4In0"}, "cursor"),
                                  # {"before": 2**70}: past what the read store can compare
                                  ({"cursor": "eyJiZWZvcmUiOjExODA1OTE2MjA3MTc0MTEzMDM0MjR9"},
                                   "cursor"),
                                  ({"cursor": "x" * 600}, "cursor")]:
                checks.run(f"{path} {params}", await stack.queries.get(path, params=params),
                           422, "validation_error", field)
        checks.run("unknown account", await stack.queries.get(
            f"/v1/accounts/{UNKNOWN}/history"), 404, "account_not_found")
        checks.run("unknown customer", await stack.queries.get(
            f"/v1/customers/{UNKNOWN}/history"), 404, "customer_not_found")
        checks.run("not a uuid", await stack.queries.get("/v1/accounts/nope/history"), 422,
                   "validation_error")
        checks.assert_none_failed()

        mine = token(settings, READ, subject=f"customer:{customer_id}", customer_id=customer_id)
        for path in paths:
            assert (await stack.queries.get(path, headers=mine)).status_code == 200
        for path in (f"/v1/accounts/{others_account}/history", f"/v1/customers/{other}/history"):
            check_error(await stack.queries.get(path, headers=mine), 403, "forbidden")
        unscoped = token(settings, subject="no-scopes")  # the same scopes as every view
        for path in paths:
            check_error(await stack.queries.get(path, headers=unscoped), 403, None)

        # Read-your-writes on both: a command's token makes the query wait for its version.
        deposit = await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "3.00"})
        waited = await stack.queries.get(paths[0], headers={
            "X-Consistency-Token": deposit.headers["X-Consistency-Token"]})
        assert waited.json()["items"][0]["version"] == deposit.json()["version"]
        registered = await stack.commands.post("/v1/customers", json={
            "name": "Fresh", "email": f"fresh.{customer_id}@example.com"})
        fresh = registered.json()["customer_id"]
        waited = await stack.queries.get(f"/v1/customers/{fresh}/history", headers={
            "X-Consistency-Token": registered.headers["X-Consistency-Token"]})
        assert waited.status_code == 200, waited.text  # not a 404: it waited for the view
        assert [i["type"] for i in waited.json()["items"]] == ["CustomerRegistered"]
        for path, key in ((paths[0], account_id), (paths[1], customer_id)):
            behind = await stack.queries.get(path, headers={
                "X-Consistency-Token": encode_token({key: 99}), "X-Consistency-Wait-Ms": "50"})
            check_error(behind, 503, "read_model_behind")
            assert behind.headers["Retry-After"] == "1"
        check_error(await stack.queries.get(paths[1], headers={
            "X-Consistency-Token": "not a token"}), 422, "validation_error",
            "X-Consistency-Token")


async def test_redelivered_events_change_no_history_and_customer_events_are_listed(
        settings, read_db):
    """The scenario's whole log, every customer event included, delivered twice (a relay that
    crashed before marking): the history is exactly what the planner makes of one delivery."""
    log = drive().log
    await publish(settings, log + log)
    async with RunningProjector(settings, ReadStore(ViewDatabase(read_db))) as running:
        await until(lambda: _consumed(running, 2 * len(log)))
    stored = await read_db[HISTORY].find({}).sort("_id", 1).to_list()
    assert stored == sorted(plan_batch(log, {}, {}).history, key=lambda h: h["_id"])

    api = in_loop_server(create_query_app(settings))
    port = await api.start()
    try:
        async with http_client(port, headers=admin_headers(settings)) as client:
            ada = await _pages(client, f"/v1/customers/{ADA}/history", 1)
            assert [(i["version"], i["type"], i["details"]) for i in ada] == [
                (3, "CustomerEmailChanged", {"email": "ada.king@example.com"}),
                (2, "CustomerRenamed", {"name": "Ada King"}),
                (1, "CustomerRegistered", {"name": "Ada Lovelace",
                                           "email": ada[-1]["details"]["email"]})]
            cy = (await client.get(f"/v1/customers/{CY}/history")).json()["items"]
            assert [(i["type"], i["details"]) for i in cy] == [
                ("CustomerClosed", {"reason": "moved abroad"}),
                ("CustomerRegistered", {"name": "Cy Leaving", "email": "cy@example.com"})]
            bob_usd = (await client.get(f"/v1/accounts/{BOB_USD}/history")).json()["items"]
            assert [i["type"] for i in bob_usd] == [
                "AccountUnfrozen", "AccountFrozen", "TransferSent", "TransferReceived",
                "AccountOpened"]
            assert bob_usd[1]["details"]["reason"] == \
                "suspicious activity reported by the customer"
            assert [i["command_id"] for i in bob_usd] == [
                e.command_id for e in reversed(log) if e.aggregate_id == BOB_USD]
    finally:
        await api.stop()


async def test_no_history_query_scans_the_collection(settings, read_db):
    """A busy account's many entries would be examined by a scan: a page examines only the
    entries of its own aggregate, from its cursor on. (SecantusDB reads the whole index range
    before it applies the limit, so a first page examines every entry of its aggregate; a
    later page starts at its cursor.)"""
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="1.00")
        for _ in range(4):
            await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"})
        busy = await open_account(stack, customer_id, initial_deposit="1.00")
        await asyncio.gather(*(post(stack, f"/v1/accounts/{busy}/deposits", {"amount": "1.00"})
                               for _ in range(40)))
        await stack.eventually(f"/v1/accounts/{busy}", _at_version(41))
        await stack.eventually(f"/v1/accounts/{account_id}", _at_version(5))
    assert await read_db[HISTORY].count_documents({}) == 1 + 5 + 41
    examined_counts = {}
    for label, query, limit, most in [
        ("account, first page", {"aggregate_id": account_id}, 51, 5),
        ("account, after version 3", {"aggregate_id": account_id, "version": {"$lt": 3}}, 51, 2),
        ("busy account, a page of 10", {"aggregate_id": busy}, 11, 41),
        ("busy account, after version 11", {"aggregate_id": busy, "version": {"$lt": 11}},
         11, 10),
        ("customer", {"aggregate_id": customer_id}, 51, 1),
    ]:
        stages, examined, returned = await query_plan(
            read_db, HISTORY, query, {"version": -1}, limit, "aggregate_version")
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, (label, stages)
        assert examined <= most, (label, examined, returned)
        examined_counts[label] = (examined, returned)
    print("examined, returned:", examined_counts)
