"""Closing a shared building problem from the console tells every tenant who reported it."""

from __future__ import annotations

from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.storage.models import AuditLog, Conversation, Handoff, Incident, Outbox, Request, Residence
from tests.fakes import RecordingChannel
from tests.handoff.conftest import ClientFactory
from tests.handoff.test_console import HUMAN, NADIA, post, queued
from tests.worker.test_pipeline import settled

AICHA = "+33612345604"  # FLEURS too, another tenant of the same residence


async def shared_lift(rt: Runtime) -> tuple[int, int, int]:
    """Two tenants reported the same lift: the first one's conversation is in the queue."""
    first = await queued(rt, HUMAN, address=NADIA)
    second = await queued(rt, HUMAN, address=AICHA)
    async with rt.db.transaction() as s:
        fleurs = (await s.execute(select(Residence).where(Residence.code == "FLEURS"))).scalar_one()
        incident = Incident(
            residence_id=fleurs.id, building="A", key="ascenseur", summary="ascenseur en panne"
        )
        s.add(incident)
        await s.flush()
        for conv_id in (first, second):
            conv = (
                (await s.execute(select(Conversation).where(Conversation.id == conv_id)))
                .unique()
                .scalar_one()
            )
            req = Request(
                kind="repair",
                tenant_id=conv.tenant_id,
                residence_id=fleurs.id,
                building="A",
                conversation_id=conv_id,
                incident_id=incident.id,
                summary="ascenseur",
                reference=f"R-2026-90000{conv_id}",
            )
            s.add(req)
            await s.flush()
            handoff = (
                await s.execute(select(Handoff).where(Handoff.conversation_id == conv_id))
            ).scalar_one()
            handoff.request_id = req.id
        return first, second, incident.id


async def test_closing_the_incident_tells_every_reporter(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    first, second, incident_id = await shared_lift(runtime)
    karim = await client_for("karim")
    page = await karim.get(f"/console/c/{first}")
    assert "2 signalement(s)" in page.text
    before = len(recording.sent)
    r = await post(karim, f"/console/c/{first}/incident/{incident_id}/close")
    assert r.status_code == 303
    await settled(runtime)
    told = {o.address for o in recording.sent[before:]}
    assert told == {NADIA, AICHA}
    async with runtime.db.session() as s:
        incident = await s.get(Incident, incident_id)
        statuses = {r.status for r in (await s.execute(select(Request))).scalars()}
        audit = (
            await s.execute(select(AuditLog).where(AuditLog.action == "close_incident"))
        ).scalar_one()
    assert incident is not None and incident.status == "closed"
    assert statuses == {"closed"}
    assert audit.detail["told"] == 2
    again = await post(karim, f"/console/c/{first}/incident/{incident_id}/close")
    assert again.status_code == 409
    async with runtime.db.session() as s:
        rows = (
            (await s.execute(select(Outbox).where(Outbox.conversation_id == second)))
            .scalars()
            .all()
        )
    assert len(rows) == 2  # the bot's first reply, then the one "fixed" message, not twice


async def test_another_residence_cannot_close_it(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    first, _second, incident_id = await shared_lift(runtime)
    sophie = await client_for("sophie")
    r = await post(sophie, f"/console/c/{first}/incident/{incident_id}/close")
    assert r.status_code == 403
