"""The bus: inbound work to the workers and live events to the consoles.

In-process by default; with Redis, inbound work goes through partitioned Redis Streams read by
a consumer group, and live events through pub/sub.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import os
import socket
import time
import uuid
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.exceptions import ResponseError

from bot.core.periodic import pause

log = logging.getLogger(__name__)

Handler = Callable[[int], Awaitable[None]]
# Several messages at once (in order), all or nothing; on failure they are retried one by one.
BatchHandler = Callable[[list[int]], Awaitable[None]]
READ_BLOCK_MS = 500  # a partition read waits this long for new entries
BACKLOG_SWEEP_S = 10.0  # how often a partition's owner claims entries others left pending
BATCH = 20  # messages a consumer takes at once when that many are waiting
Event = dict[str, Any]


STREAM_MAXLEN = 100_000  # entries kept per partition's stream (approximately)


def workers_key(prefix: str = "relais") -> str:
    """The sorted set of alive workers' heartbeats (RedisBus)."""
    return f"{prefix}:workers"


def partition_of(key: str, partitions: int) -> int:
    # crc32 is stable across processes (hash() is salted per process).
    return zlib.crc32(key.encode()) % partitions


class Bus:
    """Interface shared by both buses."""

    name = "bus"

    async def start(self) -> None:  # pragma: no cover - trivial default
        return None

    async def close(self) -> None:  # pragma: no cover - trivial default
        return None

    async def ping(self) -> None:
        return None

    async def enqueue(self, message_id: int, key: str) -> None:
        raise NotImplementedError

    async def consume(
        self, handler: Handler, stop: asyncio.Event, many: BatchHandler | None = None
    ) -> None:
        """Run `handler(message_id)` for every enqueued message until `stop` is set; with
        `many`, messages that are waiting together go to `many` in one call."""
        raise NotImplementedError

    @property
    def consuming(self) -> bool:
        """Whether `consume` runs and reaches the messages (what /readyz reports)."""
        return False

    async def publish(self, event: Event) -> None:
        raise NotImplementedError

    async def publish_many(self, events: list[Event]) -> None:
        for event in events:
            await self.publish(event)

    def subscribe(
        self, session: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]:
        """Live events: with `session`, only the events of that web-chat session; without, every
        event that belongs to no web-chat session (what the console shows)."""
        raise NotImplementedError


class _Fanout:
    """Local subscribers of live events, each with its own bounded queue.

    Events carrying a web-chat `session` go only to that session's subscribers (its open
    sockets), the others to the general subscribers (consoles): a gateway holding a thousand
    web-chat sockets does not wake a thousand tasks for every event."""

    def __init__(self) -> None:
        self.queues: set[asyncio.Queue[Event]] = set()
        self.sessions: dict[str, set[asyncio.Queue[Event]]] = {}

    def deliver(self, event: Event) -> None:
        session = event.get("session")
        targets = self.sessions.get(str(session), ()) if session is not None else self.queues
        for q in list(targets):
            if q.full():
                # A slow console loses its oldest event rather than blocking everyone.
                with contextlib.suppress(asyncio.QueueEmpty):
                    q.get_nowait()
            q.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscription(self, session: str | None = None) -> AsyncIterator[asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize=1000)
        queues = self.queues if session is None else self.sessions.setdefault(session, set())
        queues.add(q)
        try:
            yield q
        finally:
            queues.discard(q)
            if session is not None and not queues:
                self.sessions.pop(session, None)


