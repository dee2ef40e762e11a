"""Bank-wide and status queries over real HTTP against the whole stack: every customer's
accounts newest opened first with filters and cursors that hold under concurrent openings, only
for bank-wide tokens, with read-your-writes; customers by status; and query plans that read an
index, never the collection."""

from __future__ import annotations

import asyncio

from operations.repair import repair
from operations.verify import find_drift
from shared.auth import READ
from shared.readmodel import ACCOUNTS, CUSTOMERS, ViewDatabase, every_account_index
from tests.integration.test_auth import token
from tests.integration.test_query_api_contract import Checks, parse_utc, post
from tests.stack import Stack
from tests.support.contract import check_error, open_account, register
from tests.support.query_plans import query_plan


async def _pages(stack: Stack, limit: int, path: str = "/v1/accounts", **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        response = await stack.queries.get(path, params=query)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def _bank(stack: Stack) -> dict[str, str]:
    """Two customers' accounts in every status, currency and type the filters tell apart."""
    ada, grace = await register(stack), await register(stack)
    opened = {
        "ada_usd": await open_account(stack, ada, initial_deposit="5.00"),
        "ada_eur": await open_account(stack, ada, currency="EUR", type_="savings"),
        "grace_usd": await open_account(stack, grace, type_="savings"),
        "grace_gbp": await open_account(stack, grace, currency="GBP"),
    }
    await post(stack, f"/v1/accounts/{opened['ada_eur']}/freeze", {"reason": "audit"},
               status=200)
    await post(stack, f"/v1/accounts/{opened['grace_gbp']}/freeze", {"reason": "audit"},
               status=200)
    last = await post(stack, f"/v1/accounts/{opened['grace_usd']}/close", {}, status=200)
    waited = await stack.queries.get("/v1/accounts", params={"limit": 500}, headers={
        "X-Consistency-Token": last.headers["X-Consistency-Token"]})
    assert waited.status_code == 200, waited.text  # read-your-writes: the closure is listed
    assert {a["account_id"]: a["status"] for a in waited.json()["items"]}[
        opened["grace_usd"]] == "closed"
    # The token names the closed account alone; the freezes of the other two are on their own
    # partitions and may land later. The tests compare listings, so all of it must be in first.
    expected = {opened["ada_usd"]: "active", opened["ada_eur"]: "frozen",
                opened["grace_usd"]: "closed", opened["grace_gbp"]: "frozen"}
    await stack.eventually("/v1/accounts?limit=500", lambda r: r.status_code == 200 and {
        a["account_id"]: a["status"] for a in r.json()["items"]} == expected)
    return opened | {"ada": ada, "grace": grace}


async def test_every_account_comes_newest_opened_first_with_each_filter(settings, read_db):
    async with Stack(settings) as stack:
        bank = await _bank(stack)
        await stack.eventually(f"/v1/accounts/{bank['grace_gbp']}",
                               lambda r: r.json()["status"] == "frozen")
        everything = await _pages(stack, 500)
        order = ["grace_gbp", "grace_usd", "ada_eur", "ada_usd"]
        assert [a["account_id"] for a in everything] == [bank[name] for name in order]
        assert set(everything[0]) == {
            "account_id", "customer_id", "type", "currency", "balance", "status",
            "status_reason", "status_changed_at", "version", "transaction_count", "opened_at",
            "updated_at"}
        times = [parse_utc(a["opened_at"]) for a in everything]
        assert times == sorted(times, reverse=True)
        for limit in (1, 3):
            assert await _pages(stack, limit) == everything

        def only(**wanted) -> list[dict]:
            return [a for a in everything if all(a[k] == v for k, v in wanted.items())]

        for params in [{"status": "frozen"}, {"status": "closed"}, {"currency": "USD"},
                       {"type": "savings"}, {"status": "frozen", "currency": "EUR"},
                       {"status": "active", "type": "checking", "currency": "USD"}]:
            assert await _pages(stack, 1, **params) == only(**params), params
        assert [a["account_id"] for a in only(status="frozen")] == [bank["grace_gbp"],
                                                                     bank["ada_eur"]]

        checks = Checks()
        for params, field in [({"status": "dormant"}, "status"), ({"currency": "XXX"},
                              "currency"), ({"type": "loan"}, "type"), ({"limit": 501}, "limit"),
                              ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor")]:
            checks.run(str(params), await stack.queries.get("/v1/accounts", params=params), 422,
                       "validation_error", field)
        checks.assert_none_failed()


async def test_paging_every_account_holds_under_concurrent_openings_for_bank_tokens_only(
        settings, read_db):
    async with Stack(settings) as stack:
        bank = await _bank(stack)
        before = await _pages(stack, 500)
        first = await stack.queries.get("/v1/accounts", params={"limit": 2})
        # Accounts opened while the client pages sort before its cursor: none shows up twice.
        newer = await asyncio.gather(*(open_account(stack, bank["ada"]) for _ in range(4)))
        for account_id in newer:
            await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200)
        rest, cursor = [], first.json()["next_cursor"]
        while cursor:
            page = await stack.queries.get("/v1/accounts", params={"limit": 2, "cursor": cursor})
            rest += page.json()["items"]
            cursor = page.json()["next_cursor"]
        assert first.json()["items"] + rest == before
        assert {a["account_id"] for a in (await _pages(stack, 500))[:4]} == set(newer)

        mine = token(settings, READ, subject=f"customer:{bank['ada']}", customer_id=bank["ada"])
        check_error(await stack.queries.get("/v1/accounts", headers=mine), 403, "forbidden")
        assert (await stack.queries.get("/v1/accounts", headers=token(settings, READ))) \
            .status_code == 200


async def test_customers_are_found_by_status_and_show_it(settings, engine, read_db):
    async with Stack(settings) as stack:
        ada = await register(stack, name="Status Ada")
        grace = await register(stack, name="Status Grace")
        closed = await post(stack, f"/v1/customers/{grace}/close", {"reason": "moved"},
                            status=200)
        view = await stack.queries.get(f"/v1/customers/{grace}", headers={
            "X-Consistency-Token": closed.headers["X-Consistency-Token"]})
        assert view.status_code == 200 and view.json()["status"] == "closed", view.text
        # A view projected before statuses existed has none: it is found as an active one.
        await read_db[CUSTOMERS].update_one({"_id": ada}, {"$unset": {"status": 1}})
        found = {status: [(c["customer_id"], c["status"]) for c in await _pages(
            stack, 1, "/v1/customers", q="status ", status=status)]
            for status in ("active", "closed")}
        assert found == {"active": [(ada, "active")], "closed": [(grace, "closed")]}
        assert {c["status"] for c in await _pages(stack, 50, "/v1/customers", q="status ")} \
            == {"active", "closed"}
        check_error(await stack.queries.get("/v1/customers", params={"status": "frozen"}), 422,
                    "validation_error", "status")
        # verify names the missing status and --repair writes it.
        views = ViewDatabase(read_db)
        [drift] = await find_drift(engine, views)
        assert (drift.view, drift.doc_id, drift.field, drift.expected, drift.actual) == (
            CUSTOMERS, ada, "status", "active", None)
        await repair(engine, views, {ada})
        assert await find_drift(engine, views) == []


async def test_no_bank_wide_account_query_scans_the_collection(settings, read_db):
    async with Stack(settings) as stack:
        await _bank(stack)
        crowd = await register(stack)
        await asyncio.gather(*(open_account(stack, crowd) for _ in range(20)))
        await stack.eventually(f"/v1/customers/{crowd}", lambda r: r.status_code == 200
                               and r.json()["summary"]["account_count"] == 20)
    # The crowd's 20 are what a scan, or a wrong index, would examine to skip.
    assert await read_db[ACCOUNTS].count_documents({}) == 4 + 20
    newest = [("opened_at", -1), ("_id", -1)]
    examined_counts = {}
    for query, most in [({}, 51), ({"status": "frozen"}, 2), ({"status": "closed"}, 1),
                        ({"currency": "EUR"}, 1), ({"type": "savings"}, 2),
                        ({"status": "frozen", "currency": "GBP"}, 2)]:
        hint = every_account_index(query.get("status"), query.get("currency"), query.get("type"))
        stages, examined, returned = await query_plan(read_db, ACCOUNTS, query, dict(newest),
                                                      51, hint)
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, (query, stages)
        assert examined <= most, (query, examined, returned)  # never the crowd's 20 to skip
        examined_counts[str(query)] = (examined, returned)
    print("examined, returned:", examined_counts)
