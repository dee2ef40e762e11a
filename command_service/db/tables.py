"""The write model's tables (SQLAlchemy Core). The migrations in `migrations/` create them;
this module only describes them for queries, so the two are checked against each other in
`tests/integration/test_migrations.py`."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

metadata = sa.MetaData()

# Microsecond timestamps on MySQL (its DATETIME defaults to whole seconds); UTC, naive.
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# AUTO_INCREMENT BIGINT on MySQL; SQLite only auto-increments an INTEGER PRIMARY KEY (rowid).
BigIdentity = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def naive_utc(moment: datetime) -> datetime:
    """A moment as a Timestamp column holds it."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def utc_now() -> datetime:
    """Now, as a Timestamp column holds it."""
    return naive_utc(datetime.now(UTC))


customers = sa.Table(
    "customers", metadata,
    sa.Column("customer_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("email", sa.String(320), nullable=False),
    # Lower-cased copy, so that uniqueness is case-insensitive on any backend.
    sa.Column("email_normalized", sa.String(320), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # active | closed
    # The address while the customer is open, NULL once closed: unique, so an address is held
    # by one open customer at most and closing frees it (migration 0004 says why this shape).
    sa.Column("email_active", sa.String(320),
              sa.Computed("CASE WHEN status = 'closed' THEN NULL ELSE email_normalized END",
                          persisted=True)),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("email_active", name="uq_customers_email_active"),
)

accounts = sa.Table(
    "accounts", metadata,
    sa.Column("account_id", sa.String(36), primary_key=True),
    sa.Column("customer_id", sa.String(36),
              sa.ForeignKey("customers.customer_id", name="fk_accounts_customer"), nullable=False),
    sa.Column("account_type", sa.String(16), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False),
    sa.Column("balance_minor", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("freeze_reason", sa.String(200), nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("opened_at", Timestamp, nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.CheckConstraint("balance_minor >= 0", name="ck_accounts_balance_not_negative"),
    sa.Index("ix_accounts_customer_id", "customer_id"),
)

commands = sa.Table(
    "commands", metadata,
    sa.Column("command_id", sa.String(36), primary_key=True),
    sa.Column("command_type", sa.String(40), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("completed_at", Timestamp, nullable=True),
    sa.Column("error", sa.Text, nullable=True),  # JSON {"code", "message"} of a refusal
    sa.Column("idempotency_key", sa.String(128), nullable=True),
    sa.Column("request_fingerprint", sa.String(64), nullable=True),
    sa.Column("response_status", sa.Integer, nullable=True),
    sa.Column("response_body", sa.Text, nullable=True),
    sa.Column("response_headers", sa.Text, nullable=True),  # JSON object
    sa.Column("expires_at", Timestamp, nullable=True),
    # Who sent the command: the `sub` of its bearer token ("anonymous" with authentication
    # off, "system" in-process; "" for commands recorded before 0002 added the column).
    sa.Column("subject", sa.String(255), nullable=False),
    # What the command log shows of the command (command_service/command_log.py): the customer
    # it acts for, the aggregates it changed (or named, if it did not complete) as a JSON list,
    # and its input as a JSON object. NULL for commands recorded before migration 0005.
    sa.Column("customer_id", sa.String(36), nullable=True),
    sa.Column("aggregate_ids", sa.Text, nullable=True),
    sa.Column("payload", LongText, nullable=True),
    # An Idempotency-Key belongs to its subject: two callers may pick the same key.
    sa.UniqueConstraint("subject", "idempotency_key", name="uq_commands_subject_idempotency_key"),
    sa.Index("ix_commands_expires_at", "expires_at"),
    # A customer's command log, newest first (GET /v1/customers/{id}/commands).
    sa.Index("ix_commands_customer_log", "customer_id", "created_at", "command_id"),
)

events = sa.Table(
    "events", metadata,
    sa.Column("position", BigIdentity, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), nullable=False),
    sa.Column("aggregate_type", sa.String(20), nullable=False),
    sa.Column("aggregate_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("event_type", sa.String(40), nullable=False),
    # The version of the payload's shape it was written with (shared/upcasting.py reads any);
    # rows stored before migration 0003 are version 1.
    sa.Column("schema_version", sa.SmallInteger, nullable=False, server_default="1"),
    sa.Column("payload", LongText, nullable=False),
    sa.Column("occurred_at", Timestamp, nullable=False),
    sa.Column("command_id", sa.String(36), nullable=False),
    sa.UniqueConstraint("event_id", name="uq_events_event_id"),
    sa.Index("ix_events_command_id", "command_id"),
    sa.UniqueConstraint("aggregate_id", "version", name="uq_events_aggregate_version"),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", BigIdentity, primary_key=True, autoincrement=True),
    sa.Column("event_position", sa.BigInteger, nullable=False),
    sa.Column("topic", sa.String(200), nullable=False),
    sa.Column("message_key", sa.String(36), nullable=False),
    sa.Column("headers", sa.Text, nullable=False),  # JSON object of str -> str
    sa.Column("payload", LongText, nullable=False),  # the Kafka message value (JSON envelope)
    sa.Column("created_at", Timestamp, nullable=False),
    sa.Column("sent_at", Timestamp, nullable=True),
    # The relay's claim query: WHERE sent_at IS NULL ORDER BY id.
    sa.Index("ix_outbox_unsent", "sent_at", "id"),
)

relay_lease = sa.Table(
    "relay_lease", metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(120), nullable=False),
    sa.Column("expires_at", Timestamp, nullable=False),
)
