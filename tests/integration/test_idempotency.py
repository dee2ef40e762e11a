"""Idempotency-Key over real HTTP: replays are byte for byte and write nothing."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import sqlalchemy as sa

from command_service.db.tables import commands, events, outbox
from tests.stack import Stack


async def _counts(engine) -> tuple[int, int]:
    async with engine.connect() as conn:
        return (await conn.scalar(sa.select(sa.func.count()).select_from(events)),
                await conn.scalar(sa.select(sa.func.count()).select_from(outbox)))


async def _account(stack: Stack, deposit: str = "50.00") -> str:
    customer = (await stack.commands.post("/v1/customers", json={
        "name": "Idem Potent", "email": f"{uuid.uuid4().hex}@example.com"})).json()
    account = await stack.commands.post("/v1/accounts", json={
        "customer_id": customer["customer_id"], "type": "checking", "currency": "USD",
        "initial_deposit": deposit})
    return account.json()["account_id"]


async def test_idempotency_key_contract(settings, engine, read_db):
    async with Stack(settings) as stack:
        account_id = await _account(stack)
        path = f"/v1/accounts/{account_id}/withdrawals"

        # A retry with the same key and body: the first response again, nothing new written.
        first = await stack.commands.post(path, json={"amount": "10.00"},
                                          headers={"Idempotency-Key": "withdraw-1"})
        assert first.status_code == 201
        written = await _counts(engine)
        retry = await stack.commands.post(path, content=b'{ "amount" : "10.00" }',
                                          headers={"Idempotency-Key": "withdraw-1",
                                                   "content-type": "application/json"})
        assert (retry.status_code, retry.content) == (first.status_code, first.content)
        assert retry.headers["X-Consistency-Token"] == first.headers["X-Consistency-Token"]
        assert retry.headers["Idempotent-Replayed"] == "true"
        assert await _counts(engine) == written

        # The same key with another body is refused and changes nothing.
        reused = await stack.commands.post(path, json={"amount": "11.00"},
                                           headers={"Idempotency-Key": "withdraw-1"})
        assert reused.status_code == 409
        assert reused.json()["error"]["code"] == "idempotency_key_reused"
        # ... also on another endpoint.
        elsewhere = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                              json={"amount": "10.00"},
                                              headers={"Idempotency-Key": "withdraw-1"})
        assert elsewhere.status_code == 409
        assert await _counts(engine) == written

        # A refusal is remembered too: the retry gets the same 409 even once funds arrive.
        refused = await stack.commands.post(path, json={"amount": "100.00"},
                                            headers={"Idempotency-Key": "too-much"})
        assert refused.status_code == 409
        await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                  json={"amount": "500.00"})
        again = await stack.commands.post(path, json={"amount": "100.00"},
                                          headers={"Idempotency-Key": "too-much"})
        assert (again.status_code, again.content) == (409, refused.content)

        # Malformed keys are 422 and write nothing.
        written = await _counts(engine)
        for bad in ("x" * 129, "tab\there"):
            malformed = await stack.commands.post(path, json={"amount": "1.00"},
                                                  headers={"Idempotency-Key": bad})
            assert malformed.status_code == 422
            assert malformed.json()["error"]["details"][0]["field"] == "Idempotency-Key"
        assert await _counts(engine) == written


async def test_racing_requests_with_one_key_have_one_effect(settings, engine, read_db):
    async with Stack(settings) as stack:
        account_id = await _account(stack, "100.00")
        before = await _counts(engine)

        responses = await asyncio.gather(*(
            stack.commands.post(f"/v1/accounts/{account_id}/withdrawals",
                                json={"amount": "30.00"}, headers={"Idempotency-Key": "race"})
            for _ in range(8)))

        assert {r.status_code for r in responses} == {201}
        assert len({r.content for r in responses}) == 1
        assert await _counts(engine) == (before[0] + 1, before[1] + 1)
        account = await stack.eventually(f"/v1/accounts/{account_id}",
                                         lambda r: r.json().get("version") == 2)
        assert account.json()["balance"] == "70.00"


async def test_an_expired_key_can_be_used_again(settings, engine, read_db):
    async with Stack(settings) as stack:
        account_id = await _account(stack)
        path = f"/v1/accounts/{account_id}/deposits"
        first = await stack.commands.post(path, json={"amount": "1.00"},
                                          headers={"Idempotency-Key": "old"})
        async with engine.begin() as conn:
            await conn.execute(commands.update().where(commands.c.idempotency_key == "old")
                               .values(expires_at=datetime(2000, 1, 1)))
        again = await stack.commands.post(path, json={"amount": "1.00"},
                                          headers={"Idempotency-Key": "old"})
        assert again.status_code == 201
        assert again.json()["command_id"] != first.json()["command_id"]
        assert again.json()["version"] == first.json()["version"] + 1
