"""What a caretaker does to a conversation: take, reply, note, transfer, close, give back.

Each action is one transaction that also writes the audit log, then publishes a live event
so every console showing the conversation updates. Checks that decide who wins a race are
conditional UPDATEs, never a read followed by a write.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import CaseStatus
from bot.dialogue.hooks import on_closed, on_incident_closed
from bot.messaging.webhooks import conversation_json
from bot.storage.models import (
    Author,
    Conversation,
    ConversationState,
    Direction,
    Handoff,
    Incident,
    Message,
    Request,
    Role,
    StaffUser,
)
from bot.storage.store import add_outbound, audit, clean_text
from handoff.auth import can_act, can_see
from handoff.escalation import notify_staff
from handoff.queue import WAITING, load_conversation, staff_names

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

MAX_REPLY = 1600  # ten SMS segments: longer is a letter, not a message


class Refused(Exception):
    """An action that cannot be done; `key` is a console text explaining why."""

    def __init__(self, status: int, key: str, **values: Any) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.values = values


@dataclass(frozen=True, slots=True)
class Done:
    conversation_id: int
    message_id: int | None = None


async def _check(rt: Runtime, staff: StaffUser, conv_id: int, *, act: bool = True) -> Conversation:
    async with rt.db.session() as s:
        conv = await load_conversation(s, conv_id)
    if conv is None:
        raise Refused(404, "error.not_found")
    if not can_see(staff, conv):
        raise Refused(403, "error.forbidden")
    if act and not can_act(staff, conv):
        raise Refused(403, "action.read_only")
    return conv


async def _held_elsewhere(rt: Runtime, conv: Conversation) -> Refused:
    async with rt.db.session() as s:
        names = await staff_names(s, {conv.assigned_to} if conv.assigned_to else set())
    return Refused(409, "action.held_by", name=names.get(conv.assigned_to or 0, "?"))


def _mine_or_free(conv_id: int, staff: StaffUser) -> Any:
    return (
        (Conversation.id == conv_id)
        & Conversation.state.in_(WAITING)
        & or_(Conversation.assigned_to.is_(None), Conversation.assigned_to == staff.id)
    )


async def _event(rt: Runtime, kind: str, conv: Conversation, **extra: Any) -> None:
    event = {
        "type": kind,
        "conversation_id": conv.id,
        "residence_id": conv.residence_id,
        "priority": conv.priority,
        **extra,
    }
    try:
        await rt.bus.publish(event)
    except Exception as exc:  # consoles reload from the database; the action is done
        log.warning("could not publish %s event (%s)", kind, type(exc).__name__)


async def _audit(
    s: AsyncSession, staff: StaffUser, action: str, conv_id: int, **detail: Any
) -> None:
    await audit(
        s,
        action,
        staff_id=staff.id,
        actor=staff.login,
        target_type="conversation",
        target_id=conv_id,
        detail=detail,
    )


async def record_read(rt: Runtime, staff: StaffUser, conv_id: int) -> None:
    async with rt.db.transaction() as s:
        await _audit(s, staff, "read", conv_id)


# -- take -------------------------------------------------------------------------------------


async def take(rt: Runtime, staff: StaffUser, conv_id: int) -> Done:
    """Assign a queued conversation to `staff`; of two people taking it at once, one wins."""
    conv = await _check(rt, staff, conv_id)
    if conv.assigned_to == staff.id:
        return Done(conv_id)
    now = rt.clock()
    async with rt.db.transaction() as s:
        # The UPDATE comes first in the transaction: it is the lock that settles a race
        # (PostgreSQL re-checks the WHERE after a concurrent commit; SQLite serialises writers).
        result = await s.execute(
            update(Conversation)
            .where(
                Conversation.id == conv_id,
                Conversation.assigned_to.is_(None),
                Conversation.state == ConversationState.QUEUED.value,
            )
            .values(
                assigned_to=staff.id,
                state=ConversationState.ASSIGNED.value,
                last_caretaker_id=staff.id,
                updated_at=now,
            )
        )
        won = bool(getattr(result, "rowcount", 0))
        if won:
            await s.execute(
                update(Handoff)
                .where(
                    Handoff.conversation_id == conv_id,
                    Handoff.closed_at.is_(None),
                    Handoff.taken_at.is_(None),
                )
                .values(taken_at=now, taken_by=staff.id)
            )
            await _audit(s, staff, "take", conv_id)
    if not won:
        fresh = await _check(rt, staff, conv_id)
        if fresh.assigned_to and fresh.assigned_to != staff.id:
            raise await _held_elsewhere(rt, fresh)
        if fresh.assigned_to != staff.id:
            raise Refused(409, "action.not_waiting")
        return Done(conv_id)
    conv.assigned_to, conv.state = staff.id, ConversationState.ASSIGNED.value
    await _event(rt, "assignment", conv, state=conv.state, staff_id=staff.id)
    return Done(conv_id)


# -- reply and note ---------------------------------------------------------------------------


async def reply(rt: Runtime, staff: StaffUser, conv_id: int, text: str, nonce: str = "") -> Done:
    """Send a reply to the tenant on their channel; a queued conversation is taken first.

    `nonce` comes from the form: the same form sent twice (a double tap, a retried POST on a
    bad connection) sends the reply once."""
    text = clean_text(text).strip()
    if not text:
        raise Refused(400, "action.empty")
    if len(text) > MAX_REPLY:
        raise Refused(400, "action.too_long", limit=MAX_REPLY)
    conv = await _check(rt, staff, conv_id)
    if conv.state not in WAITING:
        raise Refused(409, "action.not_waiting")
    if conv.assigned_to != staff.id:
        if conv.assigned_to is not None:
            raise await _held_elsewhere(rt, conv)
        await take(rt, staff, conv_id)
    channel = rt.channels.get(conv.channel)
    if channel is not None:
        text = channel.prepare_text(text)
    key = f"staff:{conv_id}:{(nonce or uuid.uuid4().hex)[:64]}"
    now = rt.clock()
    try:
        async with rt.db.transaction() as s:
            fresh = await load_conversation(s, conv_id)
            if fresh is None or fresh.assigned_to != staff.id or fresh.state not in WAITING:
                raise Refused(409, "action.not_waiting")
            msg, _row = await add_outbound(
                s, fresh, text, author=Author.STAFF.value, staff_id=staff.id, key=key
            )
            await s.execute(
                update(Handoff)
                .where(
                    Handoff.conversation_id == conv_id,
                    Handoff.closed_at.is_(None),
                    Handoff.first_reply_at.is_(None),
                )
                .values(first_reply_at=now)
            )
            await _audit(s, staff, "reply", conv_id, message_id=msg.id)
            message_id = msg.id
    except IntegrityError:
        # The same form arrived twice: the first one is stored and on its way.
        return Done(conv_id)
    rt.outbox.wake()
    await _event(
        rt,
        "message",
        conv,
        message_id=message_id,
        direction=Direction.OUT.value,
        state=ConversationState.ASSIGNED.value,
        intent=conv.intent,
    )
    return Done(conv_id, message_id)


async def note(rt: Runtime, staff: StaffUser, conv_id: int, text: str) -> Done:
    """An internal note for colleagues: stored with the thread, never sent to anyone."""
    text = clean_text(text).strip()
    if not text:
        raise Refused(400, "action.empty")
    conv = await _check(rt, staff, conv_id)
    async with rt.db.transaction() as s:
        msg = Message(
            conversation_id=conv_id,
            channel=conv.channel,
            direction=Direction.OUT.value,
            author=Author.STAFF.value,
            staff_id=staff.id,
            text=text,
            internal=True,
            created_at=rt.clock(),
        )
        s.add(msg)
        await s.flush()
        await _audit(s, staff, "note", conv_id, message_id=msg.id)
        message_id = msg.id
    await _event(rt, "message", conv, message_id=message_id, direction="note", state=conv.state)
    return Done(conv_id, message_id)


# -- transfer, close, give back ---------------------------------------------------------------


ONCALL_TARGET = "oncall"


async def transfer_targets(s: AsyncSession, conv: Conversation, me: StaffUser) -> list[StaffUser]:
    """Who a conversation may be handed to: every active caretaker and on-call person (but
    the giver) who may act on it — the caretakers of its residence, on call for it (their
    residences, and every emergency or unidentified tenant). Managers read but do not
    answer (`can_act`), so a conversation is never handed to them."""
    people = (
        await s.execute(
            select(StaffUser)
            .where(
                StaffUser.active.is_(True),
                StaffUser.role.in_((Role.CARETAKER.value, Role.ONCALL.value)),
                StaffUser.id != me.id,
            )
            .order_by(StaffUser.display_name, StaffUser.id)
        )
    ).scalars()
    return [p for p in people if can_act(p, conv)]


def _oncall_for(people: list[StaffUser], conv: Conversation) -> StaffUser | None:
    """The on-call person a "to on call" transfer goes to: one who covers the residence by
    name first, else any on-call person who may act on it (first by name)."""
    oncall = [p for p in people if p.role == Role.ONCALL.value]
    covering = [p for p in oncall if any(r.id == conv.residence_id for r in p.residences)]
    found = covering or oncall
    return found[0] if found else None


def parse_target(target: str) -> int | str | None:
    """The transfer form's `target`: "staff:12" (a person) or "oncall"; None if malformed."""
    if target == ONCALL_TARGET:
        return ONCALL_TARGET
    kind, _, number = target.partition(":")
    if kind == "staff" and number.isdigit() and len(number) <= 10 and int(number) < 2**31:
        return int(number)
    return None


