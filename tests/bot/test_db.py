"""The PostgreSQL pool: a connection is tested before use only after sitting idle."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from bot import db as dbmod
from bot.db import Database

pytestmark = pytest.mark.postgres


async def backend_pid(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_in_steady_use_is_not_pinged(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_database, pool_size=1, max_overflow=0)
    pings: list[object] = []
    dialect = db.engine.sync_engine.dialect
    real = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda c: pings.append(c) or real(c))
    try:
        first = await backend_pid(db)
        for _ in range(5):
            assert await backend_pid(db) == first  # the same pooled connection
        assert pings == []
        monkeypatch.setattr(dbmod, "IDLE_BEFORE_PING_S", 0.0)
        assert await backend_pid(db) == first
        assert len(pings) == 1
    finally:
        await db.dispose()


async def test_an_idle_connection_the_server_dropped_is_replaced_unseen(
    pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(pg_database, pool_size=1, max_overflow=0)
    admin = Database(pg_database, pool_size=1, max_overflow=0)
    try:
        first = await backend_pid(db)
        async with admin.engine.connect() as conn:  # as a database restart would
            await conn.execute(text(f"SELECT pg_terminate_backend({first})"))
        monkeypatch.setattr(dbmod, "IDLE_BEFORE_PING_S", 0.0)  # it has been idle long enough
        assert await backend_pid(db) != first  # no error: the ping found it dead
    finally:
        await db.dispose()
        await admin.dispose()
