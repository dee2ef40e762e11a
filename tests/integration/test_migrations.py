"""The alembic migrations and the table definitions the code queries agree, on each backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from command_service.db.tables import metadata


async def test_migrated_schema_matches_the_table_definitions(engine):
    def differences(connection):
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return [diff for diff in compare_metadata(context, metadata)
                if not (isinstance(diff, tuple) and diff[0] == "remove_table"
                        and diff[1].name == "alembic_version")]

    async with engine.connect() as conn:
        diffs = await conn.run_sync(differences)
    assert diffs == []
