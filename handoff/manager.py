"""The manager pages under /console/manager: dashboard, transcripts, NLU review, audit log.

Managers only (403 for the other roles), read-only on conversations. What a manager reads
or exports is written to the audit log like the caretakers' actions. The figures come from
`handoff.reports`; the charts from `handoff.charts`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from bot.storage.models import (
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
from handoff import charts, reports
from handoff.auth import csrf_protect, require_role, runtime_of, safe_next
from handoff.i18n import MESSAGES, register, request_language, translate
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

register(
    {
        "mgr.nav.dashboard": {"fr": "Tableau de bord", "en": "Dashboard"},
        "mgr.nav.conversations": {"fr": "Conversations", "en": "Conversations"},
        "mgr.nav.nlu": {"fr": "Relecture NLU", "en": "NLU review"},
        "mgr.nav.audit": {"fr": "Journal", "en": "Audit log"},
        "mgr.period.from": {"fr": "Du", "en": "From"},
        "mgr.period.to": {"fr": "Au", "en": "To"},
        "mgr.period.apply": {"fr": "Afficher", "en": "Show"},
        "mgr.period.days": {"fr": "{days} jours", "en": "{days} days"},
        "mgr.all": {"fr": "Tous", "en": "All"},
        "mgr.none": {"fr": "aucun", "en": "none"},
        "mgr.no_residence": {"fr": "Sans résidence", "en": "No residence"},
        "mgr.prev": {"fr": "← Précédents", "en": "← Previous"},
        "mgr.next": {"fr": "Suivants →", "en": "Next →"},
        "mgr.page": {"fr": "{first}–{last} sur {total}", "en": "{first}–{last} of {total}"},
        # Dashboard
        "mgr.dash.title": {"fr": "Tableau de bord", "en": "Dashboard"},
        "mgr.kpi.messages": {"fr": "Messages reçus", "en": "Messages received"},
        "mgr.kpi.conversations": {"fr": "Conversations", "en": "Conversations"},
        "mgr.kpi.automation": {"fr": "Réglées par le robot", "en": "Answered by the bot"},
        "mgr.kpi.handoffs": {"fr": "Passages à un humain", "en": "Handoffs"},
        "mgr.kpi.median_wait": {"fr": "Attente médiane", "en": "Median wait"},
        "mgr.kpi.p90_wait": {"fr": "Attente 90 %", "en": "90th pct wait"},
        "mgr.kpi.satisfaction": {"fr": "Satisfaction", "en": "Satisfaction"},
        "mgr.kpi.open_requests": {"fr": "Demandes ouvertes", "en": "Open requests"},
        "mgr.chart.volume": {"fr": "Messages reçus par jour", "en": "Messages received per day"},
        "mgr.chart.automation": {
            "fr": "Conversations réglées par le robot seul",
            "en": "Conversations answered by the bot alone",
        },
        "mgr.chart.automation_caption": {
            "fr": "{bot} sur {total} sans passage à un humain ({handed} transmises).",
            "en": "{bot} of {total} with no handoff ({handed} handed over).",
        },
        "mgr.chart.by_intent": {
            "fr": "Passages à un humain par motif",
            "en": "Handoffs by intent",
        },
        "mgr.chart.by_residence": {
            "fr": "Passages à un humain par résidence",
            "en": "Handoffs by residence",
        },
        "mgr.chart.wait": {
            "fr": "Attente avant la première réponse d'un humain",
            "en": "Wait before a person's first reply",
        },
        "mgr.chart.wait_caption": {
            "fr": "Médiane {median}, 90 % en moins de {p90} ; {answered} répondues, "
            "{unanswered} sans réponse.",
            "en": "Median {median}, 90% within {p90}; {answered} answered, "
            "{unanswered} without a reply.",
        },
        "mgr.chart.satisfaction": {
            "fr": "Satisfaction des locataires (1 à 5)",
            "en": "Tenant satisfaction (1 to 5)",
        },
        "mgr.chart.satisfaction_caption": {
            "fr": "Moyenne {mean} / 5 sur {n} notes.",
            "en": "Mean {mean} / 5 over {n} scores.",
        },
        "mgr.chart.requests": {
            "fr": "Demandes ouvertes par ancienneté (aujourd'hui)",
            "en": "Open requests by age (today)",
        },
        "mgr.chart.empty": {"fr": "Rien sur la période.", "en": "Nothing in this period."},
        "mgr.age.lt1": {"fr": "< 1 j", "en": "< 1 d"},
        "mgr.age.1to3": {"fr": "1–3 j", "en": "1–3 d"},
        "mgr.age.3to7": {"fr": "3–7 j", "en": "3–7 d"},
        "mgr.age.7to30": {"fr": "7–30 j", "en": "7–30 d"},
        "mgr.age.gt30": {"fr": "> 30 j", "en": "> 30 d"},
        "mgr.wait.lt5m": {"fr": "< 5 min", "en": "< 5 min"},
        "mgr.wait.5to15m": {"fr": "5–15 min", "en": "5–15 min"},
        "mgr.wait.15to60m": {"fr": "15–60 min", "en": "15–60 min"},
        "mgr.wait.1to4h": {"fr": "1–4 h", "en": "1–4 h"},
        "mgr.wait.4to24h": {"fr": "4–24 h", "en": "4–24 h"},
        "mgr.wait.gt24h": {"fr": "> 24 h", "en": "> 24 h"},
        # Transcripts
        "mgr.search.title": {"fr": "Conversations", "en": "Conversations"},
        "mgr.search.text": {"fr": "Texte", "en": "Text"},
        "mgr.search.text_hint": {"fr": "mot, référence, téléphone…", "en": "word, reference…"},
        "mgr.search.intent": {"fr": "Motif", "en": "Intent"},
        "mgr.search.channel": {"fr": "Canal", "en": "Channel"},
        "mgr.search.residence": {"fr": "Résidence", "en": "Residence"},
        "mgr.search.state": {"fr": "Statut", "en": "Status"},
        "mgr.search.submit": {"fr": "Rechercher", "en": "Search"},
        "mgr.search.reset": {"fr": "Effacer", "en": "Clear"},
        "mgr.search.export": {"fr": "Exporter en CSV", "en": "Export as CSV"},
        "mgr.search.found": {"fr": "{n} conversation(s)", "en": "{n} conversation(s)"},
        "mgr.search.none": {
            "fr": "Aucune conversation ne correspond.",
            "en": "No conversation matches.",
        },
        "mgr.search.messages": {"fr": "{n} msg", "en": "{n} msg"},
        "mgr.search.unknown_tenant": {"fr": "locataire non identifié", "en": "unknown tenant"},
        # One conversation
        "mgr.conv.back": {"fr": "← Conversations", "en": "← Conversations"},
        "mgr.conv.title": {"fr": "Conversation n° {id}", "en": "Conversation #{id}"},
        "mgr.conv.readonly": {
            "fr": "Lecture seule : votre consultation est enregistrée au journal.",
            "en": "Read-only: your reading is recorded in the audit log.",
        },
        "mgr.conv.tenant": {"fr": "Locataire", "en": "Tenant"},
        "mgr.conv.address": {"fr": "Adresse", "en": "Address"},
        "mgr.conv.started": {"fr": "Ouverte le", "en": "Started"},
        "mgr.conv.closed": {"fr": "Close le", "en": "Closed"},
        "mgr.conv.priority": {"fr": "Priorité", "en": "Priority"},
        "mgr.conv.satisfaction": {"fr": "Satisfaction", "en": "Satisfaction"},
        "mgr.conv.handoffs": {"fr": "Passages à un humain", "en": "Handoffs"},
        "mgr.conv.requests": {"fr": "Demandes", "en": "Requests"},
        "mgr.conv.queued": {"fr": "Mise en file", "en": "Queued"},
        "mgr.conv.taken": {"fr": "Prise", "en": "Taken"},
        "mgr.conv.first_reply": {"fr": "1re réponse", "en": "First reply"},
        "mgr.conv.wait": {"fr": "attente", "en": "wait"},
        "mgr.conv.note": {"fr": "note interne", "en": "internal note"},
        "mgr.conv.tenant_author": {"fr": "Locataire", "en": "Tenant"},
        "mgr.conv.bot_author": {"fr": "Robot", "en": "Bot"},
        "mgr.conv.system_author": {"fr": "Système", "en": "System"},
        "mgr.conv.relabelled": {"fr": "corrigé en {intent}", "en": "relabelled {intent}"},
        # NLU review
        "mgr.nlu.title": {"fr": "Relecture de la compréhension", "en": "NLU review"},
        "mgr.nlu.intro": {
            "fr": "Messages compris avec moins de {pct} % de confiance ou non compris, et "
            "ceux qu'une personne a corrigés. Un clic corrige le motif ; l'export donne des "
            "exemples à ajouter à data/nlu.yml.",
            "en": "Messages understood with less than {pct}% confidence or not understood, "
            "and those a person relabelled. One click corrects the intent; the export gives "
            "examples to add to data/nlu.yml.",
        },
        "mgr.nlu.todo": {"fr": "À relire", "en": "To review"},
        "mgr.nlu.labelled": {"fr": "Corrigés", "en": "Relabelled"},
        "mgr.nlu.all": {"fr": "Tous", "en": "All"},
        "mgr.nlu.export": {"fr": "Exporter (YAML Rasa)", "en": "Export (Rasa YAML)"},
        "mgr.nlu.read_as": {"fr": "Lu comme", "en": "Read as"},
        "mgr.nlu.corrected": {"fr": "Corrigé : {intent}", "en": "Relabelled: {intent}"},
        "mgr.nlu.confirm": {"fr": "✓ {intent}", "en": "✓ {intent}"},
        "mgr.nlu.other": {"fr": "Autre motif", "en": "Other intent"},
        "mgr.nlu.apply": {"fr": "Corriger", "en": "Relabel"},
        "mgr.nlu.undo": {"fr": "Annuler la correction", "en": "Undo the relabel"},
        "mgr.nlu.none": {"fr": "Rien à relire.", "en": "Nothing to review."},
        "mgr.nlu.count": {"fr": "{n} message(s)", "en": "{n} message(s)"},
        "mgr.nlu.open": {"fr": "voir la conversation", "en": "open the conversation"},
        # Audit
        "mgr.audit.title": {"fr": "Journal des actions", "en": "Audit log"},
        "mgr.audit.staff": {"fr": "Personne", "en": "Staff"},
        "mgr.audit.action": {"fr": "Action", "en": "Action"},
        "mgr.audit.target": {"fr": "Objet", "en": "Target"},
        "mgr.audit.when": {"fr": "Quand", "en": "When"},
        "mgr.audit.none": {"fr": "Aucune entrée.", "en": "No entry."},
        "mgr.audit.count": {"fr": "{n} entrée(s)", "en": "{n} entry(ies)"},
        "mgr.audit.system": {"fr": "système", "en": "system"},
    }
)


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
    try:
        return int(value) if value else None
    except ValueError:
        return None


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
    async with rt.db.session() as s:
        volume = await reports.messages_per_day(s, period)
        auto = await reports.automation(s, period)
        handoffs = await reports.handoffs_by_intent_and_residence(s, period)
        waits = await reports.wait_times(s, period)
        sat = await reports.satisfaction(s, period)
        ages = await reports.open_requests_by_age(s, rt.clock())
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
    def tr(key: str, **values: Any) -> str:
        return translate(lang, key, **values)

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
    # Two drawings of the same figure, one shown by the stylesheet: a phone-sized one and a
    # wide one (text stays the same size in both, which one scaled drawing cannot do).
    volume_chart = charts.stacked_columns(
        day_labels,
        series,
        label=tr("mgr.chart.volume"),
        label_every=max(1, len(volume.days) // 5),
        css="narrow-only",
    ) + charts.stacked_columns(
        day_labels,
        series,
        label=tr("mgr.chart.volume"),
        label_every=max(1, len(volume.days) // 10),
        width=1000,
        height=240,
        css="wide-only",
    )
    residences = [name for name, _ in handoffs.residences()]
    residence_colors = {r: charts.color(i) for i, r in enumerate(residences)}

    def residence_name(r: str) -> str:
        return r or tr("mgr.no_residence")

    by_intent = charts.horizontal_bars(
        [
            charts.Bar(
                _label(lang, "intent", intent),
                [
                    (residence_name(r), handoffs.cells.get((intent, r), 0), residence_colors[r])
                    for r in residences
                ],
            )
            for intent, _ in handoffs.intents()
        ],
        label=tr("mgr.chart.by_intent"),
    )
    by_residence = charts.horizontal_bars(
        [
            charts.Bar(residence_name(r), [(residence_name(r), n, residence_colors[r])])
            for r, n in handoffs.residences()
        ],
        label=tr("mgr.chart.by_residence"),
    )
    wait_chart = charts.horizontal_bars(
        [charts.Bar(tr(f"mgr.wait.{k}"), [("", n, "#0072B2")]) for k, n in waits.buckets],
        label=tr("mgr.chart.wait"),
    )
    # Red for unhappy, green for happy: the colours say which way is good.
    score_colors = ("#D55E00", "#E69F00", "#b8b8b8", "#56B4E9", "#009E73")
    sat_chart = charts.columns(
        [(str(score), sat.counts[score], score_colors[score - 1]) for score in range(1, 6)],
        label=tr("mgr.chart.satisfaction"),
    )
    age_colors = ("#009E73", "#56B4E9", "#E69F00", "#D55E00", "#8b1a1a")
    age_chart = charts.columns(
        [(tr(f"mgr.age.{k}"), n, age_colors[i]) for i, (k, n) in enumerate(ages)],
        label=tr("mgr.chart.requests"),
    )
    return {
        "volume": volume_chart,
        "volume_legend": [(_label(lang, "channel", c), channel_colors[c]) for c in volume.channels],
        "automation": charts.share_bar(auto.share, label=tr("mgr.chart.automation")),
        "by_intent": by_intent,
        "residence_legend": [(residence_name(r), residence_colors[r]) for r in residences],
        "by_residence": by_residence,
        "wait": wait_chart,
        "satisfaction": sat_chart,
        "requests": age_chart,
    }


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
    conversation_id: int,
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
        staff_names = {
            sid: name or login
            for sid, name, login in await s.execute(
                select(StaffUser.id, StaffUser.display_name, StaffUser.login)
            )
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
    await _audit(request, staff, "read", "conversation", conv.id)
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
            staff_names=staff_names,
            handoffs=handoffs,
            tickets=tickets,
            back=_query_of(back),
        ),
    )


def _query_of(back: str) -> str:
    """A search query string carried back from a conversation, re-encoded (never a URL)."""
    from urllib.parse import parse_qsl

    return urlencode(parse_qsl(back)[:20])


# -- NLU review ---------------------------------------------------------------------------


def quick_intents(row: reports.ReviewRow, limit: int = 6) -> list[str]:
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
    kind = kind if kind in reports.REVIEW_KINDS else "todo"
    period = parse_period(request, None)
    page = _page(request)
    async with runtime_of(request).db.session() as s:
        rows, total = await reports.review_messages(
            s, kind=kind, period=period, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE
        )
    return render(
        request,
        "manager/nlu.html",
        _context(
            request,
            **_period_context(period),
            kind=kind,
            kinds=reports.REVIEW_KINDS,
            rows=rows,
            total=total,
            page=page,
            page_size=PAGE_SIZE,
            threshold_pct=round(reports.LOW_CONFIDENCE * 100),
            quick_intents=quick_intents,
            here=request.url.path + ("?" + request.url.query if request.url.query else ""),
        ),
    )


@router.post("/nlu/{message_id}")
async def relabel(
    request: Request,
    message_id: int,
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
        msg = await s.get(Message, message_id)
        if msg is None or msg.direction != Direction.IN.value or msg.author != Author.TENANT.value:
            raise HTTPException(status_code=404)
        previous = msg.corrected_intent
        msg.corrected_intent = intent or None
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
                "corrected": intent or None,
            },
        )
    nxt = form.get("next")
    target = safe_next(nxt if isinstance(nxt, str) else None)
    if not target.startswith("/console/manager"):
        target = "/console/manager/nlu"
    return RedirectResponse(f"{target.split('#')[0]}#m{message_id}", status_code=303)


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
    size = 100
    async with runtime_of(request).db.session() as s:
        rows, total = await reports.audit_entries(
            s,
            staff_id=staff_id,
            action=action,
            period=period,
            limit=size,
            offset=(page - 1) * size,
        )
        actions = await reports.audit_actions(s)
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
            rows=rows,
            total=total,
            page=page,
            page_size=size,
            actions=actions,
            people=people,
            staff_id=staff_id,
            action=action,
            detail_text=lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True)[:300],
        ),
    )
