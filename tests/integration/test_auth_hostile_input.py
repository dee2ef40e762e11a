"""Hostile input over real HTTP: MongoDB operators and regex metacharacters are text, never
operators or patterns; SQL in a field is stored as text; opaque strings (cursors, consistency
tokens) that smuggle operators are refused before any query is built."""

from __future__ import annotations

import base64
import json
import uuid

import sqlalchemy as sa

from command_service.db import tables
from tests.stack import Stack
from tests.support.contract import check_error

NAMES = {
    "dot-star": "Dot .* Star",
    "operator": 'Weird {"$ne": null} Name',
    "caret": "Caret ^ Dollar $ Pipe | Paren ( Bracket [ Backslash \\",
    "sql": "Robert'); DROP TABLE customers; --",
    "plain": "Plain Person",
}


def opaque(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


async def register_all(stack: Stack) -> dict[str, str]:
    ids = {}
    for key, name in NAMES.items():
        created = await stack.commands.post("/v1/customers", json={
            "name": name, "email": f"{key}.{uuid.uuid4().hex}@example.com"})
        assert created.status_code == 201, created.text
        ids[key] = created.json()["customer_id"]
    for customer_id in ids.values():
        await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200)
    return ids


async def search(stack: Stack, q: str | None = None, **params) -> set[str]:
    response = await stack.queries.get("/v1/customers", params={
        **({"q": q} if q is not None else {}), "limit": 500, **params})
    assert response.status_code == 200, response.text
    return {item["name"] for item in response.json()["items"]}


async def test_search_text_is_matched_as_text_never_as_an_operator_or_pattern(settings):
    async with Stack(settings) as stack:
        await register_all(stack)
        everyone = await search(stack)
        assert set(NAMES.values()) <= everyone

        assert await search(stack, ".*") == {NAMES["dot-star"]}
        assert await search(stack, '{"$ne": null}') == {NAMES["operator"]}
        assert await search(stack, "$ne") == {NAMES["operator"]}
        for metacharacters in ("^", "|", "(", "[", "\\", "Dollar $", "^ Dollar $ Pipe |"):
            assert await search(stack, metacharacters) == {NAMES["caret"]}, metacharacters
        assert await search(stack, "'); DROP TABLE") == {NAMES["sql"]}
        assert await search(stack, "a+b?c{2}") == set()
        assert await search(stack, "(a|b)*") == set()
        # Operator-shaped parameter names are just unknown parameters.
        assert await search(stack, None, **{"q[$ne]": "x", "q[$regex]": ".*"}) == everyone


async def test_operator_objects_where_ids_or_values_belong_are_422(settings, engine):
    async with Stack(settings) as stack:
        ids = await register_all(stack)
        opened = await stack.commands.post("/v1/accounts", json={
            "customer_id": ids["plain"], "type": "checking", "currency": "USD",
            "initial_deposit": "10.00"})
        account_id = opened.json()["account_id"]
        await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200)
        operator = {"$ne": None}

        for path in ("/v1/customers/%7B%22%24ne%22%3Anull%7D", "/v1/accounts/.*",
                     "/v1/accounts/%24where", "/v1/customers/1'%20OR%20'1'%3D'1"):
            check_error(await stack.queries.get(path), 422, "validation_error")
        for body in ({"customer_id": operator, "type": "checking", "currency": "USD"},
                     {"customer_id": ids["plain"], "type": {"$in": ["checking"]},
                      "currency": "USD"},
                     {"customer_id": ids["plain"], "type": "checking", "currency": "USD",
                      "initial_deposit": {"$gt": "0"}}):
            check_error(await stack.commands.post("/v1/accounts", json=body), 422,
                        "validation_error")
        check_error(await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                              json={"amount": "1.00", "reference": operator}),
                    422, "validation_error")

        # Cursors and consistency tokens are decoded and type-checked before any query.
        transactions = f"/v1/accounts/{account_id}/transactions"
        for cursor in (opaque({"before": {"$lt": 99}}), opaque({"after": {"$gt": ""}}),
                       opaque(["$where"]), "%%%", "x" * 600):
            check_error(await stack.queries.get(transactions, params={"cursor": cursor}), 422,
                        "validation_error")
            check_error(await stack.queries.get("/v1/customers", params={"cursor": cursor}),
                        422, "validation_error")
        for token in (opaque({account_id: {"$gt": 0}}), opaque({"$where": 1}) + "!",
                      opaque({account_id: True}), opaque([account_id])):
            check_error(await stack.queries.get(f"/v1/accounts/{account_id}",
                                                headers={"X-Consistency-Token": token}),
                        422, "validation_error")


async def test_sql_in_a_field_is_stored_as_text(settings, engine):
    async with Stack(settings) as stack:
        ids = await register_all(stack)
        opened = await stack.commands.post("/v1/accounts", json={
            "customer_id": ids["sql"], "type": "checking", "currency": "USD",
            "initial_deposit": "10.00"})
        account_id = opened.json()["account_id"]
        reference = "1'; DELETE FROM accounts; --"
        deposit = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                            json={"amount": "1.00", "reference": reference},
                                            headers={"Idempotency-Key": "' OR '1'='1"})
        assert deposit.status_code == 201, deposit.text
        history = await stack.eventually(
            f"/v1/accounts/{account_id}/transactions",
            lambda r: r.status_code == 200 and len(r.json()["items"]) == 2)
        assert history.json()["items"][0]["reference"] == reference
        async with engine.connect() as conn:
            name = await conn.scalar(sa.select(tables.customers.c.name).where(
                tables.customers.c.customer_id == ids["sql"]))
            accounts = await conn.scalar(sa.select(sa.func.count()).select_from(tables.accounts))
            keys = await conn.scalar(sa.select(sa.func.count()).select_from(tables.commands)
                                     .where(tables.commands.c.idempotency_key.is_not(None)))
        assert name == NAMES["sql"] and accounts == 1 and keys == 1
