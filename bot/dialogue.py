"""The dialogue policy: from what the NLU read and the conversation so far, what the bot does.

`decide` is a pure function of a `Turn`; the pipeline gathers the turn and applies the
`Decision` (stores replies, opens requests, hands off). Nothing here touches I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.texts import Texts
from nlu.types import Parse

# The bot gives up after this many misunderstandings in a row and hands off.
MAX_FAILURES = 2

PRIORITY_NORMAL = 0
PRIORITY_VULNERABLE = 5
PRIORITY_EMERGENCY = 10


@dataclass(frozen=True, slots=True)
class ResidenceView:
    code: str
    name: str
    buildings: tuple[str, ...] = ()
    agency: dict[str, Any] = field(default_factory=dict)
    caretaker_name: str = ""
    caretaker_hours: dict[str, Any] = field(default_factory=dict)
    bulky_waste: dict[str, Any] = field(default_factory=dict)
    lift_company: dict[str, Any] = field(default_factory=dict)
    landlord: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TenantView:
    id: int
    reference: str
    first_name: str
    language: str = "fr"
    vulnerable: bool = False
    building: str = ""
    apartment: str = ""
    residence: ResidenceView | None = None


@dataclass(frozen=True, slots=True)
class RequestView:
    reference: str
    kind: str
    status: str
    created_at: datetime
    summary: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    text: str
    parse: Parse
    channel: str
    now: datetime
    state: dict[str, Any]  # the conversation's stored dialogue state
    tenant: TenantView | None
    has_media: bool = False
    open_requests: tuple[RequestView, ...] = ()
    landlord: dict[str, Any] = field(default_factory=dict)
    language: str = "fr"


@dataclass(frozen=True, slots=True)
class HandoffSpec:
    intent: str
    reason: str
    priority: int = PRIORITY_NORMAL
    oncall: bool = False


@dataclass(frozen=True, slots=True)
class RequestSpec:
    kind: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    replies: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    handoff: HandoffSpec | None = None
    request: RequestSpec | None = None
    # A tenant reference or phone the unknown sender gave: the pipeline tries to link it.
    identify: str | None = None
    intent: str | None = None


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def emergency_kind(text: str) -> str:
    t = _fold(text)
    if re.search(r"\bgaz\b|\bgas\b", t):
        return "gas"
    if re.search(r"\bfeu\b|incendie|fumee|\bfire\b|smoke|brule", t):
        return "fire"
    if re.search(r"bloque|coince|enferme|trapped|stuck", t):
        return "trapped"
    if re.search(r"etincel|spark|court.?circuit|electrocut|prise .*fum", t):
        return "electric"
    if re.search(r"inond|eau .*partout|flood|deborde|plafond .*coule", t):
        return "water"
    return "generic"


_TENANT_REF = re.compile(r"\bL[-\s]?(\d{4,6})\b", re.IGNORECASE)
_PHONE = re.compile(r"(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}")


def find_identity(text: str) -> str | None:
    """A tenant reference (L-10231) or a French phone number given by an unknown sender."""
    m = _TENANT_REF.search(text)
    if m:
        return f"L-{m.group(1)}"
    m = _PHONE.search(text)
    if m:
        digits = re.sub(r"\D", "", m.group(0))
        return "+33" + digits[-9:]
    return None


def _name(tenant: TenantView | None) -> str:
    return f" {tenant.first_name}" if tenant and tenant.first_name else ""


def decide(turn: Turn, texts: Texts) -> Decision:
    lang = turn.language
    p = turn.parse
    state = dict(turn.state)
    d = Decision(state=state, intent=p.intent)
    say = d.replies.append
    tenant = turn.tenant
    residence = tenant.residence if tenant else None
    landlord = turn.landlord.get("name", "votre bailleur")

    if not turn.text.strip():
        say(texts.get("media_only" if turn.has_media else "empty", lang))
        return d

    # Safety first: instructions go out before anything else, at any hour.
    if p.intent == "emergency":
        kind = emergency_kind(turn.text)
        lift = residence.lift_company if residence else {}
        say(
            texts.get(
                f"emergency_{kind}",
                lang,
                lift_company=lift.get("name", ""),
                lift_phone=lift.get("phone", "112"),
            )
        )
        d.request = RequestSpec("emergency", turn.text[:200], {"kind": kind})
        d.handoff = HandoffSpec("emergency", f"emergency:{kind}", PRIORITY_EMERGENCY, True)
        state["failures"] = 0
        return d

    if tenant is None and state.get("awaiting") == "identity":
        ident = find_identity(turn.text)
        if ident:
            d.identify = ident
            return d

    if p.intent in ("out_of_scope",):
        failures = int(state.get("failures", 0)) + 1
        state["failures"] = failures
        if failures >= MAX_FAILURES:
            say(texts.get("handoff_after_failures", lang))
            d.handoff = HandoffSpec("out_of_scope", "not_understood", _priority(tenant))
            state["failures"] = 0
        else:
            say(texts.get("ask_again", lang))
        return d
    state["failures"] = 0

    if p.intent == "greet":
        say(texts.get("greet", lang, name=_name(tenant), landlord=landlord))
    elif p.intent == "thanks":
        say(texts.get("thanks", lang))
    elif p.intent == "goodbye":
        say(texts.get("goodbye", lang, name=_name(tenant)))
    elif p.intent == "affirm":
        say(texts.get("affirm_nothing", lang))
    elif p.intent == "deny":
        say(texts.get("deny_nothing", lang))
    elif p.intent == "human_request":
        say(texts.get("human", lang))
        d.handoff = HandoffSpec("human_request", "asked_for_human", _priority(tenant))
    elif p.intent == "status_request":
        _status(turn, texts, d)
    elif tenant is None and p.intent in ("repair", "nuisance", "status_request"):
        say(texts.get("unknown_sender", lang))
        state["awaiting"] = "identity"
        state["pending_text"] = turn.text[:500]
    elif p.intent == "repair":
        caretaker = (
            residence.caretaker_name
            if residence and residence.caretaker_name
            else ("L'équipe de proximité" if lang == "fr" else "The local team")
        )
        d.request = RequestSpec(
            "repair",
            turn.text[:200],
            {
                "place": p.entity("place"),
                "object": p.entity("object"),
                "since": p.entity("date"),
            },
        )
        say(texts.get("repair_created", lang, reference="{reference}", caretaker=caretaker))
        d.handoff = HandoffSpec("repair", "repair_request", _priority(tenant))
    elif p.intent == "nuisance":
        say(texts.get("nuisance_ack", lang))
        d.request = RequestSpec("nuisance", turn.text[:200], {})
        d.handoff = HandoffSpec("nuisance", "nuisance_report", _priority(tenant))
    elif p.intent == "bulky_waste":
        if residence and residence.bulky_waste:
            from bot.schedule import next_collection

            bw = residence.bulky_waste
            nxt = next_collection(bw.get("rule", {}), turn.now.date())
            say(
                texts.get(
                    "bulky_info",
                    lang,
                    residence=residence.name,
                    when=bw.get("text", {}).get(lang, ""),
                    next_date=_format_date(nxt, lang) if nxt else "?",
                    place=bw.get("place", {}).get(lang, ""),
                    not_collected=bw.get("not_collected", {}).get(lang, ""),
                )
            )
        else:
            say(texts.get("bulky_generic", lang))
    elif p.intent == "question":
        agency = residence.agency if residence else turn.landlord.get("agency", {})
        if agency:
            say(
                texts.get(
                    "question_generic",
                    lang,
                    agency=agency.get("name", ""),
                    agency_address=agency.get("address", ""),
                    agency_phone=agency.get("phone", ""),
                    agency_hours=agency.get("hours_text", {}).get(lang, ""),
                )
            )
        else:
            say(texts.get("handoff", lang))
            d.handoff = HandoffSpec("question", "question_unanswered", _priority(tenant))
    else:
        say(texts.get("ask_again", lang))
    return d


def _priority(tenant: TenantView | None) -> int:
    return PRIORITY_VULNERABLE if tenant and tenant.vulnerable else PRIORITY_NORMAL


def _status(turn: Turn, texts: Texts, d: Decision) -> None:
    lang = turn.language
    if turn.tenant is None:
        d.replies.append(texts.get("unknown_sender", lang))
        d.state["awaiting"] = "identity"
        return
    quoted = turn.parse.entity("reference")
    requests = turn.open_requests
    if quoted:
        requests = tuple(r for r in requests if r.reference == quoted)
        if not requests:
            d.replies.append(texts.get("status_unknown_reference", lang, reference=quoted))
            return
    if not requests:
        d.replies.append(texts.get("status_none", lang))
        return
    lines = [
        texts.get(
            "status_line",
            lang,
            reference=r.reference,
            kind=texts.label("kinds", r.kind, lang),
            status=texts.label("request_status", r.status, lang),
            date=_format_date(r.created_at.date(), lang),
        )
        for r in requests[:3]
    ]
    d.replies.append("\n".join(lines))


_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _format_date(day: Any, lang: str) -> str:
    if lang == "en":
        return f"{day.strftime('%A')} {day.day} {day.strftime('%B')}"
    return f"{_DAYS_FR[day.weekday()]} {day.day} {_MONTHS_FR[day.month - 1]}"
