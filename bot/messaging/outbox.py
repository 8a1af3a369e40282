"""The outbox: every reply, from the bot or a caretaker, is delivered from here with retries.

A row is claimed (status `sending`, with a lease) before the provider is called, so two
processes never send the same row; a transient failure puts it back with backoff, and after the
last attempt it is marked `failed`, which the console shows to staff. Rows of one conversation
go out in order: a row waits while an earlier row of its conversation is still undelivered.

The worker stores a turn's replies already claimed when nothing earlier of the conversation
waits, and hands them to `send_claimed`: they leave right after the commit, without a round
through `dispatch_due` (which remains for retries, caretakers' replies and rows whose process
died). What a sequence delivered is recorded in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Integer, Table, Text, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from bot.core.channel import Channel
from bot.core.errors import PermanentSendError, TransientSendError
from bot.core.status import OUTBOX_WAITING, OutboxStatus
from bot.core.types import Media, Outbound, SendResult
from bot.messaging.alerts import failed_alert_events
from bot.messaging.batching import GroupCommit
from bot.messaging.bus import Bus
from bot.messaging.webhooks import CHANNEL as WEBHOOK
from bot.storage.db import Database
from bot.storage.models import Message, OptOut, Outbox

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
        self._inflight: set[asyncio.Task[None]] = set()
        self._behind: set[int | None] = set()
        self._recorder = GroupCommit(self._finish_sent, limit=500)
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def wake(self) -> None:
        self._wake.set()

    def can_send(self, channel: str) -> bool:
        return channel in self.channels

    def send_claimed(self, groups: list[list[Outbox]]) -> None:
        """Send rows this process stored already claimed (a list per conversation, in order),
        in the background; a failure leaves them to their lease and the dispatcher."""
        task = asyncio.create_task(self._send_claimed(groups))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def waiting_behind(self, conversation_ids: set[int]) -> None:
        """Rows of these conversations were stored behind undelivered ones: wake the dispatcher
        as soon as a sequence of theirs is delivered."""
        self._behind |= conversation_ids
        self.wake()

    async def _send_claimed(self, groups: list[list[Outbox]]) -> None:
        try:
            # The worker checked the opt-outs in the transaction that stored them.
            await self._send_groups(groups, checked=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning(
                "outbox %s: direct send failed (%s); left to the dispatcher",
                groups[0][0].id,
                type(exc).__name__,
            )
        finally:
            done = {row.conversation_id for rows in groups for row in rows}
            if self._behind & done:
                # A row stored behind these (the next turn's, a caretaker's) may now go.
                self._behind -= done
                self.wake()

    async def drain(self, wait: float = 5.0) -> None:
        """Wait for the sends under way (at shutdown)."""
        if self._inflight:
            await asyncio.wait(set(self._inflight), timeout=wait)

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
            earlier.status.in_(OUTBOX_WAITING),
        )
        # Webhook events (no conversation) keep the order of their key (one request).
        earlier_event = exists().where(
            earlier.channel == WEBHOOK,
            earlier.address == Outbox.address,
            earlier.id < Outbox.id,
            earlier.status.in_(("pending", "sending")),
        )
        waits = or_(blocked, and_(Outbox.channel == WEBHOOK, earlier_event))
        due = or_(
            and_(Outbox.status == OutboxStatus.PENDING, Outbox.next_attempt_at <= now),
            and_(Outbox.status == OutboxStatus.SENDING, Outbox.lease_until < now),
        )
        pick = select(Outbox.id).where(due, ~waits).order_by(Outbox.id).limit(self.batch)
        if self.db.dialect == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        async with self.db.transaction() as s:
            ids = list((await s.execute(pick)).scalars())
            if not ids:
                return []
            await s.execute(
                update(Outbox)
                .where(self.db.one_of(Outbox.id, ids))
                .values(
                    status=OutboxStatus.SENDING,
                    lease_until=now + self.lease,
                    attempts=Outbox.attempts + 1,
                )
            )
            rows = list(
                (
                    await s.execute(
                        select(Outbox).where(self.db.one_of(Outbox.id, ids)).order_by(Outbox.id)
                    )
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
        await self._send_groups(list(by_conv.values()))
        return len(rows)

    async def _send_groups(self, groups: list[list[Outbox]], *, checked: bool = False) -> None:
        """Conversations at once, each in order; what was delivered recorded together."""
        results = await asyncio.gather(*(self._send_sequence(rows, checked) for rows in groups))
        delivered = [d for result in results for d in result]
        if delivered:
            await self._record_sent(delivered)

    async def _send_sequence(self, rows: list[Outbox], checked: bool = False) -> list[Delivered]:
        """Send in order until a row is not delivered; returns what the provider took (even when
        something failed after it, so that it is recorded and never sent twice)."""
        delivered: list[Delivered] = []
        try:
            for i, row in enumerate(rows):
                outcome = await self._send_one(row, checked)
                if isinstance(outcome, Delivered):
                    delivered.append(outcome)
                elif not outcome:
                    # Keep the conversation's order: later rows wait for this one.
                    await self._release([r.id for r in rows[i + 1 :]])
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The database failed while retrying or finishing a row: what is left of the
            # sequence waits for its lease.
            log.warning("outbox %s: sequence interrupted (%s)", rows[0].id, type(exc).__name__)
        return delivered

    async def _release(self, ids: list[int]) -> None:
        if not ids:
            return
        async with self.db.transaction() as s:
            await s.execute(
                update(Outbox)
                .where(self.db.one_of(Outbox.id, ids))
                .values(status=OutboxStatus.PENDING, attempts=Outbox.attempts - 1, lease_until=None)
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

    async def _send_one(self, row: Outbox, checked: bool = False) -> Delivered | bool:
        """Deliver one row: `Delivered` when the provider took it (recorded by the caller),
        True when it reached another final state (failed, suppressed), False when it will be
        retried."""
        channel = self.channels.get(row.channel)
        if channel is None:
            await self._finish(
                row, OutboxStatus.FAILED, error=f"no sender configured for '{row.channel}'"
            )
            return True
        if not checked and await self._opted_out(row):
            await self._finish(row, OutboxStatus.SUPPRESSED, error="recipient opted out")
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
            await self._finish(row, OutboxStatus.FAILED, error=str(exc))
            return True
        except Exception as exc:
            # A sender that raises something unexpected is treated as transient: better a
            # retry than a lost reply; after max attempts the row is marked failed.
            log.exception("sender %s raised", row.channel)
            return await self._retry(row, f"{type(exc).__name__}: {exc}", None)
        return Delivered(row, result, text if text != row.text else None)

    async def _record_sent(self, delivered: list[Delivered]) -> None:
        """The provider has the messages: recording that must outlast a database blip, or the
        rows would be sent again when their lease expires (the tenant would get them twice)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease.total_seconds() * 0.8
        delay = 0.2
        while True:
            try:
                await self._recorder(delivered)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if loop.time() + delay > deadline:
                    raise
                log.warning(
                    "outbox %s sent, but not yet recorded (%s); retrying",
                    ", ".join(str(d.row.id) for d in delivered),
                    type(exc).__name__,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        self.sent += len(delivered)
        await self._announce(
            [(d.row, OutboxStatus.SENT) for d in delivered if d.row.conversation_id is not None]
        )

    async def _finish_sent(self, delivered: list[Delivered]) -> None:
        """One transaction, two statements (executemany) for everything delivered meanwhile:
        `_recorder` hands over together the sequences that finished while one was recorded."""
        now = self.clock()
        outbox_rows = [
            {"row_id": d.row.id, "provider": d.result.provider_id, "at": now} for d in delivered
        ]
        message_rows = [
            _message_values(d.row.message_id, d.result, d.text)
            for d in delivered
            if d.row.message_id is not None
        ]
        async with self.db.engine.begin() as conn:
            await conn.execute(_OUTBOX_SENT, outbox_rows)
            if message_rows:
                await conn.execute(_MESSAGE_SENT, message_rows)

    async def _announce(self, rows: list[tuple[Outbox, str]]) -> None:
        if self.bus is None or not rows:
            return
        with contextlib.suppress(Exception):
            await self.bus.publish_many(
                [
                    {
                        "type": "delivery",
                        "conversation_id": row.conversation_id,
                        "message_id": row.message_id,
                        "status": status,
                    }
                    for row, status in rows
                ]
            )

    async def _retry(self, row: Outbox, error: str, retry_after: float | None) -> bool:
        if row.attempts >= self.max_attempts:
            await self._finish(row, OutboxStatus.FAILED, error=error)
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
                    status=OutboxStatus.PENDING,
                    lease_until=None,
                    last_error=error[:2000],
                    next_attempt_at=self.clock() + timedelta(seconds=delay),
                )
            )
        return False

    async def _finish(self, row: Outbox, status: str, *, error: str | None = None) -> None:
        """A final state other than sent: failed or suppressed."""
        async with self.db.transaction() as s:
            await s.execute(
                update(Outbox)
                .where(Outbox.id == row.id)
                .values(status=status, lease_until=None, last_error=error)
            )
            if row.message_id is not None:
                await s.execute(
                    update(Message)
                    .where(Message.id == row.message_id)
                    .values(delivery_status=status)
                )
        self.failed += status == OutboxStatus.FAILED
        log.warning(
            "outbox %s %s after %s attempt(s): %s",
            row.id,
            status,
            row.attempts,
            (error or "")[:200],
        )
        if row.conversation_id is not None:
            await self._announce([(row, status)])
        elif status == OutboxStatus.FAILED and self.bus is not None:
            # A staff alert nobody received: the console says so, live (issue 19).
            events = failed_alert_events(row.extra)
            if events:
                with contextlib.suppress(Exception):
                    await self.bus.publish_many(events)


