"""SQLite: a command's writes sent straight to the driver, not through SQLAlchemy's execution.

Through SQLAlchemy Core each statement gets an execution context, its parameters processed
per call and a result object: in the profile of deposits on SQLite (concurrency 32) that was
16% of the command service's CPU, more than SQLite's own work (10%). Here each statement is
compiled by SQLAlchemy once, for the connection's dialect and the columns it is given
(db/compiled.py), so every value is stored exactly as SQLAlchemy would store it (a DateTime as
SQLite's text form). It then runs on the sqlite3
connection through the InlineConnection (db/sqlite_inline.py), which keeps its rule for calls
queued on its thread, inside the transaction SQLAlchemy began. A driver error is wrapped as
SQLAlchemy wraps it, so `db/errors.py` reads it the same way.
"""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement

from command_service.db.compiled import compiled as compiled_once
from command_service.db.engine import pooled


async def execute(conn: AsyncConnection, statement: ClauseElement,
                  values: dict | list[dict]) -> sqlite3.Cursor:
    """Run `statement` with `values` (a list: once per row, all with the same columns) on
    `conn`'s sqlite3 connection; the driver's cursor (rowcount, lastrowid)."""
    many = isinstance(values, list)
    first = values[0] if many else values
    sync = conn.sync_connection
    compiled = compiled_once(statement, sync.dialect, tuple(first))
    parameters = [compiled.parameters(v) for v in values] if many \
        else compiled.parameters(values)
    driver = pooled(conn).driver_connection  # the InlineConnection
    raw = driver._connection
    try:
        return await driver._execute(raw.executemany if many else raw.execute,
                                     compiled.sql, parameters)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(compiled.sql, parameters, exc, sqlite3.Error,
                                  hide_parameters=sync.engine.hide_parameters,
                                  dialect=sync.dialect, ismulti=many) from exc
