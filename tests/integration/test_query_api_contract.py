"""The query service's HTTP contract (docs/api.md), checked over real HTTP against the whole stack:
the exact shape of every view, 404/422 answers, transaction and customer-search paging,
and read-your-writes with `X-Consistency-Token`."""

from __future__ import annotations

import base64
import re
import time
import uuid
from datetime import datetime

from tests.stack import Stack
from tests.support.contract import check_error, open_account, register

CUSTOMER_360_FIELDS = {"customer_id", "name", "email", "status", "version", "accounts",
                       "summary", "updated_at"}
ACCOUNT_SUMMARY_FIELDS = {"account_id", "type", "currency", "balance", "status", "version",
                          "opened_at", "last_transaction_at"}
ACCOUNT_VIEW_FIELDS = {"account_id", "customer_id", "type", "currency", "balance", "status",
                       "status_reason", "status_changed_at", "version", "transaction_count",
                       "opened_at", "updated_at"}
TRANSACTION_FIELDS = {"transaction_id", "account_id", "kind", "amount", "balance_after",
                      "occurred_at", "reference", "counterparty_account_id"}
CUSTOMER_ITEM_FIELDS = {"customer_id", "name", "email", "status"}
STATS_DAY_FIELDS = {"date", "currency", "deposits", "withdrawals", "transfers_in",
                    "transfers_out", "count"}
BALANCE = re.compile(r"^\d+\.\d{2}$")
URL_SAFE = re.compile(r"^[A-Za-z0-9_\-.~=]+$")


# -- helpers ---------------------------------------------------------------------------------


