"""The manager dashboard's figures beyond `handoff.reports`: per residence and per caretaker,
weekly trends (ISO weeks), the request backlog by kind and age, and the bot's resolution rate.

Pure queries over the database, no web. Like `reports`, grouping by week and medians are done
in Python so that SQLite and PostgreSQL give the same answers. Every figure takes an optional
`residence_id`: the dashboard's residence filter.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import ACTIVE_REQUESTS, RequestStatus, Role
from bot.ops.demo_history import history_present
from bot.storage.models import (
    Author,
    Conversation,
    Direction,
    Handoff,
    Message,
    Request,
    RequestEvent,
    Residence,
    StaffUser,
)
from handoff import charts
from handoff.auth import visible_residence_ids
from handoff.i18n import translate
from handoff.reports import CLOSED_REQUEST_STATUSES, Period, bucket_of, percentile

# What the bot answers by itself: a FAQ or information question, where a request stands, and
# a bulky-waste message asked as a question (the collection day; not a pickup request).
BOT_ANSWERED_INTENTS = ("question", "status_request")
ASKED_INTENTS = ("bulky_waste",)
# The bot's answer counts as resolving the question when nothing follows within these days.
BOT_RESOLUTION_DAYS = 3
# A bot reply this soon after the tenant's message is the answer to it.
BOT_REPLY_WITHIN = timedelta(minutes=5)
# Tenant messages that say the bot's answer was not enough.
COMPLAINT_INTENTS = ("human_request",)

REQUEST_KINDS = ("emergency", "repair", "nuisance", "bulky_waste")
# Open requests by age in days: (key, upper bound exclusive; None = no bound).
BACKLOG_AGES: tuple[tuple[str, float | None], ...] = (("lt2", 2), ("2to7", 7), ("gt7", None))
# Requests still to be done (and the two statuses stored before the lifecycle).
_ACTIVE = [s.value for s in ACTIVE_REQUESTS] + ["open", "in_progress"]
TREND_WEEKS = 8
_CHUNK = 500


def _chunks(ids: Sequence[int]) -> Iterable[list[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield list(ids[i : i + _CHUNK])


async def _grouped(s: AsyncSession, stmt: Any) -> dict[Any, int]:
    """{key: count} of a `select(key, count).group_by(key)`."""
    return {key: int(n) for key, n in await s.execute(stmt)}


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _conv_scope(residence_id: int | None) -> list[Any]:
    return [Conversation.residence_id == residence_id] if residence_id is not None else []


# -- the bot's resolution rate -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BotResolution:
    """Questions the bot answered (FAQ, information, a request's status, the collection day:
    a bulky-waste message with a question mark),
    grouped per conversation into one episode per `days` days. An episode is resolved by the
    bot when, within `days` days of the question, the conversation had no handoff to a person,
    no request opened and no tenant asking for a person. Episodes less than `days` days old
    are `pending`: not counted either way yet."""

    answered: int
    resolved: int
    pending: int
    days: int

    @property
    def not_resolved(self) -> int:
        return self.answered - self.resolved

    @property
    def share(self) -> float | None:
        return self.resolved / self.answered if self.answered else None


async def bot_resolution(
    s: AsyncSession,
    period: Period,
    now: datetime,
    *,
    residence_id: int | None = None,
    days: int = BOT_RESOLUTION_DAYS,
) -> BotResolution:
    window = timedelta(days=days)
    effective = func.coalesce(Message.corrected_intent, Message.intent)
    questions = (
        await s.execute(
            select(Message.conversation_id, Message.created_at)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .where(
                Message.direction == Direction.IN.value,
                Message.author == Author.TENANT.value,
                or_(
                    effective.in_(BOT_ANSWERED_INTENTS),
                    and_(effective.in_(ASKED_INTENTS), Message.text.contains("?")),
                ),
                period.contains(Message.created_at),
                *_conv_scope(residence_id),
            )
            .order_by(Message.conversation_id, Message.created_at, Message.id)
        )
    ).all()
    conv_ids = sorted({c for c, _ in questions})
    bot_replies: dict[int, list[datetime]] = defaultdict(list)
    setbacks: dict[int, list[datetime]] = defaultdict(list)
    until = period.end + window
    for chunk in _chunks(conv_ids):
        for conv_id, at in await s.execute(
            select(Message.conversation_id, Message.created_at).where(
                Message.conversation_id.in_(chunk),
                Message.author == Author.BOT.value,
                Message.direction == Direction.OUT.value,
                Message.created_at >= period.start,
                Message.created_at < until,
            )
        ):
            bot_replies[conv_id].append(at)
        for stmt in (
            select(Handoff.conversation_id, Handoff.created_at).where(
                Handoff.conversation_id.in_(chunk),
                Handoff.created_at >= period.start,
                Handoff.created_at < until,
            ),
            select(Request.conversation_id, Request.created_at).where(
                Request.conversation_id.in_(chunk),
                Request.created_at >= period.start,
                Request.created_at < until,
            ),
            select(Message.conversation_id, Message.created_at).where(
                Message.conversation_id.in_(chunk),
                Message.direction == Direction.IN.value,
                func.coalesce(Message.corrected_intent, Message.intent).in_(COMPLAINT_INTENTS),
                Message.created_at >= period.start,
                Message.created_at < until,
            ),
        ):
            for row in await s.execute(stmt):
                if row[0] is not None:
                    setbacks[int(row[0])].append(row[1])

    answered = resolved = pending = 0
    by_conv: dict[int, list[datetime]] = defaultdict(list)
    for conv_id, at in questions:
        by_conv[conv_id].append(at)
    for conv_id, asked in by_conv.items():
        replies = bot_replies.get(conv_id, [])
        episodes: list[tuple[datetime, bool]] = []  # (start, the bot answered in it)
        for at in asked:
            replied = any(at <= r <= at + BOT_REPLY_WITHIN for r in replies)
            if episodes and at < episodes[-1][0] + window:
                start, was = episodes[-1]
                episodes[-1] = (start, was or replied)
            else:
                episodes.append((at, replied))
        for start, replied in episodes:
            if not replied:
                continue
            if start + window > now:
                pending += 1
                continue
            answered += 1
            if not any(start <= x < start + window for x in setbacks.get(conv_id, [])):
                resolved += 1
    return BotResolution(answered, resolved, pending, days)


# -- per residence ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResidenceFigures:
    id: int
    code: str
    name: str
    conversations: int
    handed_off: int
    median_wait: float | None  # seconds before a person's first reply
    requests_opened: int
    open_requests: int
    late_requests: int
    satisfaction: float | None
    ratings: int


async def residences(s: AsyncSession, ids: set[int] | None = None) -> list[Residence]:
    """By name, in the same order on every database (not their collations')."""
    stmt = select(Residence)
    if ids is not None:
        stmt = stmt.where(Residence.id.in_(sorted(ids) or [-1]))
    return sorted((await s.execute(stmt)).scalars(), key=lambda r: (r.name.casefold(), r.id))


async def per_residence(
    s: AsyncSession, period: Period, now: datetime, *, residence_id: int | None = None
) -> list[ResidenceFigures]:
    wrote = exists().where(
        Message.conversation_id == Conversation.id,
        Message.direction == Direction.IN.value,
        period.contains(Message.created_at),
    )
    handed = exists().where(
        Handoff.conversation_id == Conversation.id, period.contains(Handoff.created_at)
    )
    scope = _conv_scope(residence_id)
    active = await _grouped(
        s,
        select(Conversation.residence_id, func.count(Conversation.id))
        .where(wrote, *scope)
        .group_by(Conversation.residence_id),
    )
    handed_off = await _grouped(
        s,
        select(Conversation.residence_id, func.count(Conversation.id))
        .where(wrote, handed, *scope)
        .group_by(Conversation.residence_id),
    )
    waits: dict[int | None, list[float]] = defaultdict(list)
    for rid, created, replied in await s.execute(
        select(Handoff.residence_id, Handoff.created_at, Handoff.first_reply_at).where(
            period.contains(Handoff.created_at), Handoff.first_reply_at.is_not(None)
        )
    ):
        if replied is not None:
            waits[rid].append(max(0.0, (replied - created).total_seconds()))
    req_scope = [Request.residence_id == residence_id] if residence_id is not None else []
    opened = await _grouped(
        s,
        select(Request.residence_id, func.count(Request.id))
        .where(period.contains(Request.created_at), *req_scope)
        .group_by(Request.residence_id),
    )
    still_open = [Request.closed_at.is_(None), Request.status.not_in(CLOSED_REQUEST_STATUSES)]
    open_now = await _grouped(
        s,
        select(Request.residence_id, func.count(Request.id))
        .where(*still_open, *req_scope)
        .group_by(Request.residence_id),
    )
    late = await _grouped(
        s,
        select(Request.residence_id, func.count(Request.id))
        .where(
            Request.due_at.is_not(None),
            Request.due_at < now,
            Request.status.in_(_ACTIVE),
            *req_scope,
        )
        .group_by(Request.residence_id),
    )
    when = func.coalesce(Conversation.closed_at, Conversation.last_message_at)
    scores: dict[int | None, list[float]] = defaultdict(list)
    for rid, score in await s.execute(
        select(Conversation.residence_id, Conversation.satisfaction).where(
            Conversation.satisfaction.between(1, 5), period.contains(when), *scope
        )
    ):
        if score is not None:
            scores[rid].append(float(score))
    out = []
    for r in await residences(s, None if residence_id is None else {residence_id}):
        out.append(
            ResidenceFigures(
                id=r.id,
                code=r.code,
                name=r.name,
                conversations=int(active.get(r.id, 0)),
                handed_off=int(handed_off.get(r.id, 0)),
                median_wait=percentile(waits.get(r.id, []), 50),
                requests_opened=int(opened.get(r.id, 0)),
                open_requests=int(open_now.get(r.id, 0)),
                late_requests=int(late.get(r.id, 0)),
                satisfaction=_mean(scores.get(r.id, [])),
                ratings=len(scores.get(r.id, [])),
            )
        )
    return out


# -- per caretaker ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StaffFigures:
    id: int
    name: str
    role: str
    taken: int  # handoffs this person took in the period
    median_wait: float | None  # seconds from handoff to first reply, for those they took
    closed: int  # conversations they closed (handoffs closed in the period)
    requests_done: int  # requests they marked done or closed in the period
    satisfaction: float | None
    ratings: int


async def per_caretaker(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> list[StaffFigures]:
    """Caretakers and on-call staff: what they took, how fast they answered, what they closed,
    and the scores of the conversations they handled last. With `residence_id`, only that
    residence's work, and only the people covering it or who worked on it."""
    h_scope = [Handoff.residence_id == residence_id] if residence_id is not None else []
    taken: Counter[int] = Counter()
    waits: dict[int, list[float]] = defaultdict(list)
    for staff_id, created, replied in await s.execute(
        select(Handoff.taken_by, Handoff.created_at, Handoff.first_reply_at).where(
            Handoff.taken_by.is_not(None), period.contains(Handoff.created_at), *h_scope
        )
    ):
        if staff_id is None:
            continue
        taken[staff_id] += 1
        if replied is not None:
            waits[staff_id].append(max(0.0, (replied - created).total_seconds()))
    closed = await _grouped(
        s,
        select(Handoff.taken_by, func.count(Handoff.id))
        .where(Handoff.taken_by.is_not(None), period.contains(Handoff.closed_at), *h_scope)
        .group_by(Handoff.taken_by),
    )
    r_scope = [Request.residence_id == residence_id] if residence_id is not None else []
    done = await _grouped(
        s,
        select(RequestEvent.staff_id, func.count(func.distinct(RequestEvent.request_id)))
        .join(Request, Request.id == RequestEvent.request_id)
        .where(
            RequestEvent.staff_id.is_not(None),
            RequestEvent.to_status.in_([RequestStatus.DONE.value, RequestStatus.CLOSED.value]),
            period.contains(RequestEvent.at),
            *r_scope,
        )
        .group_by(RequestEvent.staff_id),
    )
    when = func.coalesce(Conversation.closed_at, Conversation.last_message_at)
    scores: dict[int, list[float]] = defaultdict(list)
    for staff_id, score in await s.execute(
        select(Conversation.last_caretaker_id, Conversation.satisfaction).where(
            Conversation.last_caretaker_id.is_not(None),
            Conversation.satisfaction.between(1, 5),
            period.contains(when),
            *_conv_scope(residence_id),
        )
    ):
        if staff_id is not None and score is not None:
            scores[staff_id].append(float(score))
    worked = set(taken) | set(closed) | set(done) | set(scores)
    staff = (
        (
            await s.execute(
                select(StaffUser).where(
                    StaffUser.role.in_([Role.CARETAKER.value, Role.ONCALL.value])
                )
            )
        )
        .scalars()
        .all()
    )
    staff = sorted(staff, key=lambda st: ((st.display_name or st.login).casefold(), st.id))
    out = []
    for st in staff:
        covers = residence_id is None or any(r.id == residence_id for r in st.residences)
        if not (st.id in worked or (covers and st.active)):
            continue
        out.append(
            StaffFigures(
                id=st.id,
                name=st.display_name or st.login,
                role=st.role,
                taken=taken.get(st.id, 0),
                median_wait=percentile(waits.get(st.id, []), 50),
                closed=int(closed.get(st.id, 0)),
                requests_done=int(done.get(st.id, 0)),
                satisfaction=_mean(scores.get(st.id, [])),
                ratings=len(scores.get(st.id, [])),
            )
        )
    return out


# -- weekly trends ---------------------------------------------------------------------------


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def trend_weeks(period: Period, minimum: int = TREND_WEEKS) -> list[date]:
    """The Mondays of the ISO weeks the period touches, at least `minimum` weeks ending with
    the week of its last day."""
    last = monday_of(period.last)
    first = min(monday_of(period.first), last - timedelta(weeks=minimum - 1))
    return [first + timedelta(weeks=i) for i in range((last - first).days // 7 + 1)]


@dataclass(frozen=True, slots=True)
class Week:
    monday: date
    conversations: int  # conversations in which a tenant wrote that week
    handed_off: int  # ...of which at least one went to a person that week
    median_wait: float | None  # seconds before a person's first reply, handoffs of the week
    resolved: int  # requests closed (or done) that week
    median_resolution: float | None  # seconds from opening to closing, for those
    satisfaction: float | None
    ratings: int

    @property
    def iso_week(self) -> int:
        return self.monday.isocalendar().week

    @property
    def bot_only(self) -> int:
        return self.conversations - self.handed_off


async def weekly_trends(
    s: AsyncSession, mondays: Sequence[date], tz: ZoneInfo, *, residence_id: int | None = None
) -> list[Week]:
    """Volumes, first-response time, resolution time and satisfaction per ISO week (local
    time: a message at 00:30 on a Monday in Paris belongs to that Monday's week)."""
    if not mondays:
        return []
    span = Period(mondays[0], mondays[-1] + timedelta(days=6), tz)

    def week(at: datetime) -> date:
        return monday_of(span.local_day(at))

    scope = _conv_scope(residence_id)
    active: dict[date, set[int]] = defaultdict(set)
    for conv_id, at in await s.execute(
        select(Message.conversation_id, Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(
            Message.direction == Direction.IN.value,
            Message.author == Author.TENANT.value,
            span.contains(Message.created_at),
            *scope,
        )
    ):
        active[week(at)].add(conv_id)
    h_scope = [Handoff.residence_id == residence_id] if residence_id is not None else []
    handed: dict[date, set[int]] = defaultdict(set)
    waits: dict[date, list[float]] = defaultdict(list)
    for conv_id, created, replied in await s.execute(
        select(Handoff.conversation_id, Handoff.created_at, Handoff.first_reply_at).where(
            span.contains(Handoff.created_at), *h_scope
        )
    ):
        handed[week(created)].add(conv_id)
        if replied is not None:
            waits[week(created)].append(max(0.0, (replied - created).total_seconds()))
    r_scope = [Request.residence_id == residence_id] if residence_id is not None else []
    resolutions: dict[date, list[float]] = defaultdict(list)
    for created, closed in await s.execute(
        select(Request.created_at, Request.closed_at).where(
            span.contains(Request.closed_at), *r_scope
        )
    ):
        if closed is None:
            continue
        resolutions[week(closed)].append(max(0.0, (closed - created).total_seconds()))
    when = func.coalesce(Conversation.closed_at, Conversation.last_message_at)
    scores: dict[date, list[float]] = defaultdict(list)
    for at, score in await s.execute(
        select(when, Conversation.satisfaction).where(
            Conversation.satisfaction.between(1, 5), span.contains(when), *scope
        )
    ):
        if score is not None:
            scores[week(at)].append(float(score))
    out = []
    for monday in mondays:
        conversations = active.get(monday, set())
        out.append(
            Week(
                monday=monday,
                conversations=len(conversations),
                handed_off=len(conversations & handed.get(monday, set())),
                median_wait=percentile(waits.get(monday, []), 50),
                resolved=len(resolutions.get(monday, [])),
                median_resolution=percentile(resolutions.get(monday, []), 50),
                satisfaction=_mean(scores.get(monday, [])),
                ratings=len(scores.get(monday, [])),
            )
        )
    return out


# -- request backlog -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Backlog:
    """Requests open now: per kind, by age (`BACKLOG_AGES`), and how many are past their
    deadline (counted in their age column too)."""

    kinds: list[str]
    cells: dict[tuple[str, str], int]
    late: dict[str, int]

    def row_total(self, kind: str) -> int:
        return sum(self.cells.get((kind, k), 0) for k, _ in BACKLOG_AGES)

    def column_total(self, age: str) -> int:
        return sum(self.cells.get((kind, age), 0) for kind in self.kinds)

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    @property
    def late_total(self) -> int:
        return sum(self.late.values())


async def backlog(s: AsyncSession, now: datetime, *, residence_id: int | None = None) -> Backlog:
    scope = [Request.residence_id == residence_id] if residence_id is not None else []
    cells: Counter[tuple[str, str]] = Counter()
    late: Counter[str] = Counter()
    for kind, created, due, status in await s.execute(
        select(Request.kind, Request.created_at, Request.due_at, Request.status).where(
            Request.closed_at.is_(None), Request.status.not_in(CLOSED_REQUEST_STATUSES), *scope
        )
    ):
        age = bucket_of((now - created).total_seconds() / 86400, BACKLOG_AGES)
        cells[(kind, age)] += 1
        if due is not None and due < now and status in _ACTIVE:
            late[kind] += 1
    kinds = [k for k in REQUEST_KINDS] + sorted({k for k, _ in cells} - set(REQUEST_KINDS))
    return Backlog(kinds, dict(cells), dict(late))


# -- the page: the residence filter, the figures and their drawings -------------------------


@dataclass(frozen=True, slots=True)
class ResidenceScope:
    """The residences this manager may filter on, and the one chosen (None: all of them)."""

    residences: list[Residence]
    chosen: Residence | None

    @property
    def residence_id(self) -> int | None:
        return self.chosen.id if self.chosen is not None else None

    @property
    def code(self) -> str:
        return self.chosen.code if self.chosen is not None else ""


async def residence_scope(s: AsyncSession, staff: StaffUser, code: str) -> ResidenceScope:
    """`?residence=CODE` among the residences the person sees (a manager: all); an unknown
    or unseen code filters nothing."""
    options = await residences(s, visible_residence_ids(staff))
    chosen = next((r for r in options if code and r.code == code.strip().upper()), None)
    return ResidenceScope(options, chosen)


def short_duration(seconds: float | None, lang: str) -> str:
    """A chart point's text, at most six characters: "12 min", "5 h", "2,5 j"."""
    if seconds is None:
        return "–"
    minutes = seconds / 60
    if minutes < 90:
        return f"{max(1, round(minutes))} min"
    hours = minutes / 60
    if hours < 48:
        return f"{round(hours)} h"
    days = hours / 24
    text = f"{days:.1f}" if days < 10 else f"{round(days)}"
    text = text.replace(".", ",") if lang == "fr" else text
    return f"{text} j" if lang == "fr" else f"{text} d"


def score_text(value: float | None, lang: str) -> str:
    if value is None:
        return "–"
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "fr" else text


def week_label(monday: date, lang: str) -> str:
    week = monday.isocalendar().week
    return f"S{week}" if lang == "fr" else f"W{week}"


def trend_charts(lang: str, weeks: Sequence[Week]) -> dict[str, Any]:
    """Four small charts of the weeks: volumes (stacked bot alone / to a person), median first
    response, median resolution, mean satisfaction; each drawn narrow (phone) and wide."""
    labels = [week_label(w.monday, lang) for w in weeks]
    bot_colour, person_colour = "#009E73", "#E69F00"
    volume_series = [
        charts.Series(
            translate(lang, "mgr.trend.bot_only"), [w.bot_only for w in weeks], bot_colour
        ),
        charts.Series(
            translate(lang, "mgr.trend.handed"), [w.handed_off for w in weeks], person_colour
        ),
    ]

    def both(draw: Any, **kw: Any) -> Markup:
        narrow = draw(width=charts.WIDTH, css="narrow-only", **kw)
        wide = draw(width=560, css="wide-only", **kw)
        return Markup(narrow + wide)  # noqa: S704 - both drawings escape their own text

    def volume(width: float, css: str) -> Markup:
        return charts.stacked_columns(
            labels,
            volume_series,
            label=translate(lang, "mgr.trend.volume"),
            label_every=1,
            height=160,
            width=width,
            css=css,
        )

    def line(values: list[float | None], shown: list[str], key: str, fill: str, **kw: Any) -> Any:
        def draw(width: float, css: str) -> Markup:
            return charts.line_chart(
                labels,
                values,
                shown=shown,
                label=translate(lang, key),
                fill=fill,
                width=width,
                css=css,
                **kw,
            )

        return draw

    waits = [w.median_wait / 60 if w.median_wait is not None else None for w in weeks]
    resolutions = [
        w.median_resolution / 86400 if w.median_resolution is not None else None for w in weeks
    ]
    return {
        "trend_volume": both(volume),
        "trend_volume_legend": [(x.name, x.color) for x in volume_series],
        "trend_wait": both(
            line(
                waits,
                [short_duration(w.median_wait, lang) for w in weeks],
                "mgr.trend.wait",
                "#0072B2",
            )
        ),
        "trend_resolution": both(
            line(
                resolutions,
                [short_duration(w.median_resolution, lang) for w in weeks],
                "mgr.trend.resolution",
                "#CC79A7",
            )
        ),
        "trend_satisfaction": both(
            line(
                [w.satisfaction for w in weeks],
                [score_text(w.satisfaction, lang) for w in weeks],
                "mgr.trend.satisfaction",
                "#D55E00",
                vmax=5,
            )
        ),
    }


async def figures(
    s: AsyncSession, lang: str, period: Period, now: datetime, residence_id: int | None
) -> dict[str, Any]:
    """What the dashboard shows beyond `reports`' figures, for its template."""
    weeks = await weekly_trends(s, trend_weeks(period), period.tz, residence_id=residence_id)
    bot = await bot_resolution(s, period, now, residence_id=residence_id)
    return {
        "bot": bot,
        "bot_chart": charts.share_bar(bot.share, label=translate(lang, "mgr.bot.title")),
        "by_residence_rows": await per_residence(s, period, now, residence_id=residence_id),
        "by_staff_rows": await per_caretaker(s, period, residence_id=residence_id),
        "weeks": weeks,
        "backlog": await backlog(s, now, residence_id=residence_id),
        "backlog_ages": [k for k, _ in BACKLOG_AGES],
        "demo_data": await history_present(s),
        "trend_first": weeks[0].monday.strftime("%d/%m/%Y"),
        "trend_last": (weeks[-1].monday + timedelta(days=6)).strftime("%d/%m/%Y"),
        "short_duration": lambda seconds: short_duration(seconds, lang),
        "score_text": lambda value: score_text(value, lang),
        **trend_charts(lang, weeks),
    }
