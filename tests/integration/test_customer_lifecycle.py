"""Customer changes and closure against the real write database (SQLite and MySQL), over HTTP
and through the service: one event per changed field, nothing for an unchanged request, every
refusal with its code and nothing written, email addresses freed by a change or a closure, and
the races the database itself must decide (an address, a closure against an opening)."""

from __future__ import annotations

import asyncio
import uuid

import sqlalchemy as sa

from command_service.db.tables import accounts, commands, customers, events, outbox
from command_service.domain import commands as c
from command_service.domain.errors import AccountsOpenError, CustomerClosedError, EmailTakenError
from command_service.domain.model import AccountType
from command_service.service import CommandService
from shared.auth import WRITE
from tests.integration.test_auth import token
from tests.integration.test_query_api_contract import Checks, post
from tests.stack import Stack
from tests.support.contract import check_error, open_account, register


async def _writes(engine) -> tuple[int, int, int]:
    """Rows of state, events and outbox: what a refused command must leave as it was."""
    async with engine.connect() as conn:
        return tuple([await conn.scalar(sa.select(sa.func.count()).select_from(table))
                      for table in (events, outbox, accounts)])


async def _event_types(engine, aggregate_id: str) -> list[str]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(events.c.event_type).where(
            events.c.aggregate_id == aggregate_id).order_by(events.c.version))).scalars())


async def test_a_change_writes_one_event_per_changed_field_and_nothing_when_nothing_changes(
        settings, engine):
    async with Stack(settings) as stack:
        customer_id = await register(stack, name="Ada Lovelace", email="ada@example.com")
        both = await stack.commands.patch(f"/v1/customers/{customer_id}", json={
            "name": "Ada King", "email": "ada.king@example.com"})
        assert both.status_code == 200, both.text
        assert set(both.json()) == {"customer_id", "version", "command_id"}
        assert both.json()["version"] == 3
        assert "X-Consistency-Token" in both.headers
        assert await _event_types(engine, customer_id) == [
            "CustomerRegistered", "CustomerRenamed", "CustomerEmailChanged"]
        record = (await stack.commands.get(f"/v1/commands/{both.json()['command_id']}")).json()
        assert {k: record[k] for k in ("type", "customer_id", "aggregate_ids", "payload")} == {
            "type": "change_customer", "customer_id": customer_id,
            "aggregate_ids": [customer_id], "payload": {
                "customer_id": customer_id, "name": "Ada King", "email": "ada.king@example.com"}}

        before = await _writes(engine)
        same = await stack.commands.patch(f"/v1/customers/{customer_id}",
                                          json={"name": "  Ada King "})
        assert same.status_code == 200 and same.json()["version"] == 3, same.text
        assert await _writes(engine) == before

        case = await stack.commands.patch(f"/v1/customers/{customer_id}",
                                          json={"email": "Ada.King@Example.com"})
        assert case.json()["version"] == 4  # the address as written changed; its owner did not

        view = await stack.eventually(f"/v1/customers/{customer_id}",
                                      lambda r: r.status_code == 200
                                      and r.json()["version"] == 4)
        # An address's domain is kept lower-cased, as at registration.
        assert {k: view.json()[k] for k in ("name", "email", "status")} == {
            "name": "Ada King", "email": "Ada.King@example.com", "status": "active"}


