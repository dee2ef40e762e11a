"""A customer's transactions across all of its accounts, over real HTTP against the whole
stack: newest first with stable ties, filters, cursors that hold under concurrent inserts,
confinement, read-your-writes, and query plans that never scan the collection."""

from __future__ import annotations

import asyncio

from query_service.routers.customers import NEWEST_FIRST, customer_transactions_index
from shared.auth import READ
from shared.readmodel import TRANSACTIONS
from tests.integration.test_auth import token
from tests.integration.test_query_api_contract import Checks, parse_utc, post
from tests.stack import Stack
from tests.support.contract import check_error, open_account, register
from tests.support.query_plans import query_plan


async def _pages(stack: Stack, customer_id: str, limit: int, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        query = {"limit": limit, **params} | ({"cursor": cursor} if cursor else {})
        response = await stack.queries.get(f"/v1/customers/{customer_id}/transactions",
                                           params=query)
        assert response.status_code == 200, response.text
        items += response.json()["items"]
        cursor = response.json()["next_cursor"]
        if cursor is None:
            return items


async def _bank(stack: Stack) -> tuple[str, str, str, str]:
    """A customer with a USD and a EUR account and every kind of transaction."""
    customer_id = await register(stack)
    usd = await open_account(stack, customer_id, initial_deposit="50.00")
    usd_savings = await open_account(stack, customer_id, type_="savings")
    eur = await open_account(stack, customer_id, currency="EUR", initial_deposit="9.00")
    await post(stack, f"/v1/accounts/{usd}/withdrawals", {"amount": "5.00"})
    await post(stack, "/v1/transfers", {"from_account_id": usd, "to_account_id": usd_savings,
                                        "amount": "10.00"})
    await post(stack, f"/v1/accounts/{eur}/deposits", {"amount": "1.25"})
    last = await post(stack, f"/v1/accounts/{usd}/deposits", {"amount": "2.00"})
    # A view that does not exist yet is a 404, token or not: wait for the customer first.
    await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200)
    waited = await stack.queries.get(f"/v1/customers/{customer_id}/transactions", headers={
        "X-Consistency-Token": last.headers["X-Consistency-Token"]})
    # Read-your-writes covers what the token names: the USD account's last deposit. The EUR
    # account's events travel on another partition and may land a moment later.
    assert waited.status_code == 200, waited.text
    assert (usd, "deposit", "2.00") in [(t["account_id"], t["kind"], t["amount"])
                                        for t in waited.json()["items"]]
    await stack.eventually(f"/v1/customers/{customer_id}/transactions",
                           lambda r: r.status_code == 200 and len(r.json()["items"]) == 7)
    return customer_id, usd, usd_savings, eur


