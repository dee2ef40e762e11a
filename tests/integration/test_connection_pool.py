"""The write model's pool on MySQL/MariaDB is fixed (command_service/db/engine.py): it opens
connections as commands need them, up to `CQRS_DATABASE_POOL_SIZE`, and keeps them. Load
beyond that size waits for a connection instead of opening and closing extra ones: every
such connection cost a TCP and login handshake, and a load hovering around the pool's size
paid it dozens of times a second. Connections are counted on the wire
(bench/mysql_trips.py)."""

from __future__ import annotations

import asyncio
import uuid

import pytest_asyncio

from command_service.domain import commands as c
from command_service.domain.model import AccountType
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
        versions = []
        for _ in range(5):
            result = await service.execute(c.Deposit(account_id=account, amount_minor=100,
                                                     reference=None))
            versions.append(result.versions[account])
        return versions

    for _ in range(3):  # bursts with pauses between them, as a load that comes and goes
        answered = await asyncio.gather(*(deposits(account) for account in accounts))
        assert all(len(versions) == 5 for versions in answered)
        await asyncio.sleep(0.05)

    assert counter.connections == POOL_SIZE
