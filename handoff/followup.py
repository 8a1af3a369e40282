"""The periodic follow-up of requests: late ones reminded, done ones closed when unanswered.

A request past its deadline is reminded once to its residence's caretakers, then, if it is
still late `late_manager_after_hours` later, once to the managers (a level claimed by a
conditional UPDATE, alerts keyed `late:{request}:{level}:{staff}`: several processes may run
the loop). A request marked done whose tenant has not answered "is it fixed?" for
`request_autoclose_days` is closed.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update

from bot.core.periodic import every
from bot.storage.models import Conversation, Outbox, Request, Residence, Role, StaffUser
from bot.storage.store import audit
from bot.worker.lifecycle import ACTIVE, Actor, Change, RequestStatus, TransitionRefused
from handoff.escalation import contact_of

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

EVERY_SECONDS = 60.0
CARETAKERS, MANAGERS = 1, 2
TEXTS = {
    "fr": "Relais : la demande {reference} ({kind}, {where}) est en retard depuis le {due}. {url}",
    "en": "Relais: request {reference} ({kind}, {where}) is late since {due}. {url}",
}
KINDS = {
    "fr": {"repair": "réparation", "nuisance": "voisinage", "bulky_waste": "encombrants"},
    "en": {"repair": "repair", "nuisance": "nuisance", "bulky_waste": "bulky waste"},
}


async def close_unanswered(rt: Runtime) -> int:
    """Close the requests done for `request_autoclose_days` with no answer from the tenant."""
    cutoff = rt.clock() - timedelta(days=rt.settings.request_autoclose_days)
    async with rt.db.session() as s:
        ids = list(
            (
                await s.execute(
                    select(Request.id).where(
                        Request.status == RequestStatus.DONE.value, Request.updated_at < cutoff
                    )
                )
            ).scalars()
        )
    closed = 0
    for request_id in ids:
        async with rt.db.transaction() as s:
            request = await s.get(Request, request_id)
            if request is None:
                continue
            change = Change(
                RequestStatus.CLOSED, note="no answer from the tenant", tell_tenant=False
            )
            try:
                await rt.lifecycle.change(s, request, change, Actor("system", "followup"))
            except TransitionRefused:
                continue  # answered meanwhile
            conv = (
                await s.get(Conversation, request.conversation_id)
                if request.conversation_id
                else None
            )
            if conv is not None and (conv.dialogue or {}).get("confirming") == request.reference:
                # The question is stale: a "yes" next month is not an answer to it.
                conv.dialogue = {}
            closed += 1
    return closed


async def remind_late(rt: Runtime) -> int:
    """Alerts queued for late requests (caretakers first, managers next)."""
    now = rt.clock()
    manager_after = timedelta(hours=rt.settings.late_manager_after_hours)
    async with rt.db.session() as s:
        rows = list(
            (
                await s.execute(
                    select(Request)
                    .where(
                        Request.due_at < now,
                        Request.status.in_([a.value for a in ACTIVE]),
                        Request.reminded_level < MANAGERS,
                    )
                    .order_by(Request.due_at)
                    .limit(200)
                )
            ).scalars()
        )
    queued = 0
    for r in rows:
        if r.reminded_level == CARETAKERS and r.reminded_at and now - r.reminded_at < manager_after:
            continue
        try:
            queued += await _remind(rt, r, r.reminded_level + 1, now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reminder of request %s failed", r.id)
    if queued:
        rt.outbox.wake()
    return queued


async def _remind(rt: Runtime, r: Request, level: int, now: datetime) -> int:
    async with rt.db.transaction() as s:
        claimed = await s.execute(
            update(Request)
            .where(Request.id == r.id, Request.reminded_level == r.reminded_level)
            .values(reminded_level=level, reminded_at=now)
        )
        if not getattr(claimed, "rowcount", 0):
            return 0
        residence = await s.get(Residence, r.residence_id) if r.residence_id else None
        role = Role.CARETAKER if level == CARETAKERS else Role.MANAGER
        people = [
            p
            for p in (
                await s.execute(
                    select(StaffUser).where(StaffUser.role == role.value, StaffUser.active)
                )
            ).scalars()
            if role == Role.MANAGER or any(res.id == r.residence_id for res in p.residences)
        ]
        sent = []
        for person in people:
            contact = contact_of(rt, person)
            if contact is None:
                continue
            lang = person.language if person.language in TEXTS else "fr"
            where = residence.name if residence else "?"
            if r.building:
                where += f" {'bât.' if lang == 'fr' else 'bldg'} {r.building}"
            due = r.due_at.astimezone(rt.lifecycle.tz) if r.due_at else now
            url = f"{rt.settings.public_url.rstrip('/')}/console/c/{r.conversation_id or ''}"
            text = TEXTS[lang].format(
                reference=r.reference,
                kind=KINDS[lang].get(r.kind, r.kind),
                where=where,
                due=due.strftime("%d/%m %H:%M"),
                url=url,
            )
            channel, address = contact
            s.add(
                Outbox(
                    conversation_id=None,
                    channel=channel,
                    address=address,
                    text=text,
                    extra={"staff_alert": "late", "request_id": r.id},
                    idempotency_key=f"late:{r.id}:{level}:{person.id}",
                    status="pending",
                    next_attempt_at=now,
                )
            )
            sent.append(person.login)
        await audit(
            s,
            "request_late",
            actor="relais",
            target_type="request",
            target_id=r.reference or r.id,
            detail={"level": level, "to": sent},
        )
    log.info("request %s late: reminded to %s (level %s)", r.id, len(sent), level)
    return len(sent)


async def run_followup(rt: Runtime, stop: asyncio.Event, interval: float = EVERY_SECONDS) -> None:
    """The runtime's loop: remind late requests and close unanswered ones until stopped."""

    async def one_round() -> None:
        await remind_late(rt)
        await close_unanswered(rt)

    await every(stop, interval, one_round, name="request follow-up", first=interval)
