"""The request card of the console: move a request in two taps from a phone, see it late.

Take, schedule (a tap on one of the residence's next working days and a half-day, or another
date that is a working day), waiting for a contractor (a tap on a known one, or a name), done
(with an optional note and photo), reopen. Each move goes through `handoff.tracking`, as the
API's do.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.reading import format_date
from bot.storage.models import (
    Attachment,
    Author,
    Conversation,
    Message,
    RequestEvent,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.models import Request as RequestRow
from bot.worker.lifecycle import (
    ACTIVE,
    SLOTS,
    TRANSITIONS,
    Actor,
    Change,
    RequestStatus,
    TransitionRefused,
    status_of,
)
from handoff.auth import can_act, can_see, csrf_protect, current_staff, runtime_of
from handoff.i18n import register, request_language, translate
from handoff.queue import load_conversation, residence_names, staff_names
from handoff.tracking import RequestNotFound, late, late_requests, move_request

router = APIRouter(include_in_schema=False)
Checked = Depends(csrf_protect)
Staff = Depends(current_staff)

CHIP_DAYS = 5  # working days offered as one-tap chips
MAX_PHOTO = 8 * 1024 * 1024
PHOTO_TYPES = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp"}
SLOT_HOURS = {"morning": time(8, 0), "afternoon": time(14, 0)}

register(
    {
        "req.title": {"fr": "Suivi de la demande", "en": "Request follow-up"},
        "req.status.received": {"fr": "Reçue", "en": "Received"},
        "req.status.taken": {"fr": "Prise en charge", "en": "Taken"},
        "req.status.scheduled": {"fr": "Planifiée", "en": "Scheduled"},
        "req.status.waiting_contractor": {
            "fr": "Attente entreprise",
            "en": "Waiting for contractor",
        },
        "req.status.done": {"fr": "Réparée (à confirmer)", "en": "Done (to be confirmed)"},
        "req.status.closed": {"fr": "Close", "en": "Closed"},
        "req.status.reopened": {"fr": "Rouverte", "en": "Reopened"},
        "req.late": {"fr": "En retard", "en": "Late"},
        "req.due": {"fr": "À traiter avant le {when}", "en": "Due by {when}"},
        "req.planned": {"fr": "Prévue {when}", "en": "Planned {when}"},
        "req.contractor": {"fr": "Entreprise : {name}", "en": "Contractor: {name}"},
        "req.take": {"fr": "Prendre en charge", "en": "Take it"},
        "req.schedule": {"fr": "Planifier", "en": "Schedule"},
        "req.wait": {"fr": "Attente entreprise", "en": "Waiting for contractor"},
        "req.done": {"fr": "Terminé", "en": "Done"},
        "req.reopen": {"fr": "Rouvrir", "en": "Reopen"},
        "req.morning": {"fr": "matin", "en": "morning"},
        "req.afternoon": {"fr": "après-midi", "en": "afternoon"},
        "req.other_date": {"fr": "Autre jour ouvré", "en": "Another working day"},
        "req.confirm": {"fr": "Confirmer", "en": "Confirm"},
        "req.contractor_name": {"fr": "Autre entreprise", "en": "Other contractor"},
        "req.note": {"fr": "Note (facultative)", "en": "Note (optional)"},
        "req.photo": {"fr": "Photo (facultative)", "en": "Photo (optional)"},
        "req.mark_done": {"fr": "Marquer réparée", "en": "Mark as fixed"},
        "req.tenant_told": {
            "fr": "Le locataire est prévenu sur son canal.",
            "en": "The tenant is told on their channel.",
        },
        "req.history": {"fr": "Historique", "en": "History"},
        "req.actor.tenant": {"fr": "Locataire", "en": "Tenant"},
        "req.actor.system": {"fr": "Relais (sans réponse)", "en": "Relais (no answer)"},
        "req.actor.staff": {"fr": "Équipe", "en": "Staff"},
        "req.not_working_day": {
            "fr": "Ce jour n'est pas un jour ouvré de la résidence.",
            "en": "That day is not a working day of the residence.",
        },
        "req.refused": {
            "fr": "Impossible depuis l'état « {current} ».",
            "en": "Not possible from “{current}”.",
        },
        "req.bad_photo": {
            "fr": "La photo doit être une image JPEG, PNG ou WebP de moins de 8 Mo.",
            "en": "The photo must be a JPEG, PNG or WebP image under 8 MB.",
        },
        "req.late_title": {"fr": "Demandes en retard", "en": "Late requests"},
        "req.none_late": {"fr": "Aucune demande en retard.", "en": "No late request."},
    }
)


@dataclass(frozen=True, slots=True)
class Chip:
    value: str  # "2026-12-08|morning"
    label: str


def _label_day(day: date, lang: str) -> str:
    days = ("lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim.")
    days_en = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    months = "janv. févr. mars avr. mai juin juil. août sept. oct. nov. déc.".split()  # noqa: SIM905
    if lang == "en":
        return f"{days_en[day.weekday()]} {day.day}/{day.month}"
    return f"{days[day.weekday()]} {day.day} {months[day.month - 1]}"


async def request_card(s: AsyncSession, rt: Any, conv: Conversation, lang: str) -> dict[str, Any]:
    """What the card shows for the conversation's request (its latest active one)."""
    rows = list(
        (
            await s.execute(
                select(RequestRow)
                .where(RequestRow.conversation_id == conv.id, RequestRow.reference.is_not(None))
                .order_by(RequestRow.id.desc())
                .limit(10)
            )
        ).scalars()
    )
    if not rows:
        return {"track": None}
    active = [r for r in rows if status_of(r.status) in ACTIVE]
    request = (active or rows)[0]
    now = rt.clock()
    tz = ZoneInfo(rt.settings.timezone)
    earlier = next((r for r in rows if r.id < request.id), None)
    residence = await s.get(Residence, request.residence_id) if request.residence_id else None
    days = rt.lifecycle.working_days(residence)
    today = now.astimezone(tz).date()
    chips = [
        Chip(f"{d.isoformat()}|{slot}", f"{_label_day(d, lang)} · {translate(lang, 'req.' + slot)}")
        for d in days.next(today, CHIP_DAYS)
        for slot in SLOTS
    ]
    contractors = [
        str(c)
        for c in [
            (residence.lift_company or {}).get("name") if residence else None,
            *((residence.extra or {}).get("contractors", []) if residence else []),
        ]
        if c
    ]
    events = list(
        (
            await s.execute(
                select(RequestEvent)
                .where(RequestEvent.request_id == request.id)
                .order_by(RequestEvent.id)
            )
        ).scalars()
    )
    names = await staff_names(s, {e.staff_id for e in events if e.staff_id})
    status = status_of(request.status)
    since = earlier.created_at if earlier is not None else None
    return {
        "track": request,
        "track_status": status.value,
        "track_allowed": {s.value for s in TRANSITIONS[status]},
        "track_late": late(request, now),
        "track_due": due_words(request.due_at, now, tz, lang) if request.due_at else "",
        "track_facts": await request_facts(s, rt, request, conv, lang),
        "track_photos": await tenant_photos(s, conv.id, since),
        "track_done_photos": [
            str((e.data or {})["photo"])
            for e in events
            if (e.data or {}).get("photo") and e.to_status == RequestStatus.DONE.value
        ],
        "track_when": rt.lifecycle.when(request, lang),
        "track_chips": chips,
        "track_min_date": today.isoformat(),
        "track_contractors": contractors,
        "track_events": [
            {
                "at": e.at.astimezone(tz).strftime("%d/%m %H:%M"),
                "who": names.get(e.staff_id or 0) or _actor(e.actor, lang),
                "from": e.from_status,
                "to": e.to_status,
                "note": e.note,
                "photo": (e.data or {}).get("photo"),
                "id": e.id,
            }
            for e in events
        ],
    }


