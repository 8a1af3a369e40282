"""Long-running loops: a job every few seconds until stopped, a pause that a stop cuts short,
and a supervisor that restarts a loop which died."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set meanwhile; True when stopped."""
    if seconds > 0 and not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=seconds)
    return stop.is_set()


async def every(
    stop: asyncio.Event,
    interval: float,
    job: Callable[[], Awaitable[object]],
    *,
    name: str,
    first: float = 0.0,
) -> None:
    """Run `job` after `first` seconds, then every `interval` seconds, until `stop` is set.

    A failing round is logged (its type only: a message may hold personal data) and the next
    one runs on time: what a round does is always worth trying again later."""
    delay = first
    while not await pause(stop, delay):
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed (%s)", name, type(exc).__name__)
        delay = interval


async def supervise(
    stop: asyncio.Event,
    start: Callable[[], Coroutine[Any, Any, None]],
    *,
    name: str,
    backoff: float = 0.5,
    max_backoff: float = 30.0,
) -> None:
    """Run the loop `start()` until `stop` is set; when it dies (an exception, or returning
    while not stopped), start it again after a pause that doubles up to `max_backoff`, and
    comes back to `backoff` once the loop has run for a minute."""
    delay = backoff
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        began = loop.time()
        try:
            await start()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            reason = type(exc).__name__
        else:
            if stop.is_set():
                return
            reason = "returned"
        if loop.time() - began > 60:
            delay = backoff
        log.error("%s died (%s); restarting in %.1fs", name, reason, delay)
        if await pause(stop, delay):
            return
        delay = min(delay * 2, max_backoff)
