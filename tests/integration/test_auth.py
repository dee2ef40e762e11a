"""Authentication, authorization, audit and rate limits of both services, over real HTTP
against the whole stack: every way a token can be refused, scopes, one customer's token
against another customer's data, who each command is recorded for, and 429."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import httpx
import jwt
import pytest
import sqlalchemy as sa

from command_service.api.app import create_app as create_command_app
from command_service.db import tables
from shared.auth import ADMIN, READ, WRITE, mint_token
from shared.config import Settings
from tests.integration.test_command_api_contract import write_model
from tests.stack import TEST_JWT_SECRET, Stack, http_client, in_loop_server
from tests.support.contract import check_error

NO_TOKEN: dict[str, str] = {}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def token(settings: Settings, *scopes: str, subject: str = "someone",
          customer_id: str | None = None) -> dict[str, str]:
    return bearer(mint_token(settings, subject=subject, scopes=list(scopes),
                             customer_id=customer_id))


def forged(**overrides) -> dict[str, str]:
    """A token like a good one but for `overrides` (a claim set to None is left out)."""
    now = int(time.time())
    key = overrides.pop("key", TEST_JWT_SECRET)
    claims = {"iss": "cqrs-accounts", "aud": "cqrs-accounts", "sub": "mallory", "iat": now,
              "exp": now + 600, "scope": "admin"} | overrides
    return bearer(jwt.encode({k: v for k, v in claims.items() if v is not None}, key,
                             algorithm="HS256"))


BAD_TOKENS = {
    "no token": NO_TOKEN,
    "not a bearer token": {"Authorization": "Basic dXNlcjpwYXNz"},
    "empty bearer": {"Authorization": "Bearer"},
    "garbage": {"Authorization": "Bearer not-a-jwt"},
    "expired": forged(exp=int(time.time()) - 3600),
    "wrong audience": forged(aud="another-service"),
    "wrong issuer": forged(iss="https://evil.example"),
    "wrong signature": forged(key="an-attacker-secret-0123456789abcdef0123"),
    "alg none": bearer(jwt.encode({"sub": "x", "iss": "cqrs-accounts", "aud": "cqrs-accounts",
                                   "exp": int(time.time()) + 600, "scope": "admin"},
                                  None, algorithm="none")),
    "no sub": forged(sub=None),
}


async def customer_with_account(stack: Stack, deposit: str = "100.00") -> tuple[str, str]:
    created = await stack.commands.post("/v1/customers", json={
        "name": "Owner", "email": f"{uuid.uuid4().hex}@example.com"})
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    opened = await stack.commands.post("/v1/accounts", json={
        "customer_id": customer_id, "type": "checking", "currency": "USD",
        "initial_deposit": deposit})
    assert opened.status_code == 201, opened.text
    return customer_id, opened.json()["account_id"]


async def command_row(engine, command_id: str) -> dict:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tables.commands).where(
            tables.commands.c.command_id == command_id))).mappings().one()
    return dict(row)


# -- 401 ---------------------------------------------------------------------------------------

async def test_every_v1_route_refuses_a_missing_or_bad_token_with_401(settings, engine):
    async with Stack(settings) as stack:
        customer_id, account_id = await customer_with_account(stack)
        routes = [
            (stack.commands, "POST", "/v1/customers",
             {"name": "X", "email": "x@example.com"}),
            (stack.commands, "POST", "/v1/accounts", {
                "customer_id": customer_id, "type": "checking", "currency": "USD"}),
            (stack.commands, "POST", f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"}),
            (stack.commands, "POST", f"/v1/accounts/{account_id}/withdrawals",
             {"amount": "1.00"}),
            (stack.commands, "POST", "/v1/transfers", {
                "from_account_id": account_id, "to_account_id": str(uuid.uuid4()),
                "amount": "1.00"}),
            (stack.commands, "POST", f"/v1/accounts/{account_id}/freeze", {"reason": "x"}),
            (stack.commands, "POST", f"/v1/accounts/{account_id}/unfreeze", {}),
            (stack.commands, "POST", f"/v1/accounts/{account_id}/close", {}),
            (stack.commands, "GET", f"/v1/commands/{uuid.uuid4()}", None),
            (stack.commands, "GET", f"/v1/customers/{customer_id}/commands", None),
            (stack.queries, "GET", f"/v1/customers/{customer_id}", None),
            (stack.queries, "GET", f"/v1/customers/{customer_id}/accounts", None),
            (stack.queries, "GET", f"/v1/customers/{customer_id}/stats", None),
            (stack.queries, "GET", "/v1/customers?q=owner", None),
            (stack.queries, "GET", f"/v1/accounts/{account_id}", None),
            (stack.queries, "GET", f"/v1/accounts/{account_id}/transactions", None),
            (stack.queries, "GET", f"/v1/accounts/{account_id}/history", None),
            (stack.queries, "GET", f"/v1/customers/{customer_id}/history", None),
            # Unknown routes and malformed bodies too: nothing is revealed before the token.
            (stack.queries, "GET", "/v1/no-such-thing", None),
            (stack.commands, "POST", "/v1/customers", "{not json"),
        ]
        before = await write_model(engine)
        failures = []
        for label, headers in BAD_TOKENS.items():
            for client, method, path, body in routes:
                request = {"json": body} if isinstance(body, dict) else \
                    {"content": body} if body else {}
                # Headers given per request replace the client's admin token.
                response = await client.request(method, path, headers={
                    "Authorization": "", **headers}, **request)
                try:
                    check_error(response, 401, "unauthorized")
                    assert response.headers["WWW-Authenticate"].startswith("Bearer"), \
                        response.headers
                except AssertionError as failure:
                    failures.append(f"{label}: {method} {path}: {failure}")
        assert not failures, "\n".join(failures[:20])
        assert await write_model(engine) == before


async def test_health_and_readiness_stay_open_and_metrics_are_open_by_default(settings):
    async with Stack(settings) as stack:
        for client in (stack.commands, stack.queries):
            for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
                response = await client.get(path, headers={"Authorization": ""})
                assert response.status_code == 200, (path, response.text)


async def test_metrics_can_be_kept_for_admins(settings):
    closed = settings.model_copy(update={"auth_metrics_admin_only": True})
    async with Stack(closed) as stack:
        for client in (stack.commands, stack.queries):
            check_error(await client.get("/metrics", headers={"Authorization": ""}), 401,
                        "unauthorized")
            check_error(await client.get("/metrics", headers=token(settings, READ, WRITE)),
                        403, "forbidden")
            allowed = await client.get("/metrics")  # the Stack's admin token
            assert allowed.status_code == 200 and "# TYPE" in allowed.text
            assert (await client.get("/healthz", headers={"Authorization": ""})
                    ).status_code == 200


# -- 403: scopes -------------------------------------------------------------------------------

async def test_commands_need_the_write_scope_and_the_refusal_is_recorded(settings, engine):
    async with Stack(settings) as stack:
        _, account_id = await customer_with_account(stack)
        reader = token(settings, READ, subject="read-only-app")
        before = await write_model(engine)
        refused = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                            json={"amount": "5.00"}, headers=reader)
        check_error(refused, 403, "forbidden")
        assert 'error="insufficient_scope"' in refused.headers["WWW-Authenticate"]
        assert await write_model(engine) == before

        # The audit trail: who tried what, when, and that it was refused.
        status = (await stack.commands.get(
            f"/v1/commands/{refused.headers['X-Command-ID']}")).json()
        assert status["status"] == "failed" and status["type"] == "deposit"
        assert status["subject"] == "read-only-app"
        assert status["error"]["code"] == "forbidden"

        # A token with neither scope cannot even read command statuses.
        nothing = token(settings, subject="no-scopes")
        check_error(await stack.commands.get(f"/v1/commands/{uuid.uuid4()}",
                                             headers=nothing), 403, "forbidden")


async def test_views_need_the_read_scope(settings, engine):
    async with Stack(settings) as stack:
        customer_id, account_id = await customer_with_account(stack)
        writer = token(settings, WRITE)
        for path in (f"/v1/customers/{customer_id}", f"/v1/accounts/{account_id}",
                     f"/v1/accounts/{account_id}/transactions", "/v1/customers?q=a",
                     f"/v1/customers/{customer_id}/stats",
                     f"/v1/customers/{customer_id}/accounts",
                     f"/v1/accounts/{account_id}/history",
                     f"/v1/customers/{customer_id}/history"):
            check_error(await stack.queries.get(path, headers=writer), 403, "forbidden")
        await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200)
        assert (await stack.queries.get(f"/v1/accounts/{account_id}",
                                        headers=token(settings, READ))).status_code == 200


# -- 403: another customer's data ------------------------------------------------------------

async def test_a_customer_token_is_held_to_its_own_customer(settings, engine):
    async with Stack(settings) as stack:
        mine, my_account = await customer_with_account(stack, "100.00")
        theirs, their_account = await customer_with_account(stack, "100.00")
        me = token(settings, READ, WRITE, subject=f"customer:{mine}", customer_id=mine)
        cmd, qry = stack.commands, stack.queries
        for account_id in (my_account, their_account):
            await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200)
        await stack.eventually(f"/v1/customers/{theirs}", lambda r: r.status_code == 200)

        # Reads: its own views, and none of the other customer's.
        assert (await qry.get(f"/v1/customers/{mine}", headers=me)).status_code == 200
        assert (await qry.get(f"/v1/accounts/{my_account}/transactions",
                              headers=me)).status_code == 200
        for path in (f"/v1/customers/{theirs}", f"/v1/customers/{theirs}/accounts",
                     f"/v1/customers/{theirs}/stats", f"/v1/accounts/{their_account}",
                     f"/v1/accounts/{their_account}/transactions"):
            check_error(await qry.get(path, headers=me), 403, "forbidden")
        # Search finds only itself, however broad the text.
        found = (await qry.get("/v1/customers?q=owner", headers=me)).json()["items"]
        assert [item["customer_id"] for item in found] == [mine]
        everyone = (await qry.get("/v1/customers?q=owner")).json()["items"]
        assert {mine, theirs} <= {item["customer_id"] for item in everyone}

        # Commands on the other customer's accounts are refused, recorded, and write nothing.
        before = await write_model(engine)
        refusals = [
            ("POST", f"/v1/accounts/{their_account}/withdrawals", {"amount": "1.00"}),
            ("POST", f"/v1/accounts/{their_account}/deposits", {"amount": "1.00"}),
            ("POST", f"/v1/accounts/{their_account}/close", {}),
            ("POST", "/v1/transfers", {"from_account_id": their_account,
                                       "to_account_id": my_account, "amount": "50.00"}),
            ("POST", "/v1/accounts", {"customer_id": theirs, "type": "savings",
                                      "currency": "USD"}),
            ("POST", "/v1/customers", {"name": "Twin", "email": "twin@example.com",
                                       "customer_id": theirs}),
            # Freezing is the bank's decision, even on its own account.
            ("POST", f"/v1/accounts/{my_account}/freeze", {"reason": "lost card"}),
        ]
        command_ids = []
        for method, path, body in refusals:
            response = await cmd.request(method, path, json=body, headers=me)
            check_error(response, 403, "forbidden")
            command_ids.append(response.headers["X-Command-ID"])
        assert await write_model(engine) == before
        for command_id in command_ids:
            row = await command_row(engine, command_id)
            assert (row["status"], row["subject"]) == ("failed", f"customer:{mine}")

        # An account that does not exist is still a 404, not a hint about ownership.
        check_error(await cmd.post(f"/v1/accounts/{uuid.uuid4()}/deposits",
                                   json={"amount": "1.00"}, headers=me), 404,
                    "account_not_found")

        # Its own money may go to anyone's account.
        sent = await cmd.post("/v1/transfers", headers=me, json={
            "from_account_id": my_account, "to_account_id": their_account, "amount": "30.00"})
        assert sent.status_code == 201, sent.text
        status = await cmd.get(f"/v1/commands/{sent.json()['command_id']}", headers=me)
        assert status.json()["subject"] == f"customer:{mine}"
        # ... but it cannot read what others sent.
        check_error(await cmd.get(f"/v1/commands/{command_ids[0]}", headers=bearer(
            mint_token(settings, subject=f"customer:{theirs}", scopes=[READ, WRITE],
                       customer_id=theirs))), 403, "forbidden")


async def test_a_customer_token_registers_its_own_customer(settings):
    async with Stack(settings) as stack:
        newcomer = str(uuid.uuid4())
        own = token(settings, WRITE, READ, subject="newcomer", customer_id=newcomer)
        created = await stack.commands.post("/v1/customers", headers=own, json={
            "name": "New Comer", "email": f"{uuid.uuid4().hex}@example.com"})
        assert created.status_code == 201, created.text
        assert created.json()["customer_id"] == newcomer
        opened = await stack.commands.post("/v1/accounts", headers=own, json={
            "customer_id": newcomer, "type": "savings", "currency": "EUR"})
        assert opened.status_code == 201, opened.text


# -- audit and idempotency per subject ----------------------------------------------------------

async def test_every_command_records_its_subject(settings, engine):
    async with Stack(settings) as stack:
        _, account_id = await customer_with_account(stack, "10.00")
        teller = token(settings, WRITE, READ, subject="teller-42")
        accepted = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                             json={"amount": "1.00"}, headers=teller)
        refused = await stack.commands.post(f"/v1/accounts/{account_id}/withdrawals",
                                            json={"amount": "99.00"}, headers=teller)
        assert (accepted.status_code, refused.status_code) == (201, 409)
        for response, outcome in ((accepted, "completed"), (refused, "failed")):
            command_id = response.headers["X-Command-ID"]
            row = await command_row(engine, command_id)
            assert (row["subject"], row["status"]) == ("teller-42", outcome)
            assert row["created_at"] is not None and row["completed_at"] is not None
            status = (await stack.commands.get(f"/v1/commands/{command_id}")).json()
            assert (status["subject"], status["status"]) == ("teller-42", outcome)


async def test_an_idempotency_key_belongs_to_its_subject(settings, engine):
    async with Stack(settings) as stack:
        _, account_id = await customer_with_account(stack, "10.00")
        path = f"/v1/accounts/{account_id}/deposits"
        alice = token(settings, WRITE, subject="alice")
        bob = token(settings, WRITE, subject="bob")
        first = await stack.commands.post(path, json={"amount": "1.00"},
                                          headers={**alice, "Idempotency-Key": "k-1"})
        replay = await stack.commands.post(path, json={"amount": "1.00"},
                                           headers={**alice, "Idempotency-Key": "k-1"})
        assert first.status_code == 201 and replay.content == first.content
        # Bob's key of the same name is his own: a new command, not Alice's response.
        other = await stack.commands.post(path, json={"amount": "1.00"},
                                          headers={**bob, "Idempotency-Key": "k-1"})
        assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
        assert other.json()["command_id"] != first.json()["command_id"]
        assert other.json()["version"] == first.json()["version"] + 1
        # ... and a different body under Bob's key is his conflict, not Alice's.
        check_error(await stack.commands.post(path, json={"amount": "2.00"},
                                              headers={**bob, "Idempotency-Key": "k-1"}),
                    409, "idempotency_key_reused")


# -- rate limit --------------------------------------------------------------------------------

async def test_commands_past_the_rate_limit_are_429_with_retry_after(settings, engine):
    limited = settings.model_copy(update={"rate_limit_commands_per_s": 0.5,
                                          "rate_limit_burst": 5})
    async with Stack(limited) as stack:
        _, account_id = await customer_with_account(stack)  # 2 of the admin's 5
        path = f"/v1/accounts/{account_id}/deposits"
        alice = token(settings, WRITE, READ, subject="alice")
        answers = [await stack.commands.post(path, json={"amount": "1.00"}, headers=alice)
                   for _ in range(5)]
        assert [a.status_code for a in answers] == [201] * 5
        before = await write_model(engine)
        limited_answer = await stack.commands.post(path, json={"amount": "1.00"}, headers=alice)
        check_error(limited_answer, 429, "rate_limited")
        assert 1 <= int(limited_answer.headers["Retry-After"]) <= 2
        assert await write_model(engine) == before
        # Other subjects have their own bucket; reads are not limited.
        bob = token(settings, WRITE, subject="bob")
        assert (await stack.commands.post(path, json={"amount": "1.00"},
                                          headers=bob)).status_code == 201
        status = await stack.commands.get(f"/v1/commands/{answers[0].json()['command_id']}",
                                          headers=alice)
        assert status.status_code == 200


async def test_the_default_rate_limit_lets_a_client_burst_150_commands(settings):
    defaults = settings.model_copy(update={
        "rate_limit_commands_per_s": Settings().rate_limit_commands_per_s,
        "rate_limit_burst": Settings().rate_limit_burst,
        # The 150 deposits queue for one account's row lock: on a busy machine the wait must
        # not turn into 503s and hide what is tested here, the limiter.
        "database_timeout_s": 60})
    async with Stack(defaults) as stack:
        _, account_id = await customer_with_account(stack)
        statuses = await asyncio.gather(*(
            stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                json={"amount": "0.01"}) for _ in range(150)))
        assert [s.status_code for s in statuses] == [201] * 150


# -- keys other than the HS256 secret ----------------------------------------------------------

async def test_an_es256_public_key_alone_is_enough(settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    (tmp_path / "public.pem").write_bytes(pem)
    public_only = settings.model_copy(update={"auth_jwt_secret": type(
        settings.auth_jwt_secret)(""), "auth_public_key": str(tmp_path / "public.pem")})
    server = in_loop_server(create_command_app(public_only))
    port = await server.start()
    signed = mint_token(public_only, subject="es-client", scopes=[WRITE, READ],
                        private_key=private.private_bytes(
                            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()))
    try:
        async with http_client(port, timeout=30) as http:
            created = await http.post("/v1/customers", headers=bearer(signed), json={
                "name": "Elliptic", "email": f"{uuid.uuid4().hex}@example.com"})
            assert created.status_code == 201, created.text
            # The HS256 test secret is no key of this service any more.
            check_error(await http.post("/v1/customers", headers=token(settings, ADMIN), json={
                "name": "Hmac", "email": "hmac@example.com"}), 401, "unauthorized")
    finally:
        await server.stop()


# -- nothing secret leaves the process ---------------------------------------------------------

async def test_tokens_and_secrets_are_never_logged_nor_echoed(settings, caplog):
    caplog.set_level(logging.DEBUG)
    good = mint_token(settings, subject="logged-subject", scopes=[ADMIN])
    async with Stack(settings) as stack:
        _, account_id = await customer_with_account(stack)
        answers = [
            await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                      json={"amount": "1.00"}, headers=bearer(good)),
            await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                      json={"amount": "1.00"}, headers=BAD_TOKENS["expired"]),
            await stack.queries.get(f"/v1/accounts/{account_id}",
                                    headers=BAD_TOKENS["wrong signature"]),
        ]
    texts = caplog.text + "".join(a.text + str(a.headers) for a in answers)
    for secret in (TEST_JWT_SECRET, good, BAD_TOKENS["expired"]["Authorization"][7:],
                   BAD_TOKENS["wrong signature"]["Authorization"][7:]):
        assert secret not in texts
    assert "logged-subject" in caplog.text  # the audit line names the subject, not the token


async def test_an_unexpected_error_answers_500_without_internals(settings):
    app = create_command_app(settings)
    server = in_loop_server(app)
    port = await server.start()

    async def broken(_command_id: str):
        raise RuntimeError("internal detail: /srv/secret/path line 42")

    app.state.command_service.command_status = broken
    try:
        async with http_client(port, timeout=30,
                                     headers=token(settings, ADMIN)) as http:
            response = await http.get(f"/v1/commands/{uuid.uuid4()}")
    finally:
        await server.stop()
    check_error(response, 500, "internal_error")
    assert "internal detail" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize("service", ["command-api", "query-api"])
def test_a_service_refuses_to_start_with_authentication_on_and_no_key(service):
    from tests.integration.test_cli import run_cli

    result = run_cli(service, "--port", "0", env={"CQRS_AUTH_JWT_SECRET": "",
                                                  "CQRS_AUTH_DISABLED": "false"})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "CQRS_AUTH_JWT_SECRET" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_the_token_command_mints_what_the_services_accept(tmp_path):
    from shared.auth.tokens import TokenVerifier
    from tests.integration.test_cli import run_cli

    customer = str(uuid.uuid4())
    env = {"CQRS_AUTH_JWT_SECRET": TEST_JWT_SECRET, "CQRS_AUTH_AUDIENCE": "bank-api"}
    minted = run_cli("token", "--scope", "accounts:read", "--customer", customer, env=env)
    assert minted.returncode == 0, minted.stderr
    verifier = TokenVerifier.from_settings(Settings(auth_jwt_secret=TEST_JWT_SECRET,
                                                    auth_audience="bank-api"))
    principal = verifier.verify(minted.stdout.strip())
    assert (principal.subject, principal.scopes, principal.customer_id) == (
        f"customer:{customer}", frozenset({READ}), customer)
    for bad in (["--scope", "root"], ["--customer", "not-a-uuid"]):
        refused = run_cli("token", *bad, env=env)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr
    # Without a configured key it signs with the development secret `dev` keeps.
    (tmp_path / "auth-secret").write_text(TEST_JWT_SECRET + "\n")
    dev = run_cli("token", "--scope", "admin", "--data-dir", str(tmp_path),
                  env={"CQRS_AUTH_JWT_SECRET": ""})
    assert dev.returncode == 0, dev.stderr
    assert TokenVerifier.from_settings(Settings(auth_jwt_secret=TEST_JWT_SECRET)).verify(
        dev.stdout.strip()).is_admin


# -- a dependency that hangs cannot hold a request ---------------------------------------------

class SilentServer:
    """Accepts TCP connections and never says a word: a hung database or read store."""

    async def __aenter__(self) -> int:
        self.connections: list[asyncio.StreamWriter] = []

        async def swallow(_reader, writer) -> None:
            self.connections.append(writer)

        self.server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc_info) -> None:
        for writer in self.connections:
            writer.close()
        self.server.close()
        await self.server.wait_closed()


async def _timed(app, method: str, path: str, **request) -> tuple[httpx.Response, float]:
    server = in_loop_server(app)
    port = await server.start()
    try:
        async with http_client(port, timeout=60) as http:
            started = time.monotonic()
            response = await http.request(method, path, **request)
            return response, time.monotonic() - started
    finally:
        await server.stop()


async def test_a_hung_database_answers_503_within_its_timeout(settings):
    async with SilentServer() as port:
        hung = settings.model_copy(update={
            "database_url": f"mysql+asyncmy://root:@127.0.0.1:{port}/hung",
            "database_timeout_s": 1})
        response, elapsed = await _timed(
            create_command_app(hung), "POST", "/v1/customers", headers=token(settings, ADMIN),
            json={"name": "Hung", "email": "hung@example.com"})
    check_error(response, 503, "dependency_unavailable")
    assert response.headers["Retry-After"] and elapsed < 10


async def test_a_hung_read_store_answers_503_within_its_timeout(settings):
    from query_service.app import create_app as create_query_app

    async with SilentServer() as port:
        hung = settings.model_copy(update={
            "mongo_url": f"mongodb://127.0.0.1:{port}/?directConnection=true",
            "mongo_timeout_ms": 500})
        response, elapsed = await _timed(
            create_query_app(hung), "GET", f"/v1/accounts/{uuid.uuid4()}",
            headers=token(settings, ADMIN))
    check_error(response, 503, "dependency_unavailable")
    assert elapsed < 10


async def test_with_authentication_disabled_no_token_is_needed_and_commands_are_anonymous(
        settings, engine):
    unlocked = settings.model_copy(update={"auth_disabled": True, "auth_jwt_secret": type(
        settings.auth_jwt_secret)(""), "rate_limit_commands_per_s": 0.01, "rate_limit_burst": 1})
    async with Stack(unlocked) as stack:
        assert "Authorization" not in stack.commands.headers
        # No subject, so no rate limit either: three commands in a row with a burst of 1.
        customer_id, account_id = await customer_with_account(stack)
        deposit = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                            json={"amount": "1.00"})
        assert deposit.status_code == 201, deposit.text
        status = (await stack.commands.get(f"/v1/commands/{deposit.json()['command_id']}")
                  ).json()
        assert status["subject"] == "anonymous"
        view = await stack.eventually(f"/v1/customers/{customer_id}",
                                      lambda r: r.status_code == 200)
        assert view.json()["customer_id"] == customer_id
