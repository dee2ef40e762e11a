"""The command routes' direct path (command_service/api/command_route.py): a well-formed command
skips FastAPI's dependency solving, and everything else is answered exactly as FastAPI's
standard path answers it. Each request here is sent to the app as built and to the same app
held to the standard path, and both answers are compared."""

from __future__ import annotations

import json
import uuid
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException
from sqlalchemy.ext.asyncio import create_async_engine

from command_service.api.app import create_app
from command_service.api.command_route import CommandRoute, DirectCall
from command_service.api.execution import Runner
from command_service.api.routers import accounts, customers, transfers
from command_service.db.tables import commands
from shared.config import Settings


@asynccontextmanager
async def _client(app: FastAPI):
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def _standard_only(app: FastAPI) -> FastAPI:
    """The app held to FastAPI's standard path: the direct path leaves any request with a
    dependency override to it. This override replaces nothing the app uses."""
    app.dependency_overrides[_standard_only] = _standard_only
    return app


@pytest_asyncio.fixture
async def clients(database_url):
    settings = Settings(database_url=database_url, auth_disabled=True, kafka_topic="direct")
    async with _client(create_app(settings)) as direct, \
            _client(_standard_only(create_app(settings))) as standard:
        yield direct, standard


async def _account(client: httpx.AsyncClient) -> str:
    customer = await client.post("/v1/customers", json={
        "name": "Ada", "email": f"{uuid.uuid4().hex[:8]}@example.com"})
    assert customer.status_code == 201, customer.text
    account = await client.post("/v1/accounts", json={
        "customer_id": customer.json()["customer_id"], "type": "checking", "currency": "USD"})
    assert account.status_code == 201, account.text
    return account.json()["account_id"]


JSON = {"content-type": "application/json"}
DEPOSIT = json.dumps({"amount": "1.00", "reference": "r"}).encode()

# (label, method, path ({account} is a real account), headers, body): each is refused, and
# must be refused identically by both paths.
REFUSED = [
    ("no content type", "POST", "/v1/accounts/{account}/deposits", {}, DEPOSIT),
    ("a text content type", "POST", "/v1/accounts/{account}/deposits",
     {"content-type": "text/plain"}, DEPOSIT),
    ("malformed JSON", "POST", "/v1/accounts/{account}/deposits", JSON, b'{"amount": '),
    ("not UTF-8", "POST", "/v1/accounts/{account}/deposits", JSON, b'{"amount": "\xff"}'),
    ("a JSON null", "POST", "/v1/accounts/{account}/deposits", JSON, b"null"),
    ("a JSON list", "POST", "/v1/accounts/{account}/deposits", JSON, b"[]"),
    ("no body", "POST", "/v1/accounts/{account}/deposits", JSON, b""),
    ("an unknown field", "POST", "/v1/accounts/{account}/deposits", JSON,
     b'{"amount": "1.00", "colour": "red"}'),
    ("a float amount", "POST", "/v1/accounts/{account}/deposits", JSON, b'{"amount": 1.5}'),
    ("a malformed path id", "POST", "/v1/accounts/not-a-uuid/deposits", JSON, DEPOSIT),
    ("an unknown account", "POST", f"/v1/accounts/{uuid.uuid4()}/deposits", JSON, DEPOSIT),
    ("a bad email", "POST", "/v1/customers", JSON, b'{"name": "A", "email": "nope"}'),
    ("a body where none is taken", "POST", "/v1/accounts/{account}/unfreeze", JSON,
     b'{"why": 1}'),
    ("a transfer to the same account", "POST", "/v1/transfers", JSON,
     b'{"from_account_id": "{account}", "to_account_id": "{account}", "amount": "1.00"}'),
]


@pytest.mark.parametrize("label,method,path,headers,body", REFUSED, ids=[r[0] for r in REFUSED])
async def test_a_refused_request_is_answered_as_fastapi_answers_it(
        clients, database_url, label, method, path, headers, body):
    direct, standard = clients
    account = await _account(direct)
    path, body = path.format(account=account), body.replace(b"{account}", account.encode())
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            before = (await conn.execute(sa.select(sa.func.count()).select_from(commands))).scalar()
        answers = [await client.request(method, path, headers=headers, content=body)
                   for client in (direct, standard)]
        async with engine.connect() as conn:
            after = (await conn.execute(sa.select(sa.func.count()).select_from(commands))).scalar()
    finally:
        await engine.dispose()
    first, second = answers
    assert first.status_code >= 400, first.text
    assert (first.status_code, first.json()) == (second.status_code, second.json())
    # A service-level refusal is recorded once by each; a malformed request never reaches it.
    assert after - before in (0, 2)


async def test_a_well_formed_command_is_answered_alike_on_both_paths(clients):
    direct, standard = clients
    account = await _account(direct)
    for content_type in ("application/json", "application/json; charset=utf-8",
                         "application/vnd.example+json"):
        answers = [await client.post(f"/v1/accounts/{account}/deposits", content=DEPOSIT,
                                     headers={"content-type": content_type,
                                              "Idempotency-Key": uuid.uuid4().hex})
                   for client in (direct, standard)]
        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        first, second = (a.json() for a in answers)
        assert second["version"] == first["version"] + 1
        assert set(first) == set(second)
        assert all(a.headers["X-Consistency-Token"] for a in answers)


async def test_an_idempotency_key_is_replayed_by_the_direct_path(clients):
    direct, _ = clients
    account = await _account(direct)
    headers = {**JSON, "Idempotency-Key": "direct-1"}
    first = await direct.post(f"/v1/accounts/{account}/deposits", content=DEPOSIT,
                              headers=headers)
    again = await direct.post(f"/v1/accounts/{account}/deposits", content=DEPOSIT,
                              headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"


def test_every_command_route_takes_the_direct_path():
    routes = [r for router in (accounts.router, customers.router, transfers.router)
              for r in router.routes]
    assert routes and all(isinstance(r, CommandRoute) for r in routes)
    assert [r.path for r in routes if DirectCall.of(r.dependant, r.body_field) is None] == []


async def test_a_dependency_of_the_including_router_still_runs():
    """The direct path must see the route as included, with the including router's
    dependencies, or it would skip them."""
    def refuse() -> None:
        raise HTTPException(418, "the including router's dependency ran")

    router = APIRouter(route_class=CommandRoute)

    @router.post("/v1/things/{thing_id}")
    async def command(thing_id: uuid.UUID, run: Runner):  # the command shape
        raise AssertionError("never reached")

    (route,) = router.routes
    assert DirectCall.of(route.dependant, route.body_field) is not None
    app = FastAPI()
    app.include_router(router, dependencies=[Depends(refuse)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post(f"/v1/things/{uuid.uuid4()}")
    assert answer.status_code == 418, answer.text
