"""The outbox: every reply, from the bot or a caretaker, is delivered from here with retries.

A row is claimed (status `sending`, with a lease) before the provider is called, so two
processes never send the same row; a transient failure puts it back with backoff, and after the
last attempt it is marked `failed`, which the console shows to staff. Rows of one conversation
go out in order: a row waits while an earlier row of its conversation is still undelivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import aliased

from bot.bus import Bus
from bot.db import Database
from bot.errors import PermanentSendError, TransientSendError
from bot.models import Message, OptOut, Outbox
from bot.types import Media, Outbound, SendResult
from channels.base import Channel

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)


class OutboxDispatcher:
    def __init__(
        self,
        *,
        db: Database,
        channels: dict[str, Channel],
        bus: Bus | None = None,
        max_attempts: int = 6,
        backoff_seconds: float = 2.0,
        batch: int = 50,
        concurrency: int = 16,
        clock: Callable[[], datetime] | None = None,
        lease: timedelta = LEASE,
    ) -> None:
        self.db = db
        # How long a row claimed by a process that then died waits before another sends it.
        self.lease = lease
        self.channels = channels
        self.bus = bus
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.batch = batch
        self.semaphore = asyncio.Semaphore(concurrency)
        self.clock = clock or (lambda: datetime.now(UTC))
        self._wake = asyncio.Event()
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event, *, poll: float = 1.0) -> None:
        while not stop.is_set():
            self._wake.clear()
            try:
                n = await self.dispatch_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox round failed (%s)", type(exc).__name__)
                n = 0
            if n:
                continue  # more may be due right away (the next row of a conversation)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=poll)

    async def _claim(self) -> list[Outbox]:
        now = self.clock()
        earlier = aliased(Outbox)
        blocked = exists().where(
            earlier.conversation_id == Outbox.conversation_id,
            earlier.id < Outbox.id,
            earlier.status.in_(("pending", "sending")),
        )
        due = or_(
            and_(Outbox.status == "pending", Outbox.next_attempt_at <= now),
            and_(Outbox.status == "sending", Outbox.lease_until < now),
        )
        pick = select(Outbox.id).where(due, ~blocked).order_by(Outbox.id).limit(self.batch)
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            ids = list((await s.execute(pick)).scalars())
            if not ids:
                return []
            await s.execute(
                update(Outbox)
                .where(Outbox.id.in_(ids))
                .values(
                    status="sending", lease_until=now + self.lease, attempts=Outbox.attempts + 1
                )
            )
            rows = list(
                (
                    await s.execute(select(Outbox).where(Outbox.id.in_(ids)).order_by(Outbox.id))
                ).scalars()
            )
        return rows

    async def dispatch_due(self) -> int:
        rows = await self._claim()
        if not rows:
            return 0
        by_conv: dict[Any, list[Outbox]] = defaultdict(list)
        for row in rows:
            by_conv[row.conversation_id or f"none-{row.id}"].append(row)
        await asyncio.gather(*(self._send_sequence(seq) for seq in by_conv.values()))
        return len(rows)

    async def _send_sequence(self, rows: list[Outbox]) -> None:
        for i, row in enumerate(rows):
            ok = await self._send_one(row)
            if not ok:
                # Keep the conversation's order: later rows wait for this one.
                await self._release([r.id for r in rows[i + 1 :]])
                return

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id.in_(ids))
                .values(status="pending", attempts=Outbox.attempts - 1, lease_until=None)
            )

    async def _opted_out(self, row: Outbox) -> bool:
        # Only SMS and WhatsApp record opt-outs (STOP/ARRET): other channels skip the query.
        if (row.extra or {}).get("force") or row.channel not in ("sms", "whatsapp"):
            return False
        async with self.db.session() as s:
            found = (
                await s.execute(
                    select(OptOut.id).where(
                        OptOut.channel == row.channel, OptOut.address == row.address
                    )
                )
            ).scalar_one_or_none()
        return found is not None

    async def _send_one(self, row: Outbox) -> bool:
        """Deliver one row; True when it reached a final state (sent, failed, suppressed)."""
        channel = self.channels.get(row.channel)
        if channel is None:
            await self._finish(row, "failed", error=f"no sender configured for '{row.channel}'")
            return True
        if await self._opted_out(row):
            await self._finish(row, "suppressed", error="recipient opted out")
            return True
        # What the provider really gets (e.g. folded to GSM-7 for SMS) is what the message keeps.
        text = channel.prepare_text(row.text)
        out = Outbound(
            outbox_id=row.id,
            channel=row.channel,
            address=row.address,
            text=text,
            idempotency_key=row.idempotency_key,
            conversation_id=row.conversation_id,
            message_id=row.message_id,
            media=tuple(Media(**m) for m in (row.media or [])),
            extra=dict(row.extra or {}),
        )
        try:
            async with self.semaphore:
                result = await channel.send(out)
        except TransientSendError as exc:
            return await self._retry(row, str(exc), exc.retry_after)
        except PermanentSendError as exc:
            await self._finish(row, "failed", error=str(exc))
            return True
        except Exception as exc:
            # A sender that raises something unexpected is treated as transient: better a
            # retry than a lost reply; after max attempts the row is marked failed.
            log.exception("sender %s raised", row.channel)
            return await self._retry(row, f"{type(exc).__name__}: {exc}", None)
        await self._record_sent(row, result, text if text != row.text else None)
        return True

    async def _record_sent(self, row: Outbox, result: SendResult, text: str | None) -> None:
        """The provider has the message: recording that must outlast a database blip, or the
        row would be sent again when its lease expires (the tenant would get it twice)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds() * 0.8
        delay = 0.2
        while True:
            try:
                await self._finish(row, "sent", result=result, text=text)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning(
                    "outbox %s sent, but not yet recorded (%s); retrying",
                    row.id,
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _retry(self, row: Outbox, error: str, retry_after: float | None) -> bool:
        if row.attempts >= self.max_attempts:
            await self._finish(row, "failed", error=error)
            return True
        delay = (
            retry_after
            if retry_after is not None
            else (
                self.backoff_seconds * 2 ** (row.attempts - 1) * (0.8 + 0.4 * random.random())  # noqa: S311
            )
        )
        self.retried += 1
        log.info(
            "outbox %s: attempt %s failed (%s), retry in %.1fs",
            row.id,
            row.attempts,
            error[:120],
            delay,
        )
        async with self.db.transaction() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status="pending",
                    lease_until=None,
                    last_error=error[:2000],
                    next_attempt_at=self.clock() + timedelta(seconds=delay),
                )
            )
        return False

    async def _finish(
        self,
        row: Outbox,
        status: str,
        *,
        result: SendResult | None = None,
        error: str | None = None,
        text: str | None = None,
    ) -> None:
        now = self.clock()
        async with self.db.transaction() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(
                    status=status,
                    lease_until=None,
                    last_error=error,
                    provider_id=result.provider_id if result else None,
                    sent_at=now if status == "sent" else None,
                )
            )
            if row.message_id is not None:
                values: dict[str, Any] = {"delivery_status": result.status if result else status}
                if result is not None:
                    # Prefixed: provider ids of outbound messages must never collide with
                    # inbound ones, which are unique per channel (Telegram reuses integers).
                    values["provider_id"] = (
                        f"out:{result.provider_id}" if result.provider_id else None
                    )
                    if result.segments is not None:
                        values["segments"] = result.segments
                    if text is not None:
                        values["text"] = text
                await s.execute(
                    update(Message).where(Message.id == row.message_id).values(**values)
                )
        if status == "sent":
            self.sent += 1
        else:
            self.failed += status == "failed"
            log.warning(
                "outbox %s %s after %s attempt(s): %s",
                row.id,
                status,
                row.attempts,
                (error or "")[:200],
            )
        if self.bus is not None and row.conversation_id is not None:
            with contextlib.suppress(Exception):
                await self.bus.publish(
                    {
                        "type": "delivery",
                        "conversation_id": row.conversation_id,
                        "message_id": row.message_id,
                        "status": status,
                    }
                )