async def test_every_refusal_has_its_code_and_writes_nothing_but_its_command_record(
        settings, engine):
    async with Stack(settings) as stack:
        ada = await register(stack, email="ada@example.com")
        grace = await register(stack, email="grace@example.com")
        account_id = await open_account(stack, grace)
        unknown = "00000000-0000-4000-8000-000000000000"
        before = await _writes(engine)

        checks = Checks()
        for label, method, path, body, status, code, field in [
            ("empty body", "PATCH", f"/v1/customers/{ada}", {}, 422, "validation_error", None),
            ("a null", "PATCH", f"/v1/customers/{ada}", {"name": None}, 422,
             "validation_error", "name"),
            ("blank name", "PATCH", f"/v1/customers/{ada}", {"name": "  "}, 422,
             "validation_error", "name"),
            ("long name", "PATCH", f"/v1/customers/{ada}", {"name": "x" * 201}, 422,
             "validation_error", "name"),
            ("bad email", "PATCH", f"/v1/customers/{ada}", {"email": "not-an-address"}, 422,
             "validation_error", "email"),
            ("unknown field", "PATCH", f"/v1/customers/{ada}", {"name": "A", "vip": True}, 422,
             "validation_error", "vip"),
            ("bad id", "PATCH", "/v1/customers/42", {"name": "A"}, 422, "validation_error",
             None),
            ("long reason", "POST", f"/v1/customers/{grace}/close", {"reason": "x" * 201}, 422,
             "validation_error", "reason"),
            ("unknown customer", "PATCH", f"/v1/customers/{unknown}", {"name": "A"}, 404,
             "customer_not_found", None),
            ("close unknown", "POST", f"/v1/customers/{unknown}/close", {}, 404,
             "customer_not_found", None),
            ("taken, another case", "PATCH", f"/v1/customers/{ada}",
             {"email": "GRACE@example.com"}, 409, "email_taken", None),
            ("accounts open", "POST", f"/v1/customers/{grace}/close", {}, 409, "accounts_open",
             None),
        ]:
            response = await stack.commands.request(method, path, json=body)
            checks.run(label, response, status, code, field)
        checks.assert_none_failed()
        assert await _writes(engine) == before

        await post(stack, f"/v1/accounts/{account_id}/close", {}, status=200)
        closed = await post(stack, f"/v1/customers/{grace}/close", {"reason": "moved abroad"},
                            status=200)
        assert closed.json() | {"command_id": None} == {
            "customer_id": grace, "status": "closed", "version": 2, "command_id": None}
        record = (await stack.commands.get(f"/v1/commands/{closed.json()['command_id']}")).json()
        assert (record["type"], record["payload"]) == (
            "close_customer", {"customer_id": grace, "reason": "moved abroad"})
        before = await _writes(engine)
        for method, path, body in [
            ("PATCH", f"/v1/customers/{grace}", {"name": "Grace"}),
            ("POST", f"/v1/customers/{grace}/close", {}),
            ("POST", "/v1/accounts", {"customer_id": grace, "type": "checking",
                                      "currency": "USD"}),
        ]:
            check_error(await stack.commands.request(method, path, json=body), 409,
                        "customer_closed")
        assert await _writes(engine) == before
        async with engine.connect() as conn:
            refused = await conn.scalar(sa.select(sa.func.count()).select_from(commands).where(
                commands.c.status == "failed"))
        assert refused >= 5  # the 404s, 409s and customer_closed refusals are in the log


async def test_a_changed_or_closed_customer_frees_its_address_at_once(settings, engine):
    async with Stack(settings) as stack:
        ada = await register(stack, email="ada@example.com")
        await stack.commands.patch(f"/v1/customers/{ada}", json={"email": "ada@example.org"})
        # The old address is free for someone else right away, in any case.
        other = await register(stack, email="ADA@example.com")
        check_error(await stack.commands.patch(f"/v1/customers/{ada}",
                                               json={"email": "ada@example.com"}), 409,
                    "email_taken")
        await post(stack, f"/v1/customers/{other}/close", {}, status=200)
        # Closed: its address is free again, for a change and for a registration alike.
        back = await stack.commands.patch(f"/v1/customers/{ada}",
                                          json={"email": "ada@example.com"})
        assert back.status_code == 200, back.text
        third = await register(stack, email="ada@example.org")
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(customers.c.customer_id, customers.c.status,
                                                 customers.c.email_active)
                                       .order_by(customers.c.created_at))).all()
        assert [tuple(r) for r in rows] == [(ada, "active", "ada@example.com"),
                                            (other, "closed", None),
                                            (third, "active", "ada@example.org")]


