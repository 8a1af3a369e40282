"""The migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot.storage.db import Database
from bot.storage.models import Base


async def test_migrations_match_the_models(database_url: str) -> None:
    db = Database(database_url)

    def diff(connection: Any) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    try:
        async with db.engine.connect() as conn:
            changes = await conn.run_sync(diff)
    finally:
        await db.dispose()
    assert changes == [], "models and migrations differ: add a migration (alembic revision)"
