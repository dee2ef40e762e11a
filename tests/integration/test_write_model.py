"""The write side against a real database (SQLite, and MariaDB/MySQL when configured)."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import sqlalchemy as sa

from command_service.db.tables import accounts, commands, customers, events, outbox
from command_service.domain import commands as c
from command_service.domain.errors import EmailTakenError, InsufficientFundsError
from command_service.domain.events import PUBLISHED_EVENTS
from command_service.domain.model import AccountType
from command_service.service import CommandService
from shared.envelope import EventEnvelope


async def _count(engine, table) -> int:
    async with engine.connect() as conn:
        return await conn.scalar(sa.select(sa.func.count()).select_from(table))


async def _open_account(service: CommandService, deposit_minor: int = 0,
                        currency: str = "USD") -> str:
    customer = await service.execute(c.RegisterCustomer(
        name="Grace Hopper", email=f"{uuid.uuid4().hex}@example.com",
        customer_id=str(uuid.uuid4())))
    opened = await service.execute(c.OpenAccount(
        customer_id=customer.body["customer_id"], account_type=AccountType.CHECKING,
        currency=currency, initial_deposit_minor=deposit_minor, account_id=str(uuid.uuid4())))
    return opened.body["account_id"]


async def test_a_command_writes_state_command_event_and_outbox_row_together(engine, settings):
    service = CommandService(engine, settings.kafka_topic)
    account_id = await _open_account(service, 10_00)
    result = await service.execute(c.Deposit(account_id=account_id, amount_minor=2_50,
                                             reference="gift"))

    async with engine.connect() as conn:
        balance, version = (await conn.execute(
            sa.select(accounts.c.balance_minor, accounts.c.version)
            .where(accounts.c.account_id == account_id))).one()
        event = (await conn.execute(sa.select(events).where(
            events.c.command_id == result.command_id))).mappings().one()
        row = (await conn.execute(sa.select(outbox).where(
            outbox.c.event_position == event["position"]))).mappings().one()
        status = await conn.scalar(sa.select(commands.c.status).where(
            commands.c.command_id == result.command_id))
    assert (balance, version) == (12_50, 2)
    assert status == "completed"
    assert (event["aggregate_id"], event["version"], event["event_type"]) == (
        account_id, 2, "MoneyDeposited")
    assert json.loads(event["payload"])["balance_after_minor"] == 12_50
    assert row["sent_at"] is None and row["message_key"] == account_id
    message = EventEnvelope.from_json(row["payload"])
    assert (message.event_id, message.position, message.version) == (
        event["event_id"], event["position"], 2)
    assert json.loads(row["headers"])["event_type"] == "MoneyDeposited"


async def test_a_refused_command_writes_no_state_event_or_outbox_row(engine, settings):
    service = CommandService(engine, settings.kafka_topic)
    account_id = await _open_account(service, 5_00)
    before = [await _count(engine, t) for t in (events, outbox, accounts, customers)]

    with pytest.raises(InsufficientFundsError) as refused:
        await service.execute(c.Withdraw(account_id=account_id, amount_minor=5_01,
                                         reference=None))

    assert [await _count(engine, t) for t in (events, outbox, accounts, customers)] == before
    status = await service.command_status(refused.value.command_id)
    assert status["status"] == "failed"
    assert json.loads(status["error"])["code"] == "insufficient_funds"


@pytest.mark.every_pair("each store locks its own way")
async def test_withdrawal_never_overdraws_under_concurrency(engine, settings):
    """40 racing withdrawals of 5.00 on 150.00: exactly 30 succeed, the balance ends at 0.00."""
    service = CommandService(engine, settings.kafka_topic)
    account_id = await _open_account(service, 150_00)

    async def withdraw() -> bool:
        try:
            await service.execute(c.Withdraw(account_id=account_id, amount_minor=5_00,
                                             reference=None))
            return True
        except InsufficientFundsError:
            return False

    outcomes = await asyncio.gather(*(withdraw() for _ in range(40)))

    assert outcomes.count(True) == 30
    async with engine.connect() as conn:
        balance, version = (await conn.execute(
            sa.select(accounts.c.balance_minor, accounts.c.version)
            .where(accounts.c.account_id == account_id))).one()
        versions = (await conn.scalars(sa.select(events.c.version).where(
            events.c.aggregate_id == account_id).order_by(events.c.version))).all()
    assert balance == 0
    assert version == 31 and versions == list(range(1, 32))  # no lost update, no gap


@pytest.mark.every_pair("MySQL deadlocks, SQLite queues its writers")
async def test_racing_transfers_in_opposite_directions_neither_deadlock_nor_overdraw(
        engine, settings):
    service = CommandService(engine, settings.kafka_topic)
    first, second = await _open_account(service, 50_00), await _open_account(service, 50_00)

    async def transfer(source: str, target: str) -> bool:
        try:
            await service.execute(c.Transfer(from_account_id=source, to_account_id=target,
                                              amount_minor=7_00, reference=None))
            return True
        except InsufficientFundsError:
            return False

    outcomes = await asyncio.gather(*(
        transfer(first, second) if i % 2 else transfer(second, first) for i in range(40)))

    async with engine.connect() as conn:
        balances = dict((await conn.execute(
            sa.select(accounts.c.account_id, accounts.c.balance_minor)
            .where(accounts.c.account_id.in_([first, second])))).all())
        transfer_events = await conn.scalar(sa.select(sa.func.count()).where(
            events.c.event_type.in_(["TransferSent", "TransferReceived"])))
    assert sum(balances.values()) == 100_00  # money is conserved
    assert min(balances.values()) >= 0
    assert transfer_events == 2 * outcomes.count(True)  # both legs or neither


@pytest.mark.every_pair("each store reports a unique violation its own way")
async def test_racing_registrations_of_one_email_create_one_customer(engine, settings):
    service = CommandService(engine, settings.kafka_topic)

    async def register(i: int) -> bool:
        try:
            await service.execute(c.RegisterCustomer(
                name=f"Twin {i}", email="Twin@Example.com" if i % 2 else "twin@example.COM",
                customer_id=str(uuid.uuid4())))
            return True
        except EmailTakenError:
            return False

    outcomes = await asyncio.gather(*(register(i) for i in range(10)))

    assert outcomes.count(True) == 1
    assert await _count(engine, customers) == 1
    assert await _count(engine, events) == 1


async def test_each_event_is_stored_and_published_with_the_schema_version_it_was_written_in(
        engine, settings):
    service = CommandService(engine, settings.kafka_topic)
    await _open_account(service, 10_00)
    async with engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(events.c.event_type, events.c.schema_version, outbox.c.payload,
                      outbox.c.headers)
            .join(outbox, outbox.c.event_position == events.c.position)
            .order_by(events.c.position))).all()
    written = {cls.__name__: cls.schema_version for cls in PUBLISHED_EVENTS}
    assert [row.event_type for row in rows] == ["CustomerRegistered", "AccountOpened"]
    for row in rows:
        message = json.loads(row.payload)
        assert row.schema_version == message["schema_version"] == written[row.event_type]
        assert json.loads(row.headers)["schema_version"] == str(row.schema_version)
    assert json.loads(rows[1].payload)["payload"]["type"] == "checking"
