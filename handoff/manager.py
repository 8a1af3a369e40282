"""The manager pages under /console/manager: dashboard, transcripts, NLU review, audit log.

Managers only (403 for the other roles), read-only on conversations. What a manager reads
or exports is written to the audit log like the caretakers' actions. The figures come from
`handoff.reports`; the charts from `handoff.charts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import (
    AuditLog,
    Author,
    Conversation,
    ConversationState,
    Direction,
    Handoff,
    Message,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.models import Request as Ticket
from bot.storage.store import audit
from handoff import audit_view, charts, reports, review
from handoff import dashboard as dash
from handoff.auth import MAX_DB_ID, DbId, csrf_protect, require_role, runtime_of, safe_next
from handoff.i18n import MESSAGES, request_language, translate
from handoff.requests_console import late_context
from handoff.templating import render
from nlu.types import INTENTS, TOPIC_INTENTS

manager_only = require_role("manager")
router = APIRouter(
    prefix="/console/manager",
    include_in_schema=False,
    dependencies=[Depends(manager_only)],
)

PAGE_SIZE = 50
CHANNELS = ("sms", "telegram", "webchat", "terminal")
STATES = tuple(s.value for s in ConversationState)
MAX_DAYS = 3 * 366


# -- helpers ----------------------------------------------------------------------------


def _tz(request: Request) -> ZoneInfo:
    return ZoneInfo(runtime_of(request).settings.timezone)


def _today(request: Request) -> date:
    return runtime_of(request).clock().astimezone(_tz(request)).date()


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def parse_period(request: Request, default_days: int | None) -> reports.Period | None:
    """`start`/`end` (YYYY-MM-DD, local days, both included); the last `default_days` days
    when neither is given (None: no period)."""
    q = request.query_params
    first, last = _date(q.get("start")), _date(q.get("end"))
    today = _today(request)
    tz = _tz(request)
    if first is None and last is None:
        if default_days is None:
            return None
        return reports.Period.last_days(default_days, today, tz)
    last = last or today
    # Only an end: the dashboard shows a month up to it, a search everything before it.
    first = first or last - timedelta(days=(default_days or MAX_DAYS) - 1)
    if first > last:
        first, last = last, first
    first = max(first, last - timedelta(days=MAX_DAYS))
    return reports.Period(first, last, tz)


def _int(value: str | None) -> int | None:
    """An id or a page number from a query string; None unless it is one a table can hold."""
    try:
        number = int(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number <= MAX_DB_ID else None


def _page(request: Request) -> int:
    return max(1, min(_int(request.query_params.get("page")) or 1, 10_000))


def _label(lang: str, prefix: str, value: str) -> str:
    key = f"{prefix}.{value}"
    return translate(lang, key) if key in MESSAGES else value


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = {k: v for k, v in request.query_params.items() if v != ""}
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return urlencode(params)


def _context(request: Request, **extra: Any) -> dict[str, Any]:
    lang = request_language(request)
    tz = _tz(request)

    def when(value: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
        return value.astimezone(tz).strftime(fmt) if value else ""

    return {
        "when": when,
        "label": lambda prefix, value: _label(lang, prefix, value or ""),
        "query": lambda **changes: _query(request, **changes),
        "intents": INTENTS,
        **extra,
    }


def _period_context(period: reports.Period | None) -> dict[str, Any]:
    return {
        "period": period,
        "start": period.first.isoformat() if period else "",
        "end": period.last.isoformat() if period else "",
    }


async def _audit(
    request: Request, staff: StaffUser, action: str, target_type: str, target_id: Any, **detail: Any
) -> None:
    async with runtime_of(request).db.transaction() as s:
        await audit(
            s,
            action,
            staff_id=staff.id,
            actor=staff.login,
            target_type=target_type,
            target_id=target_id,
            detail=detail,
        )


# -- dashboard ----------------------------------------------------------------------------


@router.get("")
async def dashboard(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    rt = runtime_of(request)
    period = parse_period(request, 30)
    assert period is not None
    lang = request_language(request)
    now = rt.clock()
    async with rt.db.session() as s:
        scope = await dash.residence_scope(s, staff, request.query_params.get("residence", ""))
        rid = scope.residence_id
        volume = await reports.messages_per_day(s, period, residence_id=rid)
        auto = await reports.automation(s, period, residence_id=rid)
        handoffs = await reports.handoffs_by_intent_and_residence(s, period, residence_id=rid)
        waits = await reports.wait_times(s, period, residence_id=rid)
        sat = await reports.satisfaction(s, period, residence_id=rid)
        ages = await reports.open_requests_by_age(s, now, residence_id=rid)
        late = await late_context(s, None, now, rt.settings.timezone)
        extra = await dash.figures(s, lang, period, now, rid)
    if rid is not None:
        late["late"] = [r for r in late["late"] if r.residence_id == rid]
    return render(
        request,
        "manager/dashboard.html",
        _context(
            request,
            **_period_context(period),
            volume=volume,
            auto=auto,
            handoffs=handoffs,
            waits=waits,
            sat=sat,
            ages=ages,
            open_requests=sum(n for _, n in ages),
            charts=_dashboard_charts(lang, volume, auto, handoffs, waits, sat, ages),
            scope=scope,
            **extra,
            **late,
        ),
    )


def _dashboard_charts(
    lang: str,
    volume: reports.DailyVolume,
    auto: reports.Automation,
    handoffs: reports.HandoffCounts,
    waits: reports.WaitStats,
    sat: reports.Satisfaction,
    ages: list[tuple[str, int]],
) -> dict[str, Any]:
    """Every drawing of the dashboard (SVG), with the legends the page shows beside them."""
    return {
        **_volume_charts(lang, volume),
        "automation": charts.share_bar(auto.share, label=translate(lang, "mgr.chart.automation")),
        **_handoff_charts(lang, handoffs),
        "wait": _wait_chart(lang, waits),
        "satisfaction": _satisfaction_chart(lang, sat),
        "requests": _age_chart(lang, ages),
    }


def _volume_charts(lang: str, volume: reports.DailyVolume) -> dict[str, Any]:
    """Messages per day, stacked by channel."""
    channel_colors = {c: charts.color(i) for i, c in enumerate(volume.channels)}
    day_fmt = "%d/%m" if lang == "fr" else "%m/%d"
    day_labels = [d.strftime(day_fmt) for d in volume.days]
    series = [
        charts.Series(
            _label(lang, "channel", c),
            [volume.counts.get((d, c), 0) for d in volume.days],
            channel_colors[c],
        )
        for c in volume.channels
    ]
    label = translate(lang, "mgr.chart.volume")
    # Two drawings of the same figure, one shown by the stylesheet: a phone-sized one and a
    # wide one (text stays the same size in both, which one scaled drawing cannot do).
    narrow = charts.stacked_columns(
        day_labels,
        series,
        label=label,
        label_every=max(1, len(volume.days) // 5),
        css="narrow-only",
    )
    wide = charts.stacked_columns(
        day_labels,
        series,
        label=label,
        label_every=max(1, len(volume.days) // 10),
        width=1000,
        height=240,
        css="wide-only",
    )
    return {
        "volume": narrow + wide,
        "volume_legend": [(_label(lang, "channel", c), channel_colors[c]) for c in volume.channels],
    }


def _handoff_charts(lang: str, handoffs: reports.HandoffCounts) -> dict[str, Any]:
    """Handoffs by need (stacked by residence) and by residence, one colour per residence."""
    residences = [name for name, _ in handoffs.residences()]
    colors = {r: charts.color(i) for i, r in enumerate(residences)}

    def name(r: str) -> str:
        return r or translate(lang, "mgr.no_residence")

    by_intent = charts.horizontal_bars(
        [
            charts.Bar(
                _label(lang, "intent", intent),
                [(name(r), handoffs.cells.get((intent, r), 0), colors[r]) for r in residences],
            )
            for intent, _ in handoffs.intents()
        ],
        label=translate(lang, "mgr.chart.by_intent"),
    )
    by_residence = charts.horizontal_bars(
        [charts.Bar(name(r), [(name(r), n, colors[r])]) for r, n in handoffs.residences()],
        label=translate(lang, "mgr.chart.by_residence"),
    )
    return {
        "by_intent": by_intent,
        "residence_legend": [(name(r), colors[r]) for r in residences],
        "by_residence": by_residence,
    }


def _wait_chart(lang: str, waits: reports.WaitStats) -> Markup:
    return charts.horizontal_bars(
        [
            charts.Bar(translate(lang, f"mgr.wait.{k}"), [("", n, "#0072B2")])
            for k, n in waits.buckets
        ],
        label=translate(lang, "mgr.chart.wait"),
    )


# Red for unhappy, green for happy: the colours say which way is good.
SCORE_COLORS = ("#D55E00", "#E69F00", "#b8b8b8", "#56B4E9", "#009E73")
AGE_COLORS = ("#009E73", "#56B4E9", "#E69F00", "#D55E00", "#8b1a1a")


def _satisfaction_chart(lang: str, sat: reports.Satisfaction) -> Markup:
    return charts.columns(
        [(str(score), sat.counts[score], SCORE_COLORS[score - 1]) for score in range(1, 6)],
        label=translate(lang, "mgr.chart.satisfaction"),
    )


def _age_chart(lang: str, ages: list[tuple[str, int]]) -> Markup:
    return charts.columns(
        [(translate(lang, f"mgr.age.{k}"), n, AGE_COLORS[i]) for i, (k, n) in enumerate(ages)],
        label=translate(lang, "mgr.chart.requests"),
    )


# -- transcripts ----------------------------------------------------------------------------


def transcript_filters(request: Request) -> reports.TranscriptFilters:
    q = request.query_params
    intent = q.get("intent", "")
    channel = q.get("channel", "")
    state = q.get("state", "")
    return reports.TranscriptFilters(
        text=q.get("q", "")[:200],
        intent=intent if intent in INTENTS else "",
        channel=channel[:16],
        residence_id=_int(q.get("residence")),
        state=state if state in STATES else "",
        period=parse_period(request, None),
        region=runtime_of(request).settings.phone_region,
    )


def _filters_detail(f: reports.TranscriptFilters) -> dict[str, Any]:
    detail: dict[str, Any] = {
        k: v
        for k, v in {
            "text": f.text,
            "intent": f.intent,
            "channel": f.channel,
            "residence_id": f.residence_id,
            "state": f.state,
        }.items()
        if v not in ("", None)
    }
    if f.period:
        detail["start"] = f.period.first.isoformat()
        detail["end"] = f.period.last.isoformat()
    return detail


async def _residences(request: Request) -> list[tuple[int, str]]:
    async with runtime_of(request).db.session() as s:
        rows = await s.execute(select(Residence.id, Residence.name).order_by(Residence.name))
        return [(rid, name) for rid, name in rows]


@router.get("/conversations")
async def transcripts(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    f = transcript_filters(request)
    page = _page(request)
    async with runtime_of(request).db.session() as s:
        result = await reports.search_conversations(
            s, f, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
        known = {c for (c,) in await s.execute(select(Conversation.channel).distinct())}
    if not f.is_empty():
        # Searching people's words is a read of their messages: recorded like one.
        await _audit(request, staff, "search", "transcripts", "", **_filters_detail(f))
    return render(
        request,
        "manager/conversations.html",
        _context(
            request,
            **_period_context(f.period),
            f=f,
            result=result,
            page=page,
            page_size=PAGE_SIZE,
            residences=await _residences(request),
            channels=sorted(set(CHANNELS) | known),
            states=STATES,
            qs=_query(request, page=None),
        ),
    )


@router.get("/conversations.csv")
async def transcripts_csv(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    f = transcript_filters(request)
    async with runtime_of(request).db.session() as s:
        rows = await reports.transcript_rows(s, f, _tz(request))
    body = reports.to_csv(reports.TRANSCRIPT_COLUMNS, rows)
    conversations = len({r[0] for r in rows})
    await _audit(
        request,
        staff,
        "export",
        "transcripts",
        "",
        format="csv",
        rows=len(rows),
        conversations=conversations,
        **_filters_detail(f),
    )
    stamp = runtime_of(request).clock().astimezone(_tz(request)).strftime("%Y%m%d-%H%M")
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="relais-conversations-{stamp}.csv"',
            "cache-control": "no-store",
        },
    )


@router.get("/conversations/{conversation_id}")
async def transcript(
    request: Request,
    conversation_id: DbId,
    staff: StaffUser = Depends(manager_only),  # noqa: B008
) -> Response:
    async with runtime_of(request).db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.id == conversation_id)))
            .unique()
            .scalar_one_or_none()
        )
        if conv is None:
            raise HTTPException(status_code=404)
        tenant: Tenant | None = conv.tenant
        residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
        messages = list(
            (
                await s.execute(
                    select(Message).where(Message.conversation_id == conv.id).order_by(Message.id)
                )
            ).scalars()
        )
        people = {
            p.id: p
            for p in (await s.execute(select(StaffUser).order_by(StaffUser.id))).unique().scalars()
        }
        handoffs = list(
            (
                await s.execute(
                    select(Handoff).where(Handoff.conversation_id == conv.id).order_by(Handoff.id)
                )
            ).scalars()
        )
        tickets = list(
            (
                await s.execute(
                    select(Ticket).where(Ticket.conversation_id == conv.id).order_by(Ticket.id)
                )
            ).scalars()
        )
        entries = list(
            (
                await s.execute(
                    select(AuditLog)
                    .where(
                        AuditLog.target_type == "conversation",
                        AuditLog.target_id == str(conv.id),
                        AuditLog.action.in_(TRANSCRIPT_ACTIONS),
                    )
                    .order_by(AuditLog.id)
                )
            ).scalars()
        )
    await _audit(request, staff, "read", "conversation", conv.id)
    lang = request_language(request)
    staff_names = {sid: p.display_name or p.login for sid, p in people.items()}
    events = transcript_events(lang, handoffs, [e for e in entries if e.action != "read"], people)
    back = request.query_params.get("back", "")
    return render(
        request,
        "manager/conversation.html",
        _context(
            request,
            conv=conv,
            tenant=tenant,
            residence=residence,
            messages=messages,
            timeline=timeline(messages, events),
            participants=participants(lang, tenant, messages, entries, people),
            resolution=lambda text: resolution_words(lang, text),
            # Answers to identification and rating questions carry no reading worth showing.
            nlu_decision=lambda m: not review.not_nlu_answer(m.nlu, m.text),
            staff_names=staff_names,
            handoffs=handoffs,
            tickets=tickets,
            telegram_media=getattr(
                runtime_of(request).channels.get("telegram"), "download_file", None
            )
            is not None,
            back=_query_of(back),
        ),
    )


# What a transcript tells besides the messages (replies and notes are messages already).
TRANSCRIPT_ACTIONS = (
    "take",
    "transfer",
    "close",
    "give_back",
    "close_incident",
    "alert",
    "escalate",
    "read",  # not in the thread: in who took part
)
# What a staff member did, in the order the page says it.
PARTS = ("take", "received", "transfer", "alerted", "close", "give_back", "close_incident", "read")
RESOLUTION_WORDS = {"returned_to_bot": "mgr.tx.returned"}


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    at: datetime
    text: str  # in words, in the page's language
    kind: str  # handoff, take, transfer, close, give_back, close_incident, alert, escalate


def _person(people: dict[int, StaffUser], staff_id: int | None, login: str = "") -> str:
    if staff_id is not None and staff_id in people:
        p = people[staff_id]
        return p.display_name or p.login
    by_login = next((p for p in people.values() if p.login == login), None)
    return (by_login.display_name or by_login.login) if by_login else login or "?"


def resolution_words(lang: str, resolution: str) -> str:
    """A handoff's resolution as people read it: the code words the system stores
    ("returned_to_bot", "R-2026-000012: done") said in words, a person's text as written."""
    if resolution in RESOLUTION_WORDS:
        return translate(lang, RESOLUTION_WORDS[resolution])
    reference, _, tail = resolution.rpartition(": ")
    if reference and tail == "done":
        return translate(lang, "mgr.tx.request_done", reference=reference)
    return resolution


