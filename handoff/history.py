"""The caretakers' search and history in the console: /console/search finds a conversation
by a tenant's name, reference, phone number or words of it (`handoff.search`); /console/history
lists the closed conversations of the residences this person works on, newest first.

Both show only what `visible_clause` lets this person see (a caretaker: their residences),
and open a conversation on its console page, where a closed one cannot be answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from bot.storage.models import (
    Author,
    Conversation,
    ConversationState,
    Handoff,
    Message,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.models import Request as Ticket
from bot.storage.store import audit
from handoff import reports
from handoff.auth import current_staff, runtime_of, visible_clause
from handoff.queue import first_words
from handoff.templating import render

router = APIRouter(include_in_schema=False)
Staff = Depends(current_staff)

PAGE_SIZE = 20
MAX_PAGE = 10_000


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "")
    return max(1, min(int(raw), MAX_PAGE)) if raw.isdigit() else 1


def _when(request: Request) -> Any:
    tz = ZoneInfo(runtime_of(request).settings.timezone)

    def when(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else ""

    return when


# -- search -------------------------------------------------------------------------------


@router.get("/console/search")
async def search_page(request: Request, staff: StaffUser = Staff) -> Response:
    rt = runtime_of(request)
    text = request.query_params.get("q", "").strip()[:200]
    page = _page(request)
    result = reports.SearchPage([], 0)
    if text:
        f = reports.TranscriptFilters(text=text, region=rt.settings.phone_region)
        async with rt.db.session() as s:
            result = await reports.search_conversations(
                s,
                f,
                limit=PAGE_SIZE,
                offset=(page - 1) * PAGE_SIZE,
                scope=visible_clause(staff),
            )
        # Searching tenants' words and numbers is a read of their conversations: recorded.
        async with rt.db.transaction() as s:
            await audit(
                s,
                "search",
                staff_id=staff.id,
                actor=staff.login,
                target_type="conversations",
                target_id="",
                detail={"text": text, "found": result.total},
            )
    return render(
        request,
        "search.html",
        {
            "q": text,
            "result": result,
            "page": page,
            "page_size": PAGE_SIZE,
            "when": _when(request),
        },
    )


# -- history ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClosedItem:
    conversation_id: int
    tenant: str  # "" when never identified
    residence: str
    intent: str
    summary: str  # the request's summary, else the tenant's first words
    resolution: str  # what the person who closed it wrote
    closed_at: datetime | None
    closed_by: str  # display name, "" when unknown
    satisfaction: int | None
    reference: str  # the request's reference, if any


async def closed_conversations(
    s: Any, staff: StaffUser, *, limit: int, offset: int
) -> tuple[list[ClosedItem], int]:
    where = (Conversation.state == ConversationState.CLOSED.value, visible_clause(staff))
    total = int((await s.execute(select(func.count(Conversation.id)).where(*where))).scalar_one())
    rows = list(
        (
            await s.execute(
                select(Conversation, Residence.name)
                .outerjoin(Residence, Residence.id == Conversation.residence_id)
                .where(*where)
                .order_by(
                    func.coalesce(Conversation.closed_at, Conversation.updated_at).desc(),
                    Conversation.id.desc(),
                )
                .limit(limit)
                .offset(offset)
            )
        )
        .unique()
        .tuples()
    )
    ids = [c.id for c, _ in rows]
    if not ids:
        return [], total
    handoffs: dict[int, Handoff] = {}
    for h in (
        await s.execute(
            select(Handoff).where(Handoff.conversation_id.in_(ids)).order_by(Handoff.id)
        )
    ).scalars():
        handoffs[h.conversation_id] = h  # the latest one wins
    tickets: dict[int, Ticket] = {}
    for r in (
        await s.execute(select(Ticket).where(Ticket.conversation_id.in_(ids)).order_by(Ticket.id))
    ).scalars():
        tickets.setdefault(r.conversation_id, r)  # the first request of the conversation
    first_in = (
        select(Message.conversation_id, func.min(Message.id).label("mid"))
        .where(Message.conversation_id.in_(ids), Message.author == Author.TENANT.value)
        .group_by(Message.conversation_id)
        .subquery()
    )
    texts: dict[int, str] = dict(
        (
            await s.execute(
                select(first_in.c.conversation_id, Message.text).join(
                    Message, Message.id == first_in.c.mid
                )
            )
        )
        .tuples()
        .all()
    )
    closers = {c.last_caretaker_id for c, _ in rows if c.last_caretaker_id}
    names: dict[int, str] = {}
    if closers:
        names = {
            i: name or login
            for i, name, login in await s.execute(
                select(StaffUser.id, StaffUser.display_name, StaffUser.login).where(
                    StaffUser.id.in_(sorted(closers))
                )
            )
        }
    items = []
    for conv, residence in rows:
        tenant: Tenant | None = conv.tenant
        h = handoffs.get(conv.id)
        ticket = tickets.get(conv.id)
        items.append(
            ClosedItem(
                conversation_id=conv.id,
                tenant=(tenant.display_name or "") if tenant else "",
                residence=residence or "",
                intent=conv.intent or (ticket.kind if ticket else ""),
                summary=first_words(
                    (ticket.summary if ticket and ticket.summary else "") or texts.get(conv.id, "")
                ),
                resolution=first_words(h.resolution if h else "", 140),
                closed_at=conv.closed_at or (h.closed_at if h else None),
                closed_by=names.get(conv.last_caretaker_id or 0, ""),
                satisfaction=conv.satisfaction,
                reference=(ticket.reference or "") if ticket else "",
            )
        )
    return items, total


@router.get("/console/history")
async def history_page(request: Request, staff: StaffUser = Staff) -> Response:
    rt = runtime_of(request)
    page = _page(request)
    async with rt.db.session() as s:
        items, total = await closed_conversations(
            s, staff, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    return render(
        request,
        "history.html",
        {
            "items": items,
            "total": total,
            "page": page,
            "page_size": PAGE_SIZE,
            "when": _when(request),
        },
    )
