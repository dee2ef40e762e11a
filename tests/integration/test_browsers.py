"""What browsers get from both services, over real HTTP: CORS only for the origins
CQRS_CORS_ALLOW_ORIGINS names (preflights answered, the read-your-writes and correlation
headers exposed; no CORS header at all by default), and gzip for answers over 1 KiB when the
request accepts it."""

from __future__ import annotations

import uuid

import httpx

from tests.stack import Stack
from tests.support.contract import check_error, open_account, register

APP = "https://app.example.com"
EXPOSED = {"etag", "x-consistency-token", "x-command-id", "x-request-id"}


async def preflight(client: httpx.AsyncClient, path: str, origin: str, method: str,
                    headers: str = "") -> httpx.Response:
    """A browser's preflight: no token (a browser sends none with it)."""
    async with httpx.AsyncClient(base_url=client.base_url) as bare:
        asked = {"Origin": origin, "Access-Control-Request-Method": method}
        if headers:
            asked["Access-Control-Request-Headers"] = headers
        return await bare.options(path, headers=asked)


def exposed(response: httpx.Response) -> set[str]:
    value = response.headers.get("Access-Control-Expose-Headers", "")
    return {name.strip().lower() for name in value.split(",") if name.strip()}


async def test_an_allowed_origin_gets_cors_on_both_services_and_another_gets_none(settings):
    browsers = settings.model_copy(update={
        "cors_allow_origins": f"{APP}, https://admin.example.com"})
    async with Stack(browsers) as stack:
        # A preflight carries no token: it is answered before authentication.
        query = await preflight(stack.queries, f"/v1/customers/{uuid.uuid4()}", APP, "GET",
                                "authorization, if-none-match, x-consistency-token")
        assert query.status_code == 200, query.text
        assert query.headers["Access-Control-Allow-Origin"] == APP
        allowed = query.headers["Access-Control-Allow-Headers"].lower()
        assert {"authorization", "if-none-match", "x-consistency-token"} <= {
            h.strip() for h in allowed.split(",")}
        command_preflight = await preflight(stack.commands, "/v1/customers", APP, "POST",
                                            "authorization, content-type, idempotency-key")
        assert command_preflight.status_code == 200, command_preflight.text
        assert command_preflight.headers["Access-Control-Allow-Origin"] == APP

        created = await stack.commands.post("/v1/customers", headers={"Origin": APP}, json={
            "name": "Grace", "email": f"{uuid.uuid4().hex}@example.com"})
        assert created.status_code == 201
        assert created.headers["Access-Control-Allow-Origin"] == APP
        assert exposed(created) >= EXPOSED
        view = await stack.queries.get("/v1/customers", headers={"Origin": APP})
        assert view.status_code == 200
        assert view.headers["Access-Control-Allow-Origin"] == APP
        assert exposed(view) >= EXPOSED

        # An origin not in the list: no CORS header, so the browser keeps the answer from
        # the page; its preflight is refused.
        elsewhere = "https://evil.example.com"
        other = await stack.queries.get("/v1/customers", headers={"Origin": elsewhere})
        assert "Access-Control-Allow-Origin" not in other.headers
        refused = await preflight(stack.queries, "/v1/customers", elsewhere, "GET")
        assert "Access-Control-Allow-Origin" not in refused.headers
        check_error(refused, 400, "cors_refused")


async def test_no_origin_is_allowed_by_default(settings):
    assert settings.cors_allow_origins == ""
    async with Stack(settings) as stack:
        for client, path in ((stack.queries, "/v1/customers"),
                             (stack.commands, f"/v1/commands/{uuid.uuid4()}")):
            answer = await client.get(path, headers={"Origin": APP})
            assert not [h for h in answer.headers if h.lower().startswith("access-control-")]
            asked = await preflight(client, path, APP, "GET")
            assert "Access-Control-Allow-Origin" not in asked.headers


async def test_answers_over_1_kib_are_gzipped_when_the_request_accepts_it(settings):
    async with Stack(settings) as stack:
        customer = await register(stack)
        for currency in ("USD", "EUR", "GBP", "INR", "USD", "EUR"):
            opened = await open_account(stack, customer, currency=currency)
        await stack.eventually(f"/v1/customers/{customer}", lambda r: r.status_code == 200
                               and any(a["account_id"] == opened for a in r.json()["accounts"]))
        big, small = f"/v1/customers/{customer}", f"/v1/accounts/{opened}"
        commands = f"/v1/customers/{customer}/commands"  # the command service's log

        for client, path in ((stack.queries, big), (stack.commands, commands)):
            identity = await client.get(path, headers={"Accept-Encoding": "identity"})
            assert identity.status_code == 200 and len(identity.content) > 1024, path
            assert "Content-Encoding" not in identity.headers
            compressed = await client.get(path, headers={"Accept-Encoding": "gzip"})
            assert compressed.headers["Content-Encoding"] == "gzip", path
            assert compressed.json() == identity.json()  # httpx inflates it
            assert int(compressed.headers["Content-Length"]) < len(identity.content)
            assert "accept-encoding" in compressed.headers["Vary"].lower()

        small_answer = await stack.queries.get(small, headers={"Accept-Encoding": "gzip"})
        assert small_answer.status_code == 200 and len(small_answer.content) < 1024
        assert "Content-Encoding" not in small_answer.headers