def transcript_events(
    lang: str,
    handoffs: list[Handoff],
    entries: list[AuditLog],
    people: dict[int, StaffUser],
) -> list[TranscriptEvent]:
    """Handoffs to a person and what staff and the escalation did, in words, oldest first."""
    out = [
        TranscriptEvent(
            h.created_at,
            translate(
                lang,
                "mgr.tx.handoff",
                need=_label(lang, "intent", h.intent),
            )
            + (f" ({h.reason})" if h.reason else ""),
            "handoff",
        )
        for h in handoffs
    ]
    for e in entries:
        who = _person(people, e.staff_id, e.actor)
        detail = e.detail or {}
        if e.action == "transfer":
            text = translate(
                lang, "mgr.tx.transfer", who=who, to=_person(people, None, str(detail.get("to")))
            )
        elif e.action == "close":
            text = translate(lang, "mgr.tx.close", who=who)
            if detail.get("resolution"):
                text += f" « {resolution_words(lang, str(detail['resolution']))} »"
        elif e.action == "alert":
            key = "mgr.tx.alert_oncall" if detail.get("to") == "oncall" else "mgr.tx.alert"
            text = translate(lang, key, n=detail.get("alerts", 0))
        elif e.action == "escalate":
            names = ", ".join(_person(people, None, str(x)) for x in detail.get("to") or [])
            text = translate(lang, "mgr.tx.escalate", who=names or "–")
        else:
            text = translate(lang, f"mgr.tx.{e.action}", who=who)
        out.append(TranscriptEvent(e.at, text, e.action))
    out.sort(key=lambda ev: ev.at)
    return out


