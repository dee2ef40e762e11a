"""The write model restarted under a command load, on a MariaDB server of the test's own
(tests/support/mariadb.py). The pool keeps no pre-ping (command_service/db/engine.py), so
every pooled connection is dead once the server is back: a command finds that out on its
first statement and runs once more (command_service/service.py). While the server is down
the service answers 503 and nothing else; a client that retries with its Idempotency-Key
gets each deposit applied exactly once, even one whose COMMIT's answer was lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from command_service.api.app import create_app as create_command_app
from command_service.db.migrate import upgrade_to_head
from command_service.db.tables import accounts, commands, events
from shared.config import Settings
from tests.stack import TEST_JWT_SECRET, admin_headers, http_client, in_loop_server
from tests.support.mariadb import PrivateMariaDB, why_unavailable

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(why_unavailable() is not None,
                                 reason=f"MariaDB restart: {why_unavailable()}")]

CLIENTS = 12
DEPOSITS_EACH = 40
ACCOUNTS = 4


async def _create_database(server: PrivateMariaDB) -> None:
    admin = create_async_engine(make_url(server.url).set(database=""))
    try:
        async with admin.begin() as conn:
            await conn.execute(sa.text("CREATE DATABASE cqrs"))
    finally:
        await admin.dispose()
    await asyncio.to_thread(upgrade_to_head, server.url)


async def test_a_write_model_restart_under_load_loses_no_command_and_answers_only_503(
        tmp_path):
    server = PrivateMariaDB(tmp_path / "mariadb")
    await server.astart()
    try:
        await _create_database(server)
        settings = Settings(database_url=server.url, auth_jwt_secret=TEST_JWT_SECRET,
                            rate_limit_burst=100_000, database_timeout_s=2)
        api = in_loop_server(create_command_app(settings))
        port = await api.start()
        try:
            await _load_with_a_restart(server, port, settings)
        finally:
            await api.stop()
    finally:
        server.stop()


async def _load_with_a_restart(server: PrivateMariaDB, port: int, settings: Settings) -> None:
    statuses: Counter[int] = Counter()
    done = 0
    async with http_client(port, headers=admin_headers(settings), timeout=30) as client:
        customer = (await client.post("/v1/customers", json={
            "name": "Ada", "email": "ada@example.com"})).json()["customer_id"]
        account_ids = []
        for _ in range(ACCOUNTS):
            response = await client.post("/v1/accounts", json={
                "customer_id": customer, "type": "checking", "currency": "USD"})
            assert response.status_code == 201, response.text
            account_ids.append(response.json()["account_id"])

        async def deposit(account: str, key: str) -> None:
            """One deposit, retried with its key until it is answered: as a client should."""
            nonlocal done
            while True:
                response = await client.post(f"/v1/accounts/{account}/deposits",
                                             json={"amount": "1.00"},
                                             headers={"Idempotency-Key": key})
                statuses[response.status_code] += 1
                if response.status_code == 503:
                    await asyncio.sleep(0.05)
                    continue
                assert response.status_code in (200, 201), response.text
                done += 1
                return

        async def sender(n: int) -> None:
            for i in range(DEPOSITS_EACH):
                await deposit(account_ids[(n + i) % ACCOUNTS], f"deposit-{n}-{i}")

        async def restart_midway() -> None:
            while done < CLIENTS * DEPOSITS_EACH // 3:
                await asyncio.sleep(0.01)
            await asyncio.to_thread(server.stop)
            await asyncio.sleep(0.5)  # commands meet a server that is down
            await server.astart()

        await asyncio.gather(restart_midway(), *(sender(n) for n in range(CLIENTS)))

        # A restart while idle leaves every pooled connection dead; the next commands, as
        # many at once as the pool holds, each find theirs dead and run again on a new one:
        # none is answered 503 once the server is back.
        await asyncio.to_thread(server.stop)
        await server.astart()
        answers = await asyncio.gather(*(client.post(
            f"/v1/accounts/{account_ids[n % ACCOUNTS]}/deposits", json={"amount": "1.00"})
            for n in range(CLIENTS)))
        assert [r.status_code for r in answers] == [201] * CLIENTS, [r.text for r in answers]

    sent = CLIENTS * DEPOSITS_EACH + CLIENTS
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, "the restart was not seen: nothing was answered 503"
    engine = create_async_engine(server.url)
    try:
        async with engine.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.sum(accounts.c.balance_minor)))
            deposits = await conn.scalar(sa.select(sa.func.count()).select_from(events)
                                         .where(events.c.event_type == "MoneyDeposited"))
            completed = await conn.scalar(sa.select(sa.func.count()).select_from(commands)
                                          .where(commands.c.command_type == "deposit",
                                                 commands.c.status == "completed"))
    finally:
        await engine.dispose()
    assert (total, deposits, completed) == (sent * 100, sent, sent)