def parse_utc(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert moment.utcoffset() is not None and moment.utcoffset().total_seconds() == 0, value
    return moment


class Checks:
    """Collects failing cases so that one run reports all of them."""

    def __init__(self) -> None:
        self.failures: list[str] = []

    def run(self, label: str, response, status: int, code: str | None,
            field: str | None = None) -> None:
        try:
            check_error(response, status, code, field)
        except AssertionError as failure:
            self.failures.append(f"{label}: {failure}")

    def assert_none_failed(self) -> None:
        assert not self.failures, f"{len(self.failures)} case(s) failed:\n" + \
            "\n".join(self.failures)


async def post(stack: Stack, path: str, body: dict, status: int = 201):
    response = await stack.commands.post(path, json=body)
    assert response.status_code == status, f"{path}: {response.text}"
    return response


async def all_transactions(stack: Stack, account_id: str, limit: int = 500,
                           **params) -> list[dict]:
    response = await stack.queries.get(f"/v1/accounts/{account_id}/transactions",
                                       params={"limit": limit, **params})
    assert response.status_code == 200, response.text
    assert response.json()["next_cursor"] is None
    return response.json()["items"]


async def walk_pages(stack: Stack, path: str, limit: int, **params) -> list[list[dict]]:
    """Follow next_cursor until it is null; return the pages."""
    pages, cursor = [], None
    while True:
        query = {"limit": limit, **params}
        if cursor is not None:
            query["cursor"] = cursor
        response = await stack.queries.get(path, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}, body
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert isinstance(cursor, str) and URL_SAFE.match(cursor), cursor
        assert len(pages) < 50, "paging does not end"


# -- view shapes, 404 and 422 ----------------------------------------------------------------


async def test_views_answer_exactly_the_documented_fields(settings, read_db):
    async with Stack(settings) as stack:
        email = f"ada.{uuid.uuid4().hex}@example.com"
        customer_id = await register(stack, "Ada Lovelace", email)
        checking = await open_account(stack, customer_id, initial_deposit="100.00")
        savings = await open_account(stack, customer_id, type_="savings")
        euros = await open_account(stack, customer_id, currency="EUR")
        pounds = await open_account(stack, customer_id, currency="GBP")
        deposit = (await post(stack, f"/v1/accounts/{checking}/deposits",
                              {"amount": "25.50", "reference": "salary"})).json()
        withdrawal = (await post(stack, f"/v1/accounts/{checking}/withdrawals",
                                 {"amount": "20.25"})).json()
        transfer = (await post(stack, "/v1/transfers", {
            "from_account_id": checking, "to_account_id": savings, "amount": "10.00",
            "reference": "rainy day"})).json()
        await post(stack, f"/v1/accounts/{pounds}/close", {}, status=200)
        expected_versions = {checking: 4, savings: 2, euros: 1, pounds: 2}

        def converged(response) -> bool:
            if response.status_code != 200:
                return False
            versions = {a["account_id"]: a["version"] for a in response.json()["accounts"]}
            return versions == expected_versions

        view = (await stack.eventually(f"/v1/customers/{customer_id}", converged)).json()
        assert set(view) == CUSTOMER_360_FIELDS, view
        assert (view["customer_id"], view["name"], view["email"], view["status"],
                view["version"]) == (customer_id, "Ada Lovelace", email, "active", 1)
        parse_utc(view["updated_at"])
        accounts = {a["account_id"]: a for a in view["accounts"]}
        for entry in view["accounts"]:
            assert set(entry) == ACCOUNT_SUMMARY_FIELDS, entry
            parse_utc(entry["opened_at"])
        assert {k: (a["type"], a["currency"], a["balance"], a["status"])
                for k, a in accounts.items()} == {
            checking: ("checking", "USD", "95.25", "active"),
            savings: ("savings", "USD", "10.00", "active"),
            euros: ("checking", "EUR", "0.00", "active"),
            pounds: ("checking", "GBP", "0.00", "closed"),
        }
        assert accounts[euros]["last_transaction_at"] is None
        assert view["summary"] == {
            "account_count": 4, "transaction_count": 5,
            "balances": {"USD": "105.25", "EUR": "0.00", "GBP": "0.00"},
        }

        listed = await stack.queries.get(f"/v1/customers/{customer_id}/accounts")
        assert listed.status_code == 200, listed.text
        assert set(listed.json()) == {"items"}
        assert sorted(listed.json()["items"], key=lambda a: a["account_id"]) == \
            sorted(view["accounts"], key=lambda a: a["account_id"])

        account = (await stack.eventually(
            f"/v1/accounts/{checking}",
            lambda r: r.status_code == 200 and r.json()["version"] == 4)).json()
        assert set(account) == ACCOUNT_VIEW_FIELDS, account
        assert {k: account[k] for k in ("account_id", "customer_id", "type", "currency",
                                        "balance", "status", "transaction_count")} == {
            "account_id": checking, "customer_id": customer_id, "type": "checking",
            "currency": "USD", "balance": "95.25", "status": "active", "transaction_count": 4}
        assert account["opened_at"] == accounts[checking]["opened_at"]
        assert (account["status_reason"], account["status_changed_at"]) == (None, None)
        assert parse_utc(account["updated_at"]) >= parse_utc(account["opened_at"])

        history = await stack.queries.get(f"/v1/accounts/{checking}/transactions")
        assert history.status_code == 200, history.text
        assert set(history.json()) == {"items", "next_cursor"}
        assert history.json()["next_cursor"] is None
        items = history.json()["items"]
        for item in items:
            assert set(item) == TRANSACTION_FIELDS, item
            assert item["account_id"] == checking
        assert len(items) == account["transaction_count"]
        assert [(t["kind"], t["amount"], t["balance_after"], t["reference"],
                 t["counterparty_account_id"]) for t in items] == [
            ("transfer_out", "10.00", "95.25", "rainy day", savings),
            ("withdrawal", "20.25", "105.25", None, None),
            ("deposit", "25.50", "125.50", "salary", None),
            ("deposit", "100.00", "100.00", None, None),
        ]
        assert items[1]["transaction_id"] == withdrawal["transaction_id"]
        assert items[2]["transaction_id"] == deposit["transaction_id"]
        times = [parse_utc(t["occurred_at"]) for t in items]
        assert times == sorted(times, reverse=True), "occurred_at never increases"
        assert accounts[checking]["last_transaction_at"] == items[0]["occurred_at"]

        received = await all_transactions(stack, savings)
        assert [(t["kind"], t["amount"], t["balance_after"], t["reference"],
                 t["counterparty_account_id"]) for t in received] == [
            ("transfer_in", "10.00", "10.00", "rainy day", checking)]
        assert transfer["to"]["version"] == 2
        assert await all_transactions(stack, euros) == []

        closed = (await stack.eventually(
            f"/v1/accounts/{pounds}",
            lambda r: r.status_code == 200 and r.json()["version"] == 2)).json()
        assert (closed["status"], closed["balance"], closed["transaction_count"]) == (
            "closed", "0.00", 0)

        # Daily figures per currency; the days of this test (usually one) add up.
        def usd_totals(response) -> dict | None:
            if response.status_code != 200:
                return None
            totals = {"deposits": 0, "withdrawals": 0, "transfers_in": 0, "transfers_out": 0,
                      "count": 0}
            for day in response.json()["days"]:
                if day["currency"] == "USD":
                    for key in totals:
                        totals[key] += day[key] if key == "count" else \
                            int(day[key].replace(".", ""))
            return totals

        expected_usd = {"deposits": 12550, "withdrawals": 2025, "transfers_in": 1000,
                        "transfers_out": 1000, "count": 5}
        stats = await stack.eventually(f"/v1/customers/{customer_id}/stats",
                                       lambda r: usd_totals(r) == expected_usd)
        assert set(stats.json()) == {"days"}
        for day in stats.json()["days"]:
            assert set(day) == STATS_DAY_FIELDS, day
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", day["date"]), day
            for key in ("deposits", "withdrawals", "transfers_in", "transfers_out"):
                assert isinstance(day[key], str) and BALANCE.match(day[key]), day
            if day["currency"] != "USD":
                assert day["count"] == 0, f"no {day['currency']} money moved: {day}"
        dates = [(day["date"], day["currency"]) for day in stats.json()["days"]]
        assert len(dates) == len(set(dates)), "one entry per day and currency"

        # 404 for what does not exist, 422 for what is not an id or a valid parameter.
        checks = Checks()
        unknown = str(uuid.uuid4())
        queries = stack.queries
        checks.run("unknown customer", await queries.get(f"/v1/customers/{unknown}"),
                   404, "customer_not_found")
        checks.run("unknown customer's accounts",
                   await queries.get(f"/v1/customers/{unknown}/accounts"),
                   404, "customer_not_found")
        checks.run("unknown customer's stats",
                   await queries.get(f"/v1/customers/{unknown}/stats"),
                   404, "customer_not_found")
        checks.run("unknown account", await queries.get(f"/v1/accounts/{unknown}"),
                   404, "account_not_found")
        checks.run("unknown account's transactions",
                   await queries.get(f"/v1/accounts/{unknown}/transactions"),
                   404, "account_not_found")
        for path, field in (("/v1/customers/not-a-uuid", "customer_id"),
                            ("/v1/customers/not-a-uuid/accounts", "customer_id"),
                            ("/v1/customers/not-a-uuid/stats", "customer_id"),
                            ("/v1/accounts/not-a-uuid", "account_id"),
                            ("/v1/accounts/not-a-uuid/transactions", "account_id")):
            checks.run(f"bad uuid {path}", await queries.get(path), 422, "validation_error",
                       field)
        transactions = f"/v1/accounts/{checking}/transactions"
        for limit in ("0", "501", "-1", "ten"):
            checks.run(f"transactions limit={limit}",
                       await queries.get(transactions, params={"limit": limit}),
                       422, "validation_error", "limit")
            checks.run(f"search limit={limit}",
                       await queries.get("/v1/customers", params={"limit": limit}),
                       422, "validation_error", "limit")
        for name in ("from", "to"):
            checks.run(f"transactions {name}=yesterday",
                       await queries.get(transactions, params={name: "yesterday"}),
                       422, "validation_error", name)
        checks.run("garbage consistency token",
                   await queries.get(f"/v1/accounts/{checking}",
                                     headers={"X-Consistency-Token": "%%% not a token"}),
                   422, "validation_error")
        checks.assert_none_failed()
        for limit in (1, 500):
            response = await queries.get(transactions, params={"limit": limit})
            assert response.status_code == 200, response.text
            assert len(response.json()["items"]) == min(limit, 4)


# -- paging and time windows -----------------------------------------------------------------


async def test_transactions_page_newest_first_without_duplicates_and_filter_by_time(
        settings, read_db):
    async with Stack(settings) as stack:
        account_id = await open_account(stack, await register(stack, "Pat Pager"),
                                        initial_deposit="10.00")
        deposits = []
        for amount in ("1.00", "2.00", "3.00", "4.00", "5.00", "6.00"):
            deposits.append((await post(stack, f"/v1/accounts/{account_id}/deposits",
                                        {"amount": amount})).json())
        assert deposits[-1]["version"] == 7
        await stack.eventually(f"/v1/accounts/{account_id}",
                               lambda r: r.status_code == 200 and r.json()["version"] == 7)
        path = f"/v1/accounts/{account_id}/transactions"

        pages = await walk_pages(stack, path, limit=3)
        assert [len(page) for page in pages] == [3, 3, 1]
        items = [item for page in pages for item in page]
        ids = [item["transaction_id"] for item in items]
        assert len(set(ids)) == 7, "no duplicates across pages"
        assert ids[:6] == [d["transaction_id"] for d in reversed(deposits)], "newest first"
        assert [item["balance_after"] for item in items] == [
            "31.00", "25.00", "20.00", "16.00", "13.00", "11.00", "10.00"]
        times = [parse_utc(item["occurred_at"]) for item in items]
        assert times == sorted(times, reverse=True)
        assert [len(page) for page in await walk_pages(stack, path, limit=7)] == [7]

        # Garbage cursors, and cursors that are valid base64/JSON of another shape, are 422.
        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).decode().rstrip("=")

        checks = Checks()
        await register(stack, "Other One")
        page = await stack.eventually(
            "/v1/customers?limit=1",
            lambda r: r.status_code == 200 and r.json()["next_cursor"] is not None)
        search_cursor = page.json()["next_cursor"]
        for label, cursor in (("garbage", "garbage!!"), ("not base64 JSON", "bm90IGpzb24"),
                              ("a JSON list", b64(b"[1, 2]")),
                              ("wrong key", b64(b'{"after": "x"}')),
                              ("wrong type", b64(b'{"before": "7"}')),
                              ("a customer-search cursor", search_cursor),
                              ("empty", "")):
            checks.run(f"transactions cursor {label}",
                       await stack.queries.get(path, params={"limit": 3, "cursor": cursor}),
                       422, "validation_error", "cursor")
        for label, cursor in (("garbage", "garbage!!"), ("wrong key", b64(b'{"before": 3}'))):
            checks.run(f"search cursor {label}",
                       await stack.queries.get("/v1/customers", params={"cursor": cursor}),
                       422, "validation_error", "cursor")
        checks.assert_none_failed()

        # from is inclusive, to exclusive; both are ISO 8601, with `Z` or an offset.
        start, end = items[5]["occurred_at"], items[1]["occurred_at"]

        def within(low: str | None, high: str | None) -> list[str]:
            return [i["transaction_id"] for i in items
                    if (low is None or parse_utc(i["occurred_at"]) >= parse_utc(low))
                    and (high is None or parse_utc(i["occurred_at"]) < parse_utc(high))]

        for low, high in ((start, end), (start, None), (None, end)):
            params = {k: v for k, v in (("from", low), ("to", high)) if v is not None}
            got = [i["transaction_id"] for i in await all_transactions(stack, account_id,
                                                                       **params)]
            assert got == within(low, high), (params, got)
        assert items[5]["transaction_id"] in within(start, end)
        assert items[1]["transaction_id"] not in within(start, end)
        with_offset = start.replace("Z", "+00:00")
        got = [i["transaction_id"] for i in await all_transactions(stack, account_id,
                                                                   **{"from": with_offset})]
        assert got == within(start, None)
        paged = await walk_pages(stack, path, limit=2, **{"from": start, "to": end})
        assert [i["transaction_id"] for page in paged for i in page] == within(start, end)
        future = "2999-01-01T00:00:00Z"
        assert await all_transactions(stack, account_id, **{"from": future}) == []


