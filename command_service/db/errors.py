"""What a write-database error means, on each backend the write model runs on (MySQL/MariaDB
through asyncmy, SQLite through sqlite3): the one place that reads drivers' error codes.

Everything else asks here: is this a unique violation (and of which rule), a deadlock, a lock
timeout, a busy database; should the command be retried; is the database unavailable? The
driver's error code decides; its message is read only where a driver gives no code (a sqlite3
error Python did not raise itself), and for the one thing MySQL reports in no other way: the
name of the unique index a duplicate hit.
"""

from __future__ import annotations

import re
import sqlite3
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.outages import ANY_DEPENDENCY_DOWN


class ConcurrentUpdateError(Exception):
    """Another transaction changed an aggregate since we read it; the command is retried."""


class ConnectionLostError(Exception):
    """The connection died under a command before its COMMIT was sent (a pooled connection
    that a server restart killed): the server rolled the transaction back, so the command is
    run once more, on a new connection. After one more loss it is answered 503."""


class Meaning(StrEnum):
    UNIQUE_VIOLATION = "unique violation"
    DEADLOCK = "deadlock"
    LOCK_TIMEOUT = "lock timeout"
    BUSY = "busy"  # SQLite: another connection holds the write lock
    UNREACHABLE = "unreachable"  # no server there, the connection lost, or not let in


# MySQL/MariaDB server error numbers. MySQL drivers (asyncmy, PyMySQL) raise them as args[0].
MYSQL_CODES = {
    1062: Meaning.UNIQUE_VIOLATION,  # ER_DUP_ENTRY
    1213: Meaning.DEADLOCK,  # ER_LOCK_DEADLOCK
    1205: Meaning.LOCK_TIMEOUT,  # ER_LOCK_WAIT_TIMEOUT
    # Client errors: no server at the address (2002/2003), unknown host (2005), gone away or
    # lost (2006/2013); and access denied (1045): reached, but not let in.
    2002: Meaning.UNREACHABLE, 2003: Meaning.UNREACHABLE, 2005: Meaning.UNREACHABLE,
    2006: Meaning.UNREACHABLE, 2013: Meaning.UNREACHABLE, 1045: Meaning.UNREACHABLE,
}
# SQLite result codes, as sqlite3 sets them on the errors it raises (`sqlite_errorcode`, Python
# 3.11+): extended codes, whose low byte is the primary code.
SQLITE_EXTENDED_CODES = {
    sqlite3.SQLITE_CONSTRAINT_UNIQUE: Meaning.UNIQUE_VIOLATION,  # 2067
    sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY: Meaning.UNIQUE_VIOLATION,  # 1555
}
SQLITE_PRIMARY_CODES = {
    sqlite3.SQLITE_BUSY: Meaning.BUSY,  # 5, and its extended forms (BUSY_SNAPSHOT, ...)
    sqlite3.SQLITE_CANTOPEN: Meaning.UNREACHABLE,  # 14: the file cannot be opened
}
# Only for an error without a code. Prefixes, never substrings: a MySQL message goes on to
# quote the duplicate value, which is user data.
MESSAGE_PREFIXES = (
    ("Duplicate entry ", Meaning.UNIQUE_VIOLATION),  # MySQL
    ("Deadlock found", Meaning.DEADLOCK),  # MySQL
    ("Lock wait timeout exceeded", Meaning.LOCK_TIMEOUT),  # MySQL
    ("UNIQUE constraint failed: ", Meaning.UNIQUE_VIOLATION),  # SQLite
    ("database is locked", Meaning.BUSY),  # SQLite
    ("database is busy", Meaning.BUSY),  # SQLite
    ("unable to open database file", Meaning.UNREACHABLE),  # SQLite
)
_RETRYABLE = {Meaning.DEADLOCK, Meaning.LOCK_TIMEOUT, Meaning.BUSY}

