"""What a write-database error means (command_service/db/errors.py), per backend, with the
errors built as the drivers raise them: asyncmy's wrapped by SQLAlchemy, and sqlite3's raised by
SQLite itself (so Python has set their `sqlite_errorcode`). The driver's code decides; the
message only names the index, or stands in where a driver gave no code. No server is involved.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

import pytest
import sqlalchemy as sa
from asyncmy.errors import IntegrityError as MySQLIntegrityError
from asyncmy.errors import OperationalError as MySQLOperationalError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from command_service.db.errors import (
    UNAVAILABLE,
    ConcurrentUpdateError,
    Meaning,
    is_transient_conflict,
    meaning,
    unique_violation,
)
from command_service.db.tables import commands, customers, events, metadata

# -- MySQL / MariaDB through asyncmy -----------------------------------------------------------


def mysql(orig: Exception, statement: str = "INSERT INTO customers (...)") -> DBAPIError:
    """As SQLAlchemy raises asyncmy's error: wrapped in the class of the same name."""
    wrapper = IntegrityError if isinstance(orig, MySQLIntegrityError) else OperationalError
    return wrapper(statement, {}, orig)


@pytest.mark.parametrize("statement,message,rule", [
    ("INSERT INTO customers (...)",
     "Duplicate entry 'a@x.io' for key 'uq_customers_email_active'", "email"),
    ("INSERT INTO customers (...)", "Duplicate entry 'c-1' for key 'PRIMARY'", "id"),
    ("INSERT INTO accounts (...)", "Duplicate entry 'a-1' for key 'accounts.PRIMARY'", "id"),
    ("INSERT INTO commands (...)",
     "Duplicate entry 'me-k' for key 'commands.uq_commands_subject_idempotency_key'",
     "idempotency"),
    ("INSERT INTO events (...)",
     "Duplicate entry 'a-1-2' for key 'uq_events_aggregate_version'", "aggregate_version"),
    ("INSERT INTO events (...)", "Duplicate entry 'e-1' for key 'uq_events_event_id'", None),
])
def test_mysql_duplicate_entry_1062_names_the_rule_by_its_index(statement, message, rule):
    error = mysql(MySQLIntegrityError(1062, message), statement)
    assert meaning(error) is Meaning.UNIQUE_VIOLATION
    assert unique_violation(error) == rule
    assert not is_transient_conflict(error)


@pytest.mark.parametrize("code,message,expected", [
    (1213, "Deadlock found when trying to get lock; try restarting transaction", Meaning.DEADLOCK),
    (1205, "Lock wait timeout exceeded; try restarting transaction", Meaning.LOCK_TIMEOUT),
])
def test_mysql_deadlock_1213_and_lock_wait_timeout_1205_are_retried(code, message, expected):
    error = mysql(MySQLOperationalError(code, message))
    assert meaning(error) is expected
    assert is_transient_conflict(error)
    assert unique_violation(error) is None
    assert isinstance(error, UNAVAILABLE)  # should the retries run out


@pytest.mark.parametrize("orig,expected", [
    # A server with lc_messages=de_DE words its messages in German; the codes stay.
    (MySQLOperationalError(1213, "Beim Versuch, eine Sperre anzufordern, ist ein Deadlock "
                                 "aufgetreten"), Meaning.DEADLOCK),
    (MySQLOperationalError(1205, "Beim Warten auf eine Sperre wurde die zulässige Wartezeit "
                                 "überschritten"), Meaning.LOCK_TIMEOUT),
    (MySQLIntegrityError(1062, "Doppelter Eintrag 'a@x.io' für Schlüssel "
                               "'uq_customers_email_active'"), Meaning.UNIQUE_VIOLATION),
    # The duplicate value is user data: it never makes a unique violation a deadlock.
    (MySQLIntegrityError(1062, "Duplicate entry 'Deadlock found@x.io' for key "
                               "'uq_customers_email_active'"), Meaning.UNIQUE_VIOLATION),
    (MySQLIntegrityError(1452, "Cannot add or update a child row: a foreign key constraint "
                               "fails"), None),
])
def test_mysql_the_code_decides_whatever_the_message_says(orig, expected):
    assert meaning(mysql(orig)) is expected
    assert is_transient_conflict(mysql(orig)) is (expected in (Meaning.DEADLOCK,
                                                                Meaning.LOCK_TIMEOUT))


@pytest.mark.parametrize("code,message", [
    (1146, "Table 'bank.accounts' doesn't exist"),
])
def test_mysql_other_errors_mean_nothing_here_and_are_not_retried(code, message):
    error = mysql(MySQLOperationalError(code, message))
    assert meaning(error) is None
    assert not is_transient_conflict(error)


@pytest.mark.parametrize("code,message", [
    (2003, "Can't connect to MySQL server on 'db' ([Errno 111] Connection refused)"),
    (2013, "Lost connection to MySQL server during query"),
    (1045, "Access denied for user 'app'@'10.0.0.2' (using password: YES)"),
])
def test_mysql_a_server_not_reached_is_unreachable_and_not_retried(code, message):
    error = mysql(MySQLOperationalError(code, message))
    assert meaning(error) is Meaning.UNREACHABLE  # cli/dependencies.py says so in one line
    assert not is_transient_conflict(error)


# -- SQLite through sqlite3 ----------------------------------------------------------------------

NOW = datetime(2026, 11, 23, 12, 0, 0)


