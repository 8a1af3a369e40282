"""Reaching the real PostgreSQL and Redis of the machine, or skipping with a clear reason."""

from __future__ import annotations

import os
import socket

import pytest

PG_HOST = os.environ.get("RELAIS_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RELAIS_TEST_PG_PORT", "5432"))
PG_ADMIN_URL = os.environ.get(
    "RELAIS_TEST_PG_URL", f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/test"
)
REDIS_URL = os.environ.get("RELAIS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def required() -> bool:
    return os.environ.get("RELAIS_REQUIRE_SERVICES") == "1"


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need(service: str, host: str, port: int) -> None:
    if reachable(host, port):
        return
    reason = f"{service} is not reachable on {host}:{port}"
    if required():
        pytest.fail(f"{reason}, and RELAIS_REQUIRE_SERVICES=1 says it must be")
    pytest.skip(f"{reason} (start it, or set RELAIS_REQUIRE_SERVICES=1 to fail instead)")


def need_postgres() -> None:
    need("PostgreSQL", PG_HOST, PG_PORT)


def need_redis() -> None:
    host, _, port = REDIS_URL.split("//", 1)[1].split("/", 1)[0].partition(":")
    need("Redis", host, int(port or 6379))