@dataclass(frozen=True, slots=True)
class Delivered:
    """A row the provider accepted, waiting to be recorded."""

    row: Outbox
    result: SendResult
    text: str | None  # what was really sent, when the channel changed it (GSM-7 folding)


# Core statements (executemany): the ORM's bulk update by primary key cost more CPU than the
# delivery itself.
_outbox = cast(Table, Outbox.__table__)
_messages = cast(Table, Message.__table__)
_OUTBOX_SENT = (
    update(_outbox)
    .where(_outbox.c.id == bindparam("row_id"))
    .values(
        status=OutboxStatus.SENT,
        lease_until=None,
        last_error=None,
        provider_id=bindparam("provider"),
        sent_at=bindparam("at"),
    )
)
_MESSAGE_SENT = (
    update(_messages)
    .where(_messages.c.id == bindparam("message_id"))
    .values(
        delivery_status=bindparam("status"),
        provider_id=bindparam("provider"),
        # Unchanged where the provider did not say (segments) or the text was sent as stored.
        segments=func.coalesce(bindparam("segments", type_=Integer), _messages.c.segments),
        text=func.coalesce(bindparam("text", type_=Text), _messages.c.text),
    )
)


def _message_values(message_id: int, result: SendResult, text: str | None) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "status": result.status,
        # Prefixed: provider ids of outbound messages must never collide with inbound ones,
        # which are unique per channel (Telegram reuses integers).
        "provider": f"out:{result.provider_id}" if result.provider_id else None,
        "segments": result.segments,
        "text": text,
    }
