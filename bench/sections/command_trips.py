"""1b. The write model's round trips per command, counted on the wire (bench/mysql_trips.py):
the command service runs in this process with its one pooled connection through a counting
proxy, and each kind of command is sent a few times on warm connections. Only a network
database has round trips: on SQLite a statement is a call inside the process."""

from __future__ import annotations

import uuid

from sqlalchemy.engine import make_url

from bench.mysql_trips import RoundTripCounter
from bench.raw import RawWriteModel
from command_service.db.engine import create_engine
from command_service.domain import commands as c
from command_service.domain.model import AccountType
from command_service.service import CommandService

REPEATS = 10
TARGET_DEPOSIT = 4  # lock, update, one batched write, commit (issue 17)


async def round_trips(settings) -> dict:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return {"status": "skipped",
                "reason": "SQLite runs inside the process: no round trips to count"}
    async with RoundTripCounter(url.host, url.port or 3306) as counter:
        proxied = url.set(host=counter.host, port=counter.port)
        engine = create_engine(settings.model_copy(update={
            "database_url": proxied.render_as_string(hide_password=False),
            "database_pool_size": 1}))
        service = CommandService(engine, settings.kafka_topic)
        try:
            customer = str(uuid.uuid4())
            await service.execute(c.RegisterCustomer(customer_id=customer, name="Trips",
                                                     email=f"{customer}@example.com"))

            def opening() -> c.OpenAccount:
                return c.OpenAccount(customer_id=customer, account_id=str(uuid.uuid4()),
                                     account_type=AccountType.CHECKING, currency="USD",
                                     initial_deposit_minor=1_000_000)

            first, second = opening(), opening()
            for command in (first, second):
                await service.execute(command)
            kinds = {
                "deposit": lambda: c.Deposit(account_id=first.account_id, amount_minor=100,
                                             reference=None),
                "withdrawal": lambda: c.Withdraw(account_id=first.account_id,
                                                 amount_minor=100, reference=None),
                "transfer": lambda: c.Transfer(from_account_id=first.account_id,
                                               to_account_id=second.account_id,
                                               amount_minor=100, reference=None),
                "account_opening": opening,
            }
            per_command = {}
            for kind, make in kinds.items():
                before = counter.total
                for _ in range(REPEATS):
                    await service.execute(make())
                per_command[kind] = (counter.total - before) / REPEATS
            raw_deposit = await _raw_deposit_trips(
                counter, proxied.render_as_string(hide_password=False), first.account_id,
                settings)
        finally:
            await engine.dispose()
    return {"status": "ok", "per_command": per_command, "repeats": REPEATS,
            "raw_deposit": raw_deposit, "target_deposit": TARGET_DEPOSIT,
            "met": per_command["deposit"] <= TARGET_DEPOSIT}


async def _raw_deposit_trips(counter: RoundTripCounter, url: str, account_id: str,
                             settings) -> float:
    """The raw driver's deposit (bench/raw.py), counted on the same wire: the floor that a
    transaction of one statement per round trip sets."""
    raw = await RawWriteModel.connect(url, settings.database_timeout_s)
    try:
        before = counter.total
        for _ in range(REPEATS):
            await raw.deposit(account_id, settings.kafka_topic)
        return (counter.total - before) / REPEATS
    finally:
        await raw.close()
