"""A command's writes at commit as one round trip to MySQL/MariaDB.

A deposit used to cost eight round trips: a pre-ping, the locking read, the account's update,
the command record, the event, the outbox row, COMMIT and a ROLLBACK on the connection's
return to the pool. On a network each costs a wait, and a command holds its row lock through
all of them. Here everything the commit writes (the aggregates' new state, the command record,
each event and the outbox row that carries it) is sent as one multi-statement query, and its
results are read back in order; COMMIT follows on its own, so that a failed check can still
roll everything back. A deposit is then three: lock, this batch, COMMIT.

- **Positions.** An outbox row carries its event's position, which the server assigns: the
  outbox INSERT right after its event's reads it as LAST_INSERT_ID(), and the message text is
  spliced around it with CONCAT, so the row holds the very bytes the relay sends, as the
  statement-by-statement path (SQLite) writes them.
- **Checks.** An UPDATE guarded by the version it was loaded at must match one row; its
  result is read like any other, and a miss raises ConcurrentUpdateError before COMMIT.
- **Errors.** The server stops at the first failing statement and reports it in that
  statement's result; it is raised as SQLAlchemy would have wrapped it (mysql_driver.py), so
  `command_service/db/errors.py` reads it the same way. Anything else that interrupts the
  reading of the results (a lost connection, a cancelled request) leaves the connection
  mid-stream, so it is invalidated rather than returned to the pool.
- **Safety.** Multi-statement queries are allowed on the write model's connections for this
  (CLIENT.MULTI_STATEMENTS, db/engine.py). Every value still goes through the driver's
  escaping, and the SQL text around the values is built here from the tables' own metadata.
"""

from __future__ import annotations

from datetime import datetime

import asyncmy.errors
from asyncmy.constants.SERVER_STATUS import SERVER_STATUS_NO_BACKSLASH_ESCAPES
from sqlalchemy.ext.asyncio import AsyncConnection

from command_service.db import mysql_driver
from command_service.db.engine import pooled
from command_service.db.errors import ConcurrentUpdateError
from command_service.db.repository import StateWrite
from command_service.db.tables import commands, events, outbox

# Spliced out of an outbox row's message and replaced by LAST_INSERT_ID() (see above). Far
# beyond any position a table reaches, so the text cannot hold it by chance.
POSITION_PLACEHOLDER = 8_765_432_101_234_567_890

# What the driver escapes in a string, and how (asyncmy's converters._escape_table). The
# backslash first: each later replacement adds one.
_BACKSLASH_ESCAPES = (("\\", "\\\\"), ("\0", "\\0"), ("\n", "\\n"), ("\r", "\\r"),
                      ("\032", "\\Z"), ('"', '\\"'), ("'", "\\'"))


def literal(driver, value: object) -> str:
    """`value` as SQL text, exactly as the driver's own `literal` writes it. Strings and naive
    datetimes are written here: asyncmy escapes a string holding a quote (every JSON column)
    with `str.translate` character by character, and formats a datetime field by field, which
    made its parameter formatting ~100 us of a deposit's batch (~6% of the command service's
    CPU); these replacements do the same in ~10 us. Anything else, and any string on a
    server in NO_BACKSLASH_ESCAPES mode, is left to the driver."""
    kind = type(value)
    if driver.server_status & SERVER_STATUS_NO_BACKSLASH_ESCAPES:
        return driver.literal(value)
    if kind is str:
        for char, escaped in _BACKSLASH_ESCAPES:
            if char in value:
                value = value.replace(char, escaped)
        return f"'{value}'"
    if kind is datetime and value.tzinfo is None:
        return f"'{value.isoformat(' ')}'"  # asyncmy: no fraction when it is zero, as here
    return driver.literal(value)


class MysqlWriteBatch:
    """The statements of one commit, in order, with their values bound by name."""

    def __init__(self) -> None:
        self._statements: list[str] = []
        self._params: dict[str, object] = {}
        self._must_match: list[tuple[int, StateWrite]] = []  # statement index, its check

    def _bind(self, values: dict) -> dict[str, str]:
        """Each value under a name of its own in the batch: column -> `%(name)s`."""
        names = {}
        for column, value in values.items():
            name = f"p{len(self._params)}"
            self._params[name] = value
            names[column] = f"%({name})s"
        return names

    def _insert(self, table_name: str, placeholders: dict[str, str]) -> None:
        columns = ", ".join(f"`{c}`" for c in placeholders)
        self._statements.append(f"INSERT INTO `{table_name}` ({columns}) "
                                f"VALUES ({', '.join(placeholders.values())})")

    def save(self, write: StateWrite) -> None:
        if write.loaded_version is None:
            self._insert(write.table.name, self._bind(write.values))
            return
        key_column = next(iter(write.table.primary_key.columns)).name
        sets = ", ".join(f"`{c}` = {p}" for c, p in self._bind(write.values).items())
        where = self._bind({key_column: write.key_id, "version": write.loaded_version})
        self._must_match.append((len(self._statements), write))
        self._statements.append(
            f"UPDATE `{write.table.name}` SET {sets} "
            f"WHERE `{key_column}` = {where[key_column]} AND `version` = {where['version']}")

    def insert_command(self, row: dict) -> None:
        self._insert(commands.name, self._bind(row))

    def insert_event(self, event_row: dict, outbox_row: dict) -> None:
        """The event, then the outbox row that carries it: `outbox_row` is the row as
        `outbox_envelope.outbox_row` makes it from an envelope whose position is
        POSITION_PLACEHOLDER; the server puts the event's position in its place."""
        self._insert(events.name, self._bind(event_row))
        message = outbox_row["payload"]
        head, placeholder, tail = message.partition(str(POSITION_PLACEHOLDER))
        if not placeholder or str(POSITION_PLACEHOLDER) in tail:
            raise ValueError("an outbox message must name its position exactly once")
        others = {k: v for k, v in outbox_row.items() if k not in ("event_position", "payload")}
        placeholders = self._bind(others)
        text = self._bind({"head": head, "tail": tail})
        placeholders["event_position"] = "LAST_INSERT_ID()"
        placeholders["payload"] = f"CONCAT({text['head']}, LAST_INSERT_ID(), {text['tail']})"
        self._insert(outbox.name, placeholders)

    async def execute(self, conn: AsyncConnection) -> None:
        """Send the batch on `conn`'s connection and read every result; raise what the first
        failing statement or check says."""
        if not self._statements:
            return
        sql = ";\n".join(self._statements)
        driver = pooled(conn).driver_connection
        cursor = driver.cursor()
        checks = dict(self._must_match)
        in_sync = False
        try:
            try:
                # The values spliced in here (see `literal`); no parameters left to format.
                await cursor.execute(sql % {name: literal(driver, value)
                                            for name, value in self._params.items()})
                for index in range(len(self._statements)):
                    if index:
                        await cursor.nextset()
                    if index in checks:
                        checks[index].check_matched(cursor.rowcount)
                in_sync = not await cursor.nextset()
            except asyncmy.errors.Error as exc:
                # A server's error ends the batch, and the connection is in step; a client's
                # (the connection lost) invalidates it and the pool's older ones.
                in_sync = True  # either way, nothing left to do below
                raise await mysql_driver.wrapped(conn, exc, sql, self._params) from exc
            except ConcurrentUpdateError:
                # The rest of the batch ran; its results are read before the rollback.
                while await cursor.nextset():
                    pass
                in_sync = True
                raise
        finally:
            if not in_sync:
                await conn.invalidate()