# Lock contention that outlasted the retries, a lost or refused connection and an exhausted
# pool mean "try again shortly" (503 + Retry-After), not a bug.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError, InterfaceError, PoolTimeout, ConcurrentUpdateError, ConnectionLostError)


def _driver_error(exc: BaseException) -> BaseException | None:
    """The driver's own error: SQLAlchemy wraps it (`orig`); the SQLite connection of
    sqlite_inline.py sees sqlite3's unwrapped. Any other exception says nothing of the database."""
    if isinstance(exc, DBAPIError):
        return exc.orig
    return exc if isinstance(exc, sqlite3.Error) else None


def meaning(exc: BaseException) -> Meaning | None:
    """What a database error means, or None for any other error (or exception)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return Meaning.UNREACHABLE  # SQLAlchemy saw the connection die under it
    error = _driver_error(exc)
    if error is None:
        return None
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return SQLITE_EXTENDED_CODES.get(code) or SQLITE_PRIMARY_CODES.get(code & 0xFF)
    if error.args and isinstance(error.args[0], int):
        return MYSQL_CODES.get(error.args[0])
    message = _message(error)
    return next((m for prefix, m in MESSAGE_PREFIXES if message.startswith(prefix)), None)


def is_transient_conflict(exc: BaseException) -> bool:
    """A lost race that running the command again resolves: a version conflict, a deadlock, a
    lock wait that timed out, SQLite's write lock held by another connection."""
    return isinstance(exc, ConcurrentUpdateError) or meaning(exc) in _RETRYABLE


def is_connection_lost(exc: BaseException) -> bool:
    """No server at the address, the connection lost, or not let in."""
    return meaning(exc) is Meaning.UNREACHABLE


def is_unavailable(exc: BaseException) -> bool:
    """Whether a command's error is answered 503 (the command service's error handlers take
    the same two sets): a condition to retry, not a failure of the command."""
    return isinstance(exc, (*UNAVAILABLE, *ANY_DEPENDENCY_DOWN))


# What a unique violation names, on each backend: MySQL/MariaDB the index ("for key
# 'uq_…'" or 'PRIMARY'), SQLite the columns ("UNIQUE constraint failed: commands.subject, …").
# Parsed from those parts only: the rest of the message quotes user data (the duplicate value).
_MYSQL_KEY = re.compile(r"for key '(?:\w+\.)?(\w+)'\s*$")
_SQLITE_COLUMNS = re.compile(r"UNIQUE constraint failed: ([\w., ]+)$")
_INSERT_TABLE = re.compile(r"INSERT INTO [`\"]?(\w+)", re.IGNORECASE)
_VIOLATIONS = {
    "uq_commands_subject_idempotency_key": "idempotency",
    "commands.subject,commands.idempotency_key": "idempotency",
    "uq_events_aggregate_version": "aggregate_version",
    "events.aggregate_id,events.version": "aggregate_version",
    "uq_customers_email_active": "email",
    "customers.email_active": "email",
    "customers.primary": "id", "customers.customer_id": "id",
    "accounts.primary": "id", "accounts.account_id": "id",
}


def unique_violation(exc: BaseException) -> str | None:
    """Which uniqueness rule a database error broke: idempotency, aggregate_version, email,
    id, or None for any other rule or error."""
    if meaning(exc) is not Meaning.UNIQUE_VIOLATION:
        return None
    message = _message(_driver_error(exc))
    if found := _MYSQL_KEY.search(message):
        name = found.group(1).lower()
        if name == "primary":  # MySQL names no table for a primary key; the statement does
            table = _INSERT_TABLE.search(getattr(exc, "statement", None) or "")
            name = f"{table.group(1).lower() if table else '?'}.primary"
        return _VIOLATIONS.get(name)
    if found := _SQLITE_COLUMNS.search(message):
        return _VIOLATIONS.get(found.group(1).replace(" ", "").lower())
    return None


def _message(error: BaseException) -> str:
    # MySQL drivers: args (code, message); sqlite3: args (message,).
    return str(error.args[-1] if error.args else error).strip()
