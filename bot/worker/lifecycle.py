"""A request's life: its states, the one table of allowed moves, and what each move does.

Every move is a `RequestEvent` (who, when, what was said, from which state to which) stored in
the caller's transaction, with what it changes for the tenant: a short message on their own
channel in their language (held during quiet hours, except emergencies), the confirmation
question when it is done, and a `request.updated` webhook. The console, the API, the dialogue
and the follow-up job all move requests through `Lifecycle.change`, so a status set by the
landlord's systems tells the tenant exactly what a caretaker's does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.settings import Settings
from bot.core.status import ACTIVE_REQUESTS, RequestStatus
from bot.dialogue.reading import format_date
from bot.dialogue.texts import Texts
from bot.dialogue.workdays import WorkingDays, due_at, quiet_until
from bot.messaging.webhooks import WebhookQueue, request_json
from bot.storage.models import (
    Author,
    Conversation,
    ConversationState,
    Handoff,
    Request,
    RequestEvent,
    Residence,
    Tenant,
)
from bot.storage.store import outbound_message, outbox_row

S = RequestStatus
_WORKING = frozenset({S.TAKEN, S.SCHEDULED, S.WAITING_CONTRACTOR, S.DONE, S.CLOSED})
# The one table of allowed moves. Scheduling again (another date) and waiting for another
# contractor are moves too; a done or closed request moves again only by being reopened.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    S.RECEIVED: _WORKING,
    S.TAKEN: _WORKING - {S.TAKEN},
    S.SCHEDULED: _WORKING,
    S.WAITING_CONTRACTOR: _WORKING,
    S.DONE: frozenset({S.CLOSED, S.REOPENED}),
    S.CLOSED: frozenset({S.REOPENED}),
    S.REOPENED: _WORKING,
}
# Statuses stored before the lifecycle existed.
LEGACY = {"open": S.RECEIVED, "in_progress": S.TAKEN}
# Still to be done: these can be late.
ACTIVE = frozenset(ACTIVE_REQUESTS)
SLOTS = ("morning", "afternoon")
# Tenants who are told nothing at night (push channels); the web chat shows it when opened.
HELD_CHANNELS = ("sms", "whatsapp", "telegram")
# What the tenant is told of each move made by someone else (texts.yml keys).
TENANT_TEXTS = {
    S.TAKEN: "request_taken",
    S.SCHEDULED: "request_scheduled",
    S.WAITING_CONTRACTOR: "request_waiting_contractor",
    S.DONE: "request_done_question",
    S.CLOSED: "request_closed",
    S.REOPENED: "request_reopened",
}


def status_of(value: str) -> RequestStatus:
    return LEGACY.get(value) or RequestStatus(value)


def allowed_from(value: str) -> list[str]:
    return sorted(s.value for s in TRANSITIONS[status_of(value)])


@dataclass(frozen=True, slots=True)
class Actor:
    """Who moves a request: `staff` (login), `api` (key name), `tenant`, `system`."""

    kind: str
    name: str = ""
    staff_id: int | None = None
    display: str = ""  # how the tenant hears of them ("Karim Benali")

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.name}" if self.name else self.kind


@dataclass(frozen=True, slots=True)
class Change:
    status: RequestStatus
    note: str = ""
    scheduled_for: datetime | None = None
    slot: str = ""  # morning, afternoon; empty when scheduled_for carries the time
    contractor: str = ""
    photo: str | None = None  # where the console stored a photo of the work done
    tell_tenant: bool = True  # False: closed for lack of an answer, said by the dialogue


class TransitionRefused(Exception):
    def __init__(self, current: str, wanted: str, reason: str = "") -> None:
        super().__init__(reason or f"{current} → {wanted} is not allowed")
        self.current = current
        self.wanted = wanted
        self.reason = reason
        self.allowed = allowed_from(current)


class Lifecycle:
    def __init__(
        self,
        *,
        settings: Settings,
        texts: Texts,
        webhooks: WebhookQueue,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.texts = texts
        self.webhooks = webhooks
        self.clock = clock
        self.tz = ZoneInfo(settings.timezone)

    def working_days(self, residence: Residence | None) -> WorkingDays:
        return WorkingDays.of(
            residence.caretaker_hours if residence else None,
            self.settings.holidays_country,
            self.settings.holidays_subdivision,
        )

    # -- creation -----------------------------------------------------------------------

    async def created(self, s: AsyncSession, request: Request, actor: Actor) -> None:
        """A new request (flushed, with its reference): first event, deadline, webhook."""
        now = self.clock()
        residence = await s.get(Residence, request.residence_id) if request.residence_id else None
        request.status = S.RECEIVED.value
        request.due_at = due_at(
            request.kind,
            request.details,
            request.created_at or now,
            self.settings.deadlines,
            self.working_days(residence),
            self.tz,
        )
        s.add(
            RequestEvent(
                request_id=request.id,
                at=now,
                actor=actor.label,
                staff_id=actor.staff_id,
                from_status="",
                to_status=S.RECEIVED.value,
                note="",
            )
        )
        await self._webhook(s, "request.created", request, now)

    # -- moves ---------------------------------------------------------------------------

    async def change(
        self, s: AsyncSession, request: Request, change: Change, actor: Actor
    ) -> RequestEvent:
        """Move `request`; raises `TransitionRefused` for a move that makes no sense."""
        current = status_of(request.status)
        wanted = change.status
        if wanted not in TRANSITIONS[current]:
            raise TransitionRefused(current.value, wanted.value)
        if wanted == S.SCHEDULED and change.scheduled_for is None:
            raise TransitionRefused(current.value, wanted.value, "scheduled_for is required")
        if wanted == S.SCHEDULED and change.slot and change.slot not in SLOTS:
            raise TransitionRefused(current.value, wanted.value, "slot: morning or afternoon")
        if wanted == S.WAITING_CONTRACTOR and not change.contractor.strip():
            raise TransitionRefused(current.value, wanted.value, "contractor is required")
        now = self.clock()
        data: dict[str, Any] = {}
        if wanted == S.SCHEDULED:
            assert change.scheduled_for is not None
            request.scheduled_for = change.scheduled_for
            request.scheduled_slot = change.slot
            when = change.scheduled_for.astimezone(UTC).isoformat()
            data = {"scheduled_for": when, "slot": change.slot}
        if wanted == S.WAITING_CONTRACTOR:
            request.contractor = change.contractor.strip()[:200]
            data = {"contractor": request.contractor}
        if change.photo:
            data["photo"] = change.photo
        request.status = wanted.value
        request.updated_at = now
        if wanted == S.CLOSED:
            request.closed_at = now
        elif wanted == S.REOPENED:
            request.closed_at = None
            request.reminded_level = 0
        event = RequestEvent(
            request_id=request.id,
            at=now,
            actor=actor.label,
            staff_id=actor.staff_id,
            from_status=current.value,
            to_status=wanted.value,
            note=change.note.strip()[:2000],
            data=data,
        )
        s.add(event)
        conv = (
            await s.get(Conversation, request.conversation_id) if request.conversation_id else None
        )
        if conv is not None and actor.kind != "tenant" and change.tell_tenant:
            await self._tell_tenant(s, request, conv, wanted, actor, now)
        if conv is not None and wanted == S.DONE:
            await self._await_confirmation(s, request, conv, now)
        await self._webhook(s, "request.updated", request, now)
        await s.flush()
        return event

    # -- the tenant ------------------------------------------------------------------------

    def when(self, request: Request, lang: str) -> str:
        """ "le mardi 8 décembre au matin", "on Tuesday 8 December at 14:00"."""
        if request.scheduled_for is None:
            return ""
        local = request.scheduled_for.astimezone(self.tz)
        day = format_date(local.date(), lang)
        if request.scheduled_slot:
            slot = self.texts.label("slots", request.scheduled_slot, lang)
            return f"{'on' if lang == 'en' else 'le'} {day} {slot}"
        clock = f"{local:%H:%M}" if lang == "en" else f"{local.hour}h{local.minute:02d}"
        return f"on {day} at {clock}" if lang == "en" else f"le {day} à {clock}"

    async def _tell_tenant(
        self,
        s: AsyncSession,
        request: Request,
        conv: Conversation,
        status: RequestStatus,
        actor: Actor,
        now: datetime,
    ) -> None:
        lang = conv.language if conv.language in ("fr", "en") else "fr"
        text = self.texts.get(
            TENANT_TEXTS[status],
            lang,
            reference=request.reference or "",
            who=actor.display or self.texts.get("team_name", lang),
            when=self.when(request, lang),
            contractor=request.contractor,
        )
        held = None
        if request.kind != "emergency" and conv.channel in HELD_CHANNELS:
            held = quiet_until(now, self.settings.quiet_hours, self.tz)
        staff = actor.kind == "staff"
        msg = outbound_message(
            conv,
            text,
            author=Author.STAFF.value if staff else Author.BOT.value,
            staff_id=actor.staff_id if staff else None,
            now=now,
        )
        s.add(msg)
        await s.flush()
        row = outbox_row(
            conv,
            msg,
            key=f"request:{request.id}:{status.value}:{uuid.uuid4().hex[:12]}",
            due=held or now,
        )
        if held is not None:
            # Held till morning: it must not keep the night's replies waiting behind it.
            row.conversation_id = None
        s.add(row)

    async def _await_confirmation(
        self, s: AsyncSession, request: Request, conv: Conversation, now: datetime
    ) -> None:
        """The bot reads the tenant's answer to "is it fixed?": the conversation goes back to
        it, and the handoff of the request is over."""
        if conv.state != ConversationState.BOT.value:
            conv.state = ConversationState.BOT.value
            conv.assigned_to = None
            conv.closed_at = None
            await s.execute(
                update(Handoff)
                .where(Handoff.conversation_id == conv.id, Handoff.closed_at.is_(None))
                .values(closed_at=now, resolution=f"{request.reference}: done")
            )
        conv.dialogue = {"asked": "repair_confirmation", "confirming": request.reference}

    async def _webhook(self, s: AsyncSession, event: str, request: Request, now: datetime) -> None:
        if not self.webhooks.enabled:
            return
        residence = await s.get(Residence, request.residence_id) if request.residence_id else None
        tenant = await s.get(Tenant, request.tenant_id) if request.tenant_id else None
        data = request_json(
            request,
            residence_code=residence.code if residence else "",
            tenant_reference=tenant.reference if tenant else "",
        )
        self.webhooks.queue(s, event, data, order=f"request:{request.id}", now=now)


async def find_request(s: AsyncSession, reference: str) -> Request | None:
    return (
        await s.execute(select(Request).where(Request.reference == reference))
    ).scalar_one_or_none()
