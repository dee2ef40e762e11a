"""What the contract tests of both services share: the error format every refusal must have
(docs/api.md, "Errors"), and the customers and accounts they start from."""

from __future__ import annotations

import re
import uuid

from tests.stack import Stack


def check_error(response, status: int, code: str | None, field: str | None = None) -> dict:
    """The contract's error body: {"error": {"code", "message", "details": [...]}}."""
    assert response.status_code == status, f"expected {status}, got {response.status_code}: " \
                                           f"{response.text[:300]}"
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    if code is not None:
        assert error["code"] == code, error
    assert re.fullmatch(r"[a-z][a-z0-9_]*", error["code"]), error
    assert isinstance(error["message"], str) and error["message"].strip(), error
    assert isinstance(error["details"], list), error
    if status == 422:
        assert error["details"], f"a 422 lists its field errors: {error}"
        for detail in error["details"]:
            assert isinstance(detail, dict) and {"field", "message"} <= set(detail), error
            assert isinstance(detail["field"], str) and detail["field"], error
            assert isinstance(detail["message"], str) and detail["message"], error
        if field is not None:
            fields = [d["field"] for d in error["details"]]
            assert field in fields, f"expected a detail for {field!r}, got {fields}"
    return error


async def register(stack: Stack, name: str = "Ada Lovelace", email: str | None = None) -> str:
    email = email or f"{uuid.uuid4().hex}@example.com"
    response = await stack.commands.post("/v1/customers", json={"name": name, "email": email})
    assert response.status_code == 201, response.text
    return response.json()["customer_id"]


async def open_account(stack: Stack, customer_id: str, currency: str = "USD",
                       initial_deposit: str | None = None, type_: str = "checking") -> str:
    body = {"customer_id": customer_id, "type": type_, "currency": currency}
    if initial_deposit is not None:
        body["initial_deposit"] = initial_deposit
    response = await stack.commands.post("/v1/accounts", json=body)
    assert response.status_code == 201, response.text
    return response.json()["account_id"]