class InProcessBus(Bus):
    """Partitioned asyncio queues: one consumer task per partition keeps each key in order."""

    name = "memory"

    def __init__(self, *, partitions: int = 8) -> None:
        self.partitions = partitions
        self.queues: list[asyncio.Queue[int]] = [asyncio.Queue() for _ in range(partitions)]
        self.fanout = _Fanout()
        self._consumers = 0

    async def enqueue(self, message_id: int, key: str) -> None:
        self.queues[partition_of(key, self.partitions)].put_nowait(message_id)

    async def consume(
        self, handler: Handler, stop: asyncio.Event, many: BatchHandler | None = None
    ) -> None:
        async def run(q: asyncio.Queue[int]) -> None:
            while not stop.is_set():
                try:
                    message_id = await asyncio.wait_for(q.get(), timeout=0.5)
                except TimeoutError:
                    continue
                batch = [message_id]
                while many is not None and len(batch) < BATCH and not q.empty():
                    batch.append(q.get_nowait())
                if not await _handle_batch(many, batch):
                    for mid in batch:
                        await _handle_with_retry(handler, mid, stop)

        self._consumers += 1
        try:
            await asyncio.gather(*(run(q) for q in self.queues))
        finally:
            self._consumers -= 1

    @property
    def consuming(self) -> bool:
        return self._consumers > 0

    async def publish(self, event: Event) -> None:
        self.fanout.deliver(event)

    def subscribe(
        self, session: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]:
        return self.fanout.subscription(session)


_RUNNING: set[asyncio.Task[None]] = set()  # shielded work outliving its cancelled consumer


async def _shielded(work: Awaitable[None]) -> None:
    task = asyncio.ensure_future(work)
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    await asyncio.shield(task)


async def _handle_batch(many: BatchHandler | None, message_ids: list[int]) -> bool:
    """True when `many` took the whole batch; False to take the messages one by one."""
    if many is None or len(message_ids) < 2:
        return False
    try:
        # Shielded: a consumer cancelled mid-batch (its partition handed to another worker)
        # must not cut the batch between its commit and the sending of its replies.
        await _shielded(many(message_ids))
        return True
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning(
            "a batch of %s messages failed (%s); taking them one by one",
            len(message_ids),
            type(exc).__name__,
        )
        return False


class LeaseLost(Exception):
    """This worker no longer surely owns the partition it was reading."""


async def _handle_with_retry(
    handler: Handler,
    message_id: int,
    stop: asyncio.Event,
    holds: Callable[[], bool] | None = None,
) -> bool:
    """Run the handler until it succeeds, we are stopped or (`holds`) the partition is no
    longer ours; True when it succeeded.

    A failure is usually the database being away for a moment; retrying the same message
    (rather than skipping it) keeps the conversation's order.
    """
    delay = 0.2
    while True:
        try:
            await _shielded(handler(message_id))  # as in _handle_batch
            return True
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "processing message %s failed (%s); retrying in %.1fs",
                message_id,
                type(exc).__name__,
                delay,
            )
            if stop.is_set() or (holds is not None and not holds()):
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


# Renew a lease only if we still hold it; release likewise.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


@dataclass(slots=True)
class _Work:
    """What a consumer does with the messages, and when it stops."""

    handler: Handler
    stop: asyncio.Event
    many: BatchHandler | None


@dataclass(slots=True)
class _Partition:
    """One partition as a task of this worker runs it."""

    p: int
    gen: int  # this task's generation: a newer task for the partition retires it
    claimed_backlog: bool = False
    next_sweep: float = 0.0


