"""What the console reads: the queue of one staff member, a conversation with its context,
and who is on call when a residence's caretaker lodge is closed."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import ACTIVE_REQUESTS, OutboxStatus
from bot.dialogue.schedule import is_open, next_opening
from bot.messaging.alerts import ALERT_FAILED
from bot.storage.models import (
    Attachment,
    AuditLog,
    Author,
    Conversation,
    ConversationState,
    Handoff,
    Incident,
    Message,
    Outbox,
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
    # What it is about, in words: the request's problem and place ("Fuite sous l'évier ·
    # cuisine"), else the first thing the tenant said that says something.
    summary: str = ""
    reference: str = ""  # the request's, when there is one

    @property
    def waiting(self) -> bool:
        """Nobody holds it yet: what the queue's count counts."""
        return self.state == ConversationState.QUEUED.value

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


# Answers to the bot's questions, which say nothing of the problem on their own.
_WORDS = re.compile(r"[^\W\d_]{2,}")
SHORT_ANSWERS = frozenset(
    " ".join(
        [
            "oui non ok okay merci yes no thanks bonjour bonsoir salut hello rien personne",
            # the little words around an answer ("dans le salon", "depuis hier matin")
            "le la les de du des un une dans sur sous au aux en mon ma mes il elle et ou",
            "depuis hier matin soir the an in on my is it",
        ]
    ).split()
)
RECENT_TENANT_MESSAGES = 12  # the first meaningful one is looked for among these


def meaningful(text: str) -> bool:
    """A message that tells something ("le chauffage ne marche plus"), not an answer to a
    question ("non", "4", "L-10231", "oui merci")."""
    words = [w.lower() for w in _WORDS.findall(text)]
    return len(words) >= 3 and len([w for w in words if w not in SHORT_ANSWERS]) >= 2


def request_summary(request: Request) -> str:
    """The problem and the place of a request (its summary's first two parts, the photo flag
    left out): "Fuite sous l'évier · cuisine"."""
    parts = [p.strip() for p in (request.summary or "").split(" · ")]
    parts = [p for p in parts if p and p.lower() != "photo"]
    if parts:
        line = " · ".join(parts[:2])
        return first_words(line[:1].upper() + line[1:])  # a line of its own: "Gaz · ça sent…"
    text = (request.details or {}).get("text") or (request.details or {}).get("what") or ""
    return first_words(str(text))


def handoff_summary(reason: str) -> str:
    """What a handoff's reason says the problem is: the quoted words ("Réparation : « le
    chauffage » — lieu : salon" → "le chauffage"), else the reason itself."""
    m = re.search(r"«\s*(.+?)\s*»", reason or "")
    return first_words(m.group(1) if m else reason or "")


async def _summaries(
    s: AsyncSession, convs: list[Conversation], last_texts: dict[int, str]
) -> dict[int, tuple[str, str]]:
    """conversation id -> (summary, request reference) for the queue's items."""
    ids = [c.id for c in convs]
    handoffs = (
        await s.execute(
            select(Handoff.conversation_id, Handoff.request_id, Handoff.reason)
            .where(Handoff.conversation_id.in_(ids), Handoff.closed_at.is_(None))
            .order_by(Handoff.id)
        )
    ).tuples()
    open_handoff: dict[int, tuple[int | None, str]] = {c: (r, why) for c, r, why in handoffs}
    requests = list(
        (
            await s.execute(
                select(Request)
                .where(
                    (Request.conversation_id.in_(ids))
                    | Request.id.in_([r for r, _ in open_handoff.values() if r is not None])
                )
                .order_by(Request.id.desc())
            )
        ).scalars()
    )
    by_id = {r.id: r for r in requests}
    latest: dict[int, Request] = {}
    for r in requests:
        if r.conversation_id is not None and r.status in ACTIVE_REQUESTS:
            latest.setdefault(r.conversation_id, r)
    recent = (
        select(
            Message.conversation_id,
            Message.text,
            func.row_number()
            .over(partition_by=Message.conversation_id, order_by=Message.id.desc())
            .label("n"),
            Message.id,
        )
        .where(Message.conversation_id.in_(ids), Message.author == Author.TENANT.value)
        .subquery()
    )
    told: dict[int, str] = {}
    rows = await s.execute(
        select(recent.c.conversation_id, recent.c.text)
        .where(recent.c.n <= RECENT_TENANT_MESSAGES)
        .order_by(recent.c.id)
    )
    for conv_id, text in rows.tuples():
        if conv_id not in told and text and meaningful(text):
            told[conv_id] = text
    result = {}
    for c in convs:
        request_id, reason = open_handoff.get(c.id, (None, ""))
        request = by_id.get(request_id) if request_id else None
        request = request or latest.get(c.id)
        summary = request_summary(request) if request is not None else ""
        if not summary and c.id in told:
            summary = first_words(told[c.id])
        if not summary and reason:
            summary = handoff_summary(reason)
        if not summary:
            summary = first_words(last_texts.get(c.id, ""))
        result[c.id] = (summary, (request.reference or "") if request is not None else "")
    return result


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
    summaries = await _summaries(s, convs, texts)
    items = []
    for c in convs:
        tenant = c.tenant
        summary, reference = summaries[c.id]
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
                summary=summary,
                reference=reference,
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


