"""`relais chat`: a tenant's conversation with the bot in a terminal, scriptable from stdin."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app.factory import prepare_database
from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.core.settings import Settings
from bot.core.status import OUTBOX_WAITING
from bot.core.types import Inbound, Media
from bot.dialogue import PRIORITY_EMERGENCY, PRIORITY_VULNERABLE
from bot.messaging.bus import InProcessBus
from bot.storage.models import (
    Conversation,
    Direction,
    Handoff,
    Message,
    Outbox,
    Request,
    Role,
    StaffUser,
)
from channels.terminal import TerminalChannel
from handoff import actions
from handoff.escalation import escalate_due

PROMPT = {"fr": "vous> ", "en": "you> "}
WAIT = timedelta(seconds=30)


async def run_chat(settings: Settings, address: str, *, interactive: bool, lang: str = "fr") -> int:
    terminal = TerminalChannel()
    # The terminal's sender lives in this process only: keep the bus in-process even when
    # Redis is configured, or another worker would pick the message up and find no terminal.
    rt = Runtime(
        settings,
        bus=InProcessBus(partitions=1),
        channels={"terminal": terminal},
    )
    attach_handoff(rt)
    await prepare_database(rt)
    await rt.start(Roles(consume=True, outbox=True, recover=False))
    fake = fake_clock(os.environ.get("RELAIS_FAKE_NOW"))
    if fake is not None:
        # Only the dialogue's "now" moves (collection dates, opening hours); delivery keeps
        # the real clock, or replies stamped in the past or future would never fall due.
        rt.pipeline.clock = fake
    loop = asyncio.get_running_loop()
    try:
        while True:
            if interactive:
                print(PROMPT.get(lang, PROMPT["fr"]), end="", flush=True)
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            text = line.rstrip("\r\n")
            if interactive and not text.strip():
                continue
            recorded = await rt.ingest(Inbound(channel="terminal", address=address, text=text))
            await _wait_for_replies(rt, recorded.message_id)
            while not terminal.delivered.empty():
                out = terminal.delivered.get_nowait()
                print(f"bot> {out.text}" if interactive else out.text, flush=True)
    finally:
        await rt.stop()
    return 0


def fake_clock(value: str | None) -> Callable[[], datetime] | None:
    """For scripted tests only: RELAIS_FAKE_NOW="2026-03-09T10:00:00+01:00" starts the clock
    there (then it runs at the real pace). Read here and nowhere else: the server never fakes."""
    if not value:
        return None
    start = datetime.fromisoformat(value)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    offset = start - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


async def _wait_for_replies(rt: Runtime, message_id: int) -> None:
    deadline = loop_time() + WAIT.total_seconds()
    while loop_time() < deadline:
        async with rt.db.session() as s:
            msg = await s.get(Message, message_id)
            if msg is not None and msg.processed_at is not None:
                pending = (
                    await s.execute(
                        select(func.count(Outbox.id)).where(
                            Outbox.conversation_id == msg.conversation_id,
                            Outbox.status.in_(OUTBOX_WAITING),
                        )
                    )
                ).scalar_one()
                if not pending:
                    return
        await asyncio.sleep(0.02)


def loop_time() -> float:
    return asyncio.get_running_loop().time()


# -- the trace: one JSON line per turn, the contract other tools (and the story suite) read ----

WAIT_LINE = re.compile(r"^/wait\s+(\d+)\s*([mhd])\s*$", re.IGNORECASE)
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
PRIORITIES = ((PRIORITY_EMERGENCY, "urgent"), (PRIORITY_VULNERABLE, "high"))


def parse_wait(line: str) -> timedelta | None:
    """`/wait 45m`, `/wait 2h`, `/wait 3d` → how far the dialogue's clock moves."""
    m = WAIT_LINE.match(line.strip())
    if m is None:
        return None
    return timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})


def priority_label(priority: int) -> str:
    return next((label for floor, label in PRIORITIES if priority >= floor), "normal")


class MovableClock:
    """The dialogue's clock in a scripted chat: starts at RELAIS_FAKE_NOW (or now), runs at the
    real pace, and jumps forward on `/wait`."""

    def __init__(self, start: datetime | None = None) -> None:
        self.offset = (start - datetime.now(UTC)) if start is not None else timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, by: timedelta) -> None:
        self.offset += by


