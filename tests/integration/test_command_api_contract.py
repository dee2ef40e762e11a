"""The command service's HTTP contract (docs/api.md), checked over real HTTP against the whole
stack: success shapes and versions, the error format for every kind of refusal, and that a
refused or malformed command writes nothing (no state row, no event, no outbox row)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime

import sqlalchemy as sa

from command_service.db import tables
from tests.stack import Stack
from tests.support.contract import check_error, open_account, register

BALANCE = re.compile(r"^\d+\.\d{2}$")
MiB = 1024 * 1024

# Money that must be refused wherever an amount is expected (docs/api.md: a decimal *string*, at
# most 2 fractional digits, > 0 and <= "1000000000.00").
BAD_MONEY = [
    ("a float number", 12.5),
    ("an integer number", 12),
    ("three decimals", "1.234"),
    ("zero", "0"),
    ("zero with decimals", "0.00"),
    ("negative", "-5"),
    ("not a number", "abc"),
    ("empty string", ""),
    ("over the maximum by a cent", "1000000000.01"),
    ("over the maximum by digits", "10000000000"),
    ("exponent notation", "1e3"),
    ("NaN", "NaN"),
    ("Infinity", "Infinity"),
]


# -- helpers ---------------------------------------------------------------------------------


def is_uuid(value: object) -> bool:
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def is_utc_timestamp(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0


def new_email(tag: str = "c") -> str:
    return f"{tag}.{uuid.uuid4().hex}@example.com"


async def write_model(engine) -> dict:
    """Everything a command may write: the state rows in full, the event and outbox row ids
    (the relay updates outbox.sent_at in the background, so only the ids are compared)."""
    async with engine.connect() as conn:
        async def rows(query) -> list[tuple]:
            return [tuple(row) for row in (await conn.execute(query)).all()]

        return {
            "customers": await rows(sa.select(tables.customers)
                                    .order_by(tables.customers.c.customer_id)),
            "accounts": await rows(sa.select(tables.accounts)
                                   .order_by(tables.accounts.c.account_id)),
            "events": await rows(sa.select(tables.events.c.position, tables.events.c.event_id)
                                 .order_by(tables.events.c.position)),
            "outbox": await rows(sa.select(tables.outbox.c.id).order_by(tables.outbox.c.id)),
        }


class Refusals:
    """Sends requests that must be refused, checks the answer and that nothing was written,
    and collects every failing case so one run reports them all."""

    def __init__(self, stack: Stack, engine) -> None:
        self.stack, self.engine = stack, engine
        self.failures: list[str] = []

    async def expect(self, label: str, method: str, path: str, *, status: int,
                     code: str | None, field: str | None = None, **request):
        before = await write_model(self.engine)
        response = await self.stack.commands.request(method, path, **request)
        try:
            check_error(response, status, code, field)
            assert await write_model(self.engine) == before, "the refused request wrote rows"
        except AssertionError as failure:
            self.failures.append(f"{label}: {method} {path}: {failure}")
        return response

    def assert_none_failed(self) -> None:
        assert not self.failures, f"{len(self.failures)} case(s) failed:\n" + \
            "\n".join(self.failures)


def success(response, status: int, fields: set[str]) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == fields, body
    assert is_uuid(body["command_id"]), body
    token = response.headers.get("X-Consistency-Token")
    assert token and token.strip(), "every successful command carries X-Consistency-Token"
    if "version" in body:
        assert isinstance(body["version"], int) and not isinstance(body["version"], bool)
    if "balance" in body:
        assert BALANCE.match(body["balance"]), body
    return body


# -- success shapes --------------------------------------------------------------------------


async def test_every_command_answers_its_documented_shape_versions_and_token(settings, engine):
    async with Stack(settings) as stack:
        cmd = stack.commands
        command_ids = []

        created = success(await cmd.post("/v1/customers", json={
            "name": "Ada Lovelace", "email": new_email("ada")}),
            201, {"customer_id", "version", "command_id"})
        assert is_uuid(created["customer_id"]) and created["version"] == 1
        customer_id = created["customer_id"]
        command_ids.append(created["command_id"])

        own_customer_id = str(uuid.uuid4())
        created = success(await cmd.post("/v1/customers", json={
            "name": "N" * 200, "email": new_email("long"), "customer_id": own_customer_id}),
            201, {"customer_id", "version", "command_id"})
        assert created == {"customer_id": own_customer_id, "version": 1,
                           "command_id": created["command_id"]}
        command_ids.append(created["command_id"])

        opened = success(await cmd.post("/v1/accounts", json={
            "customer_id": customer_id, "type": "checking", "currency": "USD",
            "initial_deposit": "100.00"}),
            201, {"account_id", "customer_id", "balance", "version", "command_id"})
        assert is_uuid(opened["account_id"])
        assert (opened["customer_id"], opened["balance"], opened["version"]) == (
            customer_id, "100.00", 1)
        checking = opened["account_id"]
        command_ids.append(opened["command_id"])

        own_account_id = str(uuid.uuid4())
        opened = success(await cmd.post("/v1/accounts", json={
            "customer_id": customer_id, "type": "savings", "currency": "USD",
            "account_id": own_account_id}),
            201, {"account_id", "customer_id", "balance", "version", "command_id"})
        assert (opened["account_id"], opened["balance"], opened["version"]) == (
            own_account_id, "0.00", 1)
        savings = own_account_id
        command_ids.append(opened["command_id"])

        for currency in ("EUR", "GBP", "INR"):
            opened = success(await cmd.post("/v1/accounts", json={
                "customer_id": own_customer_id, "type": "checking", "currency": currency,
                "initial_deposit": "0.01"}),
                201, {"account_id", "customer_id", "balance", "version", "command_id"})
            assert (opened["customer_id"], opened["balance"]) == (own_customer_id, "0.01")

        money_fields = {"account_id", "transaction_id", "balance", "version", "command_id"}
        deposit = success(await cmd.post(f"/v1/accounts/{checking}/deposits", json={
            "amount": "25.5", "reference": "r" * 140}), 201, money_fields)
        assert is_uuid(deposit["transaction_id"])
        assert (deposit["account_id"], deposit["balance"], deposit["version"]) == (
            checking, "125.50", 2)
        command_ids.append(deposit["command_id"])

        biggest = success(await cmd.post(f"/v1/accounts/{savings}/deposits", json={
            "amount": "1000000000.00"}), 201, money_fields)
        assert (biggest["balance"], biggest["version"]) == ("1000000000.00", 2)

        withdrawal = success(await cmd.post(f"/v1/accounts/{checking}/withdrawals", json={
            "amount": "20.25", "reference": "rent"}), 201, money_fields)
        assert (withdrawal["account_id"], withdrawal["balance"], withdrawal["version"]) == (
            checking, "105.25", 3)
        assert withdrawal["transaction_id"] != deposit["transaction_id"]
        command_ids.append(withdrawal["command_id"])

        transfer = success(await cmd.post("/v1/transfers", json={
            "from_account_id": checking, "to_account_id": savings, "amount": "5.25",
            "reference": "savings"}), 201, {"transfer_id", "from", "to", "command_id"})
        assert is_uuid(transfer["transfer_id"])
        assert transfer["from"] == {"account_id": checking, "balance": "100.00", "version": 4}
        assert transfer["to"] == {"account_id": savings, "balance": "1000000005.25",
                                  "version": 3}
        command_ids.append(transfer["command_id"])

        status_fields = {"account_id", "status", "version", "command_id"}
        frozen = success(await cmd.post(f"/v1/accounts/{checking}/freeze",
                                        json={"reason": "suspicious activity"}),
                         200, status_fields)
        assert (frozen["account_id"], frozen["status"], frozen["version"]) == (
            checking, "frozen", 5)
        command_ids.append(frozen["command_id"])

        # A frozen account still accepts deposits.
        deposit_on_frozen = success(await cmd.post(f"/v1/accounts/{checking}/deposits", json={
            "amount": "1.00"}), 201, money_fields)
        assert (deposit_on_frozen["balance"], deposit_on_frozen["version"]) == ("101.00", 6)

        unfrozen = success(await cmd.post(f"/v1/accounts/{checking}/unfreeze", json={}),
                           200, status_fields)
        assert (unfrozen["account_id"], unfrozen["status"], unfrozen["version"]) == (
            checking, "active", 7)
        command_ids.append(unfrozen["command_id"])

        emptied = success(await cmd.post(f"/v1/accounts/{checking}/withdrawals", json={
            "amount": "101"}), 201, money_fields)
        assert (emptied["balance"], emptied["version"]) == ("0.00", 8)

        closed = success(await cmd.post(f"/v1/accounts/{checking}/close", json={}),
                         200, status_fields)
        assert (closed["account_id"], closed["status"], closed["version"]) == (
            checking, "closed", 9)
        command_ids.append(closed["command_id"])

        assert len(set(command_ids)) == len(command_ids), "every command has its own id"

        # A version counts the aggregate's events: 1 after creation, +1 per event.
        async with engine.connect() as conn:
            versions = dict((await conn.execute(
                sa.select(tables.events.c.aggregate_id, sa.func.max(tables.events.c.version))
                .group_by(tables.events.c.aggregate_id))).all())
            counts = dict((await conn.execute(
                sa.select(tables.events.c.aggregate_id, sa.func.count())
                .group_by(tables.events.c.aggregate_id))).all())
        assert versions[checking] == counts[checking] == 9
        assert versions[savings] == counts[savings] == 3
        assert versions[customer_id] == counts[customer_id] == 1

        # What became of a completed command.
        status = await cmd.get(f"/v1/commands/{deposit['command_id']}")
        assert status.status_code == 200, status.text
        body = status.json()
        assert {"command_id", "type", "status", "created_at", "completed_at",
                "subject"} <= set(body)
        assert set(body) <= {"command_id", "type", "status", "created_at", "completed_at",
                             "subject", "error", "customer_id", "aggregate_ids",
                             "payload"}, body
        assert body["subject"] == "test-admin"  # the sub of the Stack's token
        assert body["command_id"] == deposit["command_id"]
        assert body["status"] == "completed"
        assert body.get("error") is None
        assert isinstance(body["type"], str) and body["type"]
        assert is_utc_timestamp(body["created_at"]) and is_utc_timestamp(body["completed_at"])
        assert body["created_at"] <= body["completed_at"]
        other = (await cmd.get(f"/v1/commands/{withdrawal['command_id']}")).json()
        assert other["status"] == "completed" and other["type"] != body["type"]


async def test_command_status_reports_refused_commands_as_failed_and_unknown_ones_as_404(
        settings, engine):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="10.00")

        refused = await stack.commands.post(f"/v1/accounts/{account_id}/withdrawals",
                                            json={"amount": "10.01"})
        check_error(refused, 409, "insufficient_funds")
        command_id = refused.headers.get("X-Command-ID")
        assert is_uuid(command_id), f"a refusal names its command: {dict(refused.headers)}"

        status = await stack.commands.get(f"/v1/commands/{command_id}")
        assert status.status_code == 200, status.text
        body = status.json()
        assert set(body) == {"command_id", "type", "status", "created_at", "completed_at",
                             "subject", "error", "customer_id", "aggregate_ids",
                             "payload"}, body
        assert body["command_id"] == command_id
        assert body["status"] == "failed"
        assert isinstance(body["error"], dict) and body["error"]["code"] == "insufficient_funds"
        assert is_utc_timestamp(body["created_at"]) and is_utc_timestamp(body["completed_at"])

        missing = await stack.commands.get(f"/v1/commands/{uuid.uuid4()}")
        check_error(missing, 404, "command_not_found")
        check_error(await stack.commands.get("/v1/commands/not-a-uuid"), 422,
                    "validation_error", "command_id")


# -- 422: malformed requests -----------------------------------------------------------------


async def malformed_customer_registrations(stack: Stack, refusals: Refusals) -> None:
    await register(stack)  # a non-empty write model, so "unchanged" is a real check
    cases = [
        ("name over 200 chars", {"name": "x" * 201, "email": new_email()}, "name"),
        ("empty name", {"name": "", "email": new_email()}, "name"),
        ("blank name", {"name": "   ", "email": new_email()}, "name"),
        ("missing name", {"email": new_email()}, "name"),
        ("name not a string", {"name": 42, "email": new_email()}, "name"),
        ("name null", {"name": None, "email": new_email()}, "name"),
        ("bad email", {"name": "Ada", "email": "not-an-email"}, "email"),
        ("email without domain", {"name": "Ada", "email": "ada@"}, "email"),
        ("email with two @", {"name": "Ada", "email": "a@b@example.com"}, "email"),
        ("email not a string", {"name": "Ada", "email": 42}, "email"),
        ("missing email", {"name": "Ada"}, "email"),
        ("bad customer_id", {"name": "Ada", "email": new_email(),
                             "customer_id": "not-a-uuid"}, "customer_id"),
        ("customer_id a number", {"name": "Ada", "email": new_email(),
                                  "customer_id": 12345}, "customer_id"),
        ("unknown field", {"name": "Ada", "email": new_email(), "nickname": "A"},
         "nickname"),
        ("body is a list", [{"name": "Ada", "email": new_email()}], "body"),
        ("body is a string", "Ada", "body"),
    ]
    for label, body, field in cases:
        await refusals.expect(label, "POST", "/v1/customers", json=body, status=422,
                              code="validation_error", field=field)
    await refusals.expect("empty body", "POST", "/v1/customers", content=b"",
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field="body")
    await refusals.expect("invalid JSON", "POST", "/v1/customers",
                          content=b'{"name": "Ada", "email": ',
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field=None)


async def malformed_account_openings(stack: Stack, refusals: Refusals) -> None:
    customer_id = await register(stack)

    def body(**changes) -> dict:
        valid = {"customer_id": customer_id, "type": "checking", "currency": "USD",
                 "initial_deposit": "10.00"}
        valid.update(changes)
        return {k: v for k, v in valid.items() if v is not ...}

    cases = [
        ("bad customer_id", body(customer_id="not-a-uuid"), "customer_id"),
        ("missing customer_id", body(customer_id=...), "customer_id"),
        ("customer_id a number", body(customer_id=7), "customer_id"),
        ("unknown account type", body(type="credit"), "type"),
        ("account type in capitals", body(type="CHECKING"), "type"),
        ("missing type", body(type=...), "type"),
        ("type a number", body(type=1), "type"),
        ("unknown currency", body(currency="JPY"), "currency"),
        ("lower-case currency", body(currency="usd"), "currency"),
        ("empty currency", body(currency=""), "currency"),
        ("currency a number", body(currency=840), "currency"),
        ("missing currency", body(currency=...), "currency"),
        ("bad account_id", body(account_id="not-a-uuid"), "account_id"),
        ("unknown field", body(overdraft_limit="100.00"), "overdraft_limit"),
        ("body is a list", [body()], "body"),
    ] + [(f"initial_deposit {label}", body(initial_deposit=value), "initial_deposit")
         for label, value in BAD_MONEY]
    for label, request_body, field in cases:
        await refusals.expect(label, "POST", "/v1/accounts", json=request_body, status=422,
                              code="validation_error", field=field)
    await refusals.expect("empty body", "POST", "/v1/accounts", content=b"",
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field="body")
    await refusals.expect("invalid JSON", "POST", "/v1/accounts",
                          content=b'{"customer_id": }',
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field=None)


async def malformed_deposits_and_withdrawals(stack: Stack, refusals: Refusals) -> None:
    account_id = await open_account(stack, await register(stack), initial_deposit="50.00")
    for kind in ("deposits", "withdrawals"):
        path = f"/v1/accounts/{account_id}/{kind}"
        cases = [
            ("bad account id in path", f"/v1/accounts/not-a-uuid/{kind}",
             {"amount": "1.00"}, "account_id"),
            ("missing amount", path, {"reference": "x"}, "amount"),
            ("amount null", path, {"amount": None}, "amount"),
            ("reference over 140 chars", path, {"amount": "1.00", "reference": "r" * 141},
             "reference"),
            ("reference a number", path, {"amount": "1.00", "reference": 5}, "reference"),
            ("unknown field", path, {"amount": "1.00", "currency": "USD"}, "currency"),
            ("body is a list", path, [{"amount": "1.00"}], "body"),
        ] + [(f"amount {label}", path, {"amount": value}, "amount")
             for label, value in BAD_MONEY]
        for label, target, request_body, field in cases:
            await refusals.expect(f"{kind}: {label}", "POST", target, json=request_body,
                                  status=422, code="validation_error", field=field)
        await refusals.expect(f"{kind}: empty body", "POST", path, content=b"",
                              headers={"Content-Type": "application/json"}, status=422,
                              code="validation_error", field="body")
        await refusals.expect(f"{kind}: invalid JSON", "POST", path,
                              content=b'{"amount": "1.00"',
                              headers={"Content-Type": "application/json"}, status=422,
                              code="validation_error", field=None)


async def malformed_transfers(stack: Stack, refusals: Refusals) -> None:
    customer_id = await register(stack)
    source = await open_account(stack, customer_id, initial_deposit="50.00")
    target = await open_account(stack, customer_id)

    def body(**changes) -> dict:
        valid = {"from_account_id": source, "to_account_id": target, "amount": "1.00"}
        valid.update(changes)
        return {k: v for k, v in valid.items() if v is not ...}

    cases = [
        ("bad from_account_id", body(from_account_id="nope"), "from_account_id"),
        ("bad to_account_id", body(to_account_id="nope"), "to_account_id"),
        ("missing from_account_id", body(from_account_id=...), "from_account_id"),
        ("missing to_account_id", body(to_account_id=...), "to_account_id"),
        ("missing amount", body(amount=...), "amount"),
        ("the same account twice", body(to_account_id=source), None),
        ("reference over 140 chars", body(reference="r" * 141), "reference"),
        ("unknown field", body(currency="USD"), "currency"),
        ("body is a list", [body()], "body"),
    ] + [(f"amount {label}", body(amount=value), "amount") for label, value in BAD_MONEY]
    for label, request_body, field in cases:
        await refusals.expect(label, "POST", "/v1/transfers", json=request_body, status=422,
                              code="validation_error", field=field)
    await refusals.expect("empty body", "POST", "/v1/transfers", content=b"",
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field="body")
    await refusals.expect("invalid JSON", "POST", "/v1/transfers", content=b"{'a': 1}",
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field=None)


async def malformed_status_changes(stack: Stack, refusals: Refusals) -> None:
    account_id = await open_account(stack, await register(stack))
    path = f"/v1/accounts/{account_id}"
    freeze_cases = [
        ("bad account id in path", "/v1/accounts/not-a-uuid/freeze", {"reason": "x"},
         "account_id"),
        ("empty reason", f"{path}/freeze", {"reason": ""}, "reason"),
        ("blank reason", f"{path}/freeze", {"reason": "   "}, "reason"),
        ("reason over 200 chars", f"{path}/freeze", {"reason": "r" * 201}, "reason"),
        ("missing reason", f"{path}/freeze", {}, "reason"),
        ("reason a number", f"{path}/freeze", {"reason": 5}, "reason"),
        ("unknown field", f"{path}/freeze", {"reason": "x", "until": "tomorrow"}, "until"),
    ]
    for label, target, request_body, field in freeze_cases:
        await refusals.expect(f"freeze: {label}", "POST", target, json=request_body,
                              status=422, code="validation_error", field=field)
    await refusals.expect("freeze: empty body", "POST", f"{path}/freeze", content=b"",
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field="body")
    await refusals.expect("freeze: invalid JSON", "POST", f"{path}/freeze",
                          content=b'{"reason": "x"]',
                          headers={"Content-Type": "application/json"}, status=422,
                          code="validation_error", field=None)
    for action in ("unfreeze", "close"):
        await refusals.expect(f"{action}: bad account id in path", "POST",
                              f"/v1/accounts/not-a-uuid/{action}", json={}, status=422,
                              code="validation_error", field="account_id")
        await refusals.expect(f"{action}: unknown field", "POST", f"{path}/{action}",
                              json={"force": True}, status=422, code="validation_error",
                              field="force")
        await refusals.expect(f"{action}: body is a list", "POST", f"{path}/{action}",
                              json=[], status=422, code="validation_error", field="body")
        await refusals.expect(f"{action}: invalid JSON", "POST", f"{path}/{action}",
                              content=b"{", headers={"Content-Type": "application/json"},
                              status=422, code="validation_error", field=None)


async def test_malformed_commands_are_422_in_the_error_format_and_write_nothing(settings,
                                                                               engine):
    async with Stack(settings) as stack:
        refusals = Refusals(stack, engine)
        await malformed_customer_registrations(stack, refusals)
        await malformed_account_openings(stack, refusals)
        await malformed_deposits_and_withdrawals(stack, refusals)
        await malformed_transfers(stack, refusals)
        await malformed_status_changes(stack, refusals)
        refusals.assert_none_failed()


async def test_a_body_that_is_not_json_is_a_422_naming_the_body(settings, engine):
    """The detail of an unparsable body names the body, not a character offset."""
    async with Stack(settings) as stack:
        account = f"/v1/accounts/{uuid.uuid4()}"
        refusals = Refusals(stack, engine)
        for path in ("/v1/customers", "/v1/accounts", f"{account}/deposits",
                     f"{account}/withdrawals", "/v1/transfers", f"{account}/freeze",
                     f"{account}/unfreeze", f"{account}/close"):
            await refusals.expect("truncated JSON", "POST", path, content=b'{"amount": "1.0',
                                  headers={"Content-Type": "application/json"}, status=422,
                                  code="validation_error", field="body")
        refusals.assert_none_failed()


# -- 404: unknown customers and accounts -----------------------------------------------------


async def test_unknown_customers_and_accounts_are_404_and_write_nothing(settings, engine):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        known = await open_account(stack, customer_id, initial_deposit="10.00")
        unknown = str(uuid.uuid4())
        refusals = Refusals(stack, engine)
        for action, body in (("deposits", {"amount": "1.00"}),
                             ("withdrawals", {"amount": "1.00"}),
                             ("freeze", {"reason": "why not"}), ("unfreeze", {}), ("close", {})):
            await refusals.expect(f"{action} on an unknown account", "POST",
                                  f"/v1/accounts/{unknown}/{action}", json=body, status=404,
                                  code="account_not_found")
        await refusals.expect("open an account for an unknown customer", "POST", "/v1/accounts",
                              json={"customer_id": unknown, "type": "checking",
                                    "currency": "USD", "initial_deposit": "5.00"},
                              status=404, code="customer_not_found")
        for label, source, target in (("unknown source", unknown, known),
                                      ("unknown target", known, unknown),
                                      ("both unknown", unknown, str(uuid.uuid4()))):
            await refusals.expect(f"transfer with {label}", "POST", "/v1/transfers",
                                  json={"from_account_id": source, "to_account_id": target,
                                        "amount": "1.00"},
                                  status=404, code="account_not_found")
        refusals.assert_none_failed()


# -- 409: business rules ---------------------------------------------------------------------


async def test_business_rule_refusals_are_409_and_write_nothing(settings, engine):
    async with Stack(settings) as stack:
        cmd = stack.commands
        uid = uuid.uuid4().hex
        customer_id = await register(stack, email=f"A{uid}@x.com")
        funded = await open_account(stack, customer_id, initial_deposit="50.00")
        empty = await open_account(stack, customer_id, type_="savings")
        euros = await open_account(stack, customer_id, currency="EUR", initial_deposit="10.00")
        frozen = await open_account(stack, customer_id, initial_deposit="20.00")
        assert (await cmd.post(f"/v1/accounts/{frozen}/freeze",
                               json={"reason": "investigation"})).status_code == 200
        closed = await open_account(stack, customer_id)
        assert (await cmd.post(f"/v1/accounts/{closed}/close", json={})).status_code == 200

        refusals = Refusals(stack, engine)
        expect = refusals.expect

        await expect("withdraw more than the balance", "POST",
                     f"/v1/accounts/{funded}/withdrawals", json={"amount": "50.01"},
                     status=409, code="insufficient_funds")
        await expect("withdraw from a zero balance", "POST",
                     f"/v1/accounts/{empty}/withdrawals", json={"amount": "0.01"},
                     status=409, code="insufficient_funds")
        await expect("transfer more than the balance", "POST", "/v1/transfers",
                     json={"from_account_id": funded, "to_account_id": empty,
                           "amount": "50.01"}, status=409, code="insufficient_funds")

        await expect("email taken, other case", "POST", "/v1/customers",
                     json={"name": "Someone Else", "email": f"a{uid}@X.com"},
                     status=409, code="email_taken")
        await expect("email taken, same case", "POST", "/v1/customers",
                     json={"name": "Someone Else", "email": f"A{uid}@x.com"},
                     status=409, code="email_taken")

        await expect("customer_id reused", "POST", "/v1/customers",
                     json={"name": "Twin", "email": new_email("twin"),
                           "customer_id": customer_id},
                     status=409, code="already_exists")
        await expect("account_id reused", "POST", "/v1/accounts",
                     json={"customer_id": customer_id, "type": "checking", "currency": "USD",
                           "account_id": funded},
                     status=409, code="already_exists")

        await expect("withdraw from a frozen account", "POST",
                     f"/v1/accounts/{frozen}/withdrawals", json={"amount": "1.00"},
                     status=409, code="account_frozen")
        await expect("transfer from a frozen account", "POST", "/v1/transfers",
                     json={"from_account_id": frozen, "to_account_id": funded,
                           "amount": "1.00"}, status=409, code="account_frozen")
        await expect("freeze a frozen account", "POST", f"/v1/accounts/{frozen}/freeze",
                     json={"reason": "again"}, status=409, code=None)
        await expect("unfreeze an active account", "POST", f"/v1/accounts/{funded}/unfreeze",
                     json={}, status=409, code=None)

        await expect("deposit on a closed account", "POST",
                     f"/v1/accounts/{closed}/deposits", json={"amount": "1.00"},
                     status=409, code="account_closed")
        await expect("transfer to a closed account", "POST", "/v1/transfers",
                     json={"from_account_id": funded, "to_account_id": closed,
                           "amount": "1.00"}, status=409, code="account_closed")
        await expect("freeze a closed account", "POST", f"/v1/accounts/{closed}/freeze",
                     json={"reason": "x"}, status=409, code="account_closed")
        await expect("close a closed account", "POST", f"/v1/accounts/{closed}/close",
                     json={}, status=409, code="account_closed")

        await expect("close with money on it", "POST", f"/v1/accounts/{funded}/close",
                     json={}, status=409, code="balance_not_zero")

        await expect("transfer USD to EUR", "POST", "/v1/transfers",
                     json={"from_account_id": funded, "to_account_id": euros,
                           "amount": "1.00"}, status=409, code="currency_mismatch")
        refusals.assert_none_failed()

        # After all those refusals the money is where it was.
        async with engine.connect() as conn:
            balances = dict((await conn.execute(sa.select(
                tables.accounts.c.account_id, tables.accounts.c.balance_minor))).all())
        assert balances == {funded: 5000, empty: 0, euros: 1000, frozen: 2000, closed: 0}


# -- 413: oversized bodies -------------------------------------------------------------------


async def test_bodies_over_one_mebibyte_are_413_and_write_nothing(settings, engine):
    async with Stack(settings) as stack:
        account_id = await open_account(stack, await register(stack), initial_deposit="5.00")
        padding = "x" * (MiB + 1)
        oversized_customer = json.dumps({"name": padding, "email": "big@example.com"}).encode()
        oversized_deposit = json.dumps({"amount": "1.00", "reference": padding}).encode()
        json_header = {"Content-Type": "application/json"}

        async def chunked(payload: bytes):
            for start in range(0, len(payload), 64 * 1024):
                yield payload[start:start + 64 * 1024]

        refusals = Refusals(stack, engine)
        await refusals.expect("customer with Content-Length", "POST", "/v1/customers",
                              content=oversized_customer, headers=json_header,
                              status=413, code="payload_too_large")
        await refusals.expect("customer, chunked without Content-Length", "POST",
                              "/v1/customers", content=chunked(oversized_customer),
                              headers=json_header, status=413, code="payload_too_large")
        await refusals.expect("deposit with Content-Length", "POST",
                              f"/v1/accounts/{account_id}/deposits", content=oversized_deposit,
                              headers=json_header, status=413, code="payload_too_large")
        # Just under the cap it is an ordinary malformed request, not a 413.
        near_cap = json.dumps({"name": "x" * (MiB - 100), "email": "big@example.com"}).encode()
        assert len(near_cap) <= MiB
        await refusals.expect("customer just under 1 MiB", "POST", "/v1/customers",
                              content=near_cap, headers=json_header, status=422,
                              code="validation_error", field="name")
        refusals.assert_none_failed()


# -- operations and documentation ------------------------------------------------------------


COMMAND_PATHS = {
    ("post", "/v1/customers"),
    ("post", "/v1/accounts"),
    ("post", "/v1/accounts/{account_id}/deposits"),
    ("post", "/v1/accounts/{account_id}/withdrawals"),
    ("post", "/v1/transfers"),
    ("post", "/v1/accounts/{account_id}/freeze"),
    ("post", "/v1/accounts/{account_id}/unfreeze"),
    ("post", "/v1/accounts/{account_id}/close"),
    ("get", "/v1/commands/{command_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


async def test_health_metrics_and_openapi_of_the_command_service(settings):
    async with Stack(settings) as stack:
        cmd = stack.commands
        assert (await cmd.get("/healthz")).status_code == 200
        ready = await cmd.get("/readyz")
        assert ready.status_code == 200, ready.text
        await register(stack)  # so there is a command to count
        metrics = await cmd.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# HELP" in metrics.text and "# TYPE" in metrics.text

        unknown = await cmd.get("/v1/no-such-thing")
        check_error(unknown, 404, None)

        schema = (await cmd.get("/openapi.json")).json()
        documented = {(method, path) for path, item in schema["paths"].items()
                      for method in item}
        assert documented >= COMMAND_PATHS, sorted(COMMAND_PATHS - documented)
        error_schema = schema["components"]["schemas"]["ErrorResponse"]
        assert set(error_schema["properties"]) == {"error"}
        for method, path in COMMAND_PATHS:
            operation = schema["paths"][path][method]
            if path.startswith("/v1/"):
                assert "422" in operation["responses"], (method, path)
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (method, path, status, ref)
        # Money is documented as a string, not a number.
        deposit = schema["paths"]["/v1/accounts/{account_id}/deposits"]["post"]
        ref = deposit["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        amount = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]["properties"]["amount"]
        assert amount.get("type") == "string", amount
        assert all(isinstance(value, str) for value in amount.get("examples", [])), amount