# -- customer search -------------------------------------------------------------------------


async def test_customer_search_matches_name_or_email_as_text_case_insensitively(
        settings, read_db):
    async with Stack(settings) as stack:
        uid = uuid.uuid4().hex
        ada = await register(stack, "Ada Lovelace", f"ada.{uid}@example.com")
        alan = await register(stack, "Alan Turing", f"a.turing.{uid}@example.org")
        grace = await register(stack, "Grace Hopper", f"grace.{uid}@navy.example.com")
        regex_fan = await register(stack, "Regex .* Fan", f"fan.{uid}@example.com")
        pagers = [await register(stack, f"Pager Person {i}", f"pager{i}.{uid}@example.com")
                  for i in range(5)]
        everyone = {ada, alan, grace, regex_fan, *pagers}

        everything = await stack.eventually(
            "/v1/customers?limit=500",
            lambda r: r.status_code == 200 and len(r.json()["items"]) == len(everyone))
        assert {c["customer_id"] for c in everything.json()["items"]} == everyone
        assert everything.json()["next_cursor"] is None

        async def search(q: str, **params) -> list[dict]:
            response = await stack.queries.get("/v1/customers", params={"q": q, **params})
            assert response.status_code == 200, f"q={q!r}: {response.text}"
            body = response.json()
            assert set(body) == {"items", "next_cursor"}, body
            for item in body["items"]:
                assert set(item) == CUSTOMER_ITEM_FIELDS, item
            return body["items"]

        found = await search("LOVELACE")
        assert found == [{"customer_id": ada, "name": "Ada Lovelace",
                          "email": f"ada.{uid}@example.com", "status": "active"}]
        assert [c["customer_id"] for c in await search("hOpPeR")] == [grace]  # name only
        assert [c["customer_id"] for c in await search(f"TURING.{uid.upper()}")] == [alan]
        assert [c["customer_id"] for c in await search("@NAVY.example")] == [grace]

        pages = await walk_pages(stack, "/v1/customers", limit=2, q="pager PERSON")
        assert [len(page) for page in pages] == [2, 2, 1]
        ids = [c["customer_id"] for page in pages for c in page]
        assert len(ids) == len(set(ids)) == 5 and set(ids) == set(pagers)
        everyone_paged = await walk_pages(stack, "/v1/customers", limit=4)
        assert [len(page) for page in everyone_paged] == [4, 4, 1]
        assert {c["customer_id"] for page in everyone_paged for c in page} == everyone

        # The search text is text: not a regular expression, not a query operator.
        assert [c["customer_id"] for c in await search(".*")] == [regex_fan]
        for text in ('{"$ne": null}', "^A", "[a-z]+", "(", "\\", "a|b", "$where",
                     "Ada.Lovelace", "\\w+"):
            assert await search(text) == [], f"q={text!r} matched as a pattern"


