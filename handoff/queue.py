"""What the console reads: the queue of one staff member, a conversation with its context,
and who is on call when a residence's caretaker lodge is closed."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import CaseStatus
from bot.dialogue.schedule import is_open, next_opening
from bot.storage.models import (
    Attachment,
    Author,
    Conversation,
    ConversationState,
    Handoff,
    Incident,
    Message,
    Request,
    Residence,
    Role,
    StaffUser,
    Tenant,
)
from handoff.auth import EMERGENCY, visible_clause, visible_residence_ids

WAITING = (ConversationState.QUEUED.value, ConversationState.ASSIGNED.value)
VULNERABLE = 5
FIRST_WORDS = 90


@dataclass(frozen=True, slots=True)
class QueueItem:
    conversation_id: int
    state: str
    intent: str
    priority: int
    channel: str
    residence: str  # name, "" when the tenant is not identified
    building: str
    tenant_name: str | None  # None: not identified
    first_words: str
    waited_seconds: float
    assigned_to: str | None  # display name of the holder
    mine: bool  # held by the viewer
    previously_mine: bool  # the viewer handled this tenant's last conversation

    @property
    def emergency(self) -> bool:
        return self.priority >= EMERGENCY

    @property
    def vulnerable(self) -> bool:
        return VULNERABLE <= self.priority < EMERGENCY


def first_words(text: str, limit: int = FIRST_WORDS) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0] + "…"


async def load_queue(s: AsyncSession, staff: StaffUser, now: datetime) -> list[QueueItem]:
    """Conversations waiting (queued or held) that this person may see: emergencies first,
    then the longest waiting."""
    convs = list(
        (
            await s.execute(
                select(Conversation)
                .where(Conversation.state.in_(WAITING), visible_clause(staff))
                .order_by(
                    Conversation.priority.desc(),
                    Conversation.queued_at.asc(),
                    Conversation.id.asc(),
                )
                .limit(500)
            )
        )
        .unique()
        .scalars()
    )
    if not convs:
        return []
    ids = [c.id for c in convs]
    last_in = (
        select(Message.conversation_id, func.max(Message.id).label("mid"))
        .where(Message.conversation_id.in_(ids), Message.author == Author.TENANT.value)
        .group_by(Message.conversation_id)
        .subquery()
    )
    rows = await s.execute(
        select(last_in.c.conversation_id, Message.text).join(Message, Message.id == last_in.c.mid)
    )
    texts: dict[int, str] = dict(rows.tuples().all())
    residences = await residence_names(s)
    holders = await staff_names(s, {c.assigned_to for c in convs if c.assigned_to})
    items = []
    for c in convs:
        tenant = c.tenant
        since = c.queued_at or c.last_message_at or now
        items.append(
            QueueItem(
                conversation_id=c.id,
                state=c.state,
                intent=c.intent or "",
                priority=c.priority,
                channel=c.channel,
                residence=residences.get(c.residence_id, "") if c.residence_id else "",
                building=tenant.building if tenant else "",
                tenant_name=(tenant.display_name or None) if tenant else None,
                first_words=first_words(texts.get(c.id, "")),
                waited_seconds=max(0.0, (now - since).total_seconds()),
                assigned_to=holders.get(c.assigned_to) if c.assigned_to else None,
                mine=c.assigned_to == staff.id,
                previously_mine=c.assigned_to is None and c.last_caretaker_id == staff.id,
            )
        )
    return items


async def residence_names(s: AsyncSession) -> dict[int, str]:
    return dict((await s.execute(select(Residence.id, Residence.name))).tuples().all())


async def staff_names(s: AsyncSession, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = await s.execute(
        select(StaffUser.id, StaffUser.display_name, StaffUser.login).where(
            StaffUser.id.in_(sorted(ids))
        )
    )
    return {i: name or login for i, name, login in rows.tuples()}


# -- opening hours ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OnCall:
    """A residence whose caretaker lodge is closed now, and who to call instead."""

    residence: str
    reopens: datetime | None
    oncall: list[tuple[str, str]]  # (name, phone)
    phone: str  # the landlord's on-call number


async def closed_residences(
    s: AsyncSession, staff: StaffUser, now: datetime, tz: ZoneInfo, landlord: dict[str, Any]
) -> list[OnCall]:
    ids = visible_residence_ids(staff)
    stmt = select(Residence).order_by(Residence.name)
    if ids is not None:
        stmt = stmt.where(Residence.id.in_(sorted(ids)))
    residences = list((await s.execute(stmt)).scalars())
    local = now.astimezone(tz)
    closed = [
        r
        for r in residences
        if (hours := (r.caretaker_hours or {}).get("hours")) and not is_open(hours, local)
    ]
    if not closed:
        return []
    oncall_staff = list(
        (
            await s.execute(
                select(StaffUser).where(
                    StaffUser.role == Role.ONCALL.value, StaffUser.active.is_(True)
                )
            )
        ).scalars()
    )
    result = []
    for r in closed:
        people = [
            (p.display_name or p.login, p.phone or "")
            for p in oncall_staff
            if not p.residences or any(x.id == r.id for x in p.residences)
        ]
        result.append(
            OnCall(
                residence=r.name,
                reopens=next_opening(r.caretaker_hours.get("hours", {}), local),
                oncall=people,
                phone=str(landlord.get("oncall_phone", "")),
            )
        )
    return result


# -- one conversation -----------------------------------------------------------------------


@dataclass(slots=True)
class ConversationView:
    conversation: Conversation
    tenant: Tenant | None
    residence: Residence | None
    messages: list[Message]
    handoff: Handoff | None  # the open one, else the latest
    request: Request | None
    open_requests: list[Request]
    authors: dict[int, str]  # staff id -> name
    nlu: dict[str, Any] | None  # the latest reading of a tenant message
    colleagues: list[StaffUser] = field(default_factory=list)
    incident: Incident | None = None  # the shared building problem this request joined
    incident_reports: int = 0


async def load_conversation(s: AsyncSession, conv_id: int) -> Conversation | None:
    return (
        (await s.execute(select(Conversation).where(Conversation.id == conv_id)))
        .unique()
        .scalar_one_or_none()
    )


async def load_thread(s: AsyncSession, conv: Conversation, limit: int = 300) -> list[Message]:
    rows = list(
        (
            await s.execute(
                select(Message)
                .where(Message.conversation_id == conv.id)
                .order_by(Message.id.desc())
                .limit(limit)
            )
        ).scalars()
    )
    rows.reverse()
    return rows


async def latest_handoff(s: AsyncSession, conv_id: int) -> Handoff | None:
    return (
        await s.execute(
            select(Handoff)
            .where(Handoff.conversation_id == conv_id)
            .order_by(Handoff.closed_at.is_(None).desc(), Handoff.id.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def colleagues_of(s: AsyncSession, conv: Conversation, me: StaffUser) -> list[StaffUser]:
    """Who a conversation may be transferred to: caretakers and on-call staff of its
    residence (on call only, for a tenant nobody identified)."""
    people = list(
        (
            await s.execute(
                select(StaffUser)
                .where(
                    StaffUser.active.is_(True),
                    StaffUser.role.in_((Role.CARETAKER.value, Role.ONCALL.value)),
                    StaffUser.id != me.id,
                )
                .order_by(StaffUser.display_name)
            )
        ).scalars()
    )
    if conv.residence_id is None:
        return [p for p in people if p.role == Role.ONCALL.value]
    return [p for p in people if any(r.id == conv.residence_id for r in p.residences)]


async def load_view(s: AsyncSession, conv: Conversation, me: StaffUser) -> ConversationView:
    messages = await load_thread(s, conv)
    handoff = await latest_handoff(s, conv.id)
    request = await s.get(Request, handoff.request_id) if handoff and handoff.request_id else None
    tenant = conv.tenant
    open_requests: list[Request] = []
    if tenant is not None:
        open_requests = list(
            (
                await s.execute(
                    select(Request)
                    .where(Request.tenant_id == tenant.id, Request.status == CaseStatus.OPEN)
                    .order_by(Request.id.desc())
                    .limit(10)
                )
            ).scalars()
        )
    residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
    incident = None
    reports = 0
    if request is not None and request.incident_id is not None:
        incident = await s.get(Incident, request.incident_id)
        reports = int(
            (
                await s.execute(
                    select(func.count(Request.id)).where(Request.incident_id == request.incident_id)
                )
            ).scalar_one()
        )
    authors = await staff_names(
        s,
        {m.staff_id for m in messages if m.staff_id}
        | ({conv.assigned_to} if conv.assigned_to else set()),
    )
    nlu = next(
        (m.nlu for m in reversed(messages) if m.author == Author.TENANT.value and m.nlu), None
    )
    return ConversationView(
        conversation=conv,
        tenant=tenant,
        residence=residence,
        messages=messages,
        handoff=handoff,
        request=request,
        open_requests=open_requests,
        authors=authors,
        nlu=nlu,
        colleagues=await colleagues_of(s, conv, me),
        incident=incident,
        incident_reports=reports,
    )


async def load_attachment(s: AsyncSession, attachment_id: int) -> tuple[Attachment, int] | None:
    row = (
        (
            await s.execute(
                select(Attachment, Message.conversation_id)
                .join(Message, Message.id == Attachment.message_id)
                .where(Attachment.id == attachment_id)
            )
        )
        .tuples()
        .one_or_none()
    )
    return (row[0], row[1]) if row else None
