"""Database engine, sessions and migrations, for SQLite (embedded) and PostgreSQL alike."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import ColumnElement, any_, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import QueryableAttribute

from bot.storage.fold import SQLITE_FUNCTION, fold

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Errors meaning "the database is not there right now" rather than "this request is wrong";
# asyncpg's own for the statements run on its connection directly (the webhook's).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    ConnectionError,
    OSError,
    asyncio.TimeoutError,
    asyncpg.exceptions.InterfaceError,  # closed, or lost mid-statement
    asyncpg.exceptions.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutting down, starting up
    asyncpg.exceptions.InsufficientResourcesError,  # class 53: too many connections
)


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, UNAVAILABLE_ERRORS)


def make_engine(url: str, **kwargs: Any) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: an error must not carry a message body or a phone number into logs.
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, hide_parameters=True, **kwargs
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # WAL lets the web process read while a worker writes; foreign keys are off by default.
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # Case- and accent-blind comparison for searches (bot.storage.fold).
            dbapi_conn.create_function(SQLITE_FUNCTION, 1, fold, deterministic=True)

        return engine
    # Kept open: a burst needs about twenty at once in a worker (a transaction per partition,
    # deliveries being recorded, web-chat sends); connections beyond the pool are closed when
    # returned, and opening one costs PostgreSQL a process.
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_timeout", 5)
    ping = kwargs.pop("pool_pre_ping", True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", 5)
    engine = create_async_engine(url, connect_args=connect_args, hide_parameters=True, **kwargs)
    if ping:
        ping_idle_connections(engine)
    return engine


# A pooled connection unused for this long is tested before use.
IDLE_BEFORE_PING_S = 2.0


def ping_idle_connections(engine: AsyncEngine) -> None:
    """SQLAlchemy's pre-ping, for connections that sat idle in the pool only.

    Its ping on asyncpg is three round trips (BEGIN, a statement, ROLLBACK) on every checkout:
    more than a webhook's own INSERT. A connection in steady use is trusted instead; if the
    database went away meanwhile, its next statement fails (a 503, or a worker's retry) and
    SQLAlchemy replaces every connection of the pool."""
    sync = engine.sync_engine

    @event.listens_for(sync, "checkin")
    def _checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(sync, "checkout")
    def _checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_BEFORE_PING_S:
            return  # just opened, or in use a moment ago
        try:
            sync.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool opens another one and tries again
            raise DisconnectionError("pooled connection lost") from exc


class Database:
    """An engine and its session factory; `session()` gives a unit of work."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def one_of(self, column: QueryableAttribute[Any], values: Iterable[Any]) -> ColumnElement[bool]:
        """`column IN values`, as one statement whatever the number of values.

        On PostgreSQL `column = ANY($1)` with the values as one array: `IN` renders a
        parameter per value, so each batch size is another statement for asyncpg to prepare
        (a round trip, and parsing and planning on the server) and they crowd each other out
        of its per-connection cache. SQLite has no arrays: `IN` there."""
        values = list(values)
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, values, type_=ARRAY(column.expression.type)))
        return column.in_(values)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str) -> Any:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Apply migrations (blocking: call from a thread or before the event loop starts)."""
    if url.startswith("sqlite"):
        path = url.partition(":///")[2]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


async def upgrade_async(url: str, revision: str = "head") -> None:
    await asyncio.to_thread(upgrade, url, revision)
