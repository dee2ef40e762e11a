"""The command log: each command records the customer it acts for, the aggregates it changed
or named, and its input (docs/api.md, `GET /v1/customers/{customer_id}/commands`).

The columns are nullable: commands recorded before this migration keep NULL, which the API
shows as `customer_id: null`, `aggregate_ids: []` and `payload: {}`; nothing recorded then can
rebuild the input of a command.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

LongText = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")


def upgrade() -> None:
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("customer_id", sa.String(36), nullable=True))
        batch.add_column(sa.Column("aggregate_ids", sa.Text, nullable=True))
        batch.add_column(sa.Column("payload", LongText, nullable=True))
        batch.create_index("ix_commands_customer_log",
                           ["customer_id", "created_at", "command_id"])


def downgrade() -> None:
    # The previous release has no command log: what these columns held is dropped with them.
    with op.batch_alter_table("commands") as batch:
        batch.drop_index("ix_commands_customer_log")
        batch.drop_column("payload")
        batch.drop_column("aggregate_ids")
        batch.drop_column("customer_id")