# -- read-your-writes ------------------------------------------------------------------------


async def test_consistency_token_reads_your_writes_and_503s_when_the_view_is_behind(
        settings, read_db):
    async with Stack(settings) as stack:
        # Warm up: the projector joins its consumer group first (a few seconds on Tansu),
        # longer than the default wait of a token query.
        warm_up = await register(stack, "Wendy Warmup")
        await stack.eventually(f"/v1/customers/{warm_up}", lambda r: r.status_code == 200)

        registered = await post(stack, "/v1/customers",
                                {"name": "Rita Reader", "email": f"{uuid.uuid4().hex}@ex.com"})
        customer_id = registered.json()["customer_id"]
        token = registered.headers["X-Consistency-Token"]
        view = await stack.queries.get(f"/v1/customers/{customer_id}",
                                       headers={"X-Consistency-Token": token})
        assert view.status_code == 200, view.text
        assert view.json()["version"] >= 1

        account_id = await open_account(stack, customer_id, initial_deposit="10.00")
        deposit = await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "5.00"})
        assert deposit.json()["version"] == 2
        token = {"X-Consistency-Token": deposit.headers["X-Consistency-Token"]}

        account = await stack.queries.get(f"/v1/accounts/{account_id}", headers=token)
        assert account.status_code == 200, account.text
        assert account.json()["version"] >= 2 and account.json()["balance"] == "15.00"
        history = await stack.queries.get(f"/v1/accounts/{account_id}/transactions",
                                          headers=token)
        assert history.status_code == 200, history.text
        assert deposit.json()["transaction_id"] in [
            t["transaction_id"] for t in history.json()["items"]]
        view = await stack.queries.get(f"/v1/customers/{customer_id}", headers=token)
        assert view.status_code == 200, view.text
        assert [(a["account_id"], a["version"] >= 2, a["balance"])
                for a in view.json()["accounts"]] == [(account_id, True, "15.00")]
        listed = await stack.queries.get(f"/v1/customers/{customer_id}/accounts",
                                         headers=token)
        assert listed.status_code == 200, listed.text
        assert listed.json()["items"][0]["version"] >= 2

        other_customer = await register(stack, "Otto Other")
        other_account = await open_account(stack, other_customer, initial_deposit="1.00")
        await stack.eventually(f"/v1/accounts/{other_account}",
                               lambda r: r.status_code == 200)

        # With the projector stopped, the view stays behind the token.
        await stack.projector.stop()
        behind = await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"})
        assert behind.json()["version"] == 3
        waiting = {"X-Consistency-Token": behind.headers["X-Consistency-Token"],
                   "X-Consistency-Wait-Ms": "300"}
        checks = Checks()
        for path in (f"/v1/accounts/{account_id}", f"/v1/accounts/{account_id}/transactions",
                     f"/v1/customers/{customer_id}", f"/v1/customers/{customer_id}/accounts"):
            started = time.monotonic()
            response = await stack.queries.get(path, headers=waiting)
            elapsed = time.monotonic() - started
            checks.run(f"behind: {path}", response, 503, "read_model_behind")
            if response.status_code == 503:
                assert response.headers.get("Retry-After"), f"{path}: no Retry-After"
            assert 0.25 <= elapsed < 5, f"{path} answered after {elapsed:.2f}s"
        checks.assert_none_failed()

        # Without the token a query never waits: the old view, at once.
        started = time.monotonic()
        stale = await stack.queries.get(f"/v1/accounts/{account_id}")
        assert time.monotonic() - started < 1.0
        assert stale.status_code == 200
        assert (stale.json()["version"], stale.json()["balance"]) == (2, "15.00")

        # A token naming aggregates a view does not hold does not make that view wait.
        other_deposit = await post(stack, f"/v1/accounts/{other_account}/deposits",
                                   {"amount": "1.00"})
        unrelated = {"X-Consistency-Token": other_deposit.headers["X-Consistency-Token"],
                     "X-Consistency-Wait-Ms": "300"}
        for path in (f"/v1/accounts/{account_id}", f"/v1/customers/{customer_id}"):
            response = await stack.queries.get(path, headers=unrelated)
            assert response.status_code == 200, f"{path}: {response.text}"

        # An account that is not in the read model yet: 503 with its token, 404 without.
        opened = await post(stack, "/v1/accounts", {"customer_id": customer_id,
                                                    "type": "savings", "currency": "INR"})
        new_account = opened.json()["account_id"]
        response = await stack.queries.get(
            f"/v1/accounts/{new_account}",
            headers={"X-Consistency-Token": opened.headers["X-Consistency-Token"],
                     "X-Consistency-Wait-Ms": "300"})
        check_error(response, 503, "read_model_behind")
        assert response.headers.get("Retry-After")
        check_error(await stack.queries.get(f"/v1/accounts/{new_account}"), 404,
                    "account_not_found")


