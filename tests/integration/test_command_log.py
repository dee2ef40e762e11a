"""The command log over real HTTP (docs/api.md): every command's record names the customer it
acts for, the aggregates it touched and its input; a customer's log lists newest first with
filters and cursors that hold while commands keep arriving; a customer's token lists only its
own; a command that fails on a bug is logged as internal_error and writes nothing else; and
migration 0005 keeps the commands recorded before it."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command as alembic

from command_service.db import tables
from command_service.db.migrate import alembic_config
from command_service.domain import commands as c
from command_service.handlers import HANDLERS
from shared.auth import READ, WRITE, mint_token
from shared.cursors import encode_cursor
from tests.integration.test_command_api_contract import write_model
from tests.stack import Stack
from tests.support.contract import check_error, open_account, register


def customer_token(stack: Stack, customer_id: str, subject: str) -> dict[str, str]:
    token = mint_token(stack.settings, subject=subject, scopes=[WRITE, READ],
                       customer_id=customer_id)
    return {"Authorization": f"Bearer {token}"}


async def logged(stack: Stack, response) -> dict:
    """The command log's record of the command that answered `response`."""
    status = await stack.commands.get(f"/v1/commands/{response.headers['X-Command-ID']}")
    assert status.status_code == 200, status.text
    return status.json()


