"""Announcements to a building: one message to every tenant of a residence or building.

Each tenant gets it on the channel they use (their latest conversation; else SMS to their
phone, else Telegram): SMS opt-outs are kept by the outbox (counted as suppressed), a web chat
shows it when the tenant comes back. Push channels respect the quiet hours. When the problem
announced is a building one (the lift, the hall light...), an incident is opened for it, so that
tenants who then report it are told it is already known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.workdays import quiet_until
from bot.storage.models import (
    Author,
    Broadcast,
    Conversation,
    Incident,
    Outbox,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.store import (
    audit,
    clean_text,
    outbound_message,
    outbox_row,
)
from bot.worker.lifecycle import HELD_CHANNELS
from handoff.auth import csrf_protect, current_staff, runtime_of, visible_residence_ids
from handoff.i18n import register
from handoff.templating import render

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

router = APIRouter(include_in_schema=False)
Staff = Depends(current_staff)
Checked = Depends(csrf_protect)

MAX_TEXT = 480  # three SMS
# Building problems an announcement can declare, as the dialogue keys them (reading.incident_key).
PROBLEMS = ("ascenseur", "hall:lumiere", "cage_escalier:lumiere", "hall:porte", "hall:interphone")

register(
    {
        "nav.broadcasts": {"fr": "Annonces", "en": "Announcements"},
        "bc.title": {"fr": "Annonces aux locataires", "en": "Announcements to tenants"},
        "bc.residence": {"fr": "Résidence", "en": "Residence"},
        "bc.building": {"fr": "Bâtiment", "en": "Building"},
        "bc.all_buildings": {"fr": "Tous les bâtiments", "en": "All buildings"},
        "bc.problem": {"fr": "Problème annoncé", "en": "Problem announced"},
        "bc.no_problem": {"fr": "Aucun (information)", "en": "None (information)"},
        "bc.text": {
            "fr": "Message (court, il part par SMS)",
            "en": "Message (short: it goes by SMS)",
        },
        "bc.send": {"fr": "Envoyer à tous", "en": "Send to everyone"},
        "bc.sent": {"fr": "Annonce envoyée à {n} locataire(s).", "en": "Sent to {n} tenant(s)."},
        "bc.history": {"fr": "Annonces envoyées", "en": "Announcements sent"},
        "bc.counts": {
            "fr": "{recipients} destinataires · {sent} envoyés · {waiting} en attente · "
            "{failed} échecs · {suppressed} désinscrits",
            "en": "{recipients} recipients · {sent} sent · {waiting} waiting · "
            "{failed} failed · {suppressed} opted out",
        },
        "bc.none": {"fr": "Aucune annonce.", "en": "No announcement."},
        "bc.problem.ascenseur": {"fr": "Ascenseur en panne", "en": "Lift out of service"},
        "bc.problem.hall:lumiere": {"fr": "Éclairage du hall", "en": "Hall lighting"},
        "bc.problem.cage_escalier:lumiere": {
            "fr": "Éclairage de l'escalier",
            "en": "Stairwell lighting",
        },
        "bc.problem.hall:porte": {"fr": "Porte du hall", "en": "Hall door"},
        "bc.problem.hall:interphone": {"fr": "Interphone", "en": "Intercom"},
        "bc.empty": {"fr": "Écrivez le message.", "en": "Write the message."},
    }
)


@dataclass(frozen=True, slots=True)
class Counts:
    recipients: int
    sent: int
    waiting: int
    failed: int
    suppressed: int


async def _reach(s: AsyncSession, t: Tenant) -> Conversation | None:
    """The conversation a tenant is reached on: the one they wrote last, else SMS, else
    Telegram; None when Relais has no way to reach them."""
    conv = (
        (
            await s.execute(
                select(Conversation)
                .where(Conversation.tenant_id == t.id)
                .order_by(Conversation.last_message_at.desc())
                .limit(1)
            )
        )
        .unique()
        .scalar_one_or_none()
    )
    if conv is not None:
        return conv
    for channel, address in (("sms", t.phone), ("telegram", t.telegram_chat_id)):
        if address:
            return await _conversation_for(s, t, channel, address)
    return None


async def _conversation_for(s: AsyncSession, t: Tenant, channel: str, address: str) -> Conversation:
    """The conversation of this address (created for the tenant if they never wrote)."""
    stmt = select(Conversation).where(
        Conversation.channel == channel, Conversation.address == address
    )
    conv = (await s.execute(stmt)).unique().scalar_one_or_none()
    if conv is None:
        conv = Conversation(
            channel=channel,
            address=address,
            tenant_id=t.id,
            residence_id=t.residence_id,
            language=t.language or "fr",
            dialogue={},
        )
        try:
            async with s.begin_nested():  # the tenant may write at this very moment
                s.add(conv)
        except IntegrityError:
            conv = (await s.execute(stmt)).unique().scalar_one()
    return conv


async def send_broadcast(
    rt: Runtime,
    staff: StaffUser,
    *,
    residence_id: int,
    building: str,
    text: str,
    problem: str = "",
) -> Broadcast:
    """Store the announcement and one outbox row per tenant reached, in one transaction."""
    now = rt.clock()
    held = quiet_until(now, rt.settings.quiet_hours, rt.lifecycle.tz)
    async with rt.db.transaction() as s:
        residence = await s.get(Residence, residence_id)
        assert residence is not None
        incident_id = None
        if problem in PROBLEMS:
            for b in [building] if building else list(residence.buildings or [""]):
                incident_id = await _open_incident(s, residence, str(b), problem, text, now)
        broadcast = Broadcast(
            residence_id=residence_id,
            building=building,
            text=text,
            incident_id=incident_id,
            staff_id=staff.id,
            created_at=now,
        )
        s.add(broadcast)
        await s.flush()
        stmt = select(Tenant).where(Tenant.residence_id == residence_id, Tenant.erased_at.is_(None))
        if building:
            stmt = stmt.where(Tenant.building == building)
        reached = 0
        for t in (await s.execute(stmt)).unique().scalars():
            conv = await _reach(s, t)
            if conv is None:
                continue
            msg = outbound_message(
                conv, text, author=Author.STAFF.value, staff_id=staff.id, now=now
            )
            s.add(msg)
            await s.flush()
            wait = held if conv.channel in HELD_CHANNELS else None
            row = outbox_row(conv, msg, key=f"broadcast:{broadcast.id}:{conv.id}", due=wait or now)
            row.extra = {**row.extra, "broadcast_id": broadcast.id}
            if wait is not None:
                row.conversation_id = None  # held till morning: the night's replies go first
            s.add(row)
            reached += 1
        broadcast.recipients = reached
        await audit(
            s,
            "broadcast",
            staff_id=staff.id,
            actor=staff.login,
            target_type="residence",
            target_id=residence.code,
            detail={"building": building, "recipients": reached, "problem": problem},
        )
    rt.outbox.wake()
    return broadcast


async def _open_incident(
    s: AsyncSession, residence: Residence, building: str, key: str, text: str, now: datetime
) -> int:
    found = (
        (
            await s.execute(
                select(Incident).where(
                    Incident.residence_id == residence.id,
                    Incident.building == building,
                    Incident.key == key,
                    Incident.status == "open",
                )
            )
        )
        .scalars()
        .first()
    )
    if found is not None:
        return found.id
    incident = Incident(
        residence_id=residence.id, building=building, key=key, summary=text[:200], created_at=now
    )
    s.add(incident)
    await s.flush()
    return incident.id


async def counts(s: AsyncSession, broadcast: Broadcast) -> Counts:
    rows = await s.execute(
        select(Outbox.status, func.count(Outbox.id))
        .where(Outbox.idempotency_key.like(f"broadcast:{broadcast.id}:%"))
        .group_by(Outbox.status)
    )
    by = {str(status): int(n) for status, n in rows}
    return Counts(
        recipients=broadcast.recipients,
        sent=by.get("sent", 0),
        waiting=by.get("pending", 0) + by.get("sending", 0),
        failed=by.get("failed", 0),
        suppressed=by.get("suppressed", 0),
    )


# -- pages ----------------------------------------------------------------------------------


async def _residences(s: AsyncSession, staff: StaffUser) -> list[Residence]:
    ids = visible_residence_ids(staff)
    stmt = select(Residence).order_by(Residence.name)
    if ids is not None:
        stmt = stmt.where(Residence.id.in_(ids or {-1}))
    return list((await s.execute(stmt)).scalars())


async def _page(request: Request, staff: StaffUser, **extra: Any) -> dict[str, Any]:
    rt = runtime_of(request)
    async with rt.db.session() as s:
        residences = await _residences(s, staff)
        ids = [r.id for r in residences]
        sent = list(
            (
                await s.execute(
                    select(Broadcast)
                    .where(or_(Broadcast.residence_id.in_(ids or [-1])))
                    .order_by(Broadcast.id.desc())
                    .limit(20)
                )
            ).scalars()
        )
        history = [(b, await counts(s, b)) for b in sent]
    names = {r.id: r.name for r in residences}
    return {
        "residences": residences,
        "history": history,
        "names": names,
        "problems": PROBLEMS,
        "tz": rt.lifecycle.tz,
        **extra,
    }


@router.get("/console/broadcasts")
async def page(request: Request, staff: StaffUser = Staff) -> Response:
    sent = request.query_params.get("sent")
    return render(
        request,
        "broadcasts.html",
        await _page(request, staff, sent=int(sent) if sent and sent.isdigit() else None),
    )


@router.post("/console/broadcasts")
async def post(
    request: Request,
    staff: StaffUser = Checked,
    residence: int = Form(0),
    building: str = Form(""),
    problem: str = Form(""),
    text: str = Form(""),
) -> Response:
    rt = runtime_of(request)
    ids = visible_residence_ids(staff)
    if ids is not None and residence not in ids:
        raise HTTPException(status_code=403)
    body = clean_text(text).strip()[:MAX_TEXT]
    if not body:
        ctx = await _page(request, staff, error="bc.empty")
        return render(request, "broadcasts.html", ctx, status_code=400)
    async with rt.db.session() as s:
        found = await s.get(Residence, residence)
    if found is None:
        raise HTTPException(status_code=404)
    if building and building not in (found.buildings or []):
        building = ""
    b = await send_broadcast(
        rt, staff, residence_id=residence, building=building, text=body, problem=problem
    )
    return RedirectResponse(f"/console/broadcasts?sent={b.recipients}", status_code=303)
