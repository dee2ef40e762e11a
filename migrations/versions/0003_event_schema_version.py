"""Events record the schema version of their payload (docs/events/README.md). Every event
stored before this revision was written with version 1 of its type.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A default fills the existing rows in place, and stays: dropping it would make SQLite
    # rebuild the whole events table. The unit of work always writes the version.
    op.add_column("events", sa.Column("schema_version", sa.SmallInteger, nullable=False,
                                      server_default="1"))


def downgrade() -> None:
    # Only safe before any event of a version above 1 was written: the previous release reads
    # every event as version 1. Refuse rather than leave events it would misread.
    newer = op.get_bind().scalar(sa.text("SELECT COUNT(*) FROM events WHERE schema_version > 1"))
    if newer:
        raise RuntimeError(f"{newer} events have a schema version above 1, which the previous "
                           "release cannot read; downgrading would make it misread them")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("schema_version")