async def test_racing_registrations_and_changes_to_one_address_let_exactly_one_hold_it(
        engine, settings):
    service = CommandService(engine, settings.kafka_topic)
    changers = [(await service.execute(c.RegisterCustomer(
        f"Changer {i}", f"changer{i}@example.com", str(uuid.uuid4())))).body["customer_id"]
        for i in range(5)]

    async def attempt(i: int) -> bool:
        address = "Wanted@Example.com" if i % 2 else "wanted@example.COM"
        command = (c.ChangeCustomer(changers[i // 2], None, address) if i % 2
                   else c.RegisterCustomer(f"Newcomer {i}", address, str(uuid.uuid4())))
        try:
            await service.execute(command)
            return True
        except EmailTakenError:
            return False

    outcomes = await asyncio.gather(*(attempt(i) for i in range(10)))
    assert outcomes.count(True) == 1, outcomes
    winner = outcomes.index(True)
    for _ in range(2):
        outcomes = await asyncio.gather(*(attempt(i) for i in range(10)))
        # Nobody else gets the address; a changer that won it may set it again (it changes
        # nothing, or only its case), a newcomer is a new customer each time and may not.
        assert not any(won for i, won in enumerate(outcomes)
                       if not (i == winner and i % 2)), (winner, outcomes)
    async with engine.connect() as conn:
        holders = await conn.scalar(sa.select(sa.func.count()).select_from(customers).where(
            customers.c.email_active == "wanted@example.com"))
    assert holders == 1


async def test_racing_closure_and_openings_never_leave_an_account_for_a_closed_customer(
        engine, settings):
    service = CommandService(engine, settings.kafka_topic)

    async def close(customer_id: str) -> str:
        try:
            await service.execute(c.CloseCustomer(customer_id, None))
            return "closed"
        except AccountsOpenError:
            return "accounts_open"

    async def open_one(customer_id: str) -> str:
        try:
            await service.execute(c.OpenAccount(customer_id, AccountType.CHECKING, "USD", 0,
                                                str(uuid.uuid4())))
            return "opened"
        except CustomerClosedError:
            return "customer_closed"

    for round_ in range(4):
        customer_id = (await service.execute(c.RegisterCustomer(
            "Racer", f"{uuid.uuid4().hex}@example.com", str(uuid.uuid4())))).body["customer_id"]
        # The closure starts first in one round, last in another: both orders get tried.
        racers = [open_one(customer_id) for _ in range(3)]
        racers.insert(round_, close(customer_id))
        outcomes = await asyncio.gather(*racers)
        closure = outcomes.pop(round_)
        async with engine.connect() as conn:
            status = await conn.scalar(sa.select(customers.c.status).where(
                customers.c.customer_id == customer_id))
            opened = await conn.scalar(sa.select(sa.func.count()).select_from(accounts).where(
                accounts.c.customer_id == customer_id))
        assert outcomes.count("opened") == opened, outcomes
        # Closed with no account, or refused because one was opened first: never both.
        assert (status, closure, opened > 0) in {("closed", "closed", False),
                                                  ("active", "accounts_open", True)}, outcomes


async def test_a_customer_token_changes_and_closes_its_own_customer_only(settings, engine):
    async with Stack(settings) as stack:
        ada = await register(stack)
        grace = await register(stack)
        mine = token(settings, WRITE, subject=f"customer:{ada}", customer_id=ada)
        check_error(await stack.commands.patch(f"/v1/customers/{grace}", json={"name": "G"},
                                               headers=mine), 403, "forbidden")
        check_error(await stack.commands.post(f"/v1/customers/{grace}/close", json={},
                                              headers=mine), 403, "forbidden")
        changed = await stack.commands.patch(f"/v1/customers/{ada}", json={"name": "Ada K"},
                                             headers=mine)
        assert changed.status_code == 200, changed.text
        closed = await stack.commands.post(f"/v1/customers/{ada}/close", json={}, headers=mine)
        assert closed.status_code == 200, closed.text
