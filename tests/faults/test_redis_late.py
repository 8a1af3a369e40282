"""A gateway started while Redis is down: it stores what comes, says it is not ready, and once
Redis comes up it starts consuming by itself and answers what it stored meanwhile."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.stack import (
    RedisServer,
    Stack,
    create_database,
    drop_database,
    new_sid,
    settle,
    twilio_request,
)
from tests import services
from tests.conftest import in_thread
from tests.faults.conftest import need_redis_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


def readyz(base: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(base + "/readyz", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def post(request: tuple[str, bytes, dict[str, str]]) -> int:
    url, body, headers = request
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def wait_for(check: object, timeout: float, what: str, stack: Stack) -> None:
    """Poll `check()` (another process's state: there is no event to wait on) until true."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not seen in {timeout:.0f}s\n{stack.log_tail()}"
        time.sleep(0.1)


@pytest.fixture
def late_redis(nlu_model_path: Path) -> Iterator[tuple[Stack, RedisServer, str]]:
    need_redis_server()
    url = in_thread(asyncio.run, create_database(services.PG_ADMIN_URL, "relais_late_redis"))
    redis = RedisServer()  # its port is chosen; the server is not started
    stack = Stack(
        url,
        redis.url,
        nlu_model_path=nlu_model_path,
        workers=0,
        env={"RELAIS_RECOVERY_EVERY_SECONDS": "1", "RELAIS_RECOVERY_AFTER_SECONDS": "2"},
    )
    try:
        stack.start_fakes()
        yield stack, redis, url
    finally:
        stack.stop()
        redis.stop()
        in_thread(asyncio.run, drop_database(url, services.PG_ADMIN_URL))


def test_started_while_redis_is_down_then_redis_comes_up(
    late_redis: tuple[Stack, RedisServer, str],
) -> None:
    stack, redis, url = late_redis
    # One `relais serve` that also consumes (its in-process worker), as most landlords run it.
    stack._spawn("gateway", ["-m", "bot.cli.main", "serve", "--port", str(stack.gateway_port)])
    wait_for(lambda: readyz(stack.base)[0] == 503, 90, "the gateway answering /readyz", stack)
    while_down = readyz(stack.base)  # started: its consumers, recovery and outbox are running

    # A message comes while Redis is away: stored, answered 200 (the provider will not retry).
    address = "+33671234567"
    assert post(twilio_request(stack.base, address, "bonjour, j'ai une fuite", new_sid())) == 200
    time.sleep(2)  # the outage lasts a little longer: several rounds of every loop fail

    redis.start()
    # Consumers up by themselves; the message stored meanwhile is answered.
    wait_for(lambda: any(r["to"] == address for r in stack.received()), 60, "the reply", stack)
    status, body = while_down
    assert status == 503
    checks = body["checks"]
    assert isinstance(checks, dict)
    assert checks["database"] == "ok"
    assert checks["consumers"] == "not running"
    assert str(checks["redis"]).startswith("unavailable")
    wait_for(lambda: readyz(stack.base)[0] == 200, 60, "/readyz back to 200", stack)
    assert readyz(stack.base)[1]["checks"] == {
        "database": "ok",
        "redis": "ok",
        "nlu": "ok",
        "consumers": "ok",
    }
    left = in_thread(asyncio.run, settle(url, 60))
    assert left == {"unprocessed": 0, "pending": 0}, stack.log_tail()

    # And what comes next goes through the bus at once.
    second = "+33671234568"
    assert post(twilio_request(stack.base, second, "bonjour", new_sid())) == 200
    wait_for(
        lambda: any(r["to"] == second for r in stack.received()), 30, "the second reply", stack
    )
