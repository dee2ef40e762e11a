"""The query service's filters and details over real HTTP against the whole stack: an account's
status reason and time, transactions of one kind, a customer's accounts by status, currency
and type, and monthly statistics as the sums of the days; each bad filter a 422."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from operations.repair import repair
from operations.verify import find_drift
from shared.readmodel import ACCOUNTS, ViewDatabase
from tests.integration.test_query_api_contract import Checks, parse_utc, post
from tests.stack import Stack
from tests.support.contract import open_account, register


async def _view(stack: Stack, account_id: str, version: int) -> dict:
    return (await stack.eventually(f"/v1/accounts/{account_id}", lambda r: r.status_code == 200
                                   and r.json()["version"] == version)).json()


async def test_the_account_view_says_why_and_when_its_status_last_changed(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        account_id = await open_account(stack, customer_id, initial_deposit="10.00")
        opened = await _view(stack, account_id, 1)
        assert (opened["status_reason"], opened["status_changed_at"]) == (None, None)

        await post(stack, f"/v1/accounts/{account_id}/freeze", {"reason": "card reported stolen"},
                   status=200)
        frozen = await _view(stack, account_id, 2)
        assert (frozen["status"], frozen["status_reason"]) == ("frozen", "card reported stolen")
        assert parse_utc(frozen["status_changed_at"]) == parse_utc(frozen["updated_at"])

        await post(stack, f"/v1/accounts/{account_id}/deposits", {"amount": "1.00"})
        still = await _view(stack, account_id, 3)  # money moves; the status did not change
        assert (still["status_reason"], still["status_changed_at"]) == (
            "card reported stolen", frozen["status_changed_at"])

        await post(stack, f"/v1/accounts/{account_id}/unfreeze", {}, status=200)
        active = await _view(stack, account_id, 4)
        assert active["status_reason"] is None
        assert parse_utc(active["status_changed_at"]) > parse_utc(frozen["status_changed_at"])

        await post(stack, f"/v1/accounts/{account_id}/freeze", {"reason": "audit"}, status=200)
        await _view(stack, account_id, 5)
        views = ViewDatabase(read_db)
        assert await find_drift(engine, views) == []
        # A view written before the reason existed (an upgrade without a rebuild): verify
        # names the difference and --repair fills it in.
        await read_db[ACCOUNTS].update_one({"_id": account_id}, {"$unset": {"status_reason": 1}})
        [drift] = await find_drift(engine, views)
        assert (drift.doc_id, drift.field, drift.expected, drift.actual) == (
            account_id, "status_reason", "audit", None)
        await repair(engine, views, {customer_id})
        assert await find_drift(engine, views) == []
        await read_db[ACCOUNTS].update_one({"_id": account_id},
                                           {"$set": {"status_changed_at": None}})
        [drift] = await find_drift(engine, views)
        assert (drift.field, drift.actual) == ("status_changed_at", None)
        assert abs(drift.expected - parse_utc(frozen["status_changed_at"])).total_seconds() > 0
        await repair(engine, views, {customer_id})
        assert await find_drift(engine, views) == []


async def test_transactions_of_one_kind_and_accounts_by_status_currency_and_type(
        settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        usd = await open_account(stack, customer_id, initial_deposit="100.00")
        usd_savings = await open_account(stack, customer_id, type_="savings")
        eur = await open_account(stack, customer_id, currency="EUR", type_="savings")
        gbp = await open_account(stack, customer_id, currency="GBP")
        await post(stack, f"/v1/accounts/{usd}/deposits", {"amount": "5.00"})
        await post(stack, f"/v1/accounts/{usd}/withdrawals", {"amount": "2.00"})
        await post(stack, "/v1/transfers", {"from_account_id": usd, "to_account_id": usd_savings,
                                            "amount": "3.00"})
        await post(stack, f"/v1/accounts/{eur}/freeze", {"reason": "audit"}, status=200)
        await post(stack, f"/v1/accounts/{gbp}/close", {}, status=200)
        versions = {usd: 4, usd_savings: 2, eur: 2, gbp: 2}
        await stack.eventually(f"/v1/customers/{customer_id}", lambda r: r.status_code == 200
                               and {a["account_id"]: a["version"]
                                    for a in r.json()["accounts"]} == versions)
        # The 360 view's account entries are written before each account's own view (its
        # dependent writes come first), so the account views are waited for themselves.
        for account_id, version in versions.items():
            await stack.eventually(f"/v1/accounts/{account_id}", lambda r, v=version:
                                   r.status_code == 200 and r.json()["version"] == v)

        async def kinds(account_id: str, kind: str) -> list[tuple[str, str]]:
            response = await stack.queries.get(f"/v1/accounts/{account_id}/transactions",
                                               params={"kind": kind})
            assert response.status_code == 200, response.text
            return [(t["kind"], t["amount"]) for t in response.json()["items"]]

        assert await kinds(usd, "deposit") == [("deposit", "5.00"), ("deposit", "100.00")]
        assert await kinds(usd, "withdrawal") == [("withdrawal", "2.00")]
        assert await kinds(usd, "transfer_out") == [("transfer_out", "3.00")]
        assert await kinds(usd, "transfer_in") == []
        assert await kinds(usd_savings, "transfer_in") == [("transfer_in", "3.00")]
        one = await stack.queries.get(f"/v1/accounts/{usd}/transactions",
                                      params={"kind": "deposit", "limit": 1})
        rest = await stack.queries.get(f"/v1/accounts/{usd}/transactions", params={
            "kind": "deposit", "limit": 1, "cursor": one.json()["next_cursor"]})
        assert [t["amount"] for t in one.json()["items"] + rest.json()["items"]] == [
            "5.00", "100.00"]
        assert rest.json()["next_cursor"] is None

        async def accounts(**filters) -> set[str]:
            response = await stack.queries.get(f"/v1/customers/{customer_id}/accounts",
                                               params=filters)
            assert response.status_code == 200, response.text
            return {a["account_id"] for a in response.json()["items"]}

        assert await accounts() == {usd, usd_savings, eur, gbp}
        assert await accounts(status="frozen") == {eur}
        assert await accounts(status="closed") == {gbp}
        assert await accounts(status="active") == {usd, usd_savings}
        assert await accounts(currency="USD") == {usd, usd_savings}
        assert await accounts(type="savings") == {usd_savings, eur}
        assert await accounts(type="savings", currency="USD") == {usd_savings}
        assert await accounts(type="savings", status="closed") == set()

        checks = Checks()
        for path, params, field in [
            (f"/v1/accounts/{usd}/transactions", {"kind": "refund"}, "kind"),
            (f"/v1/customers/{customer_id}/accounts", {"status": "dormant"}, "status"),
            (f"/v1/customers/{customer_id}/accounts", {"currency": "usd"}, "currency"),
            (f"/v1/customers/{customer_id}/accounts", {"type": "current"}, "type"),
            (f"/v1/customers/{customer_id}/stats", {"granularity": "week"}, "granularity"),
        ]:
            checks.run(f"{path} {params}", await stack.queries.get(path, params=params), 422,
                       "validation_error", field)
        checks.assert_none_failed()


async def test_monthly_statistics_are_the_sums_of_the_days(settings, read_db):
    async with Stack(settings) as stack:
        customer_id = await register(stack)
        usd = await open_account(stack, customer_id, initial_deposit="100.00")
        eur = await open_account(stack, customer_id, currency="EUR", initial_deposit="7.50")
        await post(stack, f"/v1/accounts/{usd}/withdrawals", {"amount": "30.25"})
        await stack.eventually(f"/v1/accounts/{usd}", lambda r: r.status_code == 200
                               and r.json()["version"] == 2)
        await stack.eventually(f"/v1/accounts/{eur}", lambda r: r.status_code == 200)
        days = (await stack.queries.get(f"/v1/customers/{customer_id}/stats")).json()["days"]
        response = await stack.queries.get(f"/v1/customers/{customer_id}/stats",
                                           params={"granularity": "month"})
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"months"}
        sums: dict[tuple[str, str], dict] = defaultdict(lambda: defaultdict(Decimal))
        for day in days:
            for name in ("deposits", "withdrawals", "transfers_in", "transfers_out", "count"):
                sums[(day["date"][:7], day["currency"])][name] += Decimal(str(day[name]))
        months = response.json()["months"]
        assert [(m["month"], m["currency"]) for m in months] == sorted(sums)
        for month in months:
            expected = sums[(month["month"], month["currency"])]
            assert {name: Decimal(str(month[name])) for name in expected} == expected
        usd_month = next(m for m in months if m["currency"] == "USD")
        assert (usd_month["deposits"], usd_month["withdrawals"], usd_month["count"]) == (
            "100.00", "30.25", 2)