class RedisBus(Bus):
    """Redis Streams, one per partition, each read by the consumer group `workers`.

    Workers share the partitions: each alive worker (a heartbeat in a sorted set) takes the
    partitions whose index modulo the number of workers equals its rank, and holds a lease on
    each so that two workers never read one partition at once: a conversation's messages stay
    in order. When a worker dies its leases expire; the next owner first claims the entries the
    dead worker had read but not acknowledged, then reads new ones.
    """

    name = "redis"
    GROUP = "workers"

    def __init__(
        self,
        url: str,
        *,
        partitions: int = 8,
        prefix: str = "relais",
        lease_ms: int = 5000,
        heartbeat_s: float = 1.0,
        batch: int = BATCH,
    ) -> None:
        self.url = url
        self.partitions = partitions
        self.prefix = prefix
        self.lease_ms = lease_ms
        self.heartbeat_s = heartbeat_s
        self.batch = batch  # entries read at once from a partition (up to as many at once)
        self.redis = redis.from_url(url, decode_responses=True, health_check_interval=10)
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.fanout = _Fanout()
        self._listener: asyncio.Task[None] | None = None
        self._listener_ready = asyncio.Event()
        self._groups_ready = False
        self._consuming = False
        self._valid_until: dict[int, float] = {}
        self._generation: dict[int, int] = {}  # the current task of each partition we run
        self._generations = itertools.count(1)

    def stream(self, p: int) -> str:
        return f"{self.prefix}:in:{p}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    async def ping(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        await self.redis.aclose()

    async def _ensure_groups(self) -> None:
        if self._groups_ready:
            return
        for p in range(self.partitions):
            try:
                await self.redis.xgroup_create(self.stream(p), self.GROUP, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    async def enqueue(self, message_id: int, key: str) -> None:
        stream, fields = self.entry(message_id, key)
        await self.redis.xadd(stream, fields, maxlen=STREAM_MAXLEN, approximate=True)  # type: ignore[arg-type]

    def entry(self, message_id: int, key: str) -> tuple[str, dict[str, str]]:
        """The stream and the fields `enqueue` appends for a message (the rate limiter appends
        them itself when it shares this Redis: see `Runtime._admit`)."""
        return self.stream(partition_of(key, self.partitions)), encode_entry(message_id, key)

    # -- consuming -------------------------------------------------------------------------

    async def _alive_workers(self) -> list[str]:
        now = time.time()
        key = workers_key(self.prefix)
        await self.redis.zadd(key, {self.consumer: now})
        await self.redis.zremrangebyscore(key, "-inf", now - self.lease_ms / 1000)
        members = await self.redis.zrange(key, 0, -1)
        return sorted(str(m) for m in members)

    def _assigned(self, workers: list[str]) -> set[int]:
        if self.consumer not in workers:
            workers = sorted([*workers, self.consumer])
        rank, n = workers.index(self.consumer), len(workers)
        return {p for p in range(self.partitions) if p % n == rank}

    async def _acquire(self, p: int) -> bool:
        key = f"{self.prefix}:lease:{p}"
        asked = time.monotonic()
        held = bool(await self.redis.set(key, self.consumer, nx=True, px=self.lease_ms))
        if not held:
            held = bool(await self.redis.eval(_RENEW, 1, key, self.consumer, self.lease_ms))
        if held:
            # Counted from before the request, with a margin: never later than Redis's expiry.
            self._valid_until[p] = asked + self.lease_ms / 1000 * 0.9
        else:
            self._valid_until.pop(p, None)
        return held

    def _holds(self, p: int, gen: int) -> bool:
        """Whether partition `p` is surely still this task's: the task is the current one for
        it (a retired task may outlive its cancellation, e.g. inside a blocking read) and the
        lease is ours. A process paused longer than the lease (a stalled machine) finds it gone
        and stops before the next message, leaving the rest to the new owner: two tasks never
        run one partition's messages side by side (the message in hand is protected by the
        database claim)."""
        return self._generation.get(p) == gen and time.monotonic() < self._valid_until.get(p, 0.0)

    def _retire(self, p: int, owned: dict[int, asyncio.Task[None]]) -> None:
        self._generation.pop(p, None)
        owned.pop(p).cancel()

    async def _release(self, p: int) -> None:
        self._valid_until.pop(p, None)
        await self.redis.eval(_RELEASE, 1, f"{self.prefix}:lease:{p}", self.consumer)

    async def consume(
        self, handler: Handler, stop: asyncio.Event, many: BatchHandler | None = None
    ) -> None:
        owned: dict[int, asyncio.Task[None]] = {}
        try:
            while not stop.is_set():
                try:
                    # Inside the loop: a worker started while Redis is away creates the
                    # consumer group once Redis is back, and goes on.
                    await self._ensure_groups()
                    await self._membership_round(owned, _Work(handler, stop, many))
                    self._consuming = True
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self._consuming = False
                    log.warning("redis bus: membership round failed (%s)", type(exc).__name__)
                await pause(stop, self.heartbeat_s)
        finally:
            self._consuming = False
            self._generation.clear()
            for task in owned.values():
                task.cancel()
            await asyncio.gather(*owned.values(), return_exceptions=True)
            with contextlib.suppress(Exception):
                for p in owned:
                    await self._release(p)
                await self.redis.zrem(workers_key(self.prefix), self.consumer)

    @property
    def consuming(self) -> bool:
        return self._consuming

    async def _membership_round(self, owned: dict[int, asyncio.Task[None]], work: _Work) -> None:
        """Heartbeat; let go of the partitions no longer ours; take (or keep) the others."""
        wanted = self._assigned(await self._alive_workers())
        for p in list(owned):
            if p not in wanted or owned[p].done():
                self._retire(p, owned)
                await self._release(p)
        for p in wanted:
            if await self._acquire(p):
                if p not in owned:
                    gen = self._generation[p] = next(self._generations)
                    owned[p] = asyncio.create_task(self._run_partition(_Partition(p, gen), work))
            elif p in owned:
                self._retire(p, owned)

    async def _run_partition(self, part: _Partition, work: _Work) -> None:
        # A previous owner's blocking read may still be under way: Redis would hand it entries
        # after this task's first claim, and this task would read the next ones before those
        # are claimed (out of order). Its read ends within READ_BLOCK_MS.
        await asyncio.sleep(READ_BLOCK_MS / 1000 + 0.1)
        part.next_sweep = time.monotonic() + BACKLOG_SWEEP_S
        while not work.stop.is_set():
            if self._generation.get(part.p) != part.gen:
                return  # retired: another task (or worker) runs this partition now
            await self._partition_round(part, work)

    async def _partition_round(self, part: _Partition, work: _Work) -> None:
        """Claim the backlog when due, then read and process what is new."""
        if time.monotonic() > part.next_sweep:
            # Now and then, take over what another consumer read and left unacknowledged
            # after this task had started (a task retired in the middle of a read).
            part.claimed_backlog = False
            part.next_sweep = time.monotonic() + BACKLOG_SWEEP_S
        if not self._holds(part.p, part.gen):
            # Not (yet, or any more) ours: what we read unacknowledged is taken up first
            # when it is ours again, unless the next owner has claimed it meanwhile.
            part.claimed_backlog = False
            await asyncio.sleep(0.05)
            return
        try:
            if not part.claimed_backlog:
                await self._claim_backlog(part, work)
                part.claimed_backlog = True
            await self._read_new(part, work)
        except asyncio.CancelledError:
            raise
        except LeaseLost:
            log.warning("redis bus: partition %s lease lost (a stall?); stopped reading", part.p)
            part.claimed_backlog = False
        except Exception as exc:
            log.warning("redis bus: partition %s read failed (%s)", part.p, type(exc).__name__)
            part.claimed_backlog = False
            if "NOGROUP" in str(exc):
                # Redis restarted without its data: the streams and the consumer group are
                # gone; create them again (what they held is re-enqueued by the recovery
                # sweep from the database, where every message is stored).
                self._groups_ready = False
                with contextlib.suppress(Exception):
                    await self._ensure_groups()
            await asyncio.sleep(0.5)

    async def _claim_backlog(self, part: _Partition, work: _Work) -> None:
        """Entries a previous owner read but never acknowledged come first."""
        stream, start = self.stream(part.p), "0-0"
        while True:
            res = await self.redis.xautoclaim(
                stream, self.GROUP, self.consumer, min_idle_time=0, start_id=start, count=100
            )
            start, entries = str(res[0]), list(res[1])
            for entry_id, fields in entries:
                if fields:
                    await self._process(part, entry_id, fields, work)
                else:  # trimmed from the stream meanwhile
                    await self.redis.xack(stream, self.GROUP, entry_id)
            if start == "0-0" or not entries:
                return

    async def _read_new(self, part: _Partition, work: _Work) -> None:
        stream = self.stream(part.p)
        resp = await self.redis.xreadgroup(
            self.GROUP, self.consumer, {stream: ">"}, count=self.batch, block=READ_BLOCK_MS
        )
        batches: list[Any] = list(resp or [])
        entries: list[tuple[str, dict[str, str]]] = [e for _name, batch in batches for e in batch]
        ids = [decode_entry(fields)[0] for _entry_id, fields in entries]
        if not self._holds(part.p, part.gen):
            return  # a stall during the read: the entries wait for the owner
        if None not in ids and await _handle_batch(work.many, ids):  # type: ignore[arg-type]
            await self.redis.xack(stream, self.GROUP, *(e for e, _f in entries))
            return
        await self._process_by_conversation(part, entries, work)

    async def _process_by_conversation(
        self, part: _Partition, entries: list[tuple[str, dict[str, str]]], work: _Work
    ) -> None:
        """One by one: different conversations of the batch at once; one conversation's
        messages one after the other, in the order they came."""
        by_key: dict[str, list[tuple[str, dict[str, str]]]] = {}
        for entry_id, fields in entries:
            by_key.setdefault(decode_entry(fields)[1], []).append((entry_id, fields))

        async def in_order(seq: list[tuple[str, dict[str, str]]]) -> None:
            for entry_id, fields in seq:
                await self._process(part, entry_id, fields, work)

        results = await asyncio.gather(
            *(in_order(seq) for seq in by_key.values()), return_exceptions=True
        )
        # All have finished before a failure sends us back to the unacknowledged ones.
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async def _process(
        self, part: _Partition, entry_id: str, fields: dict[str, str], work: _Work
    ) -> None:
        if not self._holds(part.p, part.gen):
            raise LeaseLost(part.p)
        stream = self.stream(part.p)
        message_id, _key = decode_entry(fields)
        if message_id is None:
            log.error("redis bus: dropping malformed entry %s", entry_id)
            await self.redis.xack(stream, self.GROUP, entry_id)
            return
        holds = functools.partial(self._holds, part.p, part.gen)
        if await _handle_with_retry(work.handler, message_id, work.stop, holds):
            await self.redis.xack(stream, self.GROUP, entry_id)
        elif not work.stop.is_set():
            raise LeaseLost(part.p)

    # -- live events -----------------------------------------------------------------------

    async def publish(self, event: Event) -> None:
        await self.redis.publish(self.events_channel, json.dumps(event, default=str))

    async def publish_many(self, events: list[Event]) -> None:
        """One round trip for a turn's events."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.publish(self.events_channel, json.dumps(event, default=str))
            await pipe.execute()

    async def _listen(self) -> None:
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.events_channel)
                self._listener_ready.set()
                async for msg in pubsub.listen():
                    if msg.get("type") == "message":
                        try:
                            self.fanout.deliver(json.loads(msg["data"]))
                        except (ValueError, TypeError):
                            log.warning("redis bus: malformed event ignored")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("redis bus: event listener lost (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    @contextlib.asynccontextmanager
    async def _subscription(self, session: str | None) -> AsyncIterator[asyncio.Queue[Event]]:
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listener_ready.wait(), timeout=2)
        async with self.fanout.subscription(session) as q:
            yield q

    def subscribe(
        self, session: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[asyncio.Queue[Event]]:
        return self._subscription(session)


# -- the stream entry format, written and read here only ------------------------------------


def encode_entry(message_id: int, key: str) -> dict[str, str]:
    """A stream entry's fields: the stored message's id, and the conversation's key (channel
    and address), which lets a consumer run different conversations of a partition at once."""
    return {"m": str(message_id), "k": key}


def decode_entry(fields: dict[str, str]) -> tuple[int | None, str]:
    """(message id, or None for a malformed entry; conversation key)."""
    try:
        message_id: int | None = int(fields["m"])
    except (KeyError, ValueError):
        message_id = None
    return message_id, fields.get("k", "")


def build_bus(redis_url: str | None, *, partitions: int = 8) -> Bus:
    if redis_url:
        return RedisBus(redis_url, partitions=partitions)
    return InProcessBus(partitions=partitions)
