"""Customers have a status, and an email address is unique only among customers that are not
closed: closing a customer frees its address (docs/api.md).

MySQL and MariaDB have no partial index, so the rule is a unique index on a stored generated
column, `email_active`: the lower-cased address while the customer is open, NULL once it is
closed. A unique index admits any number of NULLs on every backend, so closed customers never
collide, and the database itself (not a pre-check) decides a race between two registrations
or changes to one address.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

EMAIL_WHILE_OPEN = "CASE WHEN status = 'closed' THEN NULL ELSE email_normalized END"


def upgrade() -> None:
    # Two steps, because SQLite rebuilds the table for each batch: the first gives every
    # existing customer 'active' (there was no way to close one), the second drops that default
    # so that the code always names the status it writes.
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False,
                                   server_default="active"))
    with op.batch_alter_table("customers") as batch:
        batch.alter_column("status", existing_type=sa.String(16), existing_nullable=False,
                           server_default=None)
        batch.add_column(sa.Column("email_active", sa.String(320),
                                   sa.Computed(EMAIL_WHILE_OPEN, persisted=True)))
        batch.drop_constraint("uq_customers_email_normalized", type_="unique")
        batch.create_unique_constraint("uq_customers_email_active", ["email_active"])


def downgrade() -> None:
    # The previous release holds every address unique, closed customers' included.
    reused = op.get_bind().scalar(sa.text(
        "SELECT COUNT(*) FROM (SELECT email_normalized FROM customers"
        " GROUP BY email_normalized HAVING COUNT(*) > 1) AS reused"))
    if reused:
        raise RuntimeError(f"{reused} email addresses belong to more than one customer (a "
                           "closed one freed it); the previous release cannot hold them")
    with op.batch_alter_table("customers") as batch:
        batch.drop_constraint("uq_customers_email_active", type_="unique")
        batch.drop_column("email_active")
        batch.drop_column("status")
        batch.create_unique_constraint("uq_customers_email_normalized", ["email_normalized"])
