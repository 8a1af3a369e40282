"""Wires one process together: database, bus, NLU engine, channels, pipeline and outbox.

`relais serve`, `relais worker`, `relais chat` and the tests all build a `Runtime`; what runs
in it (consumers, the outbox, the recovery sweep) is chosen by the caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.channel import Channel
from bot.core.errors import Unavailable
from bot.core.periodic import every, supervise
from bot.core.settings import Settings
from bot.core.types import Inbound
from bot.dialogue.content import Content
from bot.dialogue.texts import Texts
from bot.messaging.batching import GroupCommit
from bot.messaging.bus import STREAM_MAXLEN, Bus, RedisBus, build_bus
from bot.messaging.outbox import OutboxDispatcher
from bot.messaging.ratelimit import RateLimiter, RedisRateLimiter, Verdict, build_rate_limiter
from bot.messaging.webhooks import WebhookQueue
from bot.ops import metrics
from bot.ops.demo import read_landlord
from bot.ops.gdpr import purge
from bot.storage.db import Database, is_unavailable
from bot.storage.models import Conversation, Direction, Message
from bot.storage.store import (
    Recorded,
    add_outbound,
    fast_recordable,
    record_inbound,
    record_inbound_pg,
)
from bot.storage.uploads import UploadStore, build_upload_store, sweep_uploads
from bot.worker.lifecycle import Lifecycle
from bot.worker.pipeline import Alerter, Pipeline
from nlu.engine import Engine, build_engine
from nlu.training import ensure_model

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Roles:
    """What this process runs besides answering requests."""

    consume: bool = True  # pipeline workers reading the bus
    outbox: bool = True  # delivering replies
    recover: bool = True  # re-enqueueing stored messages nobody processed
    retention: bool = True  # erasing conversations past RELAIS_RETENTION_MONTHS, daily
    escalate: bool = True  # pushing untaken handoffs to staff phones (handoff.escalation)


# A job the composition root adds (`Runtime.add_background`): given the stop event, runs until it.
Background = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


# Messages a busy worker waits for (up to `worker_linger_ms`) before running a batch: past
# about twenty, a batch's fixed cost is a small part of its messages' (bench/worker.py).
BATCH_TARGET = 24
DUE_EVERY_SECONDS = 30.0


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        engine: Engine | None = None,
        channels: dict[str, Channel] | None = None,
        bus: Bus | None = None,
        db: Database | None = None,
        clock: Callable[[], datetime] | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url, pool_pre_ping=settings.database_pre_ping)
        self.bus = bus or build_bus(settings.redis_url, partitions=settings.bus_partitions)
        self._engine = engine
        self.channels: dict[str, Channel] = dict(channels or {})
        # Texts and FAQ: the data folder's seed under managers' edits, reloaded when changed.
        self.content = Content(settings.data)
        self.landlord: dict[str, Any] = _safe_landlord(settings)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.outbox = OutboxDispatcher(
            db=self.db,
            channels=self.channels,
            bus=self.bus,
            max_attempts=settings.outbox_max_attempts,
            backoff_seconds=settings.outbox_backoff_seconds,
            clock=self.clock,
            lease=timedelta(seconds=settings.outbox_lease_seconds),
        )
        self.limiter = limiter or build_rate_limiter(
            settings.redis_url,
            limit=settings.rate_limit_messages,
            window=settings.rate_limit_window_seconds,
            secret=settings.secret_key.get_secret_value(),
        )
        self.webhooks = WebhookQueue(enabled=bool(settings.webhook_url and settings.webhook_secret))
        self.lifecycle = Lifecycle(
            settings=settings, texts=self.texts, webhooks=self.webhooks, clock=self.clock
        )
        # Tenants' uploaded photos (the web chat writes them; sweeps and erasure delete them).
        self.uploads: UploadStore = build_upload_store(settings)
        self._pipeline: Pipeline | None = None
        # Whether this process delivers replies itself (Roles.outbox): then the pipeline sends
        # a turn's replies as soon as it commits, without waiting for the dispatcher.
        self._delivers = True
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._background: list[tuple[str, Background]] = []
        self.alerter: Alerter | None = None
        self._roles = Roles(consume=False)  # until `start`

    @property
    def texts(self) -> Texts:
        return self.content.texts

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise RuntimeError("The NLU engine is not loaded: call Runtime.start() first.")
        return self._engine

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            self._pipeline = Pipeline(
                db=self.db,
                engine=self.engine,
                bus=self.bus,
                texts=self.texts,
                content=self.content,
                phone_region=self.settings.phone_region,
                landlord=self.landlord,
                timezone=self.settings.timezone,
                clock=self.clock,
                on_outbox=self.outbox.wake,
                outbox=self.outbox if self._delivers else None,
                lifecycle=self.lifecycle,
                alerter=self.alerter,
                intake_timeout=timedelta(minutes=self.settings.intake_timeout_minutes),
                code_lifetime=timedelta(minutes=self.settings.identity_code_minutes),
                code_tries=self.settings.identity_code_tries,
                codes_per_hour=self.settings.identity_codes_per_hour,
            )
        return self._pipeline

    def add_background(self, role: str, job: Background) -> None:
        """Run `job` in `start` when the `Roles` field named `role` is on."""
        if role not in Roles.__dataclass_fields__:
            raise ValueError(f"no role {role!r}")
        self._background.append((role, job))

    def set_alerter(self, alerter: Alerter) -> None:
        """How the dialogue's staff alerts are sent at once (the console's notify path, plugged
        in by the composition root); without one, only the escalation loop alerts."""
        self.alerter = alerter
        if self._pipeline is not None:
            self._pipeline.alerter = alerter

    async def _due_jobs(self) -> None:
        """What the dialogue left due (intakes the tenant stopped answering), every 30 s."""
        await every(
            self._stop,
            DUE_EVERY_SECONDS,
            self.pipeline.run_due,
            name="due jobs",
            first=DUE_EVERY_SECONDS,
        )

    def add_channel(self, channel: Channel) -> None:
        for name in (channel.name, *channel.aliases):
            self.channels[name] = channel

    async def load_engine(self) -> Engine:
        if self._engine is None:
            s = self.settings
            if s.nlu == "embedded":
                await asyncio.to_thread(ensure_model, s.data, s.nlu_model_path)
            self._engine = build_engine(
                kind=s.nlu,
                model_path=s.nlu_model_path,
                data_dir=s.data,
                rasa_url=s.rasa_url,
                threshold=s.nlu_threshold,
            )
        return self._engine

    async def start(self, roles: Roles = Roles()) -> None:
        self._roles = roles
        self._delivers = roles.outbox
        if self._pipeline is not None:
            self._pipeline.outbox = self.outbox if roles.outbox else None
        await self.load_engine()
        await self.bus.start()
        if roles.consume:
            # What the partitions hand over while a batch runs goes in the next one together.
            group: GroupCommit[int] = GroupCommit(
                lambda ids: self.pipeline.process_many(ids),
                linger=self.settings.worker_linger_ms / 1000,
                target=BATCH_TARGET,
            )
            self._spawn("consumers", lambda: self.bus.consume(group.one, self._stop, group))
            self._spawn("content", self._watch_content)
            self._spawn("due jobs", self._due_jobs)
        if roles.outbox:
            self._spawn("outbox", lambda: self.outbox.run(self._stop))
        if roles.recover:
            self._spawn("recovery", self._recovery_loop)
        if roles.retention:
            self._spawn("retention", self._retention_loop)
            self._spawn("uploads sweep", self._uploads_loop)
        for role, job in self._background:
            if getattr(roles, role):
                self._spawn(role, functools.partial(job, self._stop))
        await asyncio.sleep(0)  # the loops begin (the in-process bus's consumers are then up)

    async def _watch_content(self) -> None:
        """A manager's edit in any process reaches this one's pipeline at its next turn."""
        async with self.bus.subscribe() as events:
            await self.content.watch(events, self._stop)

    @property
    def consuming(self) -> bool:
        """Whether the messages on the bus are being processed: no consumers wanted here
        (`relais serve --no-worker`), or the bus's consumers are running."""
        return not self._roles.consume or self.bus.consuming

    def _spawn(self, name: str, start: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run a long-running loop, restarted with a growing pause whenever it dies (Redis or
        the database away at the wrong moment) until the runtime stops."""
        task = asyncio.create_task(supervise(self._stop, start, name=name), name=name)
        # Keep a reference: the event loop only holds weak references to tasks.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            _done, pending = await asyncio.wait(self._tasks, timeout=5)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        # Replies the last turns stored claimed leave before the senders close (else they would
        # wait for their lease to run out).
        await self.outbox.drain()
        for ch in {id(c): c for c in self.channels.values()}.values():
            with contextlib.suppress(Exception):
                await ch.aclose()
        if self._engine is not None:
            with contextlib.suppress(Exception):
                await self._engine.aclose()
        await self.bus.close()
        with contextlib.suppress(Exception):
            await self.limiter.close()
        with contextlib.suppress(Exception):
            await self.uploads.close()
        await self.db.dispose()

    # -- ingest ---------------------------------------------------------------------------

    async def ingest(self, inbound: Inbound) -> Recorded:
        """Store an inbound message, then hand it to the bus; raises `Unavailable` if the
        database is away (the provider will retry: nothing was written).

        A sender over the rate limit has the message stored all the same, but marked as not
        for the bot (and told so once per window) instead of enqueued."""
        started = time.perf_counter()
        key = _key(inbound.channel, inbound.address)
        held = notify = False
        try:
            recorded = await self._store(inbound)
            if recorded.created:
                # Counted once stored: a provider's retry of the same message is free.
                verdict = await self._admit(recorded.message_id, key)
                if not verdict.allowed:
                    held, notify = True, verdict.notify
                    async with self.db.transaction() as s:
                        await self._hold(s, recorded, notify=notify)
        except Exception as exc:
            # A pool with no free connection for `pool_timeout` seconds is an overload: 503 too,
            # so the provider retries later rather than seeing a 500.
            if is_unavailable(exc) or isinstance(exc, PoolTimeout):
                metrics.INGESTED.labels(inbound.channel, "unavailable").inc()
                raise Unavailable("database unavailable") from exc
            raise
        outcome = "stored" if recorded.created else "duplicate"
        if held:
            outcome = "limited"
            if notify:
                log.info("rate limit: a %s sender is over the limit", inbound.channel)
                self.outbox.wake()
        metrics.INGESTED.labels(inbound.channel, outcome).inc()
        metrics.INGEST_SECONDS.observe(time.perf_counter() - started)
        return recorded

    async def _admit(self, message_id: int, key: str) -> Verdict:
        """Count a new message against its sender's limit and, within it, hand it to the bus:
        one round trip when both are on the same Redis. Stored is what matters: a message
        not enqueued (Redis away) is enqueued again by the recovery sweep."""
        limiter, bus = self.limiter, self.bus
        try:
            if (
                isinstance(limiter, RedisRateLimiter)
                and isinstance(bus, RedisBus)
                and limiter.url == bus.url
            ):
                stream, fields = bus.entry(message_id, key)
                return await limiter.hit_and_append(key, stream, fields, maxlen=STREAM_MAXLEN)
            verdict = await limiter.hit(key)
            if verdict.allowed:
                await bus.enqueue(message_id, key)
            return verdict
        except Exception as exc:
            log.warning("message %s stored but not enqueued (%s)", message_id, type(exc).__name__)
            return Verdict(allowed=True, notify=False, count=0)

    async def _store(self, inbound: Inbound) -> Recorded:
        if self.db.dialect == "postgresql" and fast_recordable(inbound):
            # One statement in autocommit (see store.record_inbound_pg): the webhook's answer
            # waits for one round trip to PostgreSQL instead of six.
            async with self.db.engine.connect() as conn:
                pooled = await conn.get_raw_connection()
                try:
                    recorded = await record_inbound_pg(pooled.driver_connection, inbound)
                except Exception as exc:
                    if is_unavailable(exc):
                        await conn.invalidate()  # the pool opens a new one next time
                    raise
            if recorded is not None:
                return recorded
        async with self.db.transaction() as s:
            return await record_inbound(s, inbound)

    async def _hold(self, s: AsyncSession, recorded: Recorded, *, notify: bool) -> None:
        """Keep a rate-limited message out of the bot: processed, with no NLU, no reply."""
        await s.execute(
            update(Message)
            .where(Message.id == recorded.message_id)
            .values(processed_at=self.clock(), nlu={"skipped": "rate_limited"})
        )
        if notify:
            conv = await s.get(Conversation, recorded.conversation_id)
            assert conv is not None
            text = self.texts.get("rate_limited", conv.language)
            await add_outbound(s, conv, text, key=f"ratelimit:{recorded.message_id}")

    async def recover(self, older_than: timedelta = timedelta(seconds=0)) -> int:
        """Enqueue again every stored inbound message no worker has processed."""
        cutoff = self.clock() - older_than
        async with self.db.session() as s:
            rows = (
                await s.execute(
                    select(Message.id, Conversation.channel, Conversation.address)
                    .join(Conversation, Conversation.id == Message.conversation_id)
                    .where(
                        Message.direction == Direction.IN.value,
                        Message.processed_at.is_(None),
                        Message.created_at <= cutoff,
                    )
                    .order_by(Message.id)
                    .limit(5000)
                )
            ).all()
        for message_id, channel, address in rows:
            await self.bus.enqueue(message_id, _key(channel, address))
        if rows:
            log.info("recovery: %s unprocessed message(s) enqueued again", len(rows))
        return len(rows)

    async def _recovery_loop(self) -> None:
        age = timedelta(seconds=self.settings.recovery_after_seconds)
        swept = False

        async def sweep() -> None:
            # At start everything unprocessed is taken up; later only what has waited long
            # enough that it cannot merely be sitting in the bus.
            nonlocal swept
            await self.recover(age if swept else timedelta(0))
            swept = True

        await every(self._stop, self.settings.recovery_every_seconds, sweep, name="recovery sweep")

    async def _retention_loop(self, interval: float = 24 * 3600, first: float = 60.0) -> None:
        """Once a day (the first time a minute after start), erase conversations past the
        retention period; several workers doing it at once is harmless (idempotent)."""

        async def erase() -> None:
            # With Redis, the bus's streams are purged of processed entries too.
            await purge(
                self.db,
                self.settings.retention_months,
                actor="worker",
                bus=self.bus,
                uploads=self.uploads,
            )

        await every(self._stop, interval, erase, name="retention purge", first=first)

    async def _uploads_loop(self, interval: float = 60.0) -> None:
        """Every minute, delete the uploads nobody attached to a message in time."""
        older_than = timedelta(minutes=self.settings.uploads_unattached_minutes)

        async def delete() -> None:
            await sweep_uploads(self.db, self.uploads, older_than=older_than)

        await every(self._stop, interval, delete, name="uploads sweep", first=interval)


def _key(channel: str, address: str) -> str:
    return f"{channel}:{address}"


def _safe_landlord(settings: Settings) -> dict[str, Any]:
    try:
        return read_landlord(settings.data)
    except (OSError, KeyError, ValueError):
        return {}
