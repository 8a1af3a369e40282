"""What the bot says when staff close things: the satisfaction question, incident resolution.

The console calls these inside its own transaction, after changing the rows, and wakes the
outbox once it has committed (`runtime.outbox.wake()`):

    async with runtime.db.transaction() as session:
        conversation.state = "closed"; conversation.closed_at = now
        await on_closed(session, conversation, runtime.texts)
    runtime.outbox.wake()
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import CaseStatus
from bot.dialogue.texts import Texts
from bot.storage.models import Conversation, Incident, Request
from bot.storage.store import add_outbound


async def on_closed(
    session: AsyncSession, conversation: Conversation, texts: Texts, *, key: str | None = None
) -> bool:
    """Ask the one satisfaction question (1 to 5) after a person closed the conversation.

    The tenant's answer is read by the dialogue (state `asked: satisfaction`) and stored in
    `Conversation.satisfaction`. Returns whether a question was queued: not when the
    conversation was never handed to a person or was already rated.
    """
    if conversation.satisfaction is not None:
        return False
    lang = conversation.language if conversation.language in ("fr", "en") else "fr"
    conversation.dialogue = {"asked": "satisfaction"}
    closed_at = conversation.closed_at or datetime.now(UTC)
    await add_outbound(
        session,
        conversation,
        texts.get("satisfaction_question", lang),
        key=key or f"satisfaction:{conversation.id}:{closed_at.timestamp():.0f}",
    )
    return True


async def on_incident_closed(
    session: AsyncSession, incident: Incident, texts: Texts, *, now: datetime | None = None
) -> int:
    """Close a building incident and its requests, and tell every tenant who reported it.

    One message per conversation, in its language. Returns how many tenants were told.
    """
    now = now or datetime.now(UTC)
    incident.status = CaseStatus.CLOSED
    incident.closed_at = incident.closed_at or now
    requests = (
        (await session.execute(select(Request).where(Request.incident_id == incident.id)))
        .scalars()
        .all()
    )
    told: set[int] = set()
    for request in requests:
        if request.status != CaseStatus.CLOSED:
            request.status = CaseStatus.CLOSED
            request.closed_at = now
        if request.conversation_id is None or request.conversation_id in told:
            continue
        conversation = await session.get(Conversation, request.conversation_id)
        if conversation is None:
            continue
        told.add(conversation.id)
        lang = conversation.language if conversation.language in ("fr", "en") else "fr"
        what = _what(incident.key, texts, lang)
        await add_outbound(
            session,
            conversation,
            texts.get("incident_closed", lang, what=what, building=incident.building),
            key=f"incident-closed:{incident.id}:{conversation.id}",
        )
    return len(told)


def _what(key: str, texts: Texts, lang: str) -> str:
    """ "ascenseur" → "ascenseur"; "hall:lumiere" → "éclairage, hall"."""
    place, _, obj = key.partition(":")
    if not obj:
        return texts.label("objects", place, lang)
    return f"{texts.label('objects', obj, lang)}, {texts.label('places', place, lang)}"
