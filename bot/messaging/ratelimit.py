"""Per-sender rate limiting: one flooding address cannot starve the workers for everyone else.

A fixed window per sender (`channel:address`): the first `limit` messages of a window go through
the bot; the next ones are still stored, but not processed, and the sender is told once per
window. Counters live in Redis when it is configured (shared by every gateway process), in
memory otherwise (one process: the embedded setup).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    notify: bool  # the first message over the limit in this window: tell the sender, once
    count: int


class RateLimiter:
    """Interface shared by both limiters."""

    def __init__(self, *, limit: int, window: int) -> None:
        self.limit = limit
        self.window = window

    async def hit(self, key: str) -> Verdict:
        raise NotImplementedError

    async def close(self) -> None:
        return None

    def _verdict(self, count: int) -> Verdict:
        return Verdict(allowed=count <= self.limit, notify=count == self.limit + 1, count=count)


class MemoryRateLimiter(RateLimiter):
    def __init__(
        self, *, limit: int, window: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(limit=limit, window=window)
        self.clock = clock
        self._counts: dict[str, int] = {}
        self._slot = -1

    async def hit(self, key: str) -> Verdict:
        slot = int(self.clock() // self.window)
        if slot != self._slot:
            # A new window for everyone: forgetting the old one keeps memory bounded.
            self._counts.clear()
            self._slot = slot
        count = self._counts.get(key, 0) + 1
        self._counts[key] = count
        return self._verdict(count)


# INCR and set the expiry on the first hit, in one round trip; given a stream too (KEYS[2]),
# within the limit (ARGV[2]) the message's bus entry is appended to it (XADD, MAXLEN ~ ARGV[3],
# the fields after).
_HIT = """
local n = redis.call('incr', KEYS[1])
if n == 1 then redis.call('expire', KEYS[1], ARGV[1]) end
if #KEYS > 1 and n <= tonumber(ARGV[2]) then
    redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 4))
end
return n
"""


class RedisRateLimiter(RateLimiter):
    def __init__(
        self,
        url: str,
        *,
        limit: int,
        window: int,
        prefix: str = "relais",
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(limit=limit, window=window)
        self.redis: Any = redis.from_url(
            url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
        )
        self.url = url
        self.prefix = prefix
        self.clock = clock
        self._script: Any = self.redis.register_script(_HIT)

    def _counter(self, key: str) -> str:
        return f"{self.prefix}:rl:{int(self.clock() // self.window)}:{key}"

    async def hit_and_append(
        self, key: str, stream: str, fields: dict[str, str], *, maxlen: int
    ) -> Verdict:
        """`hit`, and within the limit the stream entry appended, in one round trip: a webhook
        counts and enqueues its message at once. Raises when Redis is away (the caller lets
        the message through; the recovery sweep enqueues it)."""
        flat = [x for pair in fields.items() for x in pair]
        count = await self._script(
            keys=[self._counter(key), stream], args=[self.window + 1, self.limit, maxlen, *flat]
        )
        return self._verdict(int(count))

    async def hit(self, key: str) -> Verdict:
        try:
            count = int(await self._script(keys=[self._counter(key)], args=[self.window + 1]))
        except Exception as exc:
            # Redis away: let the message through rather than refuse service to everyone.
            log.warning("rate limiter unavailable (%s); not limiting", type(exc).__name__)
            return Verdict(allowed=True, notify=False, count=0)
        return self._verdict(count)

    async def close(self) -> None:
        await self.redis.aclose()


def build_rate_limiter(redis_url: str | None, *, limit: int, window: int) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(redis_url, limit=limit, window=window)
    return MemoryRateLimiter(limit=limit, window=window)