def customer(customer_id: str, email: str) -> dict:
    return dict(customer_id=customer_id, name="A", email=email, email_normalized=email,
                status="active", version=1, created_at=NOW, updated_at=NOW)


def command(command_id: str, key: str | None) -> dict:
    return dict(command_id=command_id, command_type="deposit", status="completed",
                created_at=NOW, subject="me", idempotency_key=key)


def event(event_id: str, aggregate_id: str, version: int) -> dict:
    return dict(event_id=event_id, aggregate_type="account", aggregate_id=aggregate_id,
                version=version, event_type="MoneyDeposited", payload="{}", occurred_at=NOW,
                command_id="cmd")


def sqlite_error(table: sa.Table, *rows: dict) -> DBAPIError:
    """What SQLAlchemy raises when SQLite itself refuses the last of `rows`."""
    engine = sa.create_engine("sqlite://")
    metadata.create_all(engine)
    with engine.begin() as conn, pytest.raises(DBAPIError) as raised:
        for row in rows:
            conn.execute(table.insert(), row)
    engine.dispose()
    assert isinstance(raised.value.orig, sqlite3.Error)
    return raised.value


@pytest.mark.parametrize("table,rows,rule,code", [
    (customers, [customer("c1", "a@x.io"), customer("c2", "a@x.io")], "email",
     sqlite3.SQLITE_CONSTRAINT_UNIQUE),
    (customers, [customer("c1", "a@x.io"), customer("c1", "b@x.io")], "id",
     sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY),
    (commands, [command("k1", "key"), command("k2", "key")], "idempotency",
     sqlite3.SQLITE_CONSTRAINT_UNIQUE),
    (events, [event("e1", "a1", 2), event("e2", "a1", 2)], "aggregate_version",
     sqlite3.SQLITE_CONSTRAINT_UNIQUE),
    (events, [event("e1", "a1", 1), event("e1", "a1", 2)], None,
     sqlite3.SQLITE_CONSTRAINT_UNIQUE),
])
def test_sqlite_unique_and_primary_key_constraint_codes_name_the_rule_by_its_columns(
        table, rows, rule, code):
    error = sqlite_error(table, *rows)
    assert error.orig.sqlite_errorcode == code
    assert meaning(error) is Meaning.UNIQUE_VIOLATION
    assert unique_violation(error) == rule
    assert not is_transient_conflict(error)


def test_sqlite_other_constraints_are_no_unique_violation():
    error = sqlite_error(customers, {**customer("c1", "a@x.io"), "name": None})
    assert error.orig.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_NOTNULL
    assert meaning(error) is None and unique_violation(error) is None


@pytest.mark.parametrize("text", ["database is locked",
                                  "UNIQUE constraint failed: customers.email_active"])
def test_sqlite_the_code_decides_whatever_the_message_says(text):
    """A trigger's RAISE words its message freely; SQLite's code says what happened."""
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (x)")
    conn.execute(f"CREATE TRIGGER refuse BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, '{text}');"
                 " END")
    with pytest.raises(sqlite3.IntegrityError) as raised:
        conn.execute("INSERT INTO t VALUES (1)")
    conn.close()
    assert raised.value.sqlite_errorcode == sqlite3.SQLITE_CONSTRAINT_TRIGGER
    error = IntegrityError("INSERT INTO t VALUES (1)", {}, raised.value)
    assert meaning(error) is None
    assert unique_violation(error) is None and not is_transient_conflict(error)


def test_sqlite_busy_is_retried_wrapped_or_not(tmp_path):
    """SQLITE_BUSY: another connection holds the write lock (sqlite_inline.py meets it
    unwrapped, when it tries BEGIN IMMEDIATE without waiting)."""
    path = tmp_path / "write.db"
    holder = sqlite3.connect(path, isolation_level=None)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as raised:
            other.execute("BEGIN IMMEDIATE")
    finally:
        holder.close()
        other.close()
    busy = raised.value
    assert busy.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    for error in (busy, OperationalError("BEGIN IMMEDIATE", {}, busy)):
        assert meaning(error) is Meaning.BUSY
        assert is_transient_conflict(error)


def test_sqlite_other_operational_errors_are_not_retried():
    with pytest.raises(sqlite3.OperationalError) as raised:
        sqlite3.connect(":memory:").execute("SELECT * FROM accounts")
    assert meaning(raised.value) is None
    assert not is_transient_conflict(OperationalError("SELECT", {}, raised.value))


def test_sqlite_an_error_without_its_code_falls_back_to_the_message():
    """Python sets `sqlite_errorcode` only on the errors SQLite raised; one built by hand has
    none, and is read by its message."""
    locked = sqlite3.OperationalError("database is locked")
    assert not hasattr(locked, "sqlite_errorcode")
    assert meaning(locked) is Meaning.BUSY
    duplicate = IntegrityError("INSERT INTO customers (...)", {}, sqlite3.IntegrityError(
        "UNIQUE constraint failed: customers.email_active"))
    assert unique_violation(duplicate) == "email"


# -- any backend ---------------------------------------------------------------------------------

def test_a_version_conflict_is_retried_and_other_exceptions_mean_nothing():
    assert is_transient_conflict(ConcurrentUpdateError("accounts changed concurrently"))
    for error in (ValueError("database is locked"),
                  RuntimeError(1213, "Deadlock found when trying to get lock")):
        assert meaning(error) is None
        assert not is_transient_conflict(error)
        assert unique_violation(error) is None
