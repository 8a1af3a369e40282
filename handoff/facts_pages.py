"""Managers keep the facts current (/console/manager/facts): residences, agencies, FAQ, texts.

A residence's caretaker hours, bulky-waste rule and its exceptions (a collection moved or
cancelled on a date), its lift company; an agency's hours and closures; the FAQ answers and
every tenant-facing text. Each form is checked, previewed as a tenant would receive it (the
dialogue's own rendering, with the SMS length and GSM-7 segments), saved with an audit entry,
and live at the next tenant message: residences and agencies are rows the pipeline reads on
every turn; texts and FAQ answers are overrides over the YAML seed, reloaded by every process
when told (`bot.dialogue.content`). Managers only; caretakers may not edit.
"""

from __future__ import annotations

import logging
import re
import string
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import FormData

from bot import dialogue as dlg
from bot.core.phones import to_e164
from bot.dialogue.content import CONTENT_CHANGED, save_override
from bot.dialogue.faq import FaqEntry
from bot.dialogue.texts import PLACES, with_places
from bot.ops.importer import parse_collection_rule
from bot.storage.models import Residence, StaffUser
from bot.storage.store import audit
from channels import gsm7
from handoff.auth import csrf_protect, require_role, runtime_of
from handoff.i18n import request_language, translate
from handoff.templating import render
from nlu.types import Parse

log = logging.getLogger(__name__)
manager_only = require_role("manager")
router = APIRouter(
    prefix="/console/manager/facts",
    include_in_schema=False,
    dependencies=[Depends(manager_only)],
)

DAYS = range(7)
MAX_TEXT = 1000
# What a FAQ answer may name; the dialogue fills them from the tenant's residence.
FAQ_PLACEHOLDERS = frozenset(
    {
        "agency", "agency_address", "agency_phone", "agency_email", "agency_hours",
        "caretaker", "caretaker_hours", "residence", "landlord", "website",
    }
    # A name with its French article: {at_agency} "à l'agence Lille Centre" (bot.dialogue.texts)
    | {f"{form}_{name}" for form in ("at", "of", "the") for name in PLACES}
)  # fmt: skip
# Example values of the placeholders of texts, for the preview only.
SAMPLE = {
    "name": " Nadia",
    "landlord": "Habitat Nord Solidaire",
    "reference": "R-2026-000123",
    "caretaker": "Karim Benali",
    "residence": "Résidence Les Fleurs",
    "when": "demain à 8h",
    "next_date": "mardi 8 décembre",
}

# -- parsing the forms ------------------------------------------------------------------------

_SLOT = re.compile(r"^\s*(\d{1,2})\s*[h:.]\s*(\d{2})?\s*-\s*(\d{1,2})\s*[h:.]\s*(\d{2})?\s*$")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{1,2})/(\d{1,2})/(\d{4})")


@dataclass
class Check:
    """The errors found while reading a form, translated for the manager."""

    lang: str
    errors: list[str] = field(default_factory=list)

    def add(self, key: str, **values: Any) -> None:
        self.errors.append(_tr(self.lang, key, **values))


def _tr(lang: str, key: str, **values: Any) -> str:
    return translate(lang, key, **values)


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip().replace("\r\n", "\n") if isinstance(value, str) else ""


def _hhmm(h: str, m: str | None) -> str | None:
    hour, minute = int(h), int(m or 0)
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def parse_hours(form: FormData, prefix: str, check: Check) -> dict[str, Any]:
    hours: dict[str, Any] = {}
    for d in DAYS:
        raw = _text(form, f"{prefix}_{d}")
        if not raw:
            continue
        slots = []
        for part in re.split(r"[,;]| et | and ", raw):
            if not part.strip():
                continue
            m = _SLOT.match(part.replace("–", "-"))
            start = _hhmm(m.group(1), m.group(2)) if m else None
            end = _hhmm(m.group(3), m.group(4)) if m else None
            if start is None or end is None or start >= end:
                check.add("facts.err.hours", day=_tr(check.lang, f"facts.day.{d}"), value=raw)
                break
            slots.append([start, end])
        else:
            hours[str(d)] = slots
    return hours


