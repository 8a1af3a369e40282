"""Never lost: untaken handoffs pushed to the caretaker's phone, then to on call (fake clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app.runtime import Roles, Runtime
from bot.storage.models import Conversation, Handoff, Outbox, Residence, StaffUser
from handoff import actions
from handoff.escalation import escalate_due
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import send, settled

HUMAN = "je veux parler à une personne"
NADIA = "+33612345600"  # FLEURS
KARIM, ONCALL = "+33611000001", "+33611000009"
# Monday 30 November 2026, 10:00 in Paris: Karim's lodge is open. In the future, so that rows
# the pipeline stamps with the real time are due for the outbox too.
MONDAY_10H = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


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
    # The loop stays off: the test runs each round itself, at the times it chooses.
    await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
    try:
        yield runtime
    finally:
        await runtime.stop()


async def handoff_of(rt: Runtime, text: str = HUMAN, address: str = NADIA) -> Handoff:
    await send(rt, text, address=address)
    await settled(rt)
    async with rt.db.session() as s:
        return (await s.execute(select(Handoff).order_by(Handoff.id.desc()).limit(1))).scalar_one()


def alerts(recording: RecordingChannel) -> list[tuple[str, str]]:
    return [(o.address, o.text) for o in recording.sent if "/console/c/" in o.text]


async def test_caretaker_then_oncall_then_nothing_more(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    h = await handoff_of(rt)
    clock.advance(14)
    assert await escalate_due(rt) == 0
    clock.advance(2)
    assert await escalate_due(rt) == 1
    assert await escalate_due(rt) == 0  # once per level, however often the loop runs
    await settled(rt)
    [(address, text)] = alerts(recording)
    assert address == KARIM
    assert f"https://relais.example/console/c/{h.conversation_id}" in text
    assert "16 min" in text and "Les Fleurs" in text and HUMAN not in text  # no tenant text
    clock.advance(15)
    assert await escalate_due(rt) == 1
    await settled(rt)
    assert [a for a, _ in alerts(recording)] == [KARIM, ONCALL]
    clock.advance(60)
    assert await escalate_due(rt) == 0
    async with rt.db.session() as s:
        row = await s.get(Handoff, h.id)
        keys = list((await s.execute(select(Outbox.idempotency_key))).scalars())
        staff_rows = list(
            (await s.execute(select(Outbox).where(Outbox.conversation_id.is_(None)))).scalars()
        )
    assert row is not None and row.escalation_level == 2 and row.escalated_at is not None
    assert any(k.startswith(f"escalate:{h.id}:1:") for k in keys)
    assert len(staff_rows) == 2 and all(r.channel == "sms" for r in staff_rows)


async def test_emergency_alerts_on_call_at_once(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    await handoff_of(rt, "ça sent le gaz dans l'escalier")
    assert await escalate_due(rt) == 1  # no wait: the on-call team is alerted now
    clock.advance(60)
    assert await escalate_due(rt) == 0  # and only once
    await settled(rt)
    assert [a for a, _ in alerts(recording)] == [ONCALL]
    assert "URGENCE" in alerts(recording)[0][1]


async def test_a_taken_handoff_is_not_escalated(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    h = await handoff_of(rt)
    async with rt.db.session() as s:
        karim = (await s.execute(select(StaffUser).where(StaffUser.login == "karim"))).scalar_one()
    await actions.take(rt, karim, h.conversation_id)
    clock.advance(60)
    assert await escalate_due(rt) == 0
    await settled(rt)
    assert alerts(recording) == []


async def test_outside_lodge_hours_on_call_is_alerted_first(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    clock.now = datetime(2026, 12, 6, 2, 0, tzinfo=UTC)  # Sunday night: the lodge is closed
    await handoff_of(rt)
    clock.advance(16)
    assert await escalate_due(rt) == 1
    async with rt.db.session() as s:
        rows = list(
            (await s.execute(select(Outbox).where(Outbox.conversation_id.is_(None)))).scalars()
        )
    assert [r.address for r in rows] == [ONCALL]


async def test_a_returning_tenant_goes_back_to_the_same_caretaker(
    rt: Runtime, recording: RecordingChannel, clock: Clock
) -> None:
    # Two caretakers on Les Fleurs; Paul handled Nadia last time.
    async with rt.db.transaction() as s:
        fleurs = (await s.execute(select(Residence).where(Residence.code == "FLEURS"))).scalar_one()
        paul = StaffUser(
            login="paul",
            display_name="Paul",
            role="caretaker",
            phone="+33611000077",
            residences=[fleurs],
        )
        s.add(paul)
    h = await handoff_of(rt)
    async with rt.db.session() as s:
        paul = (await s.execute(select(StaffUser).where(StaffUser.login == "paul"))).scalar_one()
    await actions.take(rt, paul, h.conversation_id)
    await actions.close(rt, paul, h.conversation_id, "vu sur place")
    clock.advance(60)
    # Nadia writes again: back to the bot, which hands her over again.
    await handoff_of(rt)
    async with rt.db.session() as s:
        conv = await s.get(Conversation, h.conversation_id)
    assert conv is not None and conv.state == "queued" and conv.last_caretaker_id == paul.id
    clock.advance(16)
    assert await escalate_due(rt) == 1
    await settled(rt)
    assert [a for a, _ in alerts(recording)] == ["+33611000077"]
    # The queue tells Paul it is his tenant again.
    from handoff.queue import load_queue

    async with rt.db.session() as s:
        [item] = await load_queue(s, paul, clock())
    assert item.previously_mine
