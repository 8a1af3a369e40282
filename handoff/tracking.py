"""Moving a request from the console or the API: one transaction, then the outbox and consoles.

Both callers go through `move_request`, so a status set by the landlord's systems tells the
tenant exactly what a caretaker's does (`bot.lifecycle.Lifecycle.change`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Conversation, Request, StaffUser
from bot.worker.lifecycle import ACTIVE, Actor, Change
from handoff.auth import visible_residence_ids

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)


class RequestNotFound(LookupError):
    pass


async def move_request(
    rt: Runtime,
    reference: str,
    change: Change,
    actor: Actor,
    *,
    allowed: Callable[[Request], bool] | None = None,
) -> Request:
    """Apply `change`; raises `RequestNotFound` (or not `allowed` to this actor) and
    `bot.lifecycle.TransitionRefused`."""
    async with rt.db.transaction() as s:
        stmt = select(Request).where(Request.reference == reference)
        if rt.db.dialect == "postgresql":
            stmt = stmt.with_for_update()  # two moves of one request: the second sees the first
        request = (await s.execute(stmt)).scalar_one_or_none()
        if request is None or (allowed is not None and not allowed(request)):
            raise RequestNotFound(reference)
        await rt.lifecycle.change(s, request, change, actor)
        conv = (
            await s.get(Conversation, request.conversation_id) if request.conversation_id else None
        )
        event = (
            {
                "type": "assignment",
                "conversation_id": conv.id,
                "residence_id": conv.residence_id,
                "priority": conv.priority,
                "state": conv.state,
            }
            if conv is not None
            else None
        )
    rt.outbox.wake()
    if event is not None:
        try:
            await rt.bus.publish(event)
        except Exception as exc:  # consoles reload from the database; the move is done
            log.warning("could not publish the request event (%s)", type(exc).__name__)
    return request


def late(request: Request, now: datetime) -> bool:
    return (
        request.due_at is not None
        and request.due_at < now
        and request.status in {s.value for s in ACTIVE} | {"open", "in_progress"}
    )


async def late_requests(
    s: AsyncSession, staff: StaffUser | None, now: datetime, limit: int = 100
) -> list[Request]:
    """Requests past their deadline and not done, oldest deadline first, of `staff`'s
    residences (every residence for a manager or for None)."""
    stmt = (
        select(Request)
        .where(
            Request.due_at.is_not(None),
            Request.due_at < now,
            Request.status.in_([s.value for s in ACTIVE]),
        )
        .order_by(Request.due_at)
        .limit(limit)
    )
    if staff is not None:
        ids = visible_residence_ids(staff)
        if ids is not None:
            stmt = stmt.where(Request.residence_id.in_(ids or {-1}))
    return list((await s.execute(stmt)).scalars())