class TraceSession:
    """A tenant's scripted conversation, turn by turn, with the state after each turn.

    `relais chat --trace` and the story suite (tests/story_runner.py) both drive this class:
    each line is processed to the end (NLU, dialogue, stored replies, staff alerts) before the
    next, with no background task, so what a line prints is what that line caused.
    Lines: a tenant message; `/wait 45m|2h|3d`; staff actions `/take`, `/close`, `/reply …`.
    """

    def __init__(
        self, rt: Runtime, address: str, *, channel: str = "terminal", clock: MovableClock
    ) -> None:
        self.rt = rt
        self.address = address
        self.channel = channel
        self.clock = clock
        self.conversation_id: int | None = None
        self._last_out = 0  # highest outbound message id already reported
        self._last_alert = 0  # highest staff-alert outbox id already reported

    async def start(self) -> None:
        async with self.rt.db.session() as s:
            self._last_out = (await s.execute(select(func.max(Message.id)))).scalar_one() or 0
            self._last_alert = (await s.execute(select(func.max(Outbox.id)))).scalar_one() or 0

    async def line(self, text: str) -> dict[str, Any]:
        """Handle one stdin line and return its trace object."""
        wait = parse_wait(text)
        if wait is not None:
            return await self.wait(wait)
        stripped = text.strip()
        if stripped in ("/take", "/close") or stripped.startswith("/reply "):
            return await self.staff(stripped)
        return await self.say(text)

    async def say(self, text: str, media: tuple[Media, ...] = ()) -> dict[str, Any]:
        started = datetime.now(UTC)  # rows' updated_at keep the real clock
        recorded = await self.rt.ingest(
            Inbound(channel=self.channel, address=self.address, text=text, media=media)
        )
        self.conversation_id = recorded.conversation_id
        await self.rt.pipeline.process(recorded.message_id)
        async with self.rt.db.session() as s:
            msg = await s.get(Message, recorded.message_id)
            nlu = dict((msg.nlu if msg else None) or {})
        out = {
            "text": text,
            # The turn's intent: the NLU's, or "emergency" when the dialogue read a danger.
            "intent": (msg.intent if msg else None) or nlu.get("intent"),
            "confidence": nlu.get("confidence"),
            "language": nlu.get("language"),
            "entities": [
                {"type": e.get("type"), "value": e.get("value")} for e in nlu.get("entities", [])
            ],
        }
        return {**out, **(await self.state(started))}

    async def wait(self, by: timedelta) -> dict[str, Any]:
        """Silence: the clock moves, then what fell due runs (intake timeouts, escalations)."""
        started = datetime.now(UTC)  # rows' updated_at keep the real clock
        self.clock.advance(by)
        await self.rt.pipeline.run_due()
        await escalate_due(self.rt)
        base = {"text": f"/wait {_span(by)}", "intent": None, "confidence": None}
        return {**base, "language": None, "entities": [], **(await self.state(started))}

    async def staff(self, line: str) -> dict[str, Any]:
        """A staff action on this conversation, by the person who would do it."""
        started = datetime.now(UTC)  # rows' updated_at keep the real clock
        error = ""
        if self.conversation_id is not None:
            async with self.rt.db.session() as s:
                conv = await s.get(Conversation, self.conversation_id)
                person = await _staff_for(s, conv)
            if person is not None:
                try:
                    if line == "/take":
                        await actions.take(self.rt, person, self.conversation_id)
                    elif line == "/close":
                        await actions.close(self.rt, person, self.conversation_id, "résolu")
                    else:
                        await actions.reply(self.rt, person, self.conversation_id, line[7:])
                except actions.Refused as refused:
                    error = refused.key
        base = {"text": line, "intent": None, "confidence": None}
        if error:
            base["error"] = error
        return {**base, "language": None, "entities": [], **(await self.state(started))}

    async def state(self, since: datetime) -> dict[str, Any]:
        """Replies, request, handoff and alerts as they stand after the line."""
        if self.conversation_id is None:
            return {"replies": [], "request": None, "handoff": None, "alerts": []}
        cid = self.conversation_id
        async with self.rt.db.session() as s:
            conv = await s.get(Conversation, cid)
            replies = list(
                (
                    await s.execute(
                        select(Message)
                        .where(
                            Message.conversation_id == cid,
                            Message.direction == Direction.OUT.value,
                            Message.id > self._last_out,
                            Message.internal.is_(False),
                        )
                        .order_by(Message.id)
                    )
                ).scalars()
            )
            if replies:
                self._last_out = replies[-1].id
            alerts = [
                row
                for row in (
                    await s.execute(
                        select(Outbox)
                        .where(Outbox.id > self._last_alert, Outbox.conversation_id.is_(None))
                        .order_by(Outbox.id)
                    )
                ).scalars()
                if (row.extra or {}).get("staff_alert")
                and (row.extra or {}).get("conversation_id") == cid
            ]
            last = (await s.execute(select(func.max(Outbox.id)))).scalar_one() or 0
            self._last_alert = max(self._last_alert, last)
            requests = list(
                (
                    await s.execute(
                        select(Request).where(Request.conversation_id == cid).order_by(Request.id)
                    )
                ).scalars()
            )
            handoff = (
                (
                    await s.execute(
                        select(Handoff)
                        .where(Handoff.conversation_id == cid)
                        .order_by(Handoff.id.desc())
                        .limit(1)
                    )
                )
                .scalars()
                .first()
            )
        touched = [r for r in requests if r.updated_at >= since]
        current = touched[-1] if touched else None
        if current is None:
            current = next((r for r in reversed(requests) if r.status != "closed"), None)
        return {
            "replies": [m.text for m in replies],
            "request": _request_json(current),
            "requests_count": len(requests),
            "handoff": _handoff_json(handoff, conv),
            "alerts": [
                {
                    "to": (a.extra or {}).get("to", "oncall"),
                    "channel": a.channel,
                    "reason": (a.extra or {}).get("reason", (a.extra or {}).get("staff_alert")),
                }
                for a in alerts
            ],
        }


