"""The one line a command prints for an error it did not expect (cli/failures.py), and the
write-model and no-stack lines of cli/dependencies.py. Pure: the errors are built as the drivers
raise them, no server is involved."""

from __future__ import annotations

import sqlite3

import pytest
from aiokafka.errors import UnknownTopicOrPartitionError
from bson.binary import Binary
from pymongo.errors import OperationFailure
from sqlalchemy.exc import OperationalError

from cli.dependencies import NoStack, NoWriteModel, require_a_stack, write_database
from cli.failures import one_line, summary
from shared.config import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings(database_url="mysql+asyncmy://app:secret@db.internal:3307/bank",
                    kafka_bootstrap_servers="k1:9092",
                    mongo_url="mongodb://reader:hunter2@m1:27017/?directConnection=true")


def raised(exc: Exception) -> Exception:
    """The error with a traceback, as a command meets it."""
    try:
        raise exc
    except Exception as caught:
        return caught


def test_a_read_store_error_is_named_by_the_store_without_the_servers_whole_reply(settings):
    reply = {"ok": 0.0, "errmsg": "internal server error", "code": 1,
             "$clusterTime": {"signature": {"hash": Binary(b"\x00\x01" * 10), "keyId": 7}}}
    line = one_line(raised(OperationFailure("internal server error", 1, reply)), settings)
    assert line == ("the read store at m1:27017 (CQRS_MONGO_URL) failed: OperationFailure: "
                    "internal server error (--debug shows the traceback)")


def test_a_database_error_names_the_drivers_error_not_sqlalchemys_wrapper(settings):
    wrapped = OperationalError("SELECT * FROM outbox", {},
                               sqlite3.OperationalError("disk I/O error"))
    line = one_line(raised(wrapped), settings)
    assert line.startswith("the write database at db.internal:3307 (CQRS_DATABASE_URL) failed: "
                           "OperationalError: disk I/O error")
    assert "SELECT" not in line and "secret" not in line


def test_a_broker_error_is_named_by_the_broker(settings):
    line = one_line(raised(UnknownTopicOrPartitionError()), settings)
    assert line.startswith("the broker at k1:9092 (CQRS_KAFKA_BOOTSTRAP_SERVERS) failed: "
                           "UnknownTopicOrPartitionError")


def test_any_other_error_is_named_by_where_the_project_raised_it(settings):
    from shared.money import parse_amount

    try:
        parse_amount("0")
    except ValueError as exc:
        line = one_line(exc, settings)
    assert line.startswith("parse_amount (shared/money.py:"), line
    assert line.endswith("failed: InvalidAmount: must be greater than 0 "
                         "(--debug shows the traceback)"), line


def test_a_long_or_many_lined_message_is_trimmed_to_its_first_line():
    assert summary(ValueError("first\nsecond")) == "ValueError: first"
    assert len(summary(ValueError("x" * 1000))) < 200


def test_a_missing_write_model_names_the_fix(settings):
    line = one_line(NoWriteModel(write_database(settings), "it has no tables"), settings)
    assert line == ("no write model at db.internal:3307 (CQRS_DATABASE_URL): it has no tables; "
                    "run `cqrs-accounts migrate`, or `make dev` in this folder")


def test_with_no_dev_stack_and_no_location_set_there_is_no_stack(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("CQRS_DATABASE_URL", "CQRS_MONGO_URL", "CQRS_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(NoStack, match="start `make dev` here"):
        require_a_stack()
    monkeypatch.setenv("CQRS_MONGO_URL", "mongodb://elsewhere:27017")
    require_a_stack()  # configured: the command goes on
