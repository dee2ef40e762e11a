"""The write model's pool on MySQL/MariaDB is fixed (command_service/db/engine.py): it opens
connections as commands need them, up to `CQRS_DATABASE_POOL_SIZE`, and keeps them. Load
beyond that size waits for a connection instead of opening and closing extra ones: every
such connection cost a TCP and login handshake, and a load hovering around the pool's size
paid it dozens of times a second. Connections are counted on the wire
(bench/mysql_trips.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import pytest_asyncio

from command_service.db.engine import create_engine
from command_service.db.errors import is_unavailable
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.service import CommandService
from shared.config import Settings
from tests.support.counted_wire import counted_service

POOL_SIZE = 3
CONCURRENCY = 8  # beyond the pool, as a burst of requests is


@pytest_asyncio.fixture
async def counted(database_url):
    """A command service whose pool of POOL_SIZE reaches MySQL through a counting proxy."""
    async with counted_service(database_url, POOL_SIZE) as counted:
        yield counted


async def test_a_burst_beyond_the_pool_waits_for_its_connections_and_opens_no_more(counted):
    counter, service = counted
    customer = str(uuid.uuid4())
    await service.execute(c.RegisterCustomer(customer_id=customer, name="Ada",
                                             email=f"{customer}@example.com"))
    accounts = [str(uuid.uuid4()) for _ in range(CONCURRENCY)]
    for account in accounts:
        await service.execute(c.OpenAccount(customer_id=customer, account_id=account,
                                            account_type=AccountType.CHECKING,
                                            currency="USD", initial_deposit_minor=0))

    async def deposits(account: str) -> list[int]:
        return [(await service.execute(c.Deposit(account_id=account, amount_minor=100,
                                                 reference=None))).versions[account]
                for _ in range(5)]

    for _ in range(3):  # bursts with pauses between them, as a load that comes and goes
        answered = await asyncio.gather(*(deposits(account) for account in accounts))
        # Each waited for a connection and ran once: one version after the other.
        assert all(versions == list(range(versions[0], versions[0] + 5))
                   for versions in answered)
        await asyncio.sleep(0.05)

    assert counter.connections == POOL_SIZE


async def test_a_command_kept_waiting_for_a_connection_is_unavailable_and_changes_nothing(
        database_url):
    """With no overflow, a pool that stays taken is what a request meets: after
    CQRS_DATABASE_TIMEOUT_S it is answered 503 (UNAVAILABLE), not held for ever, and the
    command neither ran nor was logged as failed; once a connection is free it runs."""
    if not database_url.startswith("mysql"):
        pytest.skip("SQLite's engine has a pool of its own kind")
    engine = create_engine(Settings(database_url=database_url, database_pool_size=1,
                                    database_timeout_s=0.3))
    service = CommandService(engine, "events")
    customer = str(uuid.uuid4())
    register = c.RegisterCustomer(customer_id=customer, name="Ada",
                                  email=f"{customer}@example.com")
    try:
        async with engine.connect():  # the pool's one connection, held
            with pytest.raises(Exception) as refused:
                await service.execute(register)
        assert is_unavailable(refused.value), refused.value
        # Neither registered nor in the command log (a failure there would name it).
        assert not await service.customer_known(customer)
        await service.execute(register)
        assert await service.customer_known(customer)
    finally:
        await engine.dispose()
