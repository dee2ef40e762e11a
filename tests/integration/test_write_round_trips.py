"""The write path's round trips to MySQL/MariaDB, counted on the wire (bench/mysql_trips.py),
and what makes them few without losing anything: the commit's writes as one batch
(command_service/db/write_batch.py), no pre-ping, and no ROLLBACK after a clean COMMIT
(command_service/db/engine.py), with a command run once more when its pooled connection
turns out dead before COMMIT, and never after."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from bench.mysql_trips import RoundTripCounter
from command_service.db.engine import create_engine, pooled
from command_service.db.errors import (
    ConcurrentUpdateError,
    is_connection_lost,
    is_unavailable,
    meaning,
)
from command_service.db.tables import accounts, commands, events, outbox
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.service import CommandService
from command_service.unit_of_work import CommandRecord, SqlUnitOfWork
from shared.config import Settings
from tests.support.counted_wire import counted_service


async def _bank(service: CommandService) -> tuple[str, str]:
    """A customer with two USD accounts of 100.00 each."""
    customer, first, second = (str(uuid.uuid4()) for _ in range(3))
    await service.execute(c.RegisterCustomer(customer_id=customer, name="Ada",
                                             email=f"{customer}@example.com"))
    for account in (first, second):
        await service.execute(c.OpenAccount(customer_id=customer, account_id=account,
                                            account_type=AccountType.CHECKING, currency="USD",
                                            initial_deposit_minor=10_000))
    return first, second


def _deposit(account: str, amount_minor: int = 500) -> c.Deposit:
    return c.Deposit(account_id=account, amount_minor=amount_minor, reference=None)


@pytest_asyncio.fixture
async def service(database_url):
    engine = create_engine(Settings(database_url=database_url))
    yield CommandService(engine, "events")
    await engine.dispose()


@pytest_asyncio.fixture
async def wire(database_url):
    """A command service whose one pooled connection to MySQL goes through a counting proxy."""
    async with counted_service(database_url, pool_size=1) as counted:
        yield counted


async def _trips(counter: RoundTripCounter, service: CommandService, command) -> int:
    before = counter.total
    await service.execute(command)
    return counter.total - before


async def test_a_deposit_costs_three_round_trips_a_transfer_four(wire):
    """Lock, one batch of every write, COMMIT; a transfer locks two rows. Before the batch a
    deposit cost eight: a pre-ping, five statements, COMMIT and a ROLLBACK on return."""
    counter, service = wire
    first, second = await _bank(service)
    assert await _trips(counter, service, _deposit(first)) == 3
    assert await _trips(counter, service, c.Withdraw(account_id=first, amount_minor=100,
                                                     reference="rent")) == 3
    assert await _trips(counter, service, c.Transfer(from_account_id=first,
                                                     to_account_id=second, amount_minor=100,
                                                     reference=None)) == 4


async def test_every_outbox_row_carries_its_events_position(service, database_url):
    """The batch writes each outbox row's position with the server's LAST_INSERT_ID(), and
    splices it into the message: both must name the event's own row, for every event of a
    command, on every backend."""
    first, second = await _bank(service)
    await service.execute(c.Transfer(from_account_id=first, to_account_id=second,
                                     amount_minor=250, reference="two events"))
    await service.execute(_deposit(second))
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(
                sa.select(outbox.c.event_position, outbox.c.payload, outbox.c.message_key,
                          events.c.position, events.c.event_id, events.c.aggregate_id)
                .join(events, events.c.position == outbox.c.event_position)
                .order_by(outbox.c.id))).mappings().all()
            count = await conn.scalar(sa.select(sa.func.count()).select_from(outbox))
    finally:
        await engine.dispose()
    assert len(rows) == count == 1 + 2 + 2 + 1  # registered, two openings, transfer, deposit
    for row in rows:
        message = json.loads(row["payload"])
        assert message["position"] == row["position"] == row["event_position"]
        assert message["event_id"] == row["event_id"]
        assert message["aggregate_id"] == row["aggregate_id"] == row["message_key"]


async def test_a_version_check_that_misses_writes_nothing(service, database_url):
    """An aggregate changed behind the command's back (here by the command's own connection,
    past its lock) fails the guarded UPDATE: the command, its events and its outbox rows are
    rolled back with it, on the batch path as on the one-by-one path."""
    first, _ = await _bank(service)
    engine = service.engine
    async with engine.connect() as conn:
        before = {t.name: await conn.scalar(sa.select(sa.func.count()).select_from(t))
                  for t in (commands, events, outbox)}
    with pytest.raises(ConcurrentUpdateError):
        async with SqlUnitOfWork(engine, "events") as uow:
            account = (await uow.aggregates.accounts_for_update(first))[first]
            await uow.connection.execute(accounts.update().where(
                accounts.c.account_id == first).values(version=accounts.c.version + 1))
            account.deposit(amount_minor=1, transaction_id="t", reference=None,
                            now=datetime.now(UTC))
            await uow.commit(CommandRecord("behind-its-back", "Deposit", datetime.now(UTC)))
    async with engine.connect() as conn:
        after = {t.name: await conn.scalar(sa.select(sa.func.count()).select_from(t))
                 for t in (commands, events, outbox)}
        version, balance = (await conn.execute(sa.select(
            accounts.c.version, accounts.c.balance_minor)
            .where(accounts.c.account_id == first))).one()
    assert after == before
    assert (version, balance) == (1, 10_000)


async def _kill_connections_to(database_url: str) -> int:
    """Kill every server thread connected to the test's database (as a server restart
    would), from a connection of its own."""
    url = make_url(database_url)
    admin = create_async_engine(url)
    try:
        async with admin.connect() as conn:
            own = await conn.scalar(sa.text("SELECT CONNECTION_ID()"))
            ids = (await conn.execute(sa.text(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = :db AND ID <> :own"),
                {"db": url.database, "own": own})).scalars().all()
            for thread in ids:
                await conn.execute(sa.text(f"KILL {int(thread)}"))
    finally:
        await admin.dispose()
    return len(ids)


async def test_a_dead_pooled_connection_is_replaced_and_the_command_runs_once(
        service, database_url):
    if not database_url.startswith("mysql"):
        pytest.skip("an SQLite connection is a file, not a server's thread to kill")
    first, _ = await _bank(service)
    assert await _kill_connections_to(database_url) >= 1  # the service's pooled connection
    result = await service.execute(_deposit(first, 700))
    async with service.engine.connect() as conn:
        balance = await conn.scalar(sa.select(accounts.c.balance_minor)
                                    .where(accounts.c.account_id == first))
        deposits = await conn.scalar(sa.select(sa.func.count()).select_from(events).where(
            events.c.aggregate_id == first, events.c.event_type == "MoneyDeposited"))
    assert result.versions[first] == 2
    assert (balance, deposits) == (10_700, 1)


async def test_a_connection_lost_after_commit_is_not_run_again(wire, database_url):
    """The COMMIT reached the server, its answer did not: the outcome is unknown to the
    service, so the command must not run again (it did commit), and the client gets the
    documented 503 to retry with its Idempotency-Key."""
    counter, service = wire
    first, _ = await _bank(service)
    counter.lose_answer_to(b"COMMIT")
    with pytest.raises(DBAPIError) as raised:
        await service.execute(_deposit(first, 300))
    assert is_unavailable(raised.value)
    engine = create_engine(Settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            balance = await conn.scalar(sa.select(accounts.c.balance_minor)
                                        .where(accounts.c.account_id == first))
            deposits = await conn.scalar(sa.select(sa.func.count()).select_from(events).where(
                events.c.aggregate_id == first, events.c.event_type == "MoneyDeposited"))
    finally:
        await engine.dispose()
    assert (balance, deposits) == (10_300, 1)


async def test_a_servers_refusal_in_the_batch_is_no_lost_connection(service, database_url):
    """A constraint the server enforces (here the non-negative balance, MariaDB's error 4025,
    a code past the client's range) fails the command as itself: not as a lost connection to
    run once more, and the pool keeps its connections."""
    if not database_url.startswith("mysql"):
        pytest.skip("SQLite writes statement by statement, not in a batch")
    first, _ = await _bank(service)
    engine = service.engine
    with pytest.raises(DBAPIError) as raised:
        async with SqlUnitOfWork(engine, "events") as uow:
            account = (await uow.aggregates.accounts_for_update(first))[first]
            account.deposit(amount_minor=1, transaction_id="t", reference=None,
                            now=datetime.now(UTC))
            account.balance_minor = -5  # past the domain's own check, as a bug would be
            await uow.commit(CommandRecord("below-zero", "Deposit", datetime.now(UTC)))
    assert not raised.value.connection_invalidated
    assert meaning(raised.value) is None and not is_connection_lost(raised.value)
    invalidated_before = engine.sync_engine.pool._invalidate_time
    result = await service.execute(_deposit(first, 100))  # the pool carries on
    assert result.versions[first] == 2
    assert engine.sync_engine.pool._invalidate_time == invalidated_before


async def test_a_command_cancelled_mid_read_drops_its_connection(service, database_url, caplog):
    """A request cancelled while its locking read waits (the client went away): the server's
    answer may still come, so the connection is dropped, never rolled back and reused; the
    next command gets a fresh one."""
    if not database_url.startswith("mysql"):
        pytest.skip("an SQLite call in the process cannot be left half-answered")
    first, _ = await _bank(service)
    engine = service.engine
    async with engine.connect() as holder:  # holds the row lock the read will wait for
        await holder.execute(sa.select(accounts.c.version).where(
            accounts.c.account_id == first).with_for_update())

        async def locking_read():
            async with SqlUnitOfWork(engine, "events") as uow:
                await uow.aggregates.accounts_for_update(first)

        waiting = asyncio.create_task(locking_read())
        await asyncio.sleep(0.3)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await holder.rollback()
    assert not [r for r in caplog.records if "during reset" in r.getMessage()]
    result = await service.execute(_deposit(first, 100))
    assert result.versions[first] == 2


async def test_a_server_that_stops_answering_mid_command_fails_it_within_the_read_timeout(wire):
    """The unit of work runs under one deadline, the connection's read timeout, in place of
    the driver's timer on each read (db/mysql_driver.py CommandDeadline): a server that goes
    silent mid-command fails the command (503) once that time has passed, its connection is
    dropped, and the connection the next command gets has its read timeout back."""
    counter, service = wire
    first, _ = await _bank(service)
    configured = await _shorten_read_timeout(service)
    stale_before = service.engine.sync_engine.pool._invalidate_time
    counter.stop_answering_at(b"SELECT")  # the deposit's locking read
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        await service.execute(_deposit(first, 100))
    assert is_unavailable(raised.value)
    assert 1.0 <= time.monotonic() - started < 5
    # Every older pooled connection may hang the same way: the pool replaces them all.
    assert service.engine.sync_engine.pool._invalidate_time > stale_before
    result = await service.execute(_deposit(first, 100))  # a new connection, answered
    assert result.versions[first] == 2
    async with service.engine.connect() as conn:  # db/engine.py's read timeout, given back
        assert pooled(conn).driver_connection._read_timeout == configured


async def test_a_deadline_passing_in_the_pools_rollback_is_a_timeout_not_a_cancellation(wire):
    """A refused command's connection is rolled back as it returns to the pool; a server
    silent there too makes the deadline pass outside the command's body. The command still
    ends as TimeoutError (503), never as a bare cancellation of the request."""
    counter, service = wire
    first, _ = await _bank(service)
    await _shorten_read_timeout(service)
    counter.stop_answering_at(b"ROLLBACK")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await service.execute(c.Withdraw(account_id=first, amount_minor=10**9, reference=None))
    assert 1.0 <= time.monotonic() - started < 5
    assert asyncio.current_task().cancelling() == 0
    result = await service.execute(_deposit(first, 100))
    assert result.versions[first] == 2


async def _shorten_read_timeout(service: CommandService) -> float:
    """Give the pool's one connection a read timeout of 1 s; returns the one it had."""
    async with service.engine.connect() as conn:
        driver = pooled(conn).driver_connection
        configured, driver._read_timeout = driver._read_timeout, 1.0
    return configured