# -- operations and documentation ------------------------------------------------------------


QUERY_PATHS = {
    ("get", "/v1/customers/{customer_id}"),
    ("get", "/v1/customers/{customer_id}/accounts"),
    ("get", "/v1/customers"),
    ("get", "/v1/accounts/{account_id}"),
    ("get", "/v1/accounts/{account_id}/transactions"),
    ("get", "/v1/customers/{customer_id}/stats"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


async def test_health_metrics_and_openapi_of_the_query_service(settings, read_db):
    async with Stack(settings) as stack:
        queries = stack.queries
        assert (await queries.get("/healthz")).status_code == 200
        # Ready once the read store answers within the probe's 2 s. On a loaded machine it once
        # did not, for a moment, right after start; an orchestrator asks again, and so does
        # this test (that a 503 names the dependency is test_readiness's to show).
        ready = await stack.eventually("/readyz", lambda r: r.status_code == 200, timeout_s=20)
        assert ready.json()["status"] == "ready", ready.text
        metrics = await queries.get("/metrics")
        assert metrics.status_code == 200
        assert metrics.headers["content-type"].startswith("text/plain")
        assert "# HELP" in metrics.text and "# TYPE" in metrics.text
        check_error(await queries.get("/v1/no-such-thing"), 404, None)

        schema = (await queries.get("/openapi.json")).json()
        documented = {(method, path) for path, item in schema["paths"].items()
                      for method in item}
        assert documented >= QUERY_PATHS, f"undocumented: {sorted(QUERY_PATHS - documented)}"
        for method, path in QUERY_PATHS:
            operation = schema["paths"][path][method]
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith("/ErrorResponse"), (method, path, status, ref)
            if path.startswith("/v1/") and "{" in path:
                names = {p["name"] for p in operation.get("parameters", [])}
                assert "X-Consistency-Token" in names, (path, names)
        parameters = {p["name"] for p in
                      schema["paths"]["/v1/accounts/{account_id}/transactions"]["get"][
                          "parameters"]}
        assert {"from", "to", "limit", "cursor"} <= parameters
        parameters = {p["name"] for p in schema["paths"]["/v1/customers"]["get"]["parameters"]}
        assert {"q", "limit", "cursor"} <= parameters
