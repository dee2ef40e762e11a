"""`verify --customer` / `--account`: one customer's scope is checked and repaired on its own,
from the console script as an operator runs it, against real servers."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from operations.repair import repair
from operations.scope import Scope
from operations.verify import find_drift
from shared.readmodel import ACCOUNTS, HISTORY, ViewDatabase
from tests.integration.test_operations import open_accounts, settle
from tests.stack import Stack
from tests.support.processes import process_env

SCRIPT = Path(sys.executable).with_name("cqrs-accounts")


def verify(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**process_env(settings), "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    return subprocess.run([str(SCRIPT), "verify", *args], capture_output=True, text=True,
                          timeout=120, env=env)


async def two_settled_customers(stack: Stack) -> tuple[list[dict], list[dict]]:
    first, second = await open_accounts(stack, 2), await open_accounts(stack, 1)
    for account in first + second:
        await settle(stack, account["account_id"], 1)
    return first, second


async def test_a_scoped_check_finds_drift_in_its_customer_only_and_repairs_it(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        first, second = await two_settled_customers(stack)
        a, b = first[0]["customer_id"], second[0]["customer_id"]
        views = ViewDatabase(read_db)
        assert await find_drift(engine, views, Scope.of([a])) == []

        await read_db[ACCOUNTS].update_one({"_id": first[1]["account_id"]},
                                           {"$set": {"balance_minor": 7}})
        await read_db[HISTORY].delete_one({"aggregate_id": a, "version": 1})

        drift = await find_drift(engine, views, Scope.of([a]))
        assert {(d.view, d.doc_id, d.field) for d in drift} == {
            (ACCOUNTS, first[1]["account_id"], "balance_minor"), (HISTORY, f"{a}|1", "_id")}
        assert await find_drift(engine, views, Scope.of([b])) == []
        # The whole-log check, the scope "everything", finds the same and nothing else.
        assert {(d.view, d.doc_id) for d in await find_drift(engine, views)} == {
            (d.view, d.doc_id) for d in drift}

        assert await repair(engine, views, {a}) == 1
        assert await find_drift(engine, views, Scope.of([a])) == []


@pytest.mark.slow
async def test_verify_customer_and_account_exit_as_verify_and_repair_one_customer(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        first, second = await two_settled_customers(stack)
        a, b = first[0]["customer_id"], second[0]["customer_id"]
        await read_db[ACCOUNTS].update_one({"_id": first[0]["account_id"]},
                                           {"$set": {"status": "closed"}})

        clean = verify(settings, "--customer", b)
        assert clean.returncode == 0 and "no drift" in clean.stdout, clean.stdout + clean.stderr
        assert verify(settings, "--account", second[0]["account_id"]).returncode == 0
        drifting = verify(settings, "--customer", a)
        assert drifting.returncode == 1 and "1 difference(s)" in drifting.stdout, drifting.stdout
        # A sibling account's check covers the customer, whose view lists the drifting one.
        assert verify(settings, "--account", first[1]["account_id"]).returncode == 1

        repaired = verify(settings, "--account", first[0]["account_id"], "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        assert "repaired 1 customer(s); 0 difference(s) left" in repaired.stdout
        assert verify(settings, "--customer", a).returncode == 0
        view = (await stack.queries.get(f"/v1/accounts/{first[0]['account_id']}")).json()
        assert view["status"] == "active"


async def test_an_unknown_customer_or_account_is_one_line_and_exit_1(settings, engine):
    for option in ("--customer", "--account"):
        unknown = str(uuid.uuid4())
        result = verify(settings, option, unknown)
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stdout == "", result.stdout
        [line] = result.stderr.splitlines()
        assert line == f"no {option[2:]} {unknown} in the write model", line
    both = verify(settings, "--customer", "x", "--account", "y")
    assert both.returncode == 2 and len(both.stderr.splitlines()) == 1, both.stderr
