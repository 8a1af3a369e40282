"""`relais chat`: a tenant's conversation with the bot in a terminal, scriptable from stdin."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.app.factory import prepare_database
from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.core.settings import Settings
from bot.core.status import OUTBOX_WAITING
from bot.core.types import Inbound
from bot.messaging.bus import InProcessBus
from bot.storage.models import Message, Outbox
from channels.terminal import TerminalChannel

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