# -- the request in words (issue 19) ------------------------------------------------------

MAX_THUMBS = 12


@dataclass(frozen=True, slots=True)
class Fact:
    key: str  # a console text: "req.fact.problem", ...
    value: str
    css: str = ""


def _text(value: Any, limit: int = 300) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fold(value: Any) -> str:
    """For comparing what the tenant said: "Dans le salon " and "dans le salon" are one."""
    return _text(value).casefold().strip(" .!")


def due_words(due: datetime, now: datetime, tz: ZoneInfo, lang: str) -> str:
    """ "À traiter avant le jeudi 3 décembre", "À traiter aujourd'hui, avant 18h00"."""
    local, today = due.astimezone(tz), now.astimezone(tz).date()
    clock = f"{local:%H:%M}" if lang == "en" else f"{local.hour}h{local.minute:02d}"
    days = (local.date() - today).days
    if days == 0:
        return translate(lang, "req.due_today", time=clock)
    if days == 1:
        return translate(lang, "req.due_tomorrow", time=clock)
    return translate(lang, "req.due_day", day=format_date(local.date(), lang))


async def request_facts(
    s: AsyncSession, rt: Any, request: RequestRow, conv: Conversation, lang: str
) -> list[Fact]:
    """What a caretaker needs to know about a request, in words: the problem, the place,
    since when, what the tenant added, and whether the tenant is vulnerable. The details'
    keys are the dialogue's (`bot.dialogue.policy`); the labels are data/texts.yml's."""
    d = request.details or {}
    texts = rt.texts

    def label(group: str, key: Any) -> str:
        return texts.label(group, str(key), lang) if key else ""

    facts: list[Fact] = []
    what = _text(d.get("what") or d.get("text"))
    problem = label("objects", d.get("object")) or label("hazards", d.get("hazard"))
    if problem and what:
        facts.append(Fact("req.fact.problem", f"{problem.capitalize()} — « {what} »"))
    elif problem or what:
        facts.append(Fact("req.fact.problem", problem.capitalize() if problem else f"« {what} »"))
    elif request.summary:
        facts.append(Fact("req.fact.problem", _text(request.summary)))
    place = d.get("place")
    where = label("places", place) if place and place != "?" else _text(d.get("where"), 120)
    area = d.get("area")
    if where or area in ("dwelling", "common"):
        in_area = translate(lang, f"req.area.{area}") if area in ("dwelling", "common") else ""
        text = where.capitalize() if where else ""
        text = f"{text} ({in_area})" if text and in_area else text or in_area.capitalize()
        facts.append(Fact("req.fact.place", text))
    if d.get("since"):
        facts.append(Fact("req.fact.since", _text(d.get("since"), 120)))
    if d.get("when"):
        facts.append(Fact("req.fact.when", _text(d.get("when"), 120)))
    # What the card already says is not repeated among the tenant's other answers.
    places = {where, texts.label("places", str(place), "fr") if place and place != "?" else ""}
    said = {_fold(x) for x in (what, d.get("since"), *places) if x}
    said |= {f"dans le {x}" for x in said} | {f"dans la {x}" for x in said}
    notes = [_text(n, 200) for n in (d.get("notes") or []) if n and _fold(n) not in said]
    if notes:
        facts.append(Fact("req.fact.notes", " / ".join(notes[-3:])))
    if d.get("earlier"):
        facts.append(Fact("req.fact.earlier", f"« {_text(d.get('earlier'))} »"))
    tenant = await s.get(Tenant, request.tenant_id) if request.tenant_id else None
    if tenant is not None and tenant.vulnerable:
        facts.append(
            Fact(
                "req.fact.vulnerable",
                _text(tenant.vulnerability) or translate(lang, "queue.vulnerable"),
                "vulnerable",
            )
        )
    return facts


