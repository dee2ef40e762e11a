"""The console (GET /console), end to end in a real browser: headless Chromium from Debian's
packages, driven by Playwright. A person pastes a token and a customer id, commands are sent
elsewhere (here, the command API), and the page shows the new balance and transaction without
a reload, having asked nothing of any other origin."""

from __future__ import annotations

import shutil

import pytest

from query_service.app import create_app as create_query_app
from shared.auth import READ, mint_token
from tests.stack import Stack, http_client, in_loop_server
from tests.support.contract import open_account, register

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip(
    "playwright.async_api", reason="Playwright for Python is not installed (the test extra)")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium here: install Debian's `chromium` (.ci/run does)")

LIVE_WAIT_MS = 20_000  # the commit, the relay, the projector and the stream, on a busy machine


async def test_the_console_shows_a_deposit_live_without_a_reload(settings):
    async with Stack(settings) as stack:
        customer = await register(stack, "Ada Console")
        account = await open_account(stack, customer, "EUR", initial_deposit="100.00")
        await stack.eventually(f"/v1/customers/{customer}",
                               lambda r: r.status_code == 200 and r.json()["accounts"])
        origin = str(stack.queries.base_url).rstrip("/")
        token = mint_token(settings, subject=f"customer:{customer}", scopes=[READ],
                           customer_id=customer)

        async with playwright_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox"])  # root in CI: no sandbox
            try:
                page = await browser.new_page()
                requested: list[str] = []
                page.on("request", lambda request: requested.append(request.url))
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.on("console", lambda message: message.type == "error" and errors.append(
                    message.text))

                await page.goto(f"{origin}/console")
                await page.fill("#token", token)
                await page.fill("#customer", customer)
                await page.click("button[type=submit]")
                live = playwright_api.expect
                await live(page.locator("#state")).to_have_attribute(
                    "data-state", "live", timeout=LIVE_WAIT_MS)
                await live(page.locator("#name")).to_have_text("Ada Console")
                balance = page.locator(f"tr[data-account='{account}'] td.money")
                await live(balance).to_have_text("100.00", timeout=LIVE_WAIT_MS)
                await live(page.locator("#transactions tr")).to_have_count(1)

                deposit = await stack.commands.post(f"/v1/accounts/{account}/deposits",
                                                    json={"amount": "25.00",
                                                          "reference": "seen live"})
                assert deposit.status_code == 201, deposit.text
                await live(balance).to_have_text("125.00", timeout=LIVE_WAIT_MS)
                await live(page.locator("#totals [data-currency=EUR]")).to_contain_text(
                    "125.00 EUR")
                await live(page.locator("#transactions tr")).to_have_count(
                    2, timeout=LIVE_WAIT_MS)
                await live(page.locator("#transactions tr").first).to_contain_text("seen live")
                navigations = [url for url in requested if url.endswith("/console")]
                assert len(navigations) == 1, requested  # no reload
            finally:
                await browser.close()
    assert all(url.startswith(origin + "/") for url in requested), requested
    assert errors == [], errors


async def test_the_console_is_one_self_contained_page(settings):
    server = in_loop_server(create_query_app(settings))  # the page alone: no pipeline behind
    async with http_client(await server.start()) as client:
        response = await client.get("/console")  # no token: the page holds no data
    await server.stop()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy
    page = response.text
    for external in ("http://", "https://", "//cdn", "@import", "url("):
        assert external not in page, external
