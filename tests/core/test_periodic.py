"""The long-running loops' helpers: a job every few seconds, and a supervisor that restarts
a loop which died."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.periodic import every, pause, supervise


async def test_pause_ends_at_once_when_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    began = loop.time()
    loop.call_later(0.05, stop.set)
    assert await pause(stop, 30) is True
    assert loop.time() - began < 5
    assert await pause(asyncio.Event(), 0) is False


async def test_every_goes_on_after_a_failing_round(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()
    rounds: list[int] = []
    third = asyncio.Event()

    async def job() -> None:
        rounds.append(len(rounds))
        if len(rounds) == 1:
            raise ConnectionError("database away")
        if len(rounds) == 3:
            third.set()

    task = asyncio.create_task(every(stop, 0.01, job, name="sweep"))
    await asyncio.wait_for(third.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert "sweep failed (ConnectionError)" in caplog.text
    assert "database away" not in caplog.text  # the type only: messages may hold personal data


async def test_supervise_restarts_a_dead_loop_until_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    starts: list[int] = []
    running = asyncio.Event()

    async def consumer() -> None:
        starts.append(1)
        if len(starts) < 3:
            raise ConnectionError("redis away")  # dies, like a consumer started without Redis
        running.set()
        await stop.wait()

    task = asyncio.create_task(supervise(stop, consumer, name="consumers", backoff=0.01))
    await asyncio.wait_for(running.wait(), 5)
    assert len(starts) == 3
    assert caplog.text.count("consumers died (ConnectionError)") == 2
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(starts) == 3  # stopped: not started again


async def test_supervise_restarts_a_loop_that_returned_on_its_own() -> None:
    stop = asyncio.Event()
    starts: list[int] = []
    second = asyncio.Event()

    async def loop_once() -> None:
        starts.append(1)
        if len(starts) == 2:
            second.set()
            await stop.wait()

    task = asyncio.create_task(supervise(stop, loop_once, name="outbox", backoff=0.01))
    await asyncio.wait_for(second.wait(), 5)
    stop.set()
    await asyncio.wait_for(task, 5)