async def transfer(
    rt: Runtime, staff: StaffUser, conv_id: int, to_staff_id: int = 0, *, target: str = ""
) -> Done:
    """Hand a conversation to a colleague who covers its residence, or to on call; they are
    told on their phone and find it in their queue, held for them.

    `to_staff_id` is the original form's field (an unknown colleague: 400); `target` the
    new one, "staff:<id>" or "oncall" (malformed: 422; someone who may not act on this
    conversation, such as a caretaker of another residence: 403)."""
    conv = await _check(rt, staff, conv_id)
    async with rt.db.session() as s:
        people = await transfer_targets(s, conv, staff)
    allowed = {p.id: p for p in people}
    chosen: StaffUser | None
    if target:
        wanted = parse_target(target)
        if wanted is None:
            raise Refused(422, "action.bad_colleague")
        chosen = _oncall_for(people, conv) if wanted == ONCALL_TARGET else allowed.get(int(wanted))
        if chosen is None:
            raise Refused(403, "action.bad_colleague")
    else:
        chosen = allowed.get(to_staff_id)
        if chosen is None:
            raise Refused(400, "action.bad_colleague")
    target_staff = chosen
    now = rt.clock()
    async with rt.db.transaction() as s:
        result = await s.execute(
            update(Conversation)
            .where(_mine_or_free(conv_id, staff))
            .values(
                assigned_to=target_staff.id,
                state=ConversationState.ASSIGNED.value,
                last_caretaker_id=target_staff.id,
                updated_at=now,
            )
        )
        if not getattr(result, "rowcount", 0):
            raise await _held_elsewhere(rt, conv)
        await s.execute(
            update(Handoff)
            .where(
                Handoff.conversation_id == conv_id,
                Handoff.closed_at.is_(None),
                Handoff.taken_at.is_(None),
            )
            .values(taken_at=now, taken_by=target_staff.id)
        )
        await _audit(s, staff, "transfer", conv_id, to=target_staff.login)
        await notify_staff(
            s,
            rt,
            target_staff,
            conv,
            kind="transfer",
            key=f"transfer:{conv_id}:{uuid.uuid4().hex[:12]}",
            by=staff.display_name or staff.login,
        )
    rt.outbox.wake()
    await _event(
        rt, "assignment", conv, state=ConversationState.ASSIGNED.value, staff_id=target_staff.id
    )
    return Done(conv_id)