async def tenant_photos(s: AsyncSession, conv_id: int, since: datetime | None = None) -> list[int]:
    """The ids of the photos the tenant sent in this conversation (since the previous request
    of it, when there is one): shown as thumbnails through /console/media/{id}."""
    stmt = (
        select(Attachment.id)
        .join(Message, Message.id == Attachment.message_id)
        .where(
            Message.conversation_id == conv_id,
            Message.author == Author.TENANT.value,
            Attachment.kind == "photo",
        )
        .order_by(Attachment.id.desc())
        .limit(MAX_THUMBS)
    )
    if since is not None:
        stmt = stmt.where(Message.created_at >= since)
    ids = list((await s.execute(stmt)).scalars())
    ids.reverse()
    return ids


async def late_context(
    s: AsyncSession, staff: StaffUser | None, now: datetime, timezone: str
) -> dict[str, Any]:
    """The late requests a queue (a caretaker's residences) or the dashboard (all) shows."""
    return {
        "late": await late_requests(s, staff, now),
        "late_residences": await residence_names(s),
        "late_tz": ZoneInfo(timezone),
    }


def _actor(actor: str, lang: str) -> str:
    """ "tenant" → "Locataire"; "api:gmao" → "API gmao"; "system:followup" → "Relais"."""
    kind, _, name = actor.partition(":")
    if kind == "api":
        return f"API {name}"
    return translate(lang, f"req.actor.{kind}")


# -- moves --------------------------------------------------------------------------------


