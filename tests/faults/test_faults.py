"""Faults on the real stack (gateway + 2 workers, PostgreSQL, Redis, fake providers): after
each, every inbound message is processed once and every reply delivered once."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.conftest import Faulty, assert_once, burst

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]


async def test_a_worker_killed_mid_burst(faulty: Faulty) -> None:
    async def kill_at(i: int) -> None:
        if i == 60:
            faulty.stack.kill("worker0")

    sent = await burst(faulty, 150, rate=60, during=kill_at)
    assert set(sent.answers) == {200}, "the gateway does not depend on a worker"
    # Killed between a provider's 201 and recording it, a reply is sent again after its lease:
    # at most the sends the dead worker had in flight (its outbox runs up to 16 at once).
    await assert_once(faulty, sent, crashed_sends=16)
    faulty.stack.start_worker(0)


async def test_redis_restarted_mid_burst(faulty: Faulty) -> None:
    async def restart_at(i: int) -> None:
        if i == 50:
            faulty.redis.stop()
        if i == 80:
            await asyncio.to_thread(faulty.redis.start)

    sent = await burst(faulty, 150, rate=60, during=restart_at)
    # Stored is what matters: the webhook is answered even while the bus is away.
    assert set(sent.answers) == {200}
    await assert_once(faulty, sent)


async def test_postgres_away_for_five_seconds(faulty: Faulty) -> None:
    loop = asyncio.get_running_loop()

    async def cut_at(i: int) -> None:
        if i == 40:
            faulty.proxy.stop()
            loop.call_later(5, faulty.proxy.start)

    sent = await burst(faulty, 150, rate=30, during=cut_at)
    assert 503 in sent.answers, "while the database is away, webhooks answer 503"
    assert set(sent.answers) <= {200, 503}
    await assert_once(faulty, sent)


async def test_twilio_answering_500_then_200(faulty: Faulty) -> None:
    faulty.stack.fail("twilio", 500, times=5)
    sent = await burst(faulty, 20, rate=20)
    await assert_once(faulty, sent)
    assert faulty.stack.fake("/_attempts")["twilio"] >= 5


async def test_telegram_answering_429_with_retry_after(faulty: Faulty) -> None:
    faulty.stack.fail("telegram", 429, times=3, retry_after=1)
    sent = await burst(faulty, 20, rate=20, channel="telegram")
    await assert_once(faulty, sent)
