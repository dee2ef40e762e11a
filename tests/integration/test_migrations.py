"""The alembic migrations and the table definitions the code queries agree, on each backend."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from command_service.db.migrate import alembic_config
from command_service.db.tables import customers, events, metadata

pytestmark = pytest.mark.every_pair("a migration is each store's own DDL")


async def test_migrated_schema_matches_the_table_definitions(engine):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [diff for diff in compare_metadata(context, metadata)
                if not (isinstance(diff, tuple) and diff[0] == "remove_table"
                        and diff[1].name == "alembic_version")]

    async with engine.connect() as conn:
        diffs = await conn.run_sync(differences)
    assert diffs == []


async def test_0003_gives_the_events_stored_before_it_schema_version_1_and_guards_its_downgrade(
        database_url, engine):
    """The events of a deployment that ran the release before schema versions are version 1;
    going back is refused once an event of a later version exists (that release would misread
    it), and allowed before."""
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0002")
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO events (event_id, aggregate_type, aggregate_id, version, event_type,"
            " payload, occurred_at, command_id) VALUES ('e1', 'customer', 'c1', 1,"
            " 'CustomerRegistered', '{}', '2026-12-01 00:00:00', 'k1')"))
    await asyncio.to_thread(command.upgrade, config, "head")
    async with engine.begin() as conn:
        assert (await conn.scalar(sa.text("SELECT schema_version FROM events"))) == 1
        await conn.execute(events.insert().values(
            event_id="e2", aggregate_type="account", aggregate_id="a1", version=1,
            schema_version=2, event_type="AccountOpened", payload="{}",
            occurred_at=datetime(2026, 12, 2), command_id="k2"))
    with pytest.raises(RuntimeError, match="1 events have a schema version above 1"):
        await asyncio.to_thread(command.downgrade, config, "0002")
    async with engine.begin() as conn:
        await conn.execute(events.delete().where(events.c.event_id == "e2"))
    await asyncio.to_thread(command.downgrade, config, "0002")
    await asyncio.to_thread(command.upgrade, config, "head")


async def test_0004_makes_every_earlier_customer_active_and_frees_only_closed_addresses(
        database_url, engine):
    """Customers registered before 0004 are active and keep their addresses; after it, a
    closed customer's address can be taken again, and going back is refused while two
    customers share one (the previous release holds every address unique)."""
    config = alembic_config(database_url)
    await asyncio.to_thread(command.downgrade, config, "0003")
    async with engine.begin() as conn:
        await conn.execute(sa.text(
            "INSERT INTO customers (customer_id, name, email, email_normalized, version,"
            " created_at, updated_at) VALUES ('c1', 'Ada', 'Ada@example.com', 'ada@example.com',"
            " 1, '2026-12-01 00:00:00', '2026-12-01 00:00:00')"))
    await asyncio.to_thread(command.upgrade, config, "head")
    row = dict(customer_id="c2", name="Ada II", email="ada@example.com",
               email_normalized="ada@example.com", status="active", version=1,
               created_at=datetime(2026, 12, 2), updated_at=datetime(2026, 12, 2))
    async with engine.begin() as conn:
        assert (await conn.execute(sa.select(customers.c.status, customers.c.email_active)
                                   )).one() == ("active", "ada@example.com")
    with pytest.raises(sa.exc.IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(customers.insert().values(**row))
    async with engine.begin() as conn:
        await conn.execute(customers.update().where(customers.c.customer_id == "c1")
                           .values(status="closed"))
        await conn.execute(customers.insert().values(**row))
    with pytest.raises(RuntimeError, match="1 email addresses belong to more than one"):
        await asyncio.to_thread(command.downgrade, config, "0003")
    async with engine.begin() as conn:
        await conn.execute(customers.delete().where(customers.c.customer_id == "c2"))
    await asyncio.to_thread(command.downgrade, config, "0003")
    await asyncio.to_thread(command.upgrade, config, "head")
