"""Commands record their subject (the token's `sub`), and an Idempotency-Key is unique per
subject rather than globally.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two steps, because SQLite rebuilds the table for each batch: the first copies the
    # existing rows with subject '' (recorded before authentication existed), the second
    # drops that default so that every new command must name its subject.
    with op.batch_alter_table("commands") as batch:
        batch.add_column(sa.Column("subject", sa.String(255), nullable=False,
                                   server_default=""))
    with op.batch_alter_table("commands") as batch:
        batch.alter_column("subject", existing_type=sa.String(255), existing_nullable=False,
                           server_default=None)
        batch.drop_constraint("uq_commands_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_commands_subject_idempotency_key",
                                       ["subject", "idempotency_key"])


def downgrade() -> None:
    # Keys are global again; where two subjects used one key, the older command keeps it.
    commands = sa.table("commands", sa.column("command_id"), sa.column("idempotency_key"),
                        sa.column("created_at"))
    newer = sa.alias(commands, "newer")
    older = sa.alias(commands, "older")
    duplicates = sa.select(newer.c.command_id).where(
        newer.c.idempotency_key.is_not(None),
        sa.exists().where(older.c.idempotency_key == newer.c.idempotency_key,
                          older.c.created_at < newer.c.created_at))
    rows = op.get_bind().execute(duplicates).scalars().all()
    if rows:
        op.get_bind().execute(commands.update().where(commands.c.command_id.in_(rows))
                              .values(idempotency_key=None))
    with op.batch_alter_table("commands") as batch:
        batch.drop_constraint("uq_commands_subject_idempotency_key", type_="unique")
        batch.create_unique_constraint("uq_commands_idempotency_key", ["idempotency_key"])
        batch.drop_column("subject")
