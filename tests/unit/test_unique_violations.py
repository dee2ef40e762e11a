"""Unique violations are told apart by the index or columns they name, never by the duplicate
value the message also quotes (which is user data)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from command_service.db.errors import unique_violation


def _error(statement: str, *args) -> IntegrityError:
    return IntegrityError(statement, {}, Exception(*args))


@pytest.mark.parametrize("statement,args,expected", [
    ("INSERT INTO customers (...)",
     (1062, "Duplicate entry 'idempotency_key@x.io' for key 'uq_customers_email_active'"),
     "email"),
    ("INSERT INTO accounts (...)", (1062, "Duplicate entry 'uq_events_aggregate_version' for "
                                          "key 'PRIMARY'"), "id"),
    ("INSERT INTO commands (...)", (1062, "Duplicate entry 'me-k' for key "
                                          "'commands.uq_commands_subject_idempotency_key'"),
     "idempotency"),
    ("INSERT INTO events (...)", (1062, "Duplicate entry 'a-2' for key "
                                        "'uq_events_aggregate_version'"), "aggregate_version"),
    ("INSERT INTO customers (...)", ("UNIQUE constraint failed: customers.email_active",),
     "email"),
    ("INSERT INTO commands (...)",
     ("UNIQUE constraint failed: commands.subject, commands.idempotency_key",), "idempotency"),
    ("INSERT INTO events (...)",
     ("UNIQUE constraint failed: events.aggregate_id, events.version",), "aggregate_version"),
    ("INSERT INTO accounts (...)", ("UNIQUE constraint failed: accounts.account_id",), "id"),
    ("INSERT INTO outbox (...)", ("NOT NULL constraint failed: outbox.payload",), None),
])
def test_each_unique_violation_is_named_by_its_constraint(statement, args, expected):
    assert unique_violation(_error(statement, *args)) == expected
