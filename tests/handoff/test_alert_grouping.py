"""A flood of reports pages staff once per few minutes, and is itself reported once (issue 16).

Sixty emergencies from sixty senders must not send sixty SMS to the on-call phone: the first
alert goes at once, the others of the same residence and intent are listed in one alert at
the end of `alert_group_minutes`; every tenant still gets the safety reply at once.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.storage.models import Message, Outbox
from handoff.escalation import escalate_due
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_escalation import MONDAY_10H, ONCALL, Clock
from tests.worker.test_pipeline import send, settled

GAS = "urgent fuite de gaz"
MANAGER = "+33611000010"  # claire
SENDERS = [f"+3361299{i:04d}" for i in range(24)]  # unknown numbers: no residence known


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY_10H)


@pytest.fixture
async def rt(
    database_url: str, recording: RecordingChannel, clock: Clock
) -> AsyncIterator[Runtime]:
    runtime = Runtime(
        make_settings(database_url, public_url="https://relais.example"),
        engine=KeywordEngine(),
        channels={"sms": recording},
        clock=clock,
    )
    await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
    try:
        yield runtime
    finally:
        await runtime.stop()


async def delivered(rt: Runtime) -> None:
    """What is due now has left (grouped alerts wait for their time)."""
    rt.outbox.wake()
    for _ in range(500):
        async with rt.db.session() as s:
            due = await s.scalar(
                select(func.count(Outbox.id)).where(
                    Outbox.status.in_(("pending", "sending")),
                    Outbox.next_attempt_at <= rt.clock(),
                )
            )
        if not due:
            return
        rt.outbox.wake()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{due} alert(s) due but not sent")


def to(recording: RecordingChannel, address: str) -> list[str]:
    return [o.text for o in recording.sent if o.address == address]


async def emergencies(rt: Runtime, senders: list[str]) -> None:
    for i, address in enumerate(senders):
        await send(rt, GAS, address=address, pid=f"SMgas{address}{i}")
    await settled(rt)


def reports_in(page: str) -> int:
    """How many reports one alert stands for: "12 signalements …", or one."""
    found = re.search(r"(\d+) signalements", page)
    return int(found[1]) if found else 1


def pages(recording: RecordingChannel) -> list[str]:
    return [t for t in to(recording, ONCALL) if "/console/c/" in t]


async def test_a_flood_of_emergencies_pages_on_call_once_per_window(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    window = rt.settings.alert_group_minutes
    await emergencies(rt, SENDERS[:12])
    # Every tenant had the safety reply at once, whatever happens to the alerts.
    # (An unknown sender is then asked the address, issue 14: the safety text comes first.)
    for address in SENDERS[:12]:
        reply = to(recording, address)[0]
        assert "URGENT" in reply
    assert await escalate_due(rt) == 12  # twelve reports...
    await delivered(rt)
    [first] = pages(recording)  # ...one page now (listing those queued before it left)
    assert "URGENCE" in first
    # Twelve reports in one group is a flood: told once to on-call and to the managers.
    assert len([t for t in to(recording, ONCALL) if "afflux" in t]) == 1
    assert len([t for t in to(recording, MANAGER) if "afflux" in t]) == 1
    clock.advance(window - 0.5)
    await delivered(rt)
    assert len(pages(recording)) == 1  # the rest waits for the end of the window
    clock.advance(0.5)
    await delivered(rt)
    assert len(pages(recording)) <= 2
    assert sum(reports_in(p) for p in pages(recording)) == 12  # none lost
    last = pages(recording)[-1]
    if reports_in(last) > 5:
        assert last.count("/console/c/") == 5  # five links, then the queue's
        assert last.endswith(f"(+{reports_in(last) - 5}) https://relais.example/console")
    # More, a minute after: at most one page per window, whatever the timing of the first.
    paged_at = [MONDAY_10H] + ([clock()] if len(pages(recording)) == 2 else [])
    clock.advance(1)
    await emergencies(rt, SENDERS[12:20])
    assert await escalate_due(rt) == 8
    for _ in range(int(window) + 1):
        before = len(pages(recording))
        await delivered(rt)
        if len(pages(recording)) > before:
            assert len(pages(recording)) == before + 1
            assert clock() - paged_at[-1] >= timedelta(minutes=window)
            paged_at.append(clock())
        clock.advance(1)
    assert sum(reports_in(p) for p in pages(recording)) == 20
    sent = len(pages(recording))
    # The flood was reported once, not at every alert.
    assert len([t for t in to(recording, ONCALL) if "afflux" in t]) == 1
    assert len([t for t in to(recording, MANAGER) if "afflux" in t]) == 1
    # Quiet for a while: the next emergency pages at once again.
    clock.advance(2 * window)
    await emergencies(rt, SENDERS[20:21])
    assert await escalate_due(rt) == 1
    await delivered(rt)
    assert len(pages(recording)) == sent + 1 and reports_in(pages(recording)[-1]) == 1


async def test_grouping_is_per_intent_and_never_drops_a_report(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    await emergencies(rt, SENDERS[:2])
    await send(rt, "je veux parler à une personne", address=SENDERS[2], pid="SMhuman")
    await settled(rt)
    assert await escalate_due(rt) == 2  # the emergencies now; the other waits its delay
    clock.advance(16)
    assert await escalate_due(rt) >= 1
    clock.advance(rt.settings.alert_group_minutes)
    await delivered(rt)
    async with rt.db.session() as s:
        rows = list(
            (await s.execute(select(Outbox).where(Outbox.conversation_id.is_(None)))).scalars()
        )
    listed = sorted(c for r in rows for c in r.extra.get("conversations", ()))
    assert len(listed) == len(set(listed)) >= 3  # each handoff in exactly one alert per person
    assert all(r.status == "sent" for r in rows)
    assert clock() - MONDAY_10H >= timedelta(minutes=16)


@pytest.fixture
async def wired(
    database_url: str, recording: RecordingChannel, clock: Clock
) -> AsyncIterator[Runtime]:
    """As in production: the dialogue alerts on-call at once through `alert_now`."""
    runtime = Runtime(
        make_settings(database_url, public_url="https://relais.example"),
        engine=KeywordEngine(),
        channels={"sms": recording},
        clock=clock,
    )
    attach_handoff(runtime)
    await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
    try:
        yield runtime
    finally:
        await runtime.stop()


async def processed(rt: Runtime) -> None:
    for _ in range(500):
        async with rt.db.session() as s:
            left = await s.scalar(
                select(func.count(Message.id)).where(
                    Message.direction == "in", Message.processed_at.is_(None)
                )
            )
        if not left:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{left} message(s) not processed")


async def test_the_dialogues_immediate_alerts_are_grouped_with_the_escalations(
    wired: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    rt = wired
    for i, address in enumerate(SENDERS[:8]):
        await send(rt, GAS, address=address, pid=f"SMwired{address}{i}")
    await processed(rt)
    await escalate_due(rt)  # the handoffs' escalation: the same reports, told already
    await delivered(rt)
    assert len(pages(recording)) == 1  # one page now, not one per report nor two per report
    for address in SENDERS[:8]:
        assert "URGENT" in to(recording, address)[0]  # every safety reply at once
    clock.advance(rt.settings.alert_group_minutes)
    await escalate_due(rt)
    await delivered(rt)
    assert len(pages(recording)) <= 2
    assert sum(reports_in(p) for p in pages(recording)) == 8  # each report once, none lost