async def test_a_customer_s_transactions_come_newest_first_across_accounts_with_filters(
        settings, read_db):
    async with Stack(settings) as stack:
        customer_id, usd, usd_savings, eur = await _bank(stack)
        everything = await _pages(stack, customer_id, 500)
        assert [(t["account_id"], t["kind"], t["amount"]) for t in everything] == [
            (usd, "deposit", "2.00"), (eur, "deposit", "1.25"),
            # The two sides of a transfer share a time: the tie is broken by id, stably.
            *sorted([(usd, "transfer_out", "10.00"), (usd_savings, "transfer_in", "10.00")],
                    key=lambda t: next(x["transaction_id"] for x in everything
                                       if x["kind"] == t[1]), reverse=True),
            (usd, "withdrawal", "5.00"), (eur, "deposit", "9.00"), (usd, "deposit", "50.00")]
        times = [parse_utc(t["occurred_at"]) for t in everything]
        assert times == sorted(times, reverse=True)
        for limit in (1, 2, 3):
            assert await _pages(stack, customer_id, limit) == everything

        def only(**wanted) -> list[dict]:
            return [t for t in everything if all(t[k] == v for k, v in wanted.items())]

        assert await _pages(stack, customer_id, 2, kind="deposit") == only(kind="deposit")
        assert await _pages(stack, customer_id, 2, currency="EUR") == only(account_id=eur)
        assert await _pages(stack, customer_id, 1, kind="deposit", currency="USD") == [
            t for t in only(kind="deposit") if t["account_id"] != eur]
        middle = everything[2:5]
        window = {"from": middle[-1]["occurred_at"], "to": everything[1]["occurred_at"]}
        assert await _pages(stack, customer_id, 2, **window) == [
            t for t in everything if window["from"] <= t["occurred_at"] < window["to"]]

        checks = Checks()
        for params, field in [({"kind": "refund"}, "kind"), ({"currency": "XXX"}, "currency"),
                              ({"from": "yesterday"}, "from"), ({"limit": 0}, "limit"),
                              ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor")]:
            checks.run(str(params), await stack.queries.get(
                f"/v1/customers/{customer_id}/transactions", params=params), 422,
                "validation_error", field)
        checks.assert_none_failed()
        check_error(await stack.queries.get(
            "/v1/customers/00000000-0000-4000-8000-000000000000/transactions"), 404,
            "customer_not_found")


async def test_paging_holds_under_concurrent_inserts_and_a_customer_sees_only_its_own(
        settings, read_db):
    async with Stack(settings) as stack:
        customer_id, usd, _, _ = await _bank(stack)
        before = await _pages(stack, customer_id, 500)
        first = await stack.queries.get(f"/v1/customers/{customer_id}/transactions",
                                        params={"limit": 3})
        # Deposits land while the client pages: newer ones sort before its cursor.
        await asyncio.gather(*(post(stack, f"/v1/accounts/{usd}/deposits", {"amount": "1.00"})
                               for _ in range(5)))
        await stack.eventually(f"/v1/accounts/{usd}", lambda r: r.json()["version"] == 9)
        rest, cursor = [], first.json()["next_cursor"]
        while cursor:
            page = await stack.queries.get(f"/v1/customers/{customer_id}/transactions",
                                           params={"limit": 3, "cursor": cursor})
            rest += page.json()["items"]
            cursor = page.json()["next_cursor"]
        assert first.json()["items"] + rest == before  # nothing twice, nothing missed

        other = await register(stack)
        mine = token(settings, READ, subject=f"customer:{customer_id}", customer_id=customer_id)
        assert (await stack.queries.get(f"/v1/customers/{customer_id}/transactions",
                                        headers=mine)).status_code == 200
        check_error(await stack.queries.get(f"/v1/customers/{other}/transactions",
                                            headers=mine), 403, "forbidden")


async def test_no_transaction_query_scans_the_collection(settings, read_db):
    """Another customer's many transactions would be examined by a scan: the plans use an
    index on the customer (or account) and examine at most that customer's entries."""
    async with Stack(settings) as stack:
        customer_id, usd, _, _ = await _bank(stack)
        busy = await register(stack)
        busy_account = await open_account(stack, busy, initial_deposit="1.00")
        await asyncio.gather(*(post(stack, f"/v1/accounts/{busy_account}/deposits",
                                    {"amount": "1.00"}) for _ in range(40)))
        await stack.eventually(f"/v1/accounts/{busy_account}",  # a 404 until it is projected
                               lambda r: r.status_code == 200 and r.json()["version"] == 41)
    total = await read_db[TRANSACTIONS].count_documents({})
    assert total == 7 + 41
    newest = await read_db[TRANSACTIONS].find({"customer_id": customer_id}).sort(
        NEWEST_FIRST).to_list()
    third = {"at": newest[2]["occurred_at"], "id": newest[2]["_id"]}
    examined_counts = {}
    for query, sort in [
        ({"customer_id": customer_id}, NEWEST_FIRST),
        ({"customer_id": customer_id, "kind": "deposit"}, NEWEST_FIRST),
        ({"customer_id": customer_id, "currency": "EUR"}, NEWEST_FIRST),
        ({"customer_id": customer_id, "kind": "deposit", "currency": "USD"}, NEWEST_FIRST),
        ({"account_id": usd}, [("account_version", -1)]),
        ({"account_id": usd, "kind": "deposit"}, [("account_version", -1)]),
        # A later page: bounded by the cursor's time, it reads no newer entry again.
        ({"customer_id": customer_id, "occurred_at": {"$lte": third["at"]},
          "$or": [{"occurred_at": {"$lt": third["at"]}},
                  {"occurred_at": third["at"], "_id": {"$lt": third["id"]}}]}, NEWEST_FIRST),
    ]:
        # Explained as the service runs it: with the index it names for a customer's query.
        hint = (customer_transactions_index(query.get("kind"), query.get("currency"))
                if "customer_id" in query else None)
        stages, examined, returned = await query_plan(read_db, TRANSACTIONS, query, dict(sort), 51,
                                                      hint)
        assert "COLLSCAN" not in stages and "IXSCAN" in stages, (query, stages)
        assert examined <= 7, (query, examined, returned)  # never the busy customer's 41
        if "$or" in query:
            assert examined <= 5, (examined, returned)  # not the three newer ones either
        examined_counts[tuple(k for k in query if k != "$or")] = (examined, returned)
    print("examined, returned:", examined_counts)