def _dates(line: str) -> list[date] | None:
    out = []
    for m in _DATE.finditer(line):
        try:
            if m.group(1):
                out.append(date(int(m.group(1)), int(m.group(2)), int(m.group(3))))
            else:
                out.append(date(int(m.group(6)), int(m.group(5)), int(m.group(4))))
        except ValueError:
            return None
    return out


def parse_closures(raw: str, label: str, check: Check) -> list[dict[str, str]]:
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        found = _dates(line)
        if not found or len(found) > 2 or (len(found) == 2 and found[1] < found[0]):
            check.add("facts.err.date_line", field=label, value=line.strip()[:60])
            continue
        note = _DATE.sub("", line).strip(" -–→>:")
        out.append({"from": found[0].isoformat(), "to": found[-1].isoformat(), "note": note[:100]})
    return out


def parse_exceptions(raw: str, label: str, check: Check) -> list[dict[str, str | None]]:
    out: list[dict[str, str | None]] = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        found = _dates(line)
        if not found or len(found) > 2:
            check.add("facts.err.date_line", field=label, value=line.strip()[:60])
            continue
        moved = found[1].isoformat() if len(found) == 2 else None
        out.append({"date": found[0].isoformat(), "moved_to": moved})
    return out


def closures_text(items: list[dict[str, Any]] | None) -> str:
    lines = []
    for c in items or []:
        to = c.get("to") if c.get("to") != c.get("from") else ""
        lines.append(" ".join(str(x) for x in (c.get("from"), to, c.get("note")) if x))
    return "\n".join(lines)


def exceptions_text(items: list[dict[str, Any]] | None) -> str:
    lines = [" ".join(str(x) for x in (e.get("date"), e.get("moved_to")) if x) for e in items or []]
    return "\n".join(lines)


def hours_fields(hours: dict[str, Any] | None) -> dict[int, str]:
    return {d: ", ".join(f"{a}-{b}" for a, b in (hours or {}).get(str(d), [])) for d in DAYS}


def check_template(value: str, label: str, allowed: frozenset[str], check: Check) -> None:
    if len(value) > MAX_TEXT:
        check.add("facts.err.too_long", field=label, n=len(value), max=MAX_TEXT)
    try:
        names = {name for _lit, name, _spec, _conv in string.Formatter().parse(value) if name}
    except ValueError:
        check.add("facts.err.braces", field=label)
        return
    for name in sorted(names - allowed):
        check.add(
            "facts.err.placeholder",
            field=label,
            name=name,
            names=", ".join("{" + n + "}" for n in sorted(allowed)) or "-",
        )


def check_phone(value: str, check: Check, region: str) -> None:
    if value and to_e164(value, region) is None:
        check.add("facts.err.phone", value=value[:40])


def sms_figures(text: str, lang: str) -> str:
    folded = gsm7.fold(text)
    encoding = "GSM-7" if gsm7.is_gsm7(folded) else "UCS-2"
    return _tr(
        lang, "facts.sms", chars=len(folded), segments=gsm7.segments(folded), encoding=encoding
    )


# -- what a tenant would receive ---------------------------------------------------------------


def residence_view(r: Residence, caretaker: str, landlord: dict[str, Any]) -> dlg.ResidenceView:
    return dlg.ResidenceView(
        code=r.code,
        name=r.name,
        buildings=tuple(r.buildings or ()),
        agency=r.agency or {},
        caretaker_name=caretaker,
        caretaker_hours=r.caretaker_hours or {},
        bulky_waste=r.bulky_waste or {},
        lift_company=r.lift_company or {},
        landlord=landlord,
    )


def sample_turn(request: Request, residence: dlg.ResidenceView | None, lang: str) -> dlg.Turn:
    rt = runtime_of(request)
    tenant = dlg.TenantView(id=0, reference="L-00000", first_name="Nadia", language=lang,
                            residence=residence)  # fmt: skip
    return dlg.Turn(
        text="",
        parse=Parse("", "question", 1.0, lang),
        channel="sms",
        now=rt.clock().astimezone(ZoneInfo(rt.settings.timezone)),
        state={},
        tenant=tenant,
        landlord=rt.landlord,
        language=lang,
    )