async def close(rt: Runtime, staff: StaffUser, conv_id: int, resolution: str) -> Done:
    """Close with a resolution; the tenant's next message opens a new round with the bot."""
    resolution = clean_text(resolution).strip()[:2000]
    if not resolution:
        raise Refused(400, "action.resolution_needed")
    conv = await _check(rt, staff, conv_id)
    await _finish(rt, staff, conv, ConversationState.CLOSED.value, resolution, "close")
    return Done(conv_id)


async def close_incident(rt: Runtime, staff: StaffUser, conv_id: int, incident_id: int) -> Done:
    """A shared building problem is fixed: close it and tell every tenant who reported it."""
    conv = await _check(rt, staff, conv_id)
    async with rt.db.transaction() as s:
        incident = await s.get(Incident, incident_id)
        linked = (
            await s.execute(
                select(Request.id).where(
                    Request.incident_id == incident_id, Request.conversation_id == conv.id
                )
            )
        ).first()
        if incident is None or linked is None or incident.residence_id != conv.residence_id:
            raise Refused(404, "error.not_found")
        if incident.status == CaseStatus.CLOSED:
            raise Refused(409, "action.incident_closed")
        told = await on_incident_closed(s, incident, rt.texts, now=rt.clock())
        await _audit(s, staff, "close_incident", conv.id, incident_id=incident_id, told=told)
    rt.outbox.wake()
    return Done(conv_id)


async def give_back(rt: Runtime, staff: StaffUser, conv_id: int) -> Done:
    """Return the conversation to the bot (nothing more for a person to do)."""
    conv = await _check(rt, staff, conv_id)
    await _finish(rt, staff, conv, ConversationState.BOT.value, "returned_to_bot", "give_back")
    return Done(conv_id)


async def _finish(
    rt: Runtime, staff: StaffUser, conv: Conversation, state: str, resolution: str, action: str
) -> None:
    now = rt.clock()
    closed = state == ConversationState.CLOSED.value
    async with rt.db.transaction() as s:
        result = await s.execute(
            update(Conversation)
            .where(_mine_or_free(conv.id, staff))
            .values(
                state=state,
                assigned_to=None,
                last_caretaker_id=staff.id,
                closed_at=now if closed else None,
                updated_at=now,
            )
        )
        if not getattr(result, "rowcount", 0):
            raise await _held_elsewhere(rt, conv)
        await s.execute(
            update(Handoff)
            .where(Handoff.conversation_id == conv.id, Handoff.closed_at.is_(None))
            .values(closed_at=now, resolution=resolution)
        )
        await _audit(s, staff, action, conv.id, resolution=resolution)
        if closed:
            fresh = await load_conversation(s, conv.id)
            if fresh is not None:
                await _on_closed(s, fresh, rt)
                # The landlord's systems hear of it (a no-op without RELAIS_WEBHOOK_URL).
                rt.webhooks.queue(
                    s,
                    "conversation.closed",
                    conversation_json(fresh, resolution),
                    order=f"conversation:{conv.id}",
                    now=now,
                )
    rt.outbox.wake()
    await _event(rt, "assignment", conv, state=state, staff_id=None)


async def _on_closed(s: AsyncSession, conv: Conversation, rt: Runtime) -> None:
    """The dialogue's hook (it queues the satisfaction question), in the closing transaction."""
    await on_closed(s, conv, rt.texts)
