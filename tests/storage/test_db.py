"""PostgreSQL specifics: the pool tests a connection before use only after it sat idle; gateways
starting together load the demo data once."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, text

from bot.ops.demo import load_demo
from bot.storage import db as dbmod
from bot.storage.db import Database
from bot.storage.models import Residence, StaffUser, Tenant
from tests.conftest import DATA_DIR, empty_postgres, reset_postgres

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


async def test_gateways_starting_together_load_the_demo_once(pg_database: str) -> None:
    """Several `relais serve` on one empty database each load the demo at start: the loads
    wait on each other and the later ones find the data there (no unique-key error)."""
    await empty_postgres(pg_database)
    dbs = [Database(pg_database) for _ in range(4)]
    try:
        summaries = await asyncio.gather(
            *(load_demo(db, DATA_DIR, only_if_empty=True) for db in dbs)
        )
        assert len({(x.residences, x.tenants, x.staff) for x in summaries}) == 1
        async with dbs[0].session() as s:
            counts = [
                (await s.execute(select(func.count()).select_from(model))).scalar_one()
                for model in (Residence, Tenant, StaffUser)
            ]
        assert counts == [summaries[0].residences, summaries[0].tenants, summaries[0].staff]
        assert all(counts)
    finally:
        for db in dbs:
            await db.dispose()
        await reset_postgres(pg_database)
