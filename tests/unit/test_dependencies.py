"""Which errors mean "a dependency is down", and the one line that says so (cli/dependencies.py).
Pure: the errors are built as the drivers raise them, no server is involved."""

from __future__ import annotations

import sqlite3

import pytest
from aiokafka.errors import KafkaConnectionError
from asyncmy.errors import OperationalError as MySQLOperationalError
from pymongo.errors import ServerSelectionTimeoutError
from sqlalchemy.exc import OperationalError

from cli import dev_settings
from cli.dependencies import classify
from shared.config import Settings


def wrapped(orig: Exception) -> OperationalError:
    """As SQLAlchemy raises a driver's error: wrapped, with the original as its cause."""
    try:
        raise OperationalError("SELECT 1", {}, orig) from orig
    except OperationalError as exc:
        return exc


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="mysql+asyncmy://app:secret@db.internal:3307/bank",
                    kafka_bootstrap_servers="k1:9092,k2:9092",
                    mongo_url="mongodb://reader:hunter2@m1:27017,m2:27017/?replicaSet=rs")


@pytest.mark.parametrize("code,message", [
    (2003, "Can't connect to MySQL server on 'db.internal' ([Errno 111] Connection refused)"),
    (2013, "Lost connection to MySQL server during query"),
    (1045, "Access denied for user 'app'@'10.0.0.2' (using password: YES)"),
])
def test_a_mysql_server_that_cannot_be_reached_names_the_write_database(settings, code, message):
    down = classify(wrapped(MySQLOperationalError(code, message)), settings)
    assert down is not None
    assert str(down).startswith("cannot reach the write database at db.internal:3307 "
                                "(CQRS_DATABASE_URL)")
    assert "secret" not in str(down)


def test_a_sqlite_file_that_cannot_be_opened_names_its_path():
    settings = Settings(database_url="sqlite+aiosqlite:////no/such/folder/write.db")
    down = classify(wrapped(sqlite3.OperationalError("unable to open database file")), settings)
    assert str(down).startswith("cannot reach the write database at /no/such/folder/write.db")


def test_the_read_store_is_named_with_its_hosts_and_never_its_credentials(settings):
    down = classify(ServerSelectionTimeoutError(
        "m1:27017: [Errno 111] Connection refused, Timeout: 0.5s"), settings)
    assert str(down) == ("cannot reach the read store at m1:27017,m2:27017 (CQRS_MONGO_URL): "
                         "connection refused")
    assert "hunter2" not in str(down)


def test_a_broker_that_cannot_be_bootstrapped_names_every_bootstrap_server(settings):
    down = classify(KafkaConnectionError("Unable to bootstrap from [('k1', 9092)]"), settings)
    assert str(down) == ("cannot reach the broker at k1:9092,k2:9092 "
                         "(CQRS_KAFKA_BOOTSTRAP_SERVERS): no broker answered")


@pytest.mark.parametrize("error", [
    wrapped(sqlite3.OperationalError("no such table: accounts")),  # reached, not migrated
    wrapped(MySQLOperationalError(1213, "Deadlock found when trying to get lock")),
    ValueError("a bug, not an outage"),
])
def test_other_failures_are_not_taken_for_a_dependency_that_is_down(settings, error):
    assert classify(error, settings) is None


def test_an_address_from_the_dev_stacks_file_is_said_to_come_from_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CQRS_MONGO_URL", raising=False)
    (tmp_path / ".data").mkdir()
    written = dev_settings.write(tmp_path / ".data", {
        "CQRS_MONGO_URL": "mongodb://127.0.0.1:41234/?directConnection=true",
        "CQRS_AUTH_JWT_SECRET": "s" * 40, "UNRELATED": "left out"})
    assert written.stat().st_mode & 0o777 == 0o600  # it holds the dev signing secret
    assert "UNRELATED" not in written.read_text()
    settings = Settings(_env_file=dev_settings.present())
    assert settings.mongo_url == "mongodb://127.0.0.1:41234/?directConnection=true"

    down = classify(ServerSelectionTimeoutError("Connection refused"), settings)
    assert "(CQRS_MONGO_URL, from .data/dev.env)" in str(down)

    monkeypatch.setenv("CQRS_MONGO_URL", "mongodb://elsewhere:27017")  # the environment wins
    assert Settings(_env_file=dev_settings.present()).mongo_url == "mongodb://elsewhere:27017"
