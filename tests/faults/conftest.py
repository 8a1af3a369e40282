"""The real stack for the fault tests: one per module (starting it is the slow part).

PostgreSQL is reached through a TCP proxy the tests can cut; Redis is a private
redis-server they can restart; the providers are bench/fakes.py in its own process.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest

from bench.stack import (
    RedisServer,
    Stack,
    ThreadedProxy,
    create_database,
    drop_database,
    new_sid,
    settle,
    telegram_request,
    twilio_request,
)
from tests import services
from tests.conftest import in_thread


@dataclass
class Faulty:
    stack: Stack
    redis: RedisServer
    proxy: ThreadedProxy
    database_url: str  # direct, for the test's own checks
    counter: int = field(default=0)


def need_redis_server() -> None:
    services.need_postgres()
    if shutil.which("redis-server") is None:
        reason = "redis-server is not on the PATH (the fault tests start and restart their own)"
        if services.required():
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="module")
def faulty(nlu_model_path: Path) -> Iterator[Faulty]:
    need_redis_server()
    url = in_thread(asyncio.run, create_database(services.PG_ADMIN_URL, "relais_faults"))
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    proxy = ThreadedProxy((host, int(port or 5432)))
    redis = RedisServer().start()
    stack = Stack(
        url.replace(host_port, f"127.0.0.1:{proxy.port}"),
        redis.url,
        nlu_model_path=nlu_model_path,
        workers=2,
        env={
            # Short enough for a test to see the recovery paths work.
            "RELAIS_OUTBOX_LEASE_SECONDS": "12",
            "RELAIS_RECOVERY_EVERY_SECONDS": "2",
            "RELAIS_RECOVERY_AFTER_SECONDS": "5",
        },
    )
    try:
        stack.start()
        yield Faulty(stack, redis, proxy, url)
    except BaseException:
        print(stack.log_tail())
        raise
    finally:
        stack.stop()
        redis.stop()
        proxy.close()
        in_thread(asyncio.run, drop_database(url, services.PG_ADMIN_URL))


@dataclass
class Burst:
    """Messages sent like a provider sends them: retried until answered 200."""

    addresses: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # every status seen, retries included


async def burst(
    f: Faulty, n: int, *, rate: float = 50.0, channel: str = "sms", during: object = None
) -> Burst:
    """Send `n` messages (one per new sender) at `rate`/s; `during(i)` runs before message i."""
    out = Burst()
    base = f.stack.base
    timeout = aiohttp.ClientTimeout(total=10)

    async def deliver(http: aiohttp.ClientSession, req: tuple[str, bytes, dict[str, str]]) -> None:
        url, body, headers = req
        deadline = time.monotonic() + 60
        delay = 0.2
        while True:
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    out.answers.append(resp.status)
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                out.answers.append(0)
            assert time.monotonic() < deadline, "the gateway never accepted the message"
            await asyncio.sleep(delay)  # what Twilio and Telegram do, with less patience
            delay = min(delay * 2, 2.0)

    async with aiohttp.ClientSession(timeout=timeout) as http:
        tasks = []
        for i in range(n):
            if during is not None:
                await during(i)  # type: ignore[operator]
            f.counter += 1
            if channel == "sms":
                address = f"+3367{f.counter:07d}"
                req = twilio_request(base, address, "bonjour, j'ai une fuite", new_sid())
            else:
                chat = 800_000_000 + f.counter
                address = str(chat)
                req = telegram_request(base, chat, "bonjour, j'ai une fuite", 500_000 + f.counter)
            out.addresses.append(address)
            tasks.append(asyncio.create_task(deliver(http, req)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*tasks)
    return out


async def assert_once(
    f: Faulty, sent: Burst, timeout: float = 45.0, *, crashed_sends: int = 0
) -> None:
    """Every message stored once and processed; every reply delivered, once.

    `crashed_sends`: how many replies may reach the provider twice because the process that
    sent them was killed after the provider accepted and before that was recorded. Neither
    Twilio nor Telegram take an idempotency key, so such a reply is sent again when its lease
    expires: at least once, never lost. Only rows claimed again after a lease count."""
    from sqlalchemy import func, select

    from bot.storage.db import Database
    from bot.storage.models import Conversation, Message, Outbox

    left = await settle(f.database_url, timeout)
    assert left == {"unprocessed": 0, "pending": 0}, f"not settled: {left}\n{f.stack.log_tail()}"
    db = Database(f.database_url)
    try:
        async with db.session() as s:
            rows = (
                await s.execute(
                    select(
                        Conversation.address,
                        func.count(Message.id),
                        func.count(Message.processed_at),
                    )
                    .join(Message, Message.conversation_id == Conversation.id)
                    .where(Message.direction == "in", Conversation.address.in_(sent.addresses))
                    .group_by(Conversation.address)
                )
            ).all()
            attempts = dict(
                (
                    await s.execute(
                        select(Outbox.address, func.max(Outbox.attempts))
                        .where(Outbox.address.in_(sent.addresses))
                        .group_by(Outbox.address)
                    )
                ).all()
            )
            outbox = dict(
                (
                    await s.execute(
                        select(Outbox.address, func.count(Outbox.id))
                        .where(Outbox.address.in_(sent.addresses), Outbox.status == "sent")
                        .group_by(Outbox.address)
                    )
                ).all()
            )
            failed = (
                await s.execute(
                    select(func.count(Outbox.id)).where(
                        Outbox.address.in_(sent.addresses), Outbox.status != "sent"
                    )
                )
            ).scalar_one()
    finally:
        await db.dispose()
    stored = {a: (n, done) for a, n, done in rows}
    assert set(stored) == set(sent.addresses), "messages lost"
    assert all(n == 1 for n, _ in stored.values()), "a message stored twice"
    assert all(done == 1 for _, done in stored.values()), "a message not processed"
    assert failed == 0, f"{failed} replies not delivered"
    await asyncio.sleep(0.3)
    received: dict[str, int] = {}
    for rec in f.stack.received():
        if rec["to"] in outbox or rec["to"] in stored:
            received[rec["to"]] = received.get(rec["to"], 0) + 1
    twice = []
    for address in sent.addresses:
        assert outbox.get(address, 0) >= 1, f"no reply for {address}"
        got = received.get(address, 0)
        if got > outbox[address] and crashed_sends and attempts[address] >= 2:
            twice.append(address)
            continue
        assert got == outbox[address], f"{address}: {got} deliveries for {outbox[address]} replies"
    assert len(twice) <= crashed_sends, f"{len(twice)} replies sent twice: {twice}"
