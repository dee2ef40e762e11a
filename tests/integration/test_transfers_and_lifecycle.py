"""Transfers, account lifecycle and daily statistics through the whole pipeline."""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import pytest
import sqlalchemy as sa

from command_service.db.tables import accounts
from tests.stack import Stack


async def _customer(stack: Stack) -> str:
    response = await stack.commands.post("/v1/customers", json={
        "name": "Transfer Tester", "email": f"{uuid.uuid4().hex}@example.com"})
    return response.json()["customer_id"]


async def _account(stack: Stack, customer_id: str, deposit: str | None, currency: str = "USD"):
    body = {"customer_id": customer_id, "type": "checking", "currency": currency}
    if deposit:
        body["initial_deposit"] = deposit
    return (await stack.commands.post("/v1/accounts", json=body)).json()["account_id"]


@pytest.mark.slow
async def test_money_is_conserved_across_a_thousand_random_transfers(settings, engine, read_db):
    rng = random.Random(20261123)
    async with Stack(settings) as stack:
        customer_id = await _customer(stack)
        ids = [await _account(stack, customer_id, "100.00") for _ in range(10)]
        limit = asyncio.Semaphore(16)
        moved = Decimal("0")

        async def transfer() -> int:
            nonlocal moved
            source, target = rng.sample(ids, 2)
            amount = f"{rng.randint(1, 4000) / 100:.2f}"
            async with limit:
                response = await stack.commands.post("/v1/transfers", json={
                    "from_account_id": source, "to_account_id": target, "amount": amount})
            if response.status_code == 201:
                moved += Decimal(amount)
            else:
                assert response.json()["error"]["code"] == "insufficient_funds", response.text
            return response.status_code

        statuses = await asyncio.gather(*(transfer() for _ in range(1000)))
        succeeded = statuses.count(201)
        assert succeeded > 500

        async with engine.connect() as conn:
            written = {row.account_id: row for row in (await conn.execute(
                sa.select(accounts.c.account_id, accounts.c.balance_minor, accounts.c.version)
            ))}
        assert sum(row.balance_minor for row in written.values()) == 1000_00
        assert min(row.balance_minor for row in written.values()) >= 0

        # The read side converges to exactly the write model.
        for account_id, row in written.items():
            view = (await stack.eventually(
                f"/v1/accounts/{account_id}",
                lambda r, v=row.version: r.status_code == 200 and r.json()["version"] == v,
                timeout_s=120)).json()
            assert Decimal(view["balance"]) * 100 == row.balance_minor
            assert view["transaction_count"] == row.version  # open with deposit + one per leg
        customer = (await stack.eventually(
            f"/v1/customers/{customer_id}",
            lambda r: sum(a["version"] for a in r.json()["accounts"])
            == sum(row.version for row in written.values()), timeout_s=60)).json()
        assert customer["summary"]["balances"] == {"USD": "1000.00"}
        assert customer["summary"]["transaction_count"] == 10 + 2 * succeeded

        days = (await stack.queries.get(f"/v1/customers/{customer_id}/stats")).json()["days"]
        assert sum(Decimal(d["transfers_out"]) for d in days) == moved
        assert sum(Decimal(d["transfers_in"]) for d in days) == moved
        assert sum(Decimal(d["deposits"]) for d in days) == Decimal("1000.00")
        assert sum(d["count"] for d in days) == 10 + 2 * succeeded


async def test_transfer_legs_and_lifecycle_show_in_every_view(settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await _customer(stack)
        source = await _account(stack, customer_id, "50.00")
        target = await _account(stack, customer_id, None)
        euro = await _account(stack, customer_id, None, currency="EUR")

        transfer = await stack.commands.post("/v1/transfers", json={
            "from_account_id": source, "to_account_id": target, "amount": "20.00",
            "reference": "rent"})
        assert transfer.status_code == 201, transfer.text
        body = transfer.json()
        assert body["from"] == {"account_id": source, "balance": "30.00", "version": 2}
        assert body["to"] == {"account_id": target, "balance": "20.00", "version": 2}

        mismatch = await stack.commands.post("/v1/transfers", json={
            "from_account_id": source, "to_account_id": euro, "amount": "1.00"})
        assert mismatch.status_code == 409
        assert mismatch.json()["error"]["code"] == "currency_mismatch"

        # The first read of a fresh stack may wait for the projector to join its consumer
        # group as well (about a second, longer on a busy machine): past the default 2 s wait.
        wait = {"X-Consistency-Token": transfer.headers["X-Consistency-Token"],
                "X-Consistency-Wait-Ms": "10000"}
        history = (await stack.queries.get(f"/v1/accounts/{target}/transactions",
                                           headers=wait)).json()
        assert [(t["kind"], t["amount"], t["counterparty_account_id"], t["reference"])
                for t in history["items"]] == [("transfer_in", "20.00", source, "rent")]
        sent = (await stack.queries.get(f"/v1/accounts/{source}/transactions",
                                        headers=wait)).json()
        assert sent["items"][0]["kind"] == "transfer_out"
        assert sent["items"][0]["counterparty_account_id"] == target

        freeze = await stack.commands.post(f"/v1/accounts/{target}/freeze",
                                           json={"reason": "investigation"})
        assert freeze.json()["status"] == "frozen"
        refused = await stack.commands.post(f"/v1/accounts/{target}/withdrawals",
                                            json={"amount": "1.00"})
        assert refused.json()["error"]["code"] == "account_frozen"
        allowed = await stack.commands.post(f"/v1/accounts/{target}/deposits",
                                            json={"amount": "1.00"})
        assert allowed.status_code == 201
        await stack.commands.post(f"/v1/accounts/{target}/unfreeze", json={})
        emptied = await stack.commands.post(f"/v1/accounts/{target}/withdrawals",
                                            json={"amount": "21.00"})
        assert emptied.json()["balance"] == "0.00"
        closed = await stack.commands.post(f"/v1/accounts/{target}/close", json={})
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        token = closed.headers["X-Consistency-Token"]

        account = (await stack.queries.get(f"/v1/accounts/{target}",
                                           headers={"X-Consistency-Token": token})).json()
        assert (account["status"], account["balance"], account["version"]) == ("closed", "0.00", 7)
        view = (await stack.queries.get(f"/v1/customers/{customer_id}",
                                        headers={"X-Consistency-Token": token})).json()
        statuses = {a["account_id"]: a["status"] for a in view["accounts"]}
        assert statuses == {source: "active", target: "closed", euro: "active"}
        assert view["summary"]["balances"] == {"EUR": "0.00", "USD": "30.00"}
        assert view["summary"]["account_count"] == 3


async def test_the_customer_views_wait_for_an_account_opened_with_the_token(settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await _customer(stack)
        await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200)
        await stack.projector.stop()
        opened = await stack.commands.post("/v1/accounts", json={
            "customer_id": customer_id, "type": "savings", "currency": "GBP"})
        token = {"X-Consistency-Token": opened.headers["X-Consistency-Token"],
                 "X-Consistency-Wait-Ms": "300"}
        behind = await stack.queries.get(f"/v1/customers/{customer_id}", headers=token)
        assert behind.status_code == 503  # the new account is not in the view yet
        stack.projector.start()
        token["X-Consistency-Wait-Ms"] = "10000"
        for path in (f"/v1/customers/{customer_id}", f"/v1/customers/{customer_id}/accounts"):
            view = await stack.queries.get(path, headers=token)
            assert view.status_code == 200
            listed = view.json().get("accounts") or view.json()["items"]
            assert [a["account_id"] for a in listed] == [opened.json()["account_id"]]