async def _conversation_of(rt: Any, staff: StaffUser, request_id: int) -> tuple[RequestRow, int]:
    async with rt.db.session() as s:
        request = await s.get(RequestRow, request_id)
        conv = (
            await load_conversation(s, request.conversation_id)
            if request is not None and request.conversation_id
            else None
        )
    if request is None or conv is None or not request.reference:
        raise HTTPException(status_code=404)
    if not can_see(staff, conv):
        raise HTTPException(status_code=403)
    if not can_act(staff, conv):
        raise HTTPException(status_code=403)
    return request, conv.id


def _parse_day(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


async def _save_photo(rt: Any, request_id: int, photo: UploadFile | None) -> str | None:
    if photo is None or not photo.filename:
        return None
    ext = PHOTO_TYPES.get(photo.content_type or "")
    data = await photo.read(MAX_PHOTO + 1)
    if ext is None or not data or len(data) > MAX_PHOTO:
        raise ValueError("req.bad_photo")
    name = f"{uuid.uuid4().hex}{ext}"
    folder = Path(rt.settings.media_dir) / "requests" / str(request_id)

    def write() -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)

    await asyncio.to_thread(write)
    return name


@router.post("/console/requests/{request_id}/move")
async def move(
    request: Request,
    request_id: int,
    staff: StaffUser = Checked,
    status: str = Form(""),
    when: str = Form(""),  # a chip: "2026-12-08|morning"
    day: str = Form(""),
    slot: str = Form("morning"),
    contractor: str = Form(""),
    note: str = Form(""),
    photo: UploadFile | None = None,
) -> Response:
    rt = runtime_of(request)
    lang = request_language(request)
    row, conv_id = await _conversation_of(rt, staff, request_id)
    back = f"/console/c/{conv_id}"
    try:
        wanted = RequestStatus(status)
    except ValueError:
        raise HTTPException(status_code=400) from None
    error = ""
    scheduled_for = None
    if wanted == RequestStatus.SCHEDULED:
        chosen_day, _, chosen_slot = when.partition("|") if when else (day, "", slot)
        parsed = _parse_day(chosen_day)
        chosen_slot = chosen_slot if chosen_slot in SLOTS else "morning"
        async with rt.db.session() as s:
            residence = await s.get(Residence, row.residence_id) if row.residence_id else None
        if parsed is None or not rt.lifecycle.working_days(residence).is_working(parsed):
            error = "req.not_working_day"
        else:
            tz = ZoneInfo(rt.settings.timezone)
            scheduled_for = datetime.combine(parsed, SLOT_HOURS[chosen_slot], tzinfo=tz)
            slot = chosen_slot
    photo_name = None
    if not error and wanted == RequestStatus.DONE:
        try:
            photo_name = await _save_photo(rt, request_id, photo)
        except ValueError as exc:
            error = str(exc)
    if not error:
        change = Change(
            wanted,
            note=note,
            scheduled_for=scheduled_for,
            slot=slot if scheduled_for else "",
            contractor=contractor,
            photo=photo_name,
        )
        actor = Actor(
            "staff",
            staff.login,
            staff.id,
            display=staff.display_name or translate(lang, "app.name"),
        )
        try:
            await move_request(rt, str(row.reference), change, actor)
        except RequestNotFound:
            raise HTTPException(status_code=404) from None
        except TransitionRefused as refused:
            error = "req.refused"
            current = translate(lang, f"req.status.{refused.current}")
            return RedirectResponse(f"{back}?error={error}&current={current}", status_code=303)
    if error:
        return RedirectResponse(f"{back}?error={error}", status_code=303)
    return RedirectResponse(back, status_code=303)


@router.get("/console/requests/{request_id}/photo/{name}")
async def photo(request: Request, request_id: int, name: str, staff: StaffUser = Staff) -> Response:
    rt = runtime_of(request)
    async with rt.db.session() as s:
        row = await s.get(RequestRow, request_id)
        conv = (
            await load_conversation(s, row.conversation_id)
            if row is not None and row.conversation_id
            else None
        )
    if conv is None or not can_see(staff, conv):
        raise HTTPException(status_code=404)
    stem, dot, ext = name.partition(".")
    if not (len(stem) == 32 and stem.isalnum() and dot and f".{ext}" in PHOTO_TYPES.values()):
        raise HTTPException(status_code=404)
    path = Path(rt.settings.media_dir) / "requests" / str(request_id) / name
    if not path.is_file():
        raise HTTPException(status_code=404)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=86400"})