def timeline(messages: list[Message], events: list[TranscriptEvent]) -> list[tuple[str, Any]]:
    """Messages and events in one thread, by time (messages keep their order):
    ("message", Message) and ("event", TranscriptEvent) pairs."""
    out: list[tuple[str, Any]] = []
    pending = list(events)
    for m in messages:
        while pending and pending[0].at <= m.created_at:
            out.append(("event", pending.pop(0)))
        out.append(("message", m))
    return out + [("event", e) for e in pending]


@dataclass(frozen=True, slots=True)
class Participant:
    name: str
    role: str  # translated
    what: str  # translated: "3 messages", "alerted"...


def participants(
    lang: str,
    tenant: Tenant | None,
    messages: list[Message],
    entries: list[AuditLog],
    people: dict[int, StaffUser],
) -> list[Participant]:
    """Who took part: the tenant, the bot, each staff member who wrote, took, transferred,
    closed, was alerted or read it, with their role."""
    wrote = Counter(m.author for m in messages if not m.internal and m.author != "staff")
    staff_messages = Counter(m.staff_id for m in messages if m.staff_id is not None)
    out: list[Participant] = []
    if wrote.get("tenant"):
        out.append(
            Participant(
                (tenant.display_name if tenant else "") or translate(lang, "mgr.conv.tenant"),
                translate(lang, "mgr.tx.tenant_role"),
                translate(lang, "mgr.tx.messages", n=wrote["tenant"]),
            )
        )
    if wrote.get("bot"):
        out.append(
            Participant(
                translate(lang, "mgr.conv.bot_author"),
                translate(lang, "mgr.tx.bot_role"),
                translate(lang, "mgr.tx.messages", n=wrote["bot"]),
            )
        )
    involved: dict[int, set[str]] = {}
    for sid in staff_messages:
        involved.setdefault(sid, set()).add("wrote")
    logins = {p.login: sid for sid, p in people.items()}
    for e in entries:
        if e.staff_id is not None:
            involved.setdefault(e.staff_id, set()).add(e.action)
        targets = (e.detail or {}).get("to")
        for login in targets if isinstance(targets, list) else [targets]:
            if e.action in ("transfer", "escalate") and login in logins:
                involved.setdefault(logins[login], set()).add(
                    "received" if e.action == "transfer" else "alerted"
                )
    for sid, what in involved.items():
        person = people.get(sid)
        if person is None:
            continue
        parts = []
        if staff_messages.get(sid):
            parts.append(translate(lang, "mgr.tx.messages", n=staff_messages[sid]))
        for key in PARTS:
            if key in what:
                parts.append(translate(lang, f"mgr.tx.did.{key}"))
        out.append(
            Participant(
                person.display_name or person.login,
                translate(lang, f"role.{person.role}"),
                ", ".join(dict.fromkeys(parts)),
            )
        )
    return out