def previews(texts: dict[str, str], lang: str) -> list[dict[str, str]]:
    return [
        {"lang": k, "text": v, "sms": sms_figures(v, lang)} for k, v in texts.items() if v.strip()
    ]


async def _caretaker_name(s: AsyncSession, r: Residence) -> str:
    login = (r.extra or {}).get("caretaker")
    if not login:
        return ""
    name = (
        await s.execute(select(StaffUser.display_name).where(StaffUser.login == login))
    ).scalar_one_or_none()
    return name or ""


async def _announce(request: Request) -> None:
    """Texts and FAQ: this process reloads now, the others on the live event."""
    rt = runtime_of(request)
    rt.content.invalidate()
    async with rt.db.session() as s:
        await rt.content.refresh(s)
    try:
        await rt.bus.publish({"type": CONTENT_CHANGED})
    except Exception as exc:  # the others still reload within bot.dialogue.content.RECHECK_SECONDS
        log.warning("content change not announced (%s)", type(exc).__name__)


async def _reset(request: Request, staff: StaffUser, kind: str, key: str, page: str) -> Response:
    """Back to the shipped seed: the override is dropped, audited, announced."""
    rt = runtime_of(request)
    async with rt.db.transaction() as s:
        await save_override(s, kind, key, None, staff.login)
        await audit(s, "edit_facts", staff_id=staff.id, actor=staff.login,
                    target_type=kind, target_id=key, detail={"reset": True})  # fmt: skip
    await _announce(request)
    return RedirectResponse(f"/console/manager/facts/{page}/{quote(key)}?saved=1", 303)


# -- pages -------------------------------------------------------------------------------------


def _agency_key(r: Residence) -> str:
    return str((r.extra or {}).get("agency") or (r.agency or {}).get("name") or "")