async def log_of(stack: Stack, customer_id: str, **params) -> dict:
    response = await stack.commands.get(f"/v1/customers/{customer_id}/commands", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def test_every_command_records_its_customer_aggregates_and_input(settings):
    async with Stack(settings) as stack:
        cmd = stack.commands
        email = f"{uuid.uuid4().hex}@example.com"
        registered = await cmd.post("/v1/customers", json={"name": " Ada ", "email": email})
        customer_id = registered.json()["customer_id"]
        opened = await cmd.post("/v1/accounts", json={
            "customer_id": customer_id, "type": "savings", "currency": "EUR",
            "initial_deposit": "12.5"})
        first = opened.json()["account_id"]
        second = await open_account(stack, customer_id, currency="EUR")
        other_customer = await register(stack)
        theirs = await open_account(stack, other_customer, currency="EUR",
                                    initial_deposit="5.00")
        deposit = await cmd.post(f"/v1/accounts/{first}/deposits",
                                 json={"amount": "100", "reference": "pay"})
        withdrawal = await cmd.post(f"/v1/accounts/{first}/withdrawals", json={"amount": "0.5"})
        transfer = await cmd.post("/v1/transfers", json={
            "from_account_id": theirs, "to_account_id": first, "amount": "2.25"})
        frozen = await cmd.post(f"/v1/accounts/{second}/freeze", json={"reason": "why"})
        unfrozen = await cmd.post(f"/v1/accounts/{second}/unfreeze", json={})
        closed = await cmd.post(f"/v1/accounts/{second}/close", json={})
        refused = await cmd.post(f"/v1/accounts/{first}/withdrawals",
                                 json={"amount": "1000.00", "reference": "too much"})
        assert refused.status_code == 409, refused.text
        missing = str(uuid.uuid4())
        unknown = await cmd.post(f"/v1/accounts/{missing}/deposits", json={"amount": "1.00"})
        assert unknown.status_code == 404, unknown.text

        expected = [
            (registered, "completed", customer_id, [customer_id],
             {"name": "Ada", "email": email, "customer_id": customer_id}),
            (opened, "completed", customer_id, [first],
             {"customer_id": customer_id, "type": "savings", "currency": "EUR",
              "initial_deposit": "12.50", "account_id": first}),
            (deposit, "completed", customer_id, [first],
             {"account_id": first, "amount": "100.00", "reference": "pay"}),
            (withdrawal, "completed", customer_id, [first],
             {"account_id": first, "amount": "0.50", "reference": None}),
            # A transfer acts for its sender and changes both accounts.
            (transfer, "completed", other_customer, [theirs, first],
             {"from_account_id": theirs, "to_account_id": first, "amount": "2.25",
              "reference": None}),
            (frozen, "completed", customer_id, [second], {"account_id": second,
                                                          "reason": "why"}),
            (unfrozen, "completed", customer_id, [second], {"account_id": second}),
            (closed, "completed", customer_id, [second], {"account_id": second}),
            # A refused command names what it names; an unknown account has no owner.
            (refused, "failed", customer_id, [first],
             {"account_id": first, "amount": "1000.00", "reference": "too much"}),
            (unknown, "failed", None, [missing], {"account_id": missing, "amount": "1.00",
                                                  "reference": None}),
        ]
        for response, status, customer, aggregates, payload in expected:
            record = await logged(stack, response)
            label = record["type"]
            assert record["status"] == status, (label, record)
            assert record["customer_id"] == customer, (label, record)
            assert sorted(record["aggregate_ids"]) == sorted(aggregates), (label, record)
            assert record["payload"] == payload, (label, record)
        assert (await logged(stack, refused))["error"]["code"] == "insufficient_funds"


async def test_a_customers_log_pages_newest_first_and_holds_while_commands_arrive(settings):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="1.00")
        path = f"/v1/accounts/{account_id}/deposits"
        for _ in range(3):
            assert (await stack.commands.post(path, json={"amount": "1.00"})).status_code == 201
        refused = await stack.commands.post(f"/v1/accounts/{account_id}/withdrawals",
                                            json={"amount": "99.00"})
        assert refused.status_code == 409
        everything = (await log_of(stack, customer_id))["items"]
        assert [item["type"] for item in everything] == [
            "withdraw", "deposit", "deposit", "deposit", "open_account", "register_customer"]
        assert (await log_of(stack, customer_id))["next_cursor"] is None
        assert [(i["created_at"], i["command_id"]) for i in everything] == sorted(
            ((i["created_at"], i["command_id"]) for i in everything), reverse=True)
        assert everything[0] == await logged(stack, refused)

        # Two a page, while new commands keep arriving between pages: every command that
        # existed when paging started comes once, in order, and none that came later.
        seen, cursor = [], None
        while True:
            page = await log_of(stack, customer_id, limit=2,
                                **({"cursor": cursor} if cursor else {}))
            assert len(page["items"]) <= 2
            seen += [item["command_id"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
            assert (await stack.commands.post(path, json={"amount": "1.00"})).status_code == 201
        assert seen == [item["command_id"] for item in everything]

        failed = (await log_of(stack, customer_id, status="failed"))["items"]
        assert [item["command_id"] for item in failed] == [everything[0]["command_id"]]
        completed = await log_of(stack, customer_id, status="completed", limit=500)
        assert len(completed["items"]) == 5 + 2 and completed["next_cursor"] is None
        assert {item["status"] for item in completed["items"]} == {"completed"}


async def test_commands_of_one_moment_are_ordered_by_id(settings, engine):
    """Ties on created_at are broken by command id, descending, across pages too."""
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        moment = datetime(2026, 1, 1, 12, 0, 0, 123456)
        ids = sorted(str(uuid.uuid4()) for _ in range(3))
        async with engine.begin() as conn:
            await conn.execute(tables.commands.insert(), [dict(
                command_id=i, command_type="deposit", status="completed", created_at=moment,
                completed_at=moment, subject="test-admin", customer_id=customer_id,
                aggregate_ids="[]", payload="{}") for i in ids])
        seen, cursor = [], None
        for _ in range(4):
            page = await log_of(stack, customer_id, limit=1,
                                **({"cursor": cursor} if cursor else {}))
            seen += [item["command_id"] for item in page["items"]]
            cursor = page["next_cursor"]
        assert seen[1:] == ids[::-1]  # after the registration, the newest
        assert cursor is None


async def test_bad_status_limit_and_cursor_are_422(settings):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        path = f"/v1/customers/{customer_id}/commands"
        for params, field in [
            ({"status": "refused"}, "status"), ({"status": ""}, "status"),
            ({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"),
            ({"cursor": "not-a-cursor"}, "cursor"),
            ({"cursor": encode_cursor({"before": 2})}, "cursor"),
            ({"cursor": encode_cursor({"at": "yesterday", "id": "x"})}, "cursor"),
            ({"cursor": "x" * 513}, "cursor"),
        ]:
            check_error(await stack.commands.get(path, params=params), 422,
                        "validation_error", field)
        check_error(await stack.commands.get("/v1/customers/not-a-uuid/commands"), 422,
                    "validation_error", "customer_id")
        check_error(await stack.commands.get(f"/v1/customers/{uuid.uuid4()}/commands"), 404,
                    "customer_not_found")
        assert (await log_of(stack, customer_id, limit=500))["items"]


async def test_a_customers_token_lists_only_its_own_customers_commands_it_sent(settings):
    async with Stack(settings) as stack:
        mine, theirs = str(uuid.uuid4()), str(uuid.uuid4())
        own = customer_token(stack, mine, subject="ada")
        registered = await stack.commands.post("/v1/customers", headers=own, json={
            "name": "Ada", "email": f"{uuid.uuid4().hex}@example.com"})
        assert registered.status_code == 201, registered.text
        account_id = (await stack.commands.post("/v1/accounts", headers=own, json={
            "customer_id": mine, "type": "checking", "currency": "USD"})).json()["account_id"]
        # The bank freezes the account: the customer's log, as its token sees it, omits it.
        frozen = await stack.commands.post(f"/v1/accounts/{account_id}/freeze",
                                           json={"reason": "review"})
        assert frozen.status_code == 200
        page = await stack.commands.get(f"/v1/customers/{mine}/commands", headers=own)
        assert page.status_code == 200, page.text
        assert [i["type"] for i in page.json()["items"]] == ["open_account",
                                                             "register_customer"]
        assert [i["type"] for i in (await log_of(stack, mine))["items"]] == [
            "freeze_account", "open_account", "register_customer"]

        await register(stack)
        check_error(await stack.commands.get(f"/v1/customers/{theirs}/commands", headers=own),
                    403, "forbidden")
        no_scope = mint_token(stack.settings, subject="nobody", scopes=[])
        check_error(await stack.commands.get(f"/v1/customers/{mine}/commands", headers={
            "Authorization": f"Bearer {no_scope}"}), 403, "forbidden")


async def test_a_command_that_fails_on_a_bug_is_logged_as_internal_error(settings, engine,
                                                                         monkeypatch):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="10.00")
        name, deposit = HANDLERS[c.Deposit]

        async def deposit_then_fail(uow, command, now):
            await deposit(uow, command, now)  # changes the account, then breaks
            raise RuntimeError(f"bug while depositing for {command.reference}")

        monkeypatch.setitem(HANDLERS, c.Deposit, (name, deposit_then_fail))
        before = await write_model(engine)
        response = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                             json={"amount": "5.00", "reference": "secret"})
        check_error(response, 500, "internal_error")
        assert await write_model(engine) == before, "the failed command wrote state or events"

        failed = (await log_of(stack, customer_id, status="failed"))["items"]
        assert len(failed) == 1, failed
        record = failed[0]
        assert record["type"] == "deposit" and record["status"] == "failed"
        assert record["error"]["code"] == "internal_error"
        assert "secret" not in json.dumps(record["error"]), "no user data in the message"
        assert record["customer_id"] == customer_id
        assert record["aggregate_ids"] == [account_id]
        assert record["payload"] == {"account_id": account_id, "amount": "5.00",
                                     "reference": "secret"}

        # A dependency that is down is a 503 to retry, not a failed command: nothing is logged.
        async def time_out(uow, command, now):
            raise TimeoutError()

        monkeypatch.setitem(HANDLERS, c.Deposit, (name, time_out))
        check_error(await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                              json={"amount": "5.00"}),
                    503, "dependency_unavailable")
        async with engine.connect() as conn:
            assert await conn.scalar(sa.select(sa.func.count()).select_from(tables.commands)
                                     .where(tables.commands.c.status == "failed")) == 1


@pytest.mark.every_pair("a migration is each store's own DDL")
async def test_0005_keeps_the_commands_recorded_before_it_and_downgrades(database_url,
                                                                          settings, engine):
    config = alembic_config(database_url)
    await asyncio.to_thread(alembic.downgrade, config, "0004")
    old_id = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO commands (command_id, command_type, status, created_at, completed_at,"
            " subject) VALUES (:id, 'deposit', 'completed', '2026-12-01 00:00:00',"
            " '2026-12-01 00:00:01', 'someone')"), {"id": old_id})
    await asyncio.to_thread(alembic.upgrade, config, "head")
    async with Stack(settings) as stack:
        old = (await stack.commands.get(f"/v1/commands/{old_id}")).json()
        assert (old["customer_id"], old["aggregate_ids"], old["payload"]) == (None, [], {})
        customer_id = await register(stack)
        assert len((await log_of(stack, customer_id))["items"]) == 1
    await engine.dispose()  # SQLite rebuilds the table: no connection may hold it
    await asyncio.to_thread(alembic.downgrade, config, "0004")
    async with engine.connect() as conn:
        assert await conn.scalar(sa.text("SELECT COUNT(*) FROM commands")) == 2
        columns = {c["name"] for c in await conn.run_sync(
            lambda sync: sa.inspect(sync).get_columns("commands"))}
    assert not columns & {"customer_id", "aggregate_ids", "payload"}
    await asyncio.to_thread(alembic.upgrade, config, "head")


