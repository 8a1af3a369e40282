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
from handoff.auth import (
    EMERGENCY,
    SESSION_COOKIE,
    SIGNED_OUT,
    can_see,
    hash_session_id,
    load_session,
    visible_residence_ids,
)

if TYPE_CHECKING:
    from fastapi import Request

    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 5.0  # the session is checked at least this often, events or not
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


async def _session_alive(request: Request, session_hash: str) -> bool:
    found = await load_session(request)
    return found is not None and found[1].id == session_hash


async def stream(
    request: Request,
    rt: Runtime,
    staff: StaffUser,
    *,
    heartbeat: float = HEARTBEAT_SECONDS,
    recheck: float = RECHECK_SECONDS,
) -> AsyncIterator[str]:
    """`text/event-stream` lines until the client leaves or its session ends.

    The session is checked before every event sent and every `recheck` seconds, and a
    sign-out ends the stream at once: a stream must not outlive its session (a console left
    open on a shared computer after its user signed out)."""
    session_hash = hash_session_id(request.cookies.get(SESSION_COOKIE, ""))
    loop = asyncio.get_running_loop()
    async with rt.bus.subscribe() as queue:
        yield "retry: 2000\n: connected\n\n"
        next_check = loop.time() + recheck
        next_ping = loop.time() + heartbeat
        while True:
            now = loop.time()
            try:
                event = await asyncio.wait_for(
                    queue.get(), timeout=max(0.0, min(next_check, next_ping) - now)
                )
            except TimeoutError:
                event = None
            now = loop.time()
            if event is not None and event.get("type") == SIGNED_OUT:
                if event.get("session_hash") == session_hash:
                    return
                continue
            if now >= next_check:
                next_check = now + recheck
                if await request.is_disconnected() or not await _session_alive(
                    request, session_hash
                ):
                    return
            if event is None:
                if now >= next_ping:
                    next_ping = now + heartbeat
                    yield ": ping\n\n"
                continue
            try:
                visible = await event_visible(rt, staff, event)
            except Exception as exc:
                log.warning("event filter failed (%s): event withheld", type(exc).__name__)
                visible = False
            if not visible:
                continue
            try:
                alive = await _session_alive(request, session_hash)
            except Exception as exc:
                log.warning("session check failed (%s): stream closed", type(exc).__name__)
                return
            if not alive:
                return
            yield f"event: {event.get('type', 'message')}\n"
            yield f"data: {json.dumps(public_fields(event))}\n\n"