def _span(by: timedelta) -> str:
    minutes = int(by.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _request_json(r: Request | None) -> dict[str, Any] | None:
    if r is None:
        return None
    return {
        "reference": r.reference,
        "kind": r.kind,
        "status": r.status,
        "summary": r.summary,
        "details": r.details,
    }


def _handoff_json(h: Handoff | None, conv: Conversation | None) -> dict[str, Any] | None:
    if h is None:
        return None
    status = "closed" if h.closed_at else "taken" if h.taken_at else "queued"
    priority = max(h.priority, conv.priority if conv is not None and not h.closed_at else 0)
    return {
        "status": status,
        "priority": priority_label(priority),
        "reason": h.reason,
        "language": conv.language if conv is not None else None,
    }


async def _staff_for(s: AsyncSession, conv: Conversation | None) -> StaffUser | None:
    """The caretaker of the conversation's residence, else the on-call staff."""
    people = list(
        (
            await s.execute(
                select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.id)
            )
        ).scalars()
    )
    rid = conv.residence_id if conv is not None else None
    for role in (Role.CARETAKER.value, Role.ONCALL.value):
        for p in people:
            covers = rid is None or any(r.id == rid for r in p.residences)
            if p.role == role and covers and (rid is not None or role == Role.ONCALL.value):
                return p
    return None


async def run_trace(settings: Settings, address: str, *, channel: str = "terminal") -> int:
    """`relais chat --trace`: read stdin lines, print one JSON object per line handled."""
    rt = Runtime(settings, bus=InProcessBus(partitions=1), channels={})
    attach_handoff(rt)
    await prepare_database(rt)
    clock = MovableClock(_fake_start(os.environ.get("RELAIS_FAKE_NOW")))
    rt.clock = clock
    # Nothing runs in the background: each line is handled to the end before it is printed.
    await rt.start(
        Roles(consume=False, outbox=False, recover=False, retention=False, escalate=False)
    )
    rt.pipeline.clock = clock
    session = TraceSession(rt, address, channel=channel, clock=clock)
    await session.start()
    loop = asyncio.get_running_loop()
    try:
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                break
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            print(json.dumps(await session.line(text), ensure_ascii=False, default=str), flush=True)
    finally:
        await rt.stop()
    return 0


def _fake_start(value: str | None) -> datetime | None:
    if not value:
        return None
    start = datetime.fromisoformat(value)
    return start if start.tzinfo is not None else start.replace(tzinfo=UTC)
