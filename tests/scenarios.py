"""Scenarios shared by the end-to-end tests on the local backends and on containers."""

from __future__ import annotations

from tests.stack import Stack


async def open_deposit_withdraw_and_see_the_views(stack: Stack) -> None:
    """Create a customer, open an account with an initial deposit, deposit and withdraw over
    HTTP; the account view, the customer 360 view and the history converge to it."""
    created = await stack.commands.post("/v1/customers",
                                        json={"name": "Ada Lovelace", "email": "ada@example.com"})
    assert created.status_code == 201, created.text
    customer_id = created.json()["customer_id"]
    assert created.json()["version"] == 1

    opened = await stack.commands.post("/v1/accounts", json={
        "customer_id": customer_id, "type": "checking", "currency": "USD",
        "initial_deposit": "100.00"})
    assert opened.status_code == 201, opened.text
    account_id = opened.json()["account_id"]
    assert opened.json()["balance"] == "100.00"
    assert opened.json()["version"] == 1

    deposit = await stack.commands.post(f"/v1/accounts/{account_id}/deposits",
                                        json={"amount": "25.50", "reference": "salary"})
    assert deposit.status_code == 201, deposit.text
    assert deposit.json()["balance"] == "125.50"
    withdrawal = await stack.commands.post(f"/v1/accounts/{account_id}/withdrawals",
                                           json={"amount": "20.25"})
    assert withdrawal.status_code == 201, withdrawal.text
    assert withdrawal.json()["balance"] == "105.25"
    assert withdrawal.json()["version"] == 3

    account = (await stack.eventually(
        f"/v1/accounts/{account_id}",
        lambda r: r.status_code == 200 and r.json()["version"] == 3)).json()
    assert account["balance"] == "105.25"
    assert account["transaction_count"] == 3
    assert account["customer_id"] == customer_id

    view = (await stack.eventually(
        f"/v1/customers/{customer_id}",
        lambda r: r.status_code == 200 and r.json()["accounts"]
        and r.json()["accounts"][0]["version"] == 3)).json()
    assert view["name"] == "Ada Lovelace"
    assert view["summary"] == {"account_count": 1, "transaction_count": 3,
                               "balances": {"USD": "105.25"}}

    history = (await stack.queries.get(f"/v1/accounts/{account_id}/transactions")).json()
    assert [(t["kind"], t["amount"], t["balance_after"]) for t in history["items"]] == [
        ("withdrawal", "20.25", "105.25"), ("deposit", "25.50", "125.50"),
        ("deposit", "100.00", "100.00")]
    assert history["next_cursor"] is None
