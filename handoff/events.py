"""The live event stream of the console (server-sent events), filtered per staff member.

Events carry ids only (no tenant text): the page fetches the fragment it needs, through the
same access checks as any page. A caretaker never receives an event of another residence's
conversation; when an event does not say enough to decide (a delivery receipt, a message
of a conversation outside the viewer's residences seen by on call), the conversation is read.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from bot.storage.models import Conversation, StaffUser
from handoff.auth import EMERGENCY, can_see, load_session, visible_residence_ids

if TYPE_CHECKING:
    from fastapi import Request

    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
FIELDS = ("type", "conversation_id", "residence_id", "priority", "state", "direction", "status")


async def event_visible(rt: Runtime, staff: StaffUser, event: dict[str, Any]) -> bool:
    conv_id = event.get("conversation_id")
    if not isinstance(conv_id, int):
        return False
    ids = visible_residence_ids(staff)
    if ids is None:
        return True
    residence_id = event.get("residence_id", "missing")
    if isinstance(residence_id, int) and residence_id in ids:
        return True
    if staff.role == "caretaker" and residence_id != "missing":
        # The event names the residence, and it is not one of theirs.
        return False
    if (
        event.get("priority", 0) >= EMERGENCY
        and staff.role == "oncall"
        and residence_id != "missing"
    ):
        return True
    async with rt.db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.id == conv_id)))
            .unique()
            .scalar_one_or_none()
        )
    return conv is not None and can_see(staff, conv)


def public_fields(event: dict[str, Any]) -> dict[str, Any]:
    return {k: event[k] for k in FIELDS if k in event}


async def stream(
    request: Request, rt: Runtime, staff: StaffUser, *, heartbeat: float = HEARTBEAT_SECONDS
) -> AsyncIterator[str]:
    """`text/event-stream` lines until the client leaves or its session ends."""
    async with rt.bus.subscribe() as queue:
        yield "retry: 2000\n: connected\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=heartbeat)
            except TimeoutError:
                if await request.is_disconnected() or await load_session(request) is None:
                    return  # signed out elsewhere: the stream must not outlive the session
                yield ": ping\n\n"
                continue
            try:
                visible = await event_visible(rt, staff, event)
            except Exception as exc:
                log.warning("event filter failed (%s): event withheld", type(exc).__name__)
                visible = False
            if visible:
                yield f"event: {event.get('type', 'message')}\n"
                yield f"data: {json.dumps(public_fields(event))}\n\n"
