"""Group commit for a worker: the messages its partitions hand over while a batch runs go
together into the next one.

A worker's partitions each hand their waiting messages to the pipeline. Under moderate load that
is one message at a time per partition, and a turn alone costs several times what it costs in a
batch (its transaction, its statements, its deliveries recorded: `bench/worker.py`). Here the
calls that arrive while a batch runs wait for it and then go in one `process_many` call, in the
order they came; the busier the worker, the larger the batch. Messages of one partition keep
their order: a partition waits for its call to return before handing over the next.

All or nothing, like `process_many`: if a merged batch fails, each caller's messages are taken
again on their own, so that one bad message fails only the call that brought it.

Under load a worker also lingers a little between batches (`linger`, until `target` items
wait): a batch's fixed cost (its transaction, its statements, its deliveries recorded) is
several times one message's own (`bench/worker.py`, figures in bench/README.md), so a worker
that ran a batch of five every few milliseconds spent most of its CPU on that fixed cost, CPU
the gateway's webhooks needed. A call finding the worker idle never waits.

The same works for any batch of items (the outbox records its deliveries this way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        many: Callable[[list[T]], Awaitable[None]],
        *,
        limit: int = 60,
        linger: float = 0.0,
        target: int = 0,
    ) -> None:
        self.many = many
        self.limit = limit
        self.linger = linger  # seconds a busy group waits for `target` items before a batch
        self.target = min(target, limit)
        self._waiting: list[tuple[list[T], asyncio.Future[None]]] = []
        self._arrived = asyncio.Event()
        self._last_end = float("-inf")  # when the last batch ended (the loop's clock)
        self._running: asyncio.Task[None] | None = None
        self.batches = 0  # for tests and benchmarks

    async def one(self, item: T) -> None:
        await self([item])

    async def __call__(self, items: list[T]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((list(items), future))
        self._arrived.set()
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self.linger > 0 and loop.time() - self._last_end < self.linger:
                # A batch ended a moment ago: the worker is busy. Its partitions are reading
                # again; let their messages join this batch.
                await self._gather()
            calls: list[tuple[list[T], asyncio.Future[None]]] = []
            size = 0
            while self._waiting and (not calls or size + len(self._waiting[0][0]) <= self.limit):
                call = self._waiting.pop(0)
                calls.append(call)
                size += len(call[0])
            await self._batch(calls)
            self._last_end = loop.time()

    async def _gather(self) -> None:
        """Wait up to `linger` for `target` items (the partitions just answered read again)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        while sum(len(items) for items, _ in self._waiting) < self.target:
            left = deadline - loop.time()
            if left <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return

    async def _batch(self, calls: list[tuple[list[T], asyncio.Future[None]]]) -> None:
        self.batches += 1
        try:
            await self.many([item for items, _ in calls for item in items])
        except Exception as exc:
            if len(calls) == 1:
                _settle(calls[0][1], exc)
                return
            log.warning(
                "a merged batch of %s calls failed (%s); taking each on its own",
                len(calls),
                type(exc).__name__,
            )
            for ids, future in calls:
                try:
                    await self.many(ids)
                except Exception as own:
                    _settle(future, own)
                else:
                    _settle(future, None)
            return
        except BaseException as exc:  # cancelled: the callers must not wait for ever
            for _ids, future in calls:
                _settle(future, exc)
            raise
        for _ids, future in calls:
            _settle(future, None)


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.done():
        return
    if exc is None:
        future.set_result(None)
    elif isinstance(exc, asyncio.CancelledError):
        future.cancel()
    else:
        future.set_exception(exc)
