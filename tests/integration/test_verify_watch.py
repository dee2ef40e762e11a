"""`verify --watch`: each pass checks only the customers that changed, exports its metrics,
never reports lag as drift, reports (and with --repair, repairs) drift, and resumes from its
checkpoint. The watcher runs in the test's loop on its own ops port, against real servers."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time

import httpx

from cli.servers.process import free_port
from command_service.event_log import last_position
from operations.watch_feed import CHECKPOINTS, RECHECKS
from operations.watch_worker import serve_verify_watch
from shared.readmodel import ACCOUNTS
from tests.integration.test_operations import open_accounts, settle
from tests.stack import Stack
from tests.support.processes import SCRIPT, process_env

WATCH = {"verify_interval_s": 0.1, "verify_settle_s": 0.3}


class Watch:
    """A `verify --watch` in the test's loop, read through its /metrics as Prometheus would."""

    def __init__(self, settings, repair: bool = False) -> None:
        self.port, self._stop = free_port(), asyncio.Event()
        self._task = asyncio.create_task(serve_verify_watch(
            settings.model_copy(update=WATCH), "127.0.0.1", self.port, self._stop, repair))

    async def metrics(self) -> dict[str, float]:
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{self.port}/metrics")).text
        return {name: float(value) for name, value in
                re.findall(r"^(cqrs_verify_[a-z_]+) (\S+)$", text, re.MULTILINE)}

    async def passes_after(self, moment: float, count: int = 2) -> dict[str, float]:
        """The metrics once `count` passes have ended after `moment` (the first of them may
        have begun before it)."""
        seen, deadline = set(), time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                metrics = await self.metrics()
            except httpx.HTTPError:  # its ops port is not up yet
                metrics = {}
            ended = metrics.get("cqrs_verify_last_pass_timestamp_seconds", 0)
            if ended > moment:
                seen.add(ended)
                if len(seen) >= count:
                    return metrics
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {count} passes after {moment}: {metrics}")

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, 30)


async def test_a_pass_checks_only_the_customers_that_changed_and_exports_its_metrics(
        settings, engine, read_db):
    async with Stack(settings) as stack:
        changing, other = await open_accounts(stack, 2), await open_accounts(stack, 3)
        for account in changing + other:
            await settle(stack, account["account_id"], 1)
        watch = Watch(settings)
        try:
            before = await watch.passes_after(time.time())
            deposit = await stack.commands.post(
                f"/v1/accounts/{changing[0]['account_id']}/deposits", json={"amount": "5.00"})
            await settle(stack, changing[0]["account_id"], deposit.json()["version"])
            after = await watch.passes_after(time.time())
        finally:
            await watch.stop()
        # The customer and its two accounts: not the other customer's four aggregates.
        assert after["cqrs_verify_checked_aggregates_total"] \
            - before["cqrs_verify_checked_aggregates_total"] == 3
        assert after["cqrs_verify_drift_aggregates"] == 0
        assert after["cqrs_verify_behind_aggregates"] == 0
        assert abs(after["cqrs_verify_last_pass_timestamp_seconds"] - time.time()) < 60
        checkpoint = await read_db[CHECKPOINTS].find_one({"_id": "checkpoint"})
        assert checkpoint["position"] == await last_position(engine)


async def test_views_behind_a_stopped_projector_are_lag_not_drift(settings, engine, read_db):
    async with Stack(settings) as stack:
        accounts = await open_accounts(stack, 2)
        for account in accounts:
            await settle(stack, account["account_id"], 1)
        watch = Watch(settings)
        try:
            before = await watch.passes_after(time.time())
            await stack.projector.stop()
            for account in accounts:
                await stack.commands.post(f"/v1/accounts/{account['account_id']}/withdrawals",
                                          json={"amount": "1.00"})
            behind = await watch.passes_after(time.time())
            assert behind["cqrs_verify_drift_aggregates"] == 0
            assert behind["cqrs_verify_behind_aggregates"] == 3
            assert behind["cqrs_verify_checked_aggregates_total"] \
                == before["cqrs_verify_checked_aggregates_total"]
            assert await read_db[RECHECKS].count_documents({"reason": "behind"}) == 1

            stack.projector.start()
            for account in accounts:
                await settle(stack, account["account_id"], 2)
            caught_up = await watch.passes_after(time.time())
        finally:
            await watch.stop()
        assert caught_up["cqrs_verify_drift_aggregates"] == 0
        assert caught_up["cqrs_verify_behind_aggregates"] == 0
        assert caught_up["cqrs_verify_checked_aggregates_total"] \
            - before["cqrs_verify_checked_aggregates_total"] == 3
        assert await read_db[RECHECKS].count_documents({}) == 0


async def test_drift_is_reported_until_a_restarted_watcher_repairs_it(settings, engine, read_db):
    async with Stack(settings) as stack:
        changing, corrupted = await open_accounts(stack, 2)
        for account in (changing, corrupted):
            await settle(stack, account["account_id"], 1)
        watch = Watch(settings)
        try:
            await watch.passes_after(time.time())
            await read_db[ACCOUNTS].update_one({"_id": corrupted["account_id"]},
                                               {"$inc": {"balance_minor": 999}})
            # The corrupted account's sibling changes: the pass checks their customer's scope.
            deposit = await stack.commands.post(
                f"/v1/accounts/{changing['account_id']}/deposits", json={"amount": "1.00"})
            await settle(stack, changing["account_id"], deposit.json()["version"])
            drifting = await watch.passes_after(time.time())
            # Still reported by later passes, though nothing changed since.
            again = await watch.passes_after(time.time())
        finally:
            await watch.stop()
        assert drifting["cqrs_verify_drift_aggregates"] == 1
        assert again["cqrs_verify_drift_aggregates"] == 1
        assert await read_db[RECHECKS].find_one({"_id": changing["customer_id"]}) == {
            "_id": changing["customer_id"], "reason": "drift"}

        repairing = Watch(settings, repair=True)  # resumes from the stored checkpoint
        try:
            repaired = await repairing.passes_after(time.time())
        finally:
            await repairing.stop()
        assert repaired["cqrs_verify_drift_aggregates"] == 0
        assert await read_db[RECHECKS].count_documents({}) == 0
        view = (await stack.queries.get(f"/v1/accounts/{corrupted['account_id']}")).json()
        assert view["balance"] == "100.00"


async def test_the_console_script_serves_its_ops_port_and_stops_cleanly_on_sigterm(
        settings, engine, read_db, tmp_path):
    env = process_env(settings.model_copy(update=WATCH))
    port = free_port()
    with open(tmp_path / "verify.log", "wb") as log:
        watcher = subprocess.Popen([str(SCRIPT), "verify", "--watch", "--port", str(port)],
                                   env=env, stdout=log, stderr=log)
    try:
        deadline, metrics = time.monotonic() + 60, ""
        async with httpx.AsyncClient(timeout=2) as http:
            while "cqrs_verify_last_pass_timestamp_seconds 0.0" in metrics or not metrics:
                assert watcher.poll() is None, (tmp_path / "verify.log").read_text()
                assert time.monotonic() < deadline, metrics
                try:
                    if (await http.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        assert "cqrs_verify_checked_aggregates_total" in metrics
        assert "cqrs_verify_drift_aggregates 0.0" in metrics
    finally:
        watcher.send_signal(signal.SIGTERM)
        assert watcher.wait(30) == 0, (tmp_path / "verify.log").read_text()
    both = subprocess.run([str(SCRIPT), "verify", "--watch", "--customer", "x"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert both.returncode == 2 and len(both.stderr.splitlines()) == 1, both.stderr
