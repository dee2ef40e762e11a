"""Realistic event histories, made by the project's own pure domain model (so every payload
has exactly the shape the command service writes), and the ways a run pre-fills them:
into a write model's events + outbox through `SqlUnitOfWork`, or straight onto a topic as the
messages the relay would publish (the `EventEnvelope` contract)."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from command_service.db.tables import events, outbox, utc_now
from command_service.domain.events import DomainEvent
from command_service.domain.model import Account, AccountType, Customer
from command_service.outbox_envelope import envelope_of, event_row, outbox_row
from shared.envelope import EventEnvelope

CURRENCIES = ("USD", "EUR")


class Clock:
    """Strictly increasing event times within one UTC day, like a busy day of commands."""

    def __init__(self) -> None:
        today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self._now = today + timedelta(hours=1)

    def tick(self) -> datetime:
        self._now += timedelta(microseconds=50)
        return self._now


def bank_history(n_events: int, n_accounts: int, seed: int = 7) -> list[DomainEvent]:
    """Customers (two accounts each) registered and opened, then deposits, withdrawals and
    transfers between accounts of one currency, until there are `n_events` events."""
    return list(bank_events(n_events, n_accounts, seed))


def bank_events(n_events: int, n_accounts: int, seed: int = 7) -> Iterator[DomainEvent]:
    """`bank_history`'s events one at a time, as they are made: a million-event history need
    not be held whole."""
    rng = random.Random(seed)
    clock = Clock()
    n_accounts = max(2, min(n_accounts, n_events // 3))
    customers = [Customer.register(customer_id=str(uuid.UUID(int=rng.getrandbits(128))),
                                   name=f"Bench Customer {i}", email=f"bench{i}@example.com",
                                   now=clock.tick())
                 for i in range((n_accounts + 1) // 2)]
    made = 0
    for c in customers:
        made += len(c.pending_events)
        yield from c.pending_events
    accounts: list[Account] = []
    for i in range(n_accounts):
        accounts.append(Account.open(
            account_id=str(uuid.UUID(int=rng.getrandbits(128))),
            customer_id=customers[i // 2].customer_id,
            account_type=AccountType.CHECKING if i % 2 == 0 else AccountType.SAVINGS,
            currency=CURRENCIES[(i // 2) % 2], initial_deposit_minor=100_00,
            transaction_id=str(uuid.uuid4()), now=clock.tick()))
    for a in accounts:
        made += 1
        yield a.pending_events[0]
        a.pending_events.clear()
    by_currency = {cur: [a for a in accounts if a.currency == cur] for cur in CURRENCIES}
    place = {id(a): i for group in by_currency.values() for i, a in enumerate(group)}
    while made < n_events:
        account = rng.choice(accounts)
        amount = rng.randint(1_00, 250_00)
        roll = rng.random()
        group = by_currency[account.currency]
        if roll < 0.15 and len(group) > 1 and n_events - made >= 2 \
                and account.balance_minor >= amount:
            # rng.choice of the group without `account`, without building that list (which
            # made a long history quadratic): the same draw, so the same history.
            pick = rng.randrange(len(group) - 1)
            receiver = group[pick + (pick >= place[id(account)])]
            transfer_id, now = str(uuid.uuid4()), clock.tick()
            account.send_transfer(to=receiver, amount_minor=amount, transfer_id=transfer_id,
                                  transaction_id=str(uuid.uuid4()), reference="bench",
                                  now=now)
            receiver.receive_transfer(sender=account, amount_minor=amount,
                                      transfer_id=transfer_id,
                                      transaction_id=str(uuid.uuid4()), reference="bench",
                                      now=now)
            made += len(account.pending_events) + len(receiver.pending_events)
            yield from account.pending_events + receiver.pending_events
            receiver.pending_events.clear()
        elif roll < 0.45 and account.balance_minor >= amount:
            account.withdraw(amount_minor=amount, transaction_id=str(uuid.uuid4()),
                             reference=None, now=clock.tick())
            made += len(account.pending_events)
            yield from account.pending_events
        else:
            account.deposit(amount_minor=amount, transaction_id=str(uuid.uuid4()),
                            reference="salary", now=clock.tick())
            made += len(account.pending_events)
            yield from account.pending_events
        account.pending_events.clear()


def bank_envelopes(n_events: int, n_accounts: int, seed: int = 7) -> list[EventEnvelope]:
    return [envelope_of(e, str(uuid.uuid4())) for e in bank_history(n_events, n_accounts, seed)]


def _outbox_chunks(n_events: int, per_account: int, accounts_per_chunk: int
                   ) -> Iterator[list[Customer | Account]]:
    """New customers and accounts, each account already carrying its events, in groups that
    one unit of work commits together."""
    clock = Clock()
    made = 0
    while made < n_events:
        group: list[Customer | Account] = []
        for _ in range(accounts_per_chunk):
            if made >= n_events:
                break
            uid = uuid.uuid4().hex
            customer = Customer.register(customer_id=str(uuid.uuid4()), name="Outbox Bench",
                                         email=f"{uid}@example.com", now=clock.tick())
            account = Account.open(account_id=str(uuid.uuid4()),
                                   customer_id=customer.customer_id,
                                   account_type=AccountType.CHECKING, currency="USD",
                                   initial_deposit_minor=100_00,
                                   transaction_id=str(uuid.uuid4()), now=clock.tick())
            made += 2
            for _ in range(min(per_account, n_events - made)):
                account.deposit(amount_minor=12_34, transaction_id=str(uuid.uuid4()),
                                reference="bench", now=clock.tick())
                made += 1
            group += [customer, account]
        yield group


async def fill_write_model(engine: AsyncEngine, topic: str, n_events: int,
                           per_account: int = 200, accounts_per_chunk: int = 25,
                           sent: bool = False) -> int:
    """Write `n_events` event rows and their outbox rows, five thousand per transaction.

    The rows are the ones `SqlUnitOfWork.commit` writes (`event_row`, `outbox_row`; the smoke
    test checks that they match), inserted in bulk: through the unit of work a 100,000-row
    outbox would take two minutes to fill, and the fill is not what is measured. `sent=True`
    writes history that was already published (for measuring commands against a large write
    model)."""
    async with engine.connect() as conn:
        position = (await conn.scalar(sa.select(sa.func.max(events.c.position)))) or 0
    written = 0
    event_rows: list[dict] = []
    outbox_rows: list[dict] = []

    async def flush() -> None:
        async with engine.begin() as conn:
            await conn.execute(events.insert(), event_rows)
            await conn.execute(outbox.insert(), outbox_rows)
        event_rows.clear()
        outbox_rows.clear()

    for group in _outbox_chunks(n_events, per_account, accounts_per_chunk):
        now = utc_now()
        command_id = str(uuid.uuid4())
        for aggregate in group:
            for event in aggregate.pending_events:
                position += 1
                envelope = replace(envelope_of(event, command_id), position=position)
                event_rows.append({**event_row(envelope), "position": position})
                outbox_rows.append({**outbox_row(envelope, topic, now),
                                    "sent_at": now if sent else None})
            aggregate.pending_events.clear()
        if len(event_rows) >= 5000:
            written += len(event_rows)
            await flush()
    if event_rows:
        written += len(event_rows)
        await flush()
    return written


async def produce_envelopes(bootstrap: str, topic: str, envelopes: list[EventEnvelope]) -> None:
    """Put events on a topic exactly as the relay would (value, key, headers)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for envelope in envelopes:
            pending.append(await producer.send(
                topic, value=envelope.to_json().encode(), key=envelope.aggregate_id.encode(),
                headers=envelope.headers()))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
