"""A worker process for the crash test: consumes a Redis bus, records into Redis atomically.

Run as `python -m tests.messaging.bus_worker REDIS_URL PREFIX NAME`; it is killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import sys

from bot.messaging.bus import RedisBus

# Processing is idempotent, as the pipeline's is in the database: record once, atomically.
RECORD = """
if redis.call('sadd', KEYS[1], ARGV[1]) == 1 then
  redis.call('rpush', KEYS[2], ARGV[1])
  redis.call('hset', KEYS[3], ARGV[1], ARGV[2])
end
return 1
"""


async def main(url: str, prefix: str, name: str, conversations: int) -> None:
    bus = RedisBus(url, partitions=8, prefix=prefix, lease_ms=1500, heartbeat_s=0.2)

    async def handle(message_id: int) -> None:
        await asyncio.sleep(0.002)
        conv = message_id % conversations
        await bus.redis.eval(
            RECORD,
            3,
            f"{prefix}:t:done",
            f"{prefix}:t:order:{conv}",
            f"{prefix}:t:by",
            message_id,
            name,
        )

    await bus.consume(handle, asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
