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
from bot.messaging.alerts import ALERT_FAILED, contact_of, queue_flood_report
from bot.storage.models import (
    AuditLog,
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


async def _where(s: AsyncSession, conv: Conversation, lang: str, *, building: bool = True) -> str:
    where = ""
    if conv.residence_id:
        residence = await s.get(Residence, conv.residence_id)
        where = residence.name if residence else ""
    if building and conv.tenant is not None and conv.tenant.building:
        shown = translate(lang, "alert.building", building=conv.tenant.building)
        where += (" " if where else "") + shown
    if not where:
        where = translate(lang, "alert.unidentified")
    return where


def _intent(lang: str, conv: Conversation) -> str:
    intent_key = f"alert.intent.{conv.intent}"
    return translate(lang, intent_key) if intent_key in MESSAGES else (conv.intent or "?")


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
    lands on a lock screen).

    Alerts are grouped per person, kind, residence and intent (a transfer, one colleague's
    deliberate act, is not): the first goes at once; those within `alert_group_minutes` of
    the last one sent wait for the end of that time and go as one alert listing every
    conversation. So a flood of reports pages a person once per few minutes, and reaching
    `alert_flood_reports` in a group is itself told to on-call and managers (once an hour)."""
    contact = contact_of(rt, staff)
    if contact is None:
        log.warning("staff %s has no phone nor Telegram: alert not sent", staff.login)
        # Kept, so that the console says it (handoff.queue.load_alert_failures).
        s.add(
            AuditLog(
                at=rt.clock(),
                actor="relais",
                action=ALERT_FAILED,
                target_type="conversation",
                target_id=str(conv.id),
                detail={"staff_id": staff.id, "to": staff.role, "kind": kind, "why": "no_contact"},
            )
        )
        return False
    lang = staff.language or "fr"
    where = await _where(s, conv, lang)
    intent = _intent(lang, conv)
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
    now = rt.clock()
    row = Outbox(
        message_id=None,
        conversation_id=None,  # not part of the tenant's thread, nor of its delivery order
        channel=channel,
        address=address,
        text=text,
        extra={
            "staff_alert": kind,
            "conversation_id": conv.id,
            "to": staff.role,
            "staff_id": staff.id,  # who was not reached, should it fail
            "reason": reason or kind,
        },
        idempotency_key=key[:128],
        status=OutboxStatus.PENDING,
        next_attempt_at=now,
        created_at=now,
    )
    if kind in UNGROUPED:
        s.add(row)
        return True
    group = f"{kind}:{conv.residence_id or 0}:{conv.intent or '?'}"
    window = timedelta(minutes=rt.settings.alert_group_minutes)
    for _attempt in range(3):
        rows = await _group_rows(s, channel, address, group)
        if any(key in (r.extra or {}).get("keys", ()) for r in rows):
            return True  # this alert is already in one (the caller ran twice)
        last = max(rows, key=_due, default=None)
        reports = sum(len(r.extra.get("conversations", ())) for r in rows if now - _due(r) < window)
        if reports + 1 >= rt.settings.alert_flood_reports:
            what = f"{intent}, {await _where(s, conv, lang, building=False)}"
            await queue_flood_report(s, rt, "alerts", what=what, now=now)
        if last is None or now - _due(last) >= window:
            # Nothing sent to this person for this group lately: at once.
            row.extra = {**row.extra, **_group_extra(group, now, [key], [conv.id])}
            s.add(row)
            return True
        if last.status == OutboxStatus.PENDING:
            if await _append(s, rt, last, staff, conv, key, lang):
                return True
            continue  # claimed by the dispatcher meanwhile: look again
        due = _due(last) + window
        s.add(
            Outbox(
                message_id=None,
                conversation_id=None,
                channel=channel,
                address=address,
                text=text,
                extra={
                    "staff_alert": kind,
                    "conversation_id": conv.id,
                    "to": staff.role,
                    "staff_id": staff.id,
                    **_group_extra(group, due, [key], [conv.id]),
                },
                idempotency_key=f"alertgroup:{staff.id}:{group}:{due.isoformat()}"[:128],
                status=OutboxStatus.PENDING,
                next_attempt_at=due,
            )
        )
        return True
    s.add(row)  # the group kept changing under us: better an alert too many than none
    return True


# Alerts sent as they come: a colleague's transfer is one deliberate act, never a flood.
UNGROUPED = frozenset({"transfer"})
GROUP_TEXTS = {
    "fr": "Relais : {count} signalements « {intent} » en attente ({where}) : {urls}",
    "en": 'Relais: {count} "{intent}" reports waiting ({where}): {urls}',
}
GROUP_LISTED = 5  # links in one grouped alert; the rest are in the queue


def _group_extra(
    group: str, due: datetime, keys: list[str], conversations: list[int]
) -> dict[str, object]:
    return {"group": group, "due": due.isoformat(), "keys": keys, "conversations": conversations}


def _due(row: Outbox) -> datetime:
    return datetime.fromisoformat(str((row.extra or {}).get("due")))


async def _group_rows(s: AsyncSession, channel: str, address: str, group: str) -> list[Outbox]:
    """This person's latest alerts of `group`. Staff alerts are the outbox rows without a
    conversation (the (conversation_id, status) index finds them)."""
    recent = (
        await s.execute(
            select(Outbox)
            .where(
                Outbox.conversation_id.is_(None),
                Outbox.channel == channel,
                Outbox.address == address,
            )
            .order_by(Outbox.id.desc())
            .limit(100)
        )
    ).scalars()
    return [r for r in recent if (r.extra or {}).get("group") == group and "due" in r.extra]


async def _append(
    s: AsyncSession,
    rt: Runtime,
    row: Outbox,
    staff: StaffUser,
    conv: Conversation,
    key: str,
    lang: str,
) -> bool:
    """Add a conversation to a pending grouped alert; False if it left 'pending' meanwhile."""
    conversations = [*row.extra.get("conversations", ()), conv.id]
    base = rt.settings.public_url.rstrip("/")
    urls = " ".join(f"{base}/console/c/{c}" for c in conversations[:GROUP_LISTED])
    if len(conversations) > GROUP_LISTED:
        urls += f" (+{len(conversations) - GROUP_LISTED}) {base}/console"
    text = translate(
        lang,
        "alert.group",
        count=len(conversations),
        intent=_intent(lang, conv),
        where=await _where(s, conv, lang, building=False),
        urls=urls,
    )
    extra = {**row.extra, "keys": [*row.extra.get("keys", ()), key], "conversations": conversations}
    # Compare-and-set on the text: two processes adding at once cannot lose one another's.
    done = await s.execute(
        update(Outbox)
        .where(Outbox.id == row.id, Outbox.status == OutboxStatus.PENDING, Outbox.text == row.text)
        .values(text=text, extra=extra)
        .execution_options(synchronize_session=False)
    )
    if getattr(done, "rowcount", 0):
        await s.refresh(row)
        return True
    await s.refresh(row)
    return False


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