# -- staff alerts that did not go ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertFailure:
    """A staff alert about a waiting conversation that nobody received."""

    conversation_id: int
    channel: str  # "sms", "telegram"; "" when there was no way to reach the person
    to: str  # role of the person: caretaker, oncall, manager
    name: str  # who, "" when unknown
    why: str  # "no_sender" (channel not configured), "provider", "no_contact"
    summary: str = ""  # what the conversation is about, when the queue knows it


FAILURE_WINDOW = timedelta(minutes=5)  # a failure this long before the queueing still counts


def _why(error: str | None) -> str:
    return "no_sender" if (error or "").startswith("no sender configured") else "provider"


async def load_alert_failures(
    s: AsyncSession,
    staff: StaffUser,
    summaries: dict[int, str] | None = None,
    *,
    conversation_id: int | None = None,
) -> list[AlertFailure]:
    """Staff alerts that failed for good (the outbox's `failed` staff alerts, and alerts
    nobody could be reached for, kept in the audit log) about conversations still waiting
    that this person may see: the caretakers and on-call staff concerned, and managers
    (with `conversation_id`, about that one only)."""
    stmt = select(Conversation.id, Conversation.queued_at).where(
        Conversation.state.in_(WAITING), visible_clause(staff)
    )
    if conversation_id is not None:
        stmt = stmt.where(Conversation.id == conversation_id)
    result = await s.execute(stmt)
    waiting: dict[int, datetime | None] = {i: at for i, at in result.tuples()}
    if not waiting:
        return []
    times = [t for t in waiting.values() if t is not None]
    since = min(times) - FAILURE_WINDOW if times else None
    found: list[tuple[int, datetime, str, str, int | None, str]] = []
    outbox = select(Outbox.extra, Outbox.channel, Outbox.last_error, Outbox.created_at).where(
        Outbox.status == OutboxStatus.FAILED.value,
        Outbox.conversation_id.is_(None),
        Outbox.message_id.is_(None),
    )
    if since is not None:
        outbox = outbox.where(Outbox.created_at >= since)
    for extra, channel, error, at in (await s.execute(outbox)).tuples():
        extra = extra or {}
        if not extra.get("staff_alert"):
            continue
        staff_id = extra.get("staff_id")
        who = staff_id if isinstance(staff_id, int) else None
        for conv_id in extra.get("conversations") or [extra.get("conversation_id")]:
            if isinstance(conv_id, int) and conv_id in waiting:
                found.append((conv_id, at, channel, str(extra.get("to", "")), who, _why(error)))
    audits = select(AuditLog.target_id, AuditLog.at, AuditLog.detail).where(
        AuditLog.action == ALERT_FAILED, AuditLog.target_type == "conversation"
    )
    if since is not None:
        audits = audits.where(AuditLog.at >= since)
    for target, at, detail in (await s.execute(audits)).tuples():
        detail = detail or {}
        staff_id = detail.get("staff_id")
        who = staff_id if isinstance(staff_id, int) else None
        if target.isdigit() and int(target) in waiting:
            found.append((int(target), at, "", str(detail.get("to", "")), who, "no_contact"))
    if not found:
        return []
    names = await staff_names(s, {f[4] for f in found if f[4] is not None})
    seen: set[tuple[int, str, str, int | None, str]] = set()
    failures = []
    for conv_id, at, channel, to, who, why in sorted(found, key=lambda f: f[1], reverse=True):
        if conv_id not in waiting:
            continue
        queued_at = waiting[conv_id]
        if queued_at is not None and at < queued_at - FAILURE_WINDOW:
            continue  # about an earlier time this conversation waited
        key = (conv_id, channel, to, who, why)
        if key in seen:
            continue
        seen.add(key)
        failures.append(
            AlertFailure(
                conversation_id=conv_id,
                channel=channel,
                to=to,
                name=names.get(who, "") if who is not None else "",
                why=why,
                summary=(summaries or {}).get(conv_id, ""),
            )
        )
    return failures


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


async def load_view(s: AsyncSession, conv: Conversation) -> ConversationView:
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
                    .where(Request.tenant_id == tenant.id, Request.status.in_(ACTIVE_REQUESTS))
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