def _query_of(back: str) -> str:
    """A search query string carried back from a conversation, re-encoded (never a URL)."""
    return urlencode(parse_qsl(back)[:20])


# -- NLU review ---------------------------------------------------------------------------


def quick_intents(row: review.ReviewItem, limit: int = 6) -> list[str]:
    """The one-click choices: the NLU's reading (to confirm it), its runners-up, then the
    topics, which most corrections are; the select offers the rest."""
    ordered = [row.intent, *(i for i, _ in row.ranking[:3]), *TOPIC_INTENTS]
    out: list[str] = []
    for intent in ordered:
        if intent in INTENTS and intent not in out and intent != row.corrected_intent:
            out.append(intent)
    return out[:limit]


@router.get("/nlu")
async def nlu_review(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    kind = request.query_params.get("kind", "todo")
    kind = kind if kind in review.KINDS else "todo"
    period = parse_period(request, None)
    page = _page(request)
    async with runtime_of(request).db.session() as s:
        items, capped = await review.review_items(s, kind=kind, period=period)
    return render(
        request,
        "manager/nlu.html",
        _context(
            request,
            **_period_context(period),
            kind=kind,
            kinds=review.KINDS,
            rows=review.page_of(items, page, PAGE_SIZE),
            total=len(items),
            page=page,
            page_size=PAGE_SIZE,
            scan=f"{review.SCAN:,}".replace(",", "\u202f") if capped else "",
            threshold_pct=round(reports.LOW_CONFIDENCE * 100),
            quick_intents=quick_intents,
            other_intents=review.hazard_intents(),
            here=request.url.path + ("?" + request.url.query if request.url.query else ""),
        ),
    )


async def _tenant_message(s: AsyncSession, message_id: int) -> Message:
    msg = await s.get(Message, message_id)
    if msg is None or msg.direction != Direction.IN.value or msg.author != Author.TENANT.value:
        raise HTTPException(status_code=404)
    return msg


async def _relabel(
    s: AsyncSession, staff: StaffUser, msg: Message, corrected: str | None, **verdict: str
) -> None:
    """Store a manager's reading of a tenant message (what the training export reads), audited."""
    previous = msg.corrected_intent
    msg.corrected_intent = corrected
    await audit(
        s,
        "relabel",
        staff_id=staff.id,
        actor=staff.login,
        target_type="message",
        target_id=msg.id,
        detail={
            "conversation_id": msg.conversation_id,
            "predicted": msg.intent,
            "previous": previous,
            "corrected": corrected,
            **verdict,
        },
    )


def _back_to_review(form: Any, message_id: int) -> Response:
    nxt = form.get("next")
    target = safe_next(nxt if isinstance(nxt, str) else None)
    if not target.startswith("/console/manager"):
        target = "/console/manager/nlu"
    return RedirectResponse(f"{target.split('#')[0]}#m{message_id}", status_code=303)


@router.post("/nlu/{message_id}/emergency")
async def emergency_verdict(
    request: Request,
    message_id: DbId,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    """A manager's "Ce n'était pas une urgence" (verdict=no, optionally the right intent) on
    an emergency decision, or "C'était une urgence" (verdict=yes) on a miss: stored as the
    message's corrected intent, which the training-data export reads."""
    form = await request.form()
    verdict = form.get("verdict")
    chosen = form.get("intent")
    if verdict not in ("yes", "no"):
        raise HTTPException(status_code=400, detail="verdict")
    intent = chosen if isinstance(chosen, str) else ""
    if intent and (intent not in INTENTS or intent == review.EMERGENCY):
        raise HTTPException(status_code=400, detail="unknown intent")
    async with runtime_of(request).db.transaction() as s:
        msg = await _tenant_message(s, message_id)
        if verdict == "no":
            if msg.intent != review.EMERGENCY:
                raise HTTPException(status_code=400, detail="not an emergency decision")
            corrected = intent or review.best_other(msg.nlu)
        else:
            corrected = review.EMERGENCY
        await _relabel(
            s,
            staff,
            msg,
            corrected,
            verdict="emergency" if verdict == "yes" else "not_emergency",
        )
    return _back_to_review(form, message_id)


@router.post("/nlu/{message_id}")
async def relabel(
    request: Request,
    message_id: DbId,
    staff: StaffUser = Depends(csrf_protect),  # noqa: B008
) -> Response:
    form = await request.form()
    chosen = form.get("intent")
    if chosen is None:
        chosen = form.get("other")
    intent = chosen if isinstance(chosen, str) else ""
    if intent and intent not in INTENTS:
        raise HTTPException(status_code=400, detail="unknown intent")
    async with runtime_of(request).db.transaction() as s:
        await _relabel(s, staff, await _tenant_message(s, message_id), intent or None)
    return _back_to_review(form, message_id)


@router.get("/nlu.yml")
async def nlu_export(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    period = parse_period(request, None)
    async with runtime_of(request).db.session() as s:
        examples = await reports.corrected_examples(s, period)
    body = reports.rasa_nlu_yaml(examples)
    await _audit(
        request,
        staff,
        "export",
        "nlu",
        "",
        format="rasa_yaml",
        examples=len(examples),
        **({"start": period.first.isoformat(), "end": period.last.isoformat()} if period else {}),
    )
    stamp = runtime_of(request).clock().astimezone(_tz(request)).strftime("%Y%m%d-%H%M")
    return Response(
        body.encode("utf-8"),
        media_type="application/x-yaml; charset=utf-8",
        headers={
            "content-disposition": f'attachment; filename="relais-nlu-corrections-{stamp}.yml"',
            "cache-control": "no-store",
        },
    )


# -- audit log ------------------------------------------------------------------------------


@router.get("/audit")
async def audit_log(request: Request, staff: StaffUser = Depends(manager_only)) -> Response:  # noqa: B008
    q = request.query_params
    staff_id = _int(q.get("staff"))
    action = q.get("action", "")[:32]
    period = parse_period(request, None)
    page = _page(request)
    size = 50
    lang = request_language(request)
    async with runtime_of(request).db.session() as s:
        rows, total = await reports.audit_entries(
            s,
            staff_id=staff_id,
            action=action,
            period=period,
            limit=size,
            offset=(page - 1) * size,
        )
        lines = await audit_view.audit_lines(s, rows, lang)
        actions = sorted(
            set(await reports.audit_actions(s)) | {action} - {""},
            key=lambda a: audit_view.action_label(lang, a).casefold(),
        )
        people = [
            (sid, name or login, role)
            for sid, name, login, role in await s.execute(
                select(
                    StaffUser.id, StaffUser.display_name, StaffUser.login, StaffUser.role
                ).order_by(StaffUser.display_name, StaffUser.login)
            )
        ]
    return render(
        request,
        "manager/audit.html",
        _context(
            request,
            **_period_context(period),
            rows=lines,
            total=total,
            page=page,
            page_size=size,
            actions=[(a, audit_view.action_label(lang, a)) for a in actions],
            people=people,
            staff_id=staff_id,
            action=action,
        ),
    )
