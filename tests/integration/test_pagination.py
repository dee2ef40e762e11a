"""Cursor pages stay stable while new items arrive: no duplicates, no gaps."""

from __future__ import annotations

import asyncio
import uuid

from tests.stack import Stack


async def _pages(stack: Stack, path: str, limit: int, writer) -> list[str]:
    """Walk every page of `path`, running `writer` between pages."""
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = (await stack.queries.get(path, params=params)).json()
        seen.extend(item.get("transaction_id") or item["customer_id"] for item in page["items"])
        await writer()
        cursor = page["next_cursor"]
        if cursor is None:
            return seen


async def test_history_and_search_pages_survive_concurrent_inserts(settings, read_db):
    async with Stack(settings) as stack:
        tag = uuid.uuid4().hex[:8]
        customers = []
        for i in range(12):
            customers.append((await stack.commands.post("/v1/customers", json={
                "name": f"Pager {tag} {i}", "email": f"p{i}-{tag}@example.com"})).json())
        account = (await stack.commands.post("/v1/accounts", json={
            "customer_id": customers[0]["customer_id"], "type": "savings",
            "currency": "EUR"})).json()["account_id"]
        for _ in range(12):
            last = await stack.commands.post(f"/v1/accounts/{account}/deposits",
                                             json={"amount": "1.00"})
        # Also waits out the fresh projector's consumer-group join (past the default 2 s on
        # a busy machine).
        token = {"X-Consistency-Token": last.headers["X-Consistency-Token"],
                 "X-Consistency-Wait-Ms": "10000"}
        history = (await stack.queries.get(f"/v1/accounts/{account}/transactions",
                                           params={"limit": 500}, headers=token)).json()
        before = [t["transaction_id"] for t in history["items"]]
        await stack.eventually(f"/v1/customers?q={tag}&limit=500",
                               lambda r: len(r.json()["items"]) == 12)

        async def deposit_more() -> None:
            for _ in range(3):
                await stack.commands.post(f"/v1/accounts/{account}/deposits",
                                          json={"amount": "2.00"})
            await asyncio.sleep(0.1)

        walked = await _pages(stack, f"/v1/accounts/{account}/transactions", 5, deposit_more)
        assert len(walked) == len(set(walked)), "a transaction was served twice"
        assert walked[:len(before)] == before, "a transaction that existed was skipped"

        async def register_more() -> None:
            await stack.commands.post("/v1/customers", json={
                "name": f"Pager {tag} late", "email": f"{uuid.uuid4().hex}-{tag}@example.com"})

        found = await _pages(stack, f"/v1/customers?q={tag.upper()}", 5, register_more)
        assert len(found) == len(set(found))
        assert {c["customer_id"] for c in customers} <= set(found)
