"""Group commit: calls that arrive while a batch runs go together into the next one."""

from __future__ import annotations

import asyncio

import pytest

from bot.messaging.batching import GroupCommit


class Recorder:
    def __init__(self, bad: int | None = None, delay: float = 0.02) -> None:
        self.calls: list[list[int]] = []
        self.bad = bad
        self.delay = delay

    async def __call__(self, ids: list[int]) -> None:
        self.calls.append(list(ids))
        await asyncio.sleep(self.delay)
        if self.bad in ids:
            raise ValueError("bad message")


async def test_calls_made_while_a_batch_runs_go_together_in_order() -> None:
    rec = Recorder()
    group = GroupCommit(rec)
    first = asyncio.create_task(group([1]))
    await asyncio.sleep(0)  # the first batch is running
    later = [asyncio.create_task(group([i, i + 100])) for i in (2, 3, 4)]
    await asyncio.gather(first, *later)
    assert rec.calls == [[1], [2, 102, 3, 103, 4, 104]]
    assert group.batches == 2


async def test_a_lone_call_runs_at_once() -> None:
    rec = Recorder(delay=0)
    group = GroupCommit(rec)
    await group.one(7)
    await group.one(8)
    assert rec.calls == [[7], [8]]


async def test_batches_stay_under_the_limit_without_splitting_a_call() -> None:
    rec = Recorder()
    group = GroupCommit(rec, limit=4)
    first = asyncio.create_task(group([0]))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group([i, i])) for i in (1, 2, 3)]
    await asyncio.gather(first, *rest)
    assert rec.calls == [[0], [1, 1, 2, 2], [3, 3]]


async def test_one_bad_message_fails_only_the_call_that_brought_it() -> None:
    rec = Recorder(bad=3)
    group = GroupCommit(rec)
    first = asyncio.create_task(group([1]))
    await asyncio.sleep(0)
    calls = [asyncio.create_task(group([i])) for i in (2, 3, 4)]
    results = await asyncio.gather(first, *calls, return_exceptions=True)
    assert results[:2] == [None, None] and results[3] is None
    assert isinstance(results[2], ValueError)
    # The merged batch, then each of its calls on its own.
    assert rec.calls == [[1], [2, 3, 4], [2], [3], [4]]


async def test_a_failing_lone_call_gets_its_error() -> None:
    group = GroupCommit(Recorder(bad=5, delay=0))
    with pytest.raises(ValueError):
        await group.one(5)
    await group.one(6)  # the group goes on


async def test_a_busy_group_lingers_for_more_and_an_idle_one_does_not() -> None:
    rec = Recorder(delay=0.02)
    group = GroupCommit(rec, linger=0.2, target=3)
    loop = asyncio.get_running_loop()
    started = loop.time()
    first = asyncio.create_task(group([1]))
    await asyncio.sleep(0)
    second = asyncio.create_task(group([2]))  # came while the first batch ran: busy
    await first
    assert loop.time() - started < 0.1, "a call finding the group idle runs at once"
    await asyncio.sleep(0.05)  # lingering: [2] waits for more
    assert rec.calls == [[1]]
    third = asyncio.create_task(group([3, 4]))
    await asyncio.gather(second, third)
    assert rec.calls == [[1], [2, 3, 4]], "the target reached, the batch runs"
    assert loop.time() - started < 0.2, "without waiting out the linger"


async def test_a_lingering_group_runs_what_it_has_when_the_linger_ends() -> None:
    rec = Recorder(delay=0.01)
    group = GroupCommit(rec, linger=0.05, target=10)
    first = asyncio.create_task(group([1]))
    await asyncio.sleep(0)
    second = asyncio.create_task(group([2]))
    await asyncio.wait_for(asyncio.gather(first, second), timeout=1)
    assert rec.calls == [[1], [2]]
