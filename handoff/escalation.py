"""Never lost: a handoff nobody takes is pushed to a caretaker's phone, then to on call.

Level 1 goes to the caretaker who last handled this tenant's conversation (a tenant who
comes back finds the same person), else to the residence's caretakers; outside the lodge's
opening hours it skips straight to level 2, the on-call staff. Emergencies go to on call at
once (the caretakers see them first in their queue); everything else waits
`escalate_after_minutes` per level.

Every process may run the loop: a level is claimed by a conditional UPDATE, and the outbox
idempotency keys (`escalate:{handoff}:{level}:{staff}`) make a repeated alert impossible.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import periodic
from bot.core.status import OutboxStatus
from bot.dialogue.schedule import is_open
from bot.storage.models import (
    Conversation,
    ConversationState,
    Handoff,
    Outbox,
    Residence,
    Role,
    StaffUser,
)
from bot.storage.store import audit
from handoff.auth import EMERGENCY
from handoff.i18n import MESSAGES, translate

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

CARETAKER, ONCALL = 1, 2
EVERY_SECONDS = 15.0


def contact_of(rt: Runtime, staff: StaffUser) -> tuple[str, str] | None:
    """(channel, address) to reach a staff member: Telegram when both sides have it, else SMS."""
    if staff.telegram_chat_id and "telegram" in rt.channels:
        return "telegram", staff.telegram_chat_id
    if staff.phone:
        return "sms", staff.phone
    return None


async def notify_staff(
    s: AsyncSession,
    rt: Runtime,
    staff: StaffUser,
    conv: Conversation,
    *,
    kind: str,
    key: str,
    minutes: int = 0,
    by: str = "",
    reason: str = "",
) -> bool:
    """Queue an alert with a link to the conversation; no tenant text goes in it (an SMS
    lands on a lock screen)."""
    contact = contact_of(rt, staff)
    if contact is None:
        log.warning("staff %s has no phone nor Telegram: alert not sent", staff.login)
        return False
    lang = staff.language or "fr"
    where = ""
    if conv.residence_id:
        residence = await s.get(Residence, conv.residence_id)
        where = residence.name if residence else ""
    if conv.tenant is not None and conv.tenant.building:
        building = translate(lang, "alert.building", building=conv.tenant.building)
        where += (" " if where else "") + building
    if not where:
        where = translate(lang, "alert.unidentified")
    intent_key = f"alert.intent.{conv.intent}"
    intent = translate(lang, intent_key) if intent_key in MESSAGES else (conv.intent or "?")
    url = f"{rt.settings.public_url.rstrip('/')}/console/c/{conv.id}"
    text = translate(
        lang,
        f"alert.{kind}",
        intent=intent,
        minutes=minutes,
        where=where,
        url=url,
        by=by,
        reason=reason or intent,
    )
    channel, address = contact
    s.add(
        Outbox(
            message_id=None,
            conversation_id=None,  # not part of the tenant's thread, nor of its delivery order
            channel=channel,
            address=address,
            text=text,
            extra={
                "staff_alert": kind,
                "conversation_id": conv.id,
                "to": staff.role,
                "reason": reason or kind,
            },
            idempotency_key=key[:128],
            status=OutboxStatus.PENDING,
            next_attempt_at=rt.clock(),
        )
    )
    return True


async def _staff(s: AsyncSession, role: Role) -> list[StaffUser]:
    return list(
        (
            await s.execute(
                select(StaffUser)
                .where(StaffUser.role == role.value, StaffUser.active.is_(True))
                .order_by(StaffUser.id)
            )
        ).scalars()
    )


def _covers(staff: StaffUser, residence_id: int | None) -> bool:
    return residence_id is not None and any(r.id == residence_id for r in staff.residences)


async def targets(
    s: AsyncSession, conv: Conversation, level: int, lodge_open: bool
) -> tuple[int, list[StaffUser]]:
    """(level actually reached, who to alert): an empty caretaker level falls to on call."""
    if level == CARETAKER and lodge_open and conv.residence_id is not None:
        caretakers = [p for p in await _staff(s, Role.CARETAKER) if _covers(p, conv.residence_id)]
        previous = next((p for p in caretakers if p.id == conv.last_caretaker_id), None)
        if previous is not None:
            return CARETAKER, [previous]
        if caretakers:
            return CARETAKER, caretakers
    oncall = await _staff(s, Role.ONCALL)
    covering = [p for p in oncall if _covers(p, conv.residence_id)]
    return ONCALL, covering or oncall


async def alert_now(
    s: AsyncSession, rt: Runtime, conv: Conversation, *, to: str, reason: str, key: str
) -> int:
    """Alert staff at once, whatever the conversation's state (queued, taken or not yet
    handed off): "oncall" for an emergency, "caretaker" for a report that got worse (the
    residence's caretakers, on call when none). An open handoff is marked as escalated so
    the loop does not alert the same people again. Returns the alerts queued."""
    now = rt.clock()
    level = ONCALL if to == "oncall" else CARETAKER
    _level, people = await targets(s, conv, level, lodge_open=True)
    sent = 0
    for person in people:
        if await notify_staff(
            s, rt, person, conv, kind="alert", key=f"{key}:{person.id}", reason=reason
        ):
            sent += 1
    if level == ONCALL:
        await s.execute(
            update(Handoff)
            .where(Handoff.conversation_id == conv.id, Handoff.closed_at.is_(None))
            .values(escalation_level=ONCALL, escalated_at=now)
        )
    if sent:
        await audit(
            s,
            "alert",
            actor="relais",
            target_type="conversation",
            target_id=conv.id,
            detail={"to": to, "reason": reason, "alerts": sent},
        )
    return sent


def _lodge_open(residence: Residence | None, now: datetime, tz: ZoneInfo) -> bool:
    hours = (residence.caretaker_hours or {}).get("hours") if residence else None
    return True if not hours else is_open(hours, now.astimezone(tz))


async def escalate_due(rt: Runtime) -> int:
    """Push every handoff whose wait passed its level's delay; returns the alerts queued."""
    now = rt.clock()
    normal = timedelta(minutes=rt.settings.escalate_after_minutes)
    urgent = timedelta(minutes=rt.settings.escalate_emergency_after_minutes)
    tz = ZoneInfo(rt.settings.timezone)
    async with rt.db.session() as s:
        waiting = list(
            (
                await s.execute(
                    select(Handoff)
                    .join(Conversation, Conversation.id == Handoff.conversation_id)
                    .where(
                        Handoff.closed_at.is_(None),
                        Handoff.taken_at.is_(None),
                        Handoff.escalation_level < ONCALL,
                        Conversation.state == ConversationState.QUEUED.value,
                        Conversation.assigned_to.is_(None),
                    )
                    .order_by(Handoff.priority.desc(), Handoff.id)
                    .limit(200)
                )
            ).scalars()
        )
    queued = 0
    for h in waiting:
        since = h.escalated_at or h.created_at
        delay = urgent if h.priority >= EMERGENCY else normal
        if h.priority >= EMERGENCY and h.escalation_level == 0:
            delay = timedelta(0)  # the on-call team is alerted of an emergency at once
        if now - since < delay:
            continue
        try:
            queued += await _escalate(rt, h, now, tz)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("escalation of handoff %s failed", h.id)
    if queued:
        rt.outbox.wake()
    return queued


async def _escalate(rt: Runtime, h: Handoff, now: datetime, tz: ZoneInfo) -> int:
    async with rt.db.transaction() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.id == h.conversation_id)))
            .unique()
            .scalar_one()
        )
        residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
        wanted = ONCALL if h.priority >= EMERGENCY else h.escalation_level + 1
        level, people = await targets(s, conv, wanted, _lodge_open(residence, now, tz))
        claimed = await s.execute(
            update(Handoff)
            .where(
                Handoff.id == h.id,
                Handoff.escalation_level == h.escalation_level,
                Handoff.taken_at.is_(None),
                Handoff.closed_at.is_(None),
            )
            .values(escalation_level=level, escalated_at=now)
        )
        if not getattr(claimed, "rowcount", 0):
            return 0  # another process escalated it, or someone took it meanwhile
        minutes = int((now - h.created_at).total_seconds() // 60)
        sent = []
        for person in people:
            if await notify_staff(
                s,
                rt,
                person,
                conv,
                kind="escalate",
                key=f"escalate:{h.id}:{level}:{person.id}",
                minutes=minutes,
            ):
                sent.append(person.login)
        await audit(
            s,
            "escalate",
            actor="relais",
            target_type="conversation",
            target_id=conv.id,
            detail={"handoff_id": h.id, "level": level, "to": sent},
        )
    log.info("handoff %s escalated to level %s (%s alert(s))", h.id, level, len(sent))
    return len(sent)


async def run_escalation(rt: Runtime, stop: asyncio.Event, every: float = EVERY_SECONDS) -> None:
    """The runtime's loop: look for handoffs to push every `every` seconds until stopped."""
    await periodic.every(
        stop, every, lambda: escalate_due(rt), name="escalation round", first=every
    )
