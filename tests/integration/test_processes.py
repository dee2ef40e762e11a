"""The real processes, started from the console script: clean SIGTERM, and kill -9 at random
moments during a stream of commands (money moves, customer changes, closures of accounts and
customers) without losing or doubling any effect."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from command_service.api.app import create_app as create_command_app
from command_service.db.tables import customers, utc_now
from command_service.event_log import count_events
from shared.kafka import ensure_topic
from tests.stack import admin_headers, http_client, in_loop_server
from tests.support.backends import restart_empty
from tests.support.convergence import drift_once_converged
from tests.support.processes import SCRIPT, Process, process_env

CHAOS_COMMANDS = int(os.environ.get("CQRS_CHAOS_COMMANDS", "1500"))


async def test_every_process_starts_alone_and_exits_0_on_sigterm(settings, tmp_path):
    processes = [Process(role, settings, tmp_path)
                 for role in ("command-api", "query-api", "relay", "projector")]
    for process in processes:
        process.start()
    try:
        for process in processes:
            await process.ready()
    finally:
        codes = {p.role: p.terminate() for p in processes}
    assert codes == {"command-api": 0, "query-api": 0, "relay": 0, "projector": 0}, [
        p.tail() for p in processes]


@pytest.mark.slow
async def test_kill_9_of_relay_and_projector_during_a_stream_loses_and_doubles_nothing(
        settings, engine, read_db, tmp_path):
    rng = random.Random(1123)
    relay, projector = Process("relay", settings, tmp_path), Process("projector", settings,
                                                                     tmp_path)
    relay.start()
    projector.start()
    api = in_loop_server(create_command_app(settings))
    port = await api.start()
    kills = 0
    started = time.monotonic()
    try:
        async with http_client(port, timeout=60,
                                     headers=admin_headers(settings)) as http:
            customer = (await http.post("/v1/customers", json={
                "name": "Chaos", "email": "chaos@example.com"})).json()["customer_id"]
            accounts = []
            for currency in ("USD", "USD", "USD", "USD", "EUR", "EUR"):
                accounts.append((await http.post("/v1/accounts", json={
                    "customer_id": customer, "type": "checking", "currency": currency,
                    "initial_deposit": "500.00"})).json()["account_id"])
            usd, eur = accounts[:4], accounts[4:]
            movers = [(await http.post("/v1/customers", json={
                "name": f"Mover {i}", "email": f"mover{i}@example.com"})).json()["customer_id"]
                for i in range(4)]
            done = asyncio.Event()

            async def offboard(i: int) -> None:
                """A customer's whole life: registered, an account opened, emptied and closed,
                then the customer closed."""
                leaver = (await http.post("/v1/customers", json={
                    "name": f"Leaver {i}", "email": f"leaver{i}@example.com"})).json()
                account = (await http.post("/v1/accounts", json={
                    "customer_id": leaver["customer_id"], "type": "savings", "currency": "GBP",
                    "initial_deposit": "1.00"})).json()["account_id"]
                await http.post(f"/v1/accounts/{account}/withdrawals", json={"amount": "1.00"})
                await http.post(f"/v1/accounts/{account}/close", json={})
                await http.post(f"/v1/customers/{leaver['customer_id']}/close",
                                json={"reason": "chaos"})

            async def one_command(i: int) -> None:
                pool = usd if i % 3 else eur
                kind = rng.random()
                if kind > 0.95:
                    await offboard(i)
                elif kind > 0.85:
                    change = {"name": f"Mover {i}"} if i % 2 else {"email": f"mover{i}@x.example"}
                    await http.patch(f"/v1/customers/{rng.choice(movers)}", json=change)
                elif kind < 0.4:
                    await http.post(f"/v1/accounts/{rng.choice(pool)}/deposits",
                                    json={"amount": f"{rng.randint(1, 999) / 100:.2f}"})
                elif kind < 0.6:
                    await http.post(f"/v1/accounts/{rng.choice(pool)}/withdrawals",
                                    json={"amount": f"{rng.randint(1, 999) / 100:.2f}"})
                else:
                    source, target = rng.sample(pool, 2)
                    await http.post("/v1/transfers", json={
                        "from_account_id": source, "to_account_id": target,
                        "amount": f"{rng.randint(1, 2000) / 100:.2f}"})

            async def stream() -> None:
                limit = asyncio.Semaphore(8)

                async def limited(i: int) -> None:
                    async with limit:
                        await one_command(i)
                await asyncio.gather(*(limited(i) for i in range(CHAOS_COMMANDS)))
                done.set()

            async def chaos() -> None:
                nonlocal kills
                while not done.is_set():
                    await asyncio.sleep(rng.uniform(0.3, 1.5))
                    victim = rng.choice([relay, projector])
                    victim.kill()
                    kills += 1
                    await asyncio.sleep(rng.uniform(0.0, 0.5))
                    victim.start()

            await asyncio.gather(stream(), chaos())
        streamed = time.monotonic() - started
        await relay.ready()
        await projector.ready()

        drift = await drift_once_converged(engine, read_db, timeout_s=240, poll_s=1)
        converged = time.monotonic() - started - streamed
    finally:
        await api.stop()
        for process in (relay, projector):
            if process.process.poll() is None:
                process.terminate()
    print(f"\nchaos: {CHAOS_COMMANDS} commands, {await count_events(engine)} events, "
          f"{kills} kill -9, streamed in {streamed:.1f}s, converged {converged:.1f}s later")
    assert kills >= 3
    assert drift == [], drift[:10]
    async with engine.connect() as conn:  # the customer closures were part of the chaos
        assert await conn.scalar(sa.select(sa.func.count()).select_from(customers).where(
            customers.c.status == "closed")) > 0


@pytest.mark.every_pair("a wiped broker is refilled from each store's event log")
@pytest.mark.slow
async def test_after_the_broker_loses_its_memory_resend_from_converges_the_views(
        settings, engine, read_db, spare_broker):
    """Also long after retention pruned every sent outbox row: the resend reads the events
    table."""
    from command_service.outbox.backlog import outbox_backlog, resend_from
    from command_service.retention import prune_outbox
    from tests.stack import Stack

    broker = spare_broker
    broker.start()
    local = settings.model_copy(update={"kafka_bootstrap_servers": broker.bootstrap_servers})
    async with Stack(local) as stack:
        customer = (await stack.commands.post("/v1/customers", json={
            "name": "Amnesia", "email": "amnesia@example.com"})).json()["customer_id"]
        account = (await stack.commands.post("/v1/accounts", json={
            "customer_id": customer, "type": "savings", "currency": "GBP",
            "initial_deposit": "10.00"})).json()["account_id"]
        await stack.eventually(f"/v1/accounts/{account}", lambda r: r.status_code == 200)

        await stack.projector.stop()  # events published now are lost with the broker
        for _ in range(5):
            await stack.commands.post(f"/v1/accounts/{account}/deposits",
                                      json={"amount": "1.00"})
        deadline = time.monotonic() + 20  # until the relay has published and marked them
        while (await outbox_backlog(engine))[0]:
            assert time.monotonic() < deadline, "the relay did not send the deposits"
            await asyncio.sleep(0.05)
        # Same address, empty memory: no topic, no message, no committed offset.
        await asyncio.to_thread(restart_empty, broker)
        assert await prune_outbox(engine, utc_now() + timedelta(days=1)) >= 7

        # What an operator runs after such a loss: the topic first (Tansu would otherwise
        # acknowledge the resent events into a topic it creates on the fly with its own
        # partitions), then the resend.
        await ensure_topic(local)
        assert await resend_from(engine, 1, local.kafka_topic) > 0
        stack.projector.start()
        await stack.eventually(f"/v1/accounts/{account}",
                               lambda r: r.json().get("version") == 6, timeout_s=60)
        assert await drift_once_converged(engine, read_db, timeout_s=30) == []


@pytest.mark.slow
async def test_operator_commands_work_from_the_console_script(settings, read_db):
    from shared.readmodel import ACCOUNTS
    from tests.stack import Stack

    env = process_env(settings)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True,
                              timeout=120)

    async with Stack(settings) as stack:
        customer = (await stack.commands.post("/v1/customers", json={
            "name": "Operator", "email": "operator@example.com"})).json()["customer_id"]
        account = (await stack.commands.post("/v1/accounts", json={
            "customer_id": customer, "type": "checking", "currency": "USD",
            "initial_deposit": "5.00"})).json()["account_id"]
        await stack.eventually(f"/v1/customers/{customer}",
                               lambda r: r.status_code == 200 and r.json()["accounts"])

        clean = await asyncio.to_thread(run, "verify")
        assert clean.returncode == 0 and "no drift" in clean.stdout, clean.stdout + clean.stderr
        await read_db[ACCOUNTS].update_one({"_id": account}, {"$set": {"balance_minor": 7}})
        drifted = await asyncio.to_thread(run, "verify")
        assert drifted.returncode == 1 and "balance_minor" in drifted.stdout
        repaired = await asyncio.to_thread(run, "verify", "--repair")
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr

        status = await asyncio.to_thread(run, "status")
        assert status.returncode == 0 and "outbox backlog" in status.stdout
        # The same figures for a script: one JSON object on stdout, nothing else.
        scripted = await asyncio.to_thread(run, "status", "--json")
        assert scripted.returncode == 0, scripted.stderr
        figures = json.loads(scripted.stdout)
        assert set(figures) == {"events", "outbox", "relay", "projector", "views",
                                "dead_letters"}
        assert figures["events"]["total"] == 2 and figures["outbox"]["unsent"] == 0
        assert figures["relay"]["holder"] and figures["relay"]["lease_expired"] is False
        assert figures["projector"]["broker_error"] is None
        assert figures["projector"]["lag"] == sum(
            p["lag"] for p in figures["projector"]["partitions"])
        assert figures["views"]["accounts"]["documents"] == 1
        assert figures["views"]["customers"]["behind_the_log_s"] is not None
        assert figures["dead_letters"] == {"parked": 0}
        parked = await asyncio.to_thread(run, "dlq", "list")
        assert parked.returncode == 0 and "0 parked" in parked.stdout
        rebuilt = await asyncio.to_thread(run, "rebuild")
        assert rebuilt.returncode == 0 and "rebuilt from 2 events" in rebuilt.stdout, (
            rebuilt.stdout + rebuilt.stderr)
        view = await stack.eventually(f"/v1/accounts/{account}", lambda r: r.status_code == 200)
        assert view.json()["balance"] == "5.00"
