"""A command's writes on SQLite go straight to the driver (command_service/db/sqlite_writes.py):
they must store exactly what SQLAlchemy's own execution stores, and fail as it fails."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from command_service.db import sqlite_writes
from command_service.db.compiled import compiled
from command_service.db.engine import create_engine
from command_service.db.errors import unique_violation
from command_service.db.tables import Timestamp
from shared.config import Settings

metadata = sa.MetaData()
things = sa.Table("things", metadata,
                  sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                  sa.Column("name", sa.String(40), nullable=False, unique=True),
                  sa.Column("at", Timestamp, nullable=False),
                  sa.Column("amount", sa.BigInteger, nullable=True))
INSERT = things.insert()
UPDATE = things.update().where(things.c.id == sa.bindparam("b_id"))


@pytest.fixture
async def engine(tmp_path):
    engine = create_engine(Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/w.db",
                                    auth_jwt_secret="x" * 32))
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    yield engine
    await engine.dispose()


async def _stored(engine) -> list[tuple]:
    async with engine.connect() as conn:
        return list((await conn.exec_driver_sql(
            "SELECT id, name, at, amount FROM things ORDER BY id")).all())


async def test_rows_written_straight_to_the_driver_are_stored_as_sqlalchemy_stores_them(engine):
    at = datetime(2026, 12, 3, 17, 4, 5, 123456)
    async with engine.begin() as conn:
        await conn.execute(INSERT, {"name": "core", "at": at, "amount": None})
        cursor = await sqlite_writes.execute(conn, INSERT,
                                             {"name": "raw", "at": at, "amount": None})
        assert cursor.lastrowid == 2
        await sqlite_writes.execute(conn, INSERT, [{"name": n, "at": at, "amount": 7}
                                                   for n in ("raw2", "raw3")])
    rows = await _stored(engine)
    assert [r[2] for r in rows] == [rows[0][2]] * 4  # the same text as SQLAlchemy's
    assert [r[3] for r in rows] == [None, None, 7, 7]


async def test_an_update_reports_the_rows_it_matched(engine):
    at = datetime(2026, 12, 3, 17, 4, 5)
    async with engine.begin() as conn:
        await sqlite_writes.execute(conn, INSERT, {"name": "a", "at": at, "amount": 1})
        hit = await sqlite_writes.execute(conn, UPDATE, {"amount": 2, "b_id": 1})
        miss = await sqlite_writes.execute(conn, UPDATE, {"amount": 2, "b_id": 99})
    assert (hit.rowcount, miss.rowcount) == (1, 0)


async def test_a_unique_violation_is_wrapped_as_sqlalchemy_wraps_it(engine):
    at = datetime(2026, 12, 3, 17, 4, 5)
    async with engine.begin() as conn:
        await sqlite_writes.execute(conn, INSERT, {"name": "a", "at": at, "amount": 1})
        with pytest.raises(IntegrityError) as raised:
            await sqlite_writes.execute(conn, INSERT, {"name": "a", "at": at, "amount": 1})
    with pytest.raises(IntegrityError) as by_core:
        async with engine.begin() as conn:
            await conn.execute(INSERT, {"name": "a", "at": at, "amount": 1})
    assert type(raised.value.orig) is type(by_core.value.orig)
    assert str(raised.value.orig) == str(by_core.value.orig)
    assert unique_violation(raised.value) == unique_violation(by_core.value)


def test_a_statement_with_python_side_defaults_is_refused():
    table = sa.Table("defaults", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
                     sa.Column("n", sa.Integer, default=lambda: 1))
    with pytest.raises(ValueError, match="Python-side defaults"):
        compiled(table.insert(), sa.create_engine("sqlite://").dialect, ("id",))
