"""Per-sender rate limiting: over the limit, messages are stored but not run; one polite notice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.messaging.bus import RedisBus
from bot.messaging.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from bot.storage.models import Message
from tests import services
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled

FLOOD = "+33612345600"
OTHER = "+33612345601"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter_factory(request: pytest.FixtureRequest) -> AsyncIterator[object]:
    made: list[RateLimiter] = []

    def make(limit: int, window: int, clock: Clock) -> RateLimiter:
        if request.param == "memory":
            lim: RateLimiter = MemoryRateLimiter(limit=limit, window=window, clock=clock)
        else:
            services.need_redis()
            lim = RedisRateLimiter(
                services.REDIS_URL,
                limit=limit,
                window=window,
                prefix=f"relais-test-{uuid.uuid4().hex[:8]}",
                clock=clock,
            )
        made.append(lim)
        return lim

    yield make
    for lim in made:
        await lim.close()


async def test_limit_per_sender_and_window(limiter_factory) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    lim = limiter_factory(3, 60, clock)
    verdicts = [await lim.hit("sms:a") for _ in range(6)]
    assert [v.allowed for v in verdicts] == [True, True, True, False, False, False]
    assert [v.notify for v in verdicts] == [False, False, False, True, False, False]
    assert (await lim.hit("sms:b")).allowed, "another sender is not affected"
    clock.now += 60
    assert (await lim.hit("sms:a")).allowed, "a new window starts afresh"


async def test_redis_away_lets_messages_through() -> None:
    lim = RedisRateLimiter("redis://127.0.0.1:1/0", limit=1, window=60)
    try:
        for _ in range(3):
            assert (await lim.hit("sms:a")).allowed
    finally:
        await lim.close()


@pytest.mark.parametrize("where", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_flooding_sender_is_stored_told_once_and_does_not_starve_others(
    database_url: str, where: str
) -> None:
    sms = RecordingChannel("sms")
    settings = make_settings(database_url, rate_limit_messages=3, rate_limit_window_seconds=3600)
    bus: RedisBus | None = None
    limiter: RedisRateLimiter | None = None
    prefix = f"relais-test-{uuid.uuid4().hex[:8]}"
    if where == "redis":
        # Bus and limiter on one Redis: the webhook counts and enqueues in one script.
        services.need_redis()
        bus = RedisBus(services.REDIS_URL, prefix=prefix)
        limiter = RedisRateLimiter(services.REDIS_URL, limit=3, window=3600, prefix=prefix)
    rt = Runtime(settings, engine=KeywordEngine(), channels={"sms": sms}, bus=bus, limiter=limiter)
    await rt.start(Roles(consume=True, outbox=True, recover=False, retention=False))
    try:
        for i in range(8):
            await rt.ingest(Inbound("sms", FLOOD, f"bonjour {i}", provider_id=f"F{i}"))
        # A provider retrying one of the limited messages does not count again.
        await rt.ingest(Inbound("sms", FLOOD, "bonjour 7", provider_id="F7"))
        await rt.ingest(Inbound("sms", OTHER, "bonjour", provider_id="O1"))
        await settled(rt)
        async with rt.db.session() as s:
            msgs = list(
                (
                    await s.execute(
                        select(Message).where(Message.direction == "in").order_by(Message.id)
                    )
                ).scalars()
            )
        flood = [m for m in msgs if m.provider_id and m.provider_id.startswith("F")]
        assert len(flood) == 8, "every message is stored"
        assert all(m.processed_at is not None for m in msgs)
        assert [bool(m.intent) for m in flood] == [True] * 3 + [False] * 5
        assert all((m.nlu or {}).get("skipped") == "rate_limited" for m in flood[3:])
        to_flood = [o.text for o in sms.sent if o.address == FLOOD]
        notices = [t for t in to_flood if "beaucoup de messages" in t]
        assert len(notices) == 1, to_flood
        assert len(to_flood) == 3 + 1
        assert [o for o in sms.sent if o.address == OTHER], "the other sender is answered"
        if bus is not None:
            # Only what was within the limit reached the streams: 3 of the flood, 1 other.
            entries = sum([await bus.redis.xlen(bus.stream(p)) for p in range(bus.partitions)])
            assert entries == 3 + 1
    finally:
        await rt.stop()
        if bus is not None:
            cleanup = RedisBus(services.REDIS_URL, prefix=prefix)
            keys = [k async for k in cleanup.redis.scan_iter(f"{prefix}:*")]
            if keys:
                await cleanup.redis.delete(*keys)
            await cleanup.close()