@router.get("")
async def index(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    rt = runtime_of(request)
    async with rt.db.session() as s:
        residences = list((await s.execute(select(Residence).order_by(Residence.name))).scalars())
        await rt.content.refresh(s)
    agencies: dict[str, str] = {}
    for r in residences:
        key = _agency_key(r)
        if key:
            agencies.setdefault(key, str((r.agency or {}).get("name") or key))
    texts = [
        (k, v.get("fr", ""), k in rt.content.text_overrides)
        for k, v in rt.content.texts.entries.items()
        if isinstance(v, dict) and isinstance(v.get("fr"), str)
    ]
    faq = [
        (e.id, e.examples[0] if e.examples else e.id, e.id in rt.content.faq_overrides)
        for e in rt.content.current_faq().entries
    ]
    return render(
        request,
        "manager/facts.html",
        {"residences": residences, "agencies": agencies, "texts": texts, "faq": faq},
    )


async def _residence(s: AsyncSession, code: str) -> Residence:
    r = (await s.execute(select(Residence).where(Residence.code == code))).scalar_one_or_none()
    if r is None:
        raise HTTPException(status_code=404)
    return r


def _residence_form(r: Residence) -> dict[str, Any]:
    ch, bw, lift = r.caretaker_hours or {}, r.bulky_waste or {}, r.lift_company or {}
    return {
        "ch_fr": (ch.get("text") or {}).get("fr", ""),
        "ch_en": (ch.get("text") or {}).get("en", ""),
        "ch_hours": hours_fields(ch.get("hours")),
        "ch_closures": closures_text((ch.get("hours") or {}).get("closed")),
        "bw_rule": (bw.get("text") or {}).get("fr", ""),
        "bw_en": (bw.get("text") or {}).get("en", ""),
        "bw_time": bw.get("time", ""),
        "bw_place_fr": (bw.get("place") or {}).get("fr", ""),
        "bw_place_en": (bw.get("place") or {}).get("en", ""),
        "bw_not_fr": (bw.get("not_collected") or {}).get("fr", ""),
        "bw_not_en": (bw.get("not_collected") or {}).get("en", ""),
        "bw_exceptions": exceptions_text(bw.get("exceptions")),
        "lift_name": lift.get("name", ""),
        "lift_phone": lift.get("phone", ""),
    }


def _read_residence(form: FormData, r: Residence, check: Check, region: str) -> dict[str, Any]:
    lang = check.lang
    hours = parse_hours(form, "ch_hours", check)
    closed = parse_closures(_text(form, "ch_closures"), _tr(lang, "facts.closures"), check)
    if closed:
        hours["closed"] = closed
    rule_words = _text(form, "bw_rule")
    bw = dict(r.bulky_waste or {})
    if rule_words:
        rule = parse_collection_rule(rule_words)
        if rule is None:
            check.add("facts.err.rule", value=rule_words[:60])
        else:
            english = _text(form, "bw_en")
            rule_en = parse_collection_rule(english) if english else None
            if rule_en is not None and rule_en != rule:
                check.add("facts.err.rule_en")
            bw["rule"] = rule
    bw["text"] = {"fr": rule_words, "en": _text(form, "bw_en")}
    bw["time"] = _text(form, "bw_time")
    bw["place"] = {"fr": _text(form, "bw_place_fr"), "en": _text(form, "bw_place_en")}
    bw["not_collected"] = {"fr": _text(form, "bw_not_fr"), "en": _text(form, "bw_not_en")}
    bw["exceptions"] = parse_exceptions(
        _text(form, "bw_exceptions"), _tr(lang, "facts.exceptions"), check
    )
    lift_phone = _text(form, "lift_phone")
    check_phone(lift_phone, check, region)
    for name in ("ch_fr", "ch_en", "bw_place_fr", "bw_place_en", "bw_not_fr", "bw_not_en"):
        if len(_text(form, name)) > MAX_TEXT:
            check.add("facts.err.too_long", field=name, n=len(_text(form, name)), max=MAX_TEXT)
    return {
        "caretaker_hours": {
            "hours": hours,
            "text": {"fr": _text(form, "ch_fr"), "en": _text(form, "ch_en")},
        },
        "bulky_waste": bw,
        "lift_company": {"name": _text(form, "lift_name"), "phone": lift_phone},
    }


async def _residence_page(
    request: Request,
    r: Residence,
    form_values: dict[str, Any],
    values: dict[str, Any] | None,
    errors: list[str],
    status_code: int = 200,
) -> Response:
    rt = runtime_of(request)
    lang = request_language(request)
    async with rt.db.session() as s:
        caretaker = await _caretaker_name(s, r)
    shown = {}
    if values is not None or not errors:
        facts = values or {
            "caretaker_hours": r.caretaker_hours,
            "bulky_waste": r.bulky_waste,
            "lift_company": r.lift_company,
        }
        view = residence_view(r, caretaker, rt.landlord)
        view = dlg.ResidenceView(**{**_fields(view), **facts})
        for tl in ("fr", "en"):
            shown[tl] = dlg.preview_bulky(sample_turn(request, view, tl), rt.texts)
    return render(
        request,
        "manager/facts_residence.html",
        {
            "r": r,
            "f": form_values,
            "errors": errors,
            "previews": previews(shown, lang),
            "saved": request.query_params.get("saved") == "1",
            "days": DAYS,
        },
        status_code=status_code,
    )


def _fields(view: dlg.ResidenceView) -> dict[str, Any]:
    return {name: getattr(view, name) for name in view.__dataclass_fields__}


@router.get("/residences/{code}")
async def residence_page(
    request: Request,
    code: str,
    staff: StaffUser = Depends(manager_only),  # noqa: B008
) -> Response:
    async with runtime_of(request).db.session() as s:
        r = await _residence(s, code)
    return await _residence_page(request, r, _residence_form(r), None, [])


@router.post("/residences/{code}")
async def residence_save(
    request: Request,
    code: str,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    rt = runtime_of(request)
    form = await request.form()
    check = Check(request_language(request))
    async with rt.db.session() as s:
        r = await _residence(s, code)
    values = _read_residence(form, r, check, rt.settings.phone_region)
    form_values: dict[str, Any] = {k: _text(form, k) for k in _residence_form(r) if k != "ch_hours"}
    form_values["ch_hours"] = {d: _text(form, f"ch_hours_{d}") for d in DAYS}
    if check.errors or form.get("action") == "preview":
        return await _residence_page(
            request,
            r,
            form_values,
            None if check.errors else values,
            check.errors,
            status_code=422 if check.errors else 200,
        )
    async with rt.db.transaction() as s:
        row = await _residence(s, code)
        before = {k: getattr(row, k) for k in values}
        for k, v in values.items():
            setattr(row, k, v)
        changed = sorted(k for k in values if before[k] != values[k])
        await audit(
            s,
            "edit_facts",
            staff_id=staff.id,
            actor=staff.login,
            target_type="residence",
            target_id=code,
            detail={"changed": changed, "before": {k: before[k] for k in changed}},
        )
    return RedirectResponse(f"/console/manager/facts/residences/{quote(code)}?saved=1", 303)


# -- agencies ------------------------------------------------------------------------------


async def _agency_residences(s: AsyncSession, key: str) -> list[Residence]:
    rows = [r for r in (await s.execute(select(Residence))).scalars() if _agency_key(r) == key]
    if not rows:
        raise HTTPException(status_code=404)
    return rows


def _agency_form(agency: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": agency.get("name", ""),
        "address": agency.get("address", ""),
        "phone": agency.get("phone", ""),
        "email": agency.get("email", ""),
        "hours": hours_fields(agency.get("hours")),
        "closures": closures_text((agency.get("hours") or {}).get("closed")),
        "hours_fr": (agency.get("hours_text") or {}).get("fr", ""),
        "hours_en": (agency.get("hours_text") or {}).get("en", ""),
    }


async def _agency_page(
    request: Request,
    key: str,
    residences: list[Residence],
    form_values: dict[str, Any],
    agency: dict[str, Any] | None,
    errors: list[str],
    status_code: int = 200,
) -> Response:
    rt = runtime_of(request)
    lang = request_language(request)
    shown = {}
    entry = next((e for e in rt.content.current_faq().entries if e.id == "agency"), None)
    if entry is not None and not errors:
        r = residences[0]
        view = residence_view(r, "", rt.landlord)
        view = dlg.ResidenceView(**{**_fields(view), "agency": agency or r.agency})
        for tl in ("fr", "en"):
            shown[tl] = dlg.preview_answer(sample_turn(request, view, tl), rt.texts, entry)
    return render(
        request,
        "manager/facts_agency.html",
        {
            "key": key,
            "residences": residences,
            "f": form_values,
            "errors": errors,
            "previews": previews(shown, lang),
            "saved": request.query_params.get("saved") == "1",
            "days": DAYS,
        },
        status_code=status_code,
    )


@router.get("/agencies/{agency}")
async def agency_page(
    request: Request,
    agency: str,
    staff: StaffUser = Depends(manager_only),  # noqa: B008
) -> Response:
    key = agency
    async with runtime_of(request).db.session() as s:
        residences = await _agency_residences(s, key)
    return await _agency_page(
        request, key, residences, _agency_form(residences[0].agency or {}), None, []
    )


@router.post("/agencies/{agency}")
async def agency_save(
    request: Request,
    agency: str,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    key = agency
    rt = runtime_of(request)
    form = await request.form()
    lang = request_language(request)
    check = Check(lang)
    async with rt.db.session() as s:
        residences = await _agency_residences(s, key)
    hours = parse_hours(form, "hours", check)
    closed = parse_closures(_text(form, "closures"), _tr(lang, "facts.closures"), check)
    if closed:
        hours["closed"] = closed
    phone = _text(form, "phone")
    check_phone(phone, check, rt.settings.phone_region)
    name = _text(form, "name")
    if not name:
        check.add("facts.err.required", field=_tr(lang, "facts.agency_name"))
    new_agency = {
        **(residences[0].agency or {}),
        "name": name,
        "address": _text(form, "address"),
        "phone": phone,
        "email": _text(form, "email"),
        "hours": hours,
        "hours_text": {"fr": _text(form, "hours_fr"), "en": _text(form, "hours_en")},
    }
    form_values: dict[str, Any] = {k: _text(form, k) for k in _agency_form({}) if k != "hours"}
    form_values["hours"] = {d: _text(form, f"hours_{d}") for d in DAYS}
    if check.errors or form.get("action") == "preview":
        return await _agency_page(
            request,
            key,
            residences,
            form_values,
            None if check.errors else new_agency,
            check.errors,
            status_code=422 if check.errors else 200,
        )
    async with rt.db.transaction() as s:
        rows = await _agency_residences(s, key)
        before = dict(rows[0].agency or {})
        for r in rows:
            r.agency = new_agency
        await audit(
            s,
            "edit_facts",
            staff_id=staff.id,
            actor=staff.login,
            target_type="agency",
            target_id=key,
            detail={
                "changed": sorted(k for k in new_agency if before.get(k) != new_agency[k]),
                "residences": [r.code for r in rows],
            },
        )
    return RedirectResponse(f"/console/manager/facts/agencies/{quote(key)}?saved=1", 303)


# -- FAQ answers ---------------------------------------------------------------------------


def _faq_entry(request: Request, entry_id: str) -> FaqEntry:
    for e in runtime_of(request).content.current_faq().entries:
        if e.id == entry_id:
            return e
    raise HTTPException(status_code=404)


async def _faq_page(
    request: Request,
    entry: FaqEntry,
    form_values: dict[str, Any],
    errors: list[str],
    *,
    residence_code: str | None,
    status_code: int = 200,
) -> Response:
    rt = runtime_of(request)
    lang = request_language(request)
    async with rt.db.session() as s:
        residences = list((await s.execute(select(Residence).order_by(Residence.name))).scalars())
        chosen = next((r for r in residences if r.code == residence_code), None) or (
            residences[0] if residences else None
        )
        caretaker = await _caretaker_name(s, chosen) if chosen else ""
    shown = {}
    if not errors:
        view = residence_view(chosen, caretaker, rt.landlord) if chosen else None
        for tl in ("fr", "en"):
            shown[tl] = dlg.preview_answer(sample_turn(request, view, tl), rt.texts, entry)
    return render(
        request,
        "manager/facts_faq.html",
        {
            "entry": entry,
            "f": form_values,
            "errors": errors,
            "previews": previews(shown, lang),
            "residences": residences,
            "chosen": chosen.code if chosen else "",
            "saved": request.query_params.get("saved") == "1",
            "changed": entry.id in rt.content.faq_overrides,
            "placeholders": ", ".join("{" + p + "}" for p in sorted(FAQ_PLACEHOLDERS)),
        },
        status_code=status_code,
    )


@router.get("/faq/{entry_id}")
async def faq_page(
    request: Request,
    entry_id: str,
    staff: StaffUser = Depends(manager_only),  # noqa: B008
) -> Response:
    rt = runtime_of(request)
    async with rt.db.session() as s:
        await rt.content.refresh(s)
    entry = _faq_entry(request, entry_id)
    form_values = {
        "answer_fr": entry.answer.get("fr", ""),
        "answer_en": entry.answer.get("en", ""),
        "examples": "\n".join(entry.examples),
    }
    return await _faq_page(
        request, entry, form_values, [], residence_code=request.query_params.get("residence")
    )


@router.post("/faq/{entry_id}")
async def faq_save(
    request: Request,
    entry_id: str,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    rt = runtime_of(request)
    form = await request.form()
    lang = request_language(request)
    check = Check(lang)
    entry = _faq_entry(request, entry_id)
    if form.get("action") == "reset":
        return await _reset(request, staff, "faq", entry_id, "faq")
    answer = {"fr": _text(form, "answer_fr"), "en": _text(form, "answer_en")}
    examples = [x.strip() for x in _text(form, "examples").splitlines() if x.strip()]
    if not answer["fr"]:
        check.add("facts.err.required", field=_tr(lang, "facts.answer_fr"))
    for tl, value in answer.items():
        check_template(value, _tr(lang, f"facts.answer_{tl}"), FAQ_PLACEHOLDERS, check)
    if not examples:
        check.add("facts.err.examples")
    form_values = {**{f"answer_{k}": v for k, v in answer.items()}, "examples": "\n".join(examples)}
    edited = FaqEntry(entry.id, tuple(examples) or entry.examples, answer, entry.offer_human)
    residence_code = _text(form, "residence") or None
    if check.errors or form.get("action") == "preview":
        return await _faq_page(
            request,
            edited if not check.errors else entry,
            form_values,
            check.errors,
            residence_code=residence_code,
            status_code=422 if check.errors else 200,
        )
    async with rt.db.transaction() as s:
        await save_override(
            s, "faq", entry_id, {"answer": answer, "examples": examples}, staff.login
        )
        await audit(
            s,
            "edit_facts",
            staff_id=staff.id,
            actor=staff.login,
            target_type="faq",
            target_id=entry_id,
            detail={"before": entry.answer, "after": answer},
        )
    await _announce(request)
    return RedirectResponse(f"/console/manager/facts/faq/{quote(entry_id)}?saved=1", 303)


# -- texts -----------------------------------------------------------------------------------


def _seed_text(request: Request, key: str) -> dict[str, str]:
    entry = runtime_of(request).content.seed_texts.get(key)
    if not isinstance(entry, dict) or not isinstance(entry.get("fr"), str):
        raise HTTPException(status_code=404)
    return {k: str(v) for k, v in entry.items()}


def _placeholders(entry: dict[str, str]) -> frozenset[str]:
    names: set[str] = set()
    for value in entry.values():
        names |= {n for _l, n, _s, _c in string.Formatter().parse(value) if n}
    return frozenset(names)


def _sample(text: str) -> str:
    values = with_places({**SAMPLE, "hello": "Bonjour", "good_day": "Bonne journée"})
    return string.Formatter().vformat(text, (), _Sample(values)).strip()


class _Sample(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return f"[{key}]"


async def _text_page(
    request: Request,
    key: str,
    form_values: dict[str, str],
    errors: list[str],
    status_code: int = 200,
) -> Response:
    rt = runtime_of(request)
    lang = request_language(request)
    seed = _seed_text(request, key)
    shown = {}
    if not errors:
        shown = {tl: _sample(form_values.get(f"text_{tl}", "")) for tl in ("fr", "en")}
    return render(
        request,
        "manager/facts_text.html",
        {
            "key": key,
            "f": form_values,
            "errors": errors,
            "previews": previews(shown, lang),
            "saved": request.query_params.get("saved") == "1",
            "changed": key in rt.content.text_overrides,
            "placeholders": ", ".join("{" + p + "}" for p in sorted(_placeholders(seed))),
        },
        status_code=status_code,
    )


@router.get("/texts/{text_key}")
async def text_page(
    request: Request,
    text_key: str,
    staff: StaffUser = Depends(manager_only),  # noqa: B008
) -> Response:
    key = text_key
    rt = runtime_of(request)
    async with rt.db.session() as s:
        await rt.content.refresh(s)
    _seed_text(request, key)
    current = rt.content.texts.entries.get(key) or {}
    form_values = {"text_fr": str(current.get("fr", "")), "text_en": str(current.get("en", ""))}
    return await _text_page(request, key, form_values, [])


@router.post("/texts/{text_key}")
async def text_save(
    request: Request,
    text_key: str,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    key = text_key
    rt = runtime_of(request)
    form = await request.form()
    lang = request_language(request)
    check = Check(lang)
    seed = _seed_text(request, key)
    if form.get("action") == "reset":
        return await _reset(request, staff, "text", key, "texts")
    value = {"fr": _text(form, "text_fr"), "en": _text(form, "text_en")}
    if not value["fr"]:
        check.add("facts.err.required", field=_tr(lang, "facts.text_fr"))
    allowed = _placeholders(seed)
    for tl, text in value.items():
        check_template(text, _tr(lang, f"facts.text_{tl}"), allowed, check)
    form_values = {f"text_{k}": v for k, v in value.items()}
    if check.errors or form.get("action") == "preview":
        return await _text_page(
            request, key, form_values, check.errors, status_code=422 if check.errors else 200
        )
    before = dict(rt.content.texts.entries.get(key) or {})
    async with rt.db.transaction() as s:
        await save_override(s, "text", key, {k: v for k, v in value.items() if v}, staff.login)
        await audit(
            s,
            "edit_facts",
            staff_id=staff.id,
            actor=staff.login,
            target_type="text",
            target_id=key,
            detail={"before": before, "after": value},
        )
    await _announce(request)
    return RedirectResponse(f"/console/manager/facts/texts/{quote(key)}?saved=1", 303)
