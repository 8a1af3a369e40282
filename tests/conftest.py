"""Shared fixtures: databases on SQLite and PostgreSQL, runtimes wired with fakes."""

from __future__ import annotations

import asyncio
import concurrent.futures
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app.runtime import Roles, Runtime
from bot.core.datadir import DataDir
from bot.core.settings import Settings
from bot.ops.demo import load_demo
from bot.storage.db import Database, upgrade
from bot.storage.models import Base
from tests import services
from tests.fakes import KeywordEngine, RecordingChannel

DATA_DIR = DataDir()  # the shipped data (the repository's data/ folder)


def in_thread(fn: Any, *args: Any) -> Any:
    """Run blocking setup (its own event loop) even when a test loop is already running."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, demo-loaded SQLite file, copied for each test (migrating costs ~1 s)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)

    async def fill() -> None:
        db = Database(url)
        await load_demo(db, DATA_DIR)
        await db.dispose()

    asyncio.run(fill())
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated, dropped at the end."""
    services.need_postgres()
    name = f"relais_test_{uuid.uuid4().hex[:10]}"
    admin = services.PG_ADMIN_URL

    async def admin_exec(sql: str) -> None:
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        async with engine.connect() as conn:
            await conn.execute(text(sql))
        await engine.dispose()

    in_thread(asyncio.run, admin_exec(f'CREATE DATABASE "{name}"'))
    url = admin.rsplit("/", 1)[0] + f"/{name}"
    in_thread(upgrade, url)
    try:
        yield url
    finally:
        in_thread(asyncio.run, admin_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def empty_postgres(url: str) -> None:
    """Every table emptied, ids restarted: a database as a first start finds it."""
    engine = create_async_engine(url)
    names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    async with engine.begin() as conn:
        await conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    await engine.dispose()


async def reset_postgres(url: str) -> None:
    await empty_postgres(url)
    db = Database(url)
    await load_demo(db, DATA_DIR)
    await db.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> AsyncIterator[str]:
    """The same test on the embedded SQLite and on the real PostgreSQL, demo data loaded."""
    if request.param == "sqlite":
        path = tmp_path / "relais.sqlite3"
        shutil.copy(sqlite_template, path)
        yield f"sqlite+aiosqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_database")
        await reset_postgres(url)
        yield url


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    path = tmp_path / "relais.sqlite3"
    shutil.copy(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


def make_settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        outbox_backoff_seconds=0.01,
        **overrides,
    )


@pytest.fixture
def recording() -> RecordingChannel:
    return RecordingChannel("sms")


@pytest.fixture
async def runtime(database_url: str, recording: RecordingChannel) -> AsyncIterator[Runtime]:
    """A started runtime on the parametrised database, SMS delivered to a recording channel."""
    rt = Runtime(
        make_settings(database_url),
        engine=KeywordEngine(),
        channels={"sms": recording, "terminal": recording, "telegram": recording},
    )
    await rt.start(Roles(consume=True, outbox=True, recover=False))
    try:
        yield rt
    finally:
        await rt.stop()


@pytest.fixture(scope="session")
def nlu_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded NLU model, trained once per test session from data/."""
    from nlu.training import ensure_model

    path = tmp_path_factory.mktemp("nlu-model") / "model.pkl"
    ensure_model(DATA_DIR, path)
    return path
