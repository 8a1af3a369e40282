"""Manager figures and exports: pure queries over the database, no web.

Every figure takes a `Period` (local calendar days, half-open in UTC) and an `AsyncSession`.
Grouping by day and percentiles are done in Python so that SQLite and PostgreSQL give the
same answers (no `date_trunc`, no `percentile_cont`).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.phones import DEFAULT_REGION
from bot.ops.gdpr import ERASED_TEXT
from bot.storage.models import (
    AuditLog,
    Author,
    Conversation,
    Direction,
    Handoff,
    Message,
    Request,
    Residence,
    StaffUser,
    Tenant,
)
from handoff import search

LOW_CONFIDENCE = 0.6
CLOSED_REQUEST_STATUSES = ("closed", "done", "resolved", "cancelled")
# (upper bound in days, exclusive; None = no bound) for open requests by age.
AGE_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt1", 1),
    ("1to3", 3),
    ("3to7", 7),
    ("7to30", 30),
    ("gt30", None),
)
# Wait before a person's first reply, upper bounds in minutes.
WAIT_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("lt5m", 5),
    ("5to15m", 15),
    ("15to60m", 60),
    ("1to4h", 240),
    ("4to24h", 1440),
    ("gt24h", None),
)


@dataclass(frozen=True, slots=True)
class Period:
    """Local calendar days `first`..`last` (both included), as a half-open UTC interval."""

    first: date
    last: date
    tz: ZoneInfo

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(0), self.tz).astimezone(UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]

    def local_day(self, at: datetime) -> date:
        return at.astimezone(self.tz).date()

    def contains(self, column: Any) -> Any:
        return and_(column >= self.start, column < self.end)

    @classmethod
    def last_days(cls, n: int, today: date, tz: ZoneInfo) -> Period:
        return cls(today - timedelta(days=n - 1), today, tz)


# -- statistics --------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between closest ranks (the
    default of numpy and of PostgreSQL's percentile_cont); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bucket_of(value: float, buckets: Sequence[tuple[str, float | None]]) -> str:
    for key, upper in buckets:
        if upper is None or value < upper:
            return key
    raise ValueError("the last bucket must have no upper bound")


# -- dashboard figures -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DailyVolume:
    days: list[date]
    channels: list[str]
    counts: dict[tuple[date, str], int]

    def total(self) -> int:
        return sum(self.counts.values())


async def messages_per_day(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> DailyVolume:
    """Messages received from tenants, per local day and channel (of one residence's
    conversations when `residence_id` is given)."""
    stmt = select(Message.created_at, Message.channel).where(
        Message.direction == Direction.IN.value,
        Message.author == Author.TENANT.value,
        period.contains(Message.created_at),
    )
    if residence_id is not None:
        stmt = stmt.join(Conversation, Conversation.id == Message.conversation_id).where(
            Conversation.residence_id == residence_id
        )
    rows = await s.execute(stmt)
    counts: Counter[tuple[date, str]] = Counter()
    for created_at, channel in rows:
        counts[(period.local_day(created_at), channel)] += 1
    channels = sorted({c for _, c in counts})
    return DailyVolume(period.days(), channels, dict(counts))


@dataclass(frozen=True, slots=True)
class Automation:
    conversations: int  # conversations in which a tenant wrote during the period
    handed_off: int  # ...of which at least one went to the human queue in the period

    @property
    def bot_only(self) -> int:
        return self.conversations - self.handed_off

    @property
    def share(self) -> float | None:
        return self.bot_only / self.conversations if self.conversations else None


async def automation(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> Automation:
    """Share of active conversations the bot answered alone (no handoff in the period)."""
    wrote = exists().where(
        Message.conversation_id == Conversation.id,
        Message.direction == Direction.IN.value,
        period.contains(Message.created_at),
    )
    handed = exists().where(
        Handoff.conversation_id == Conversation.id, period.contains(Handoff.created_at)
    )
    scope = [Conversation.residence_id == residence_id] if residence_id is not None else []
    active = int(
        (await s.execute(select(func.count(Conversation.id)).where(wrote, *scope))).scalar_one()
    )
    handed_off = int(
        (
            await s.execute(select(func.count(Conversation.id)).where(wrote, handed, *scope))
        ).scalar_one()
    )
    return Automation(active, handed_off)


@dataclass(frozen=True, slots=True)
class HandoffCounts:
    """Handoffs in the period by (intent, residence name); residence "" = not identified."""

    cells: dict[tuple[str, str], int]

    @property
    def total(self) -> int:
        return sum(self.cells.values())

    def intents(self) -> list[tuple[str, int]]:
        c: Counter[str] = Counter()
        for (intent, _), n in self.cells.items():
            c[intent] += n
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))

    def residences(self) -> list[tuple[str, int]]:
        c: Counter[str] = Counter()
        for (_, residence), n in self.cells.items():
            c[residence] += n
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


async def handoffs_by_intent_and_residence(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> HandoffCounts:
    scope = [Handoff.residence_id == residence_id] if residence_id is not None else []
    rows = await s.execute(
        select(Handoff.intent, Residence.name, func.count(Handoff.id))
        .outerjoin(Residence, Residence.id == Handoff.residence_id)
        .where(period.contains(Handoff.created_at), *scope)
        .group_by(Handoff.intent, Residence.name)
    )
    return HandoffCounts({(intent, name or ""): int(n) for intent, name, n in rows})


@dataclass(frozen=True, slots=True)
class WaitStats:
    """Wait before a person's first reply, for handoffs created in the period (seconds)."""

    waits: list[float]
    unanswered: int
    buckets: list[tuple[str, int]] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return len(self.waits)

    @property
    def median(self) -> float | None:
        return percentile(self.waits, 50)

    @property
    def p90(self) -> float | None:
        return percentile(self.waits, 90)


async def wait_times(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> WaitStats:
    scope = [Handoff.residence_id == residence_id] if residence_id is not None else []
    rows = (
        await s.execute(
            select(Handoff.created_at, Handoff.first_reply_at).where(
                period.contains(Handoff.created_at), *scope
            )
        )
    ).all()
    waits = [
        max(0.0, (replied - created).total_seconds())
        for created, replied in rows
        if replied is not None
    ]
    unanswered = sum(1 for _, replied in rows if replied is None)
    counts = Counter(bucket_of(w / 60, WAIT_BUCKETS) for w in waits)
    return WaitStats(waits, unanswered, [(k, counts.get(k, 0)) for k, _ in WAIT_BUCKETS])


@dataclass(frozen=True, slots=True)
class Satisfaction:
    counts: dict[int, int]  # score 1..5 -> conversations

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def mean(self) -> float | None:
        if not self.total:
            return None
        return sum(score * n for score, n in self.counts.items()) / self.total


async def satisfaction(
    s: AsyncSession, period: Period, *, residence_id: int | None = None
) -> Satisfaction:
    """Scores 1-5 given by tenants, dated by the conversation's close (else its last message)."""
    when = func.coalesce(Conversation.closed_at, Conversation.last_message_at)
    scope = [Conversation.residence_id == residence_id] if residence_id is not None else []
    rows = await s.execute(
        select(Conversation.satisfaction, func.count(Conversation.id))
        .where(Conversation.satisfaction.between(1, 5), period.contains(when), *scope)
        .group_by(Conversation.satisfaction)
    )
    counts = dict.fromkeys(range(1, 6), 0)
    for score, n in rows:
        if score is not None:
            counts[int(score)] = int(n)
    return Satisfaction(counts)


async def open_requests_by_age(
    s: AsyncSession, now: datetime, *, residence_id: int | None = None
) -> list[tuple[str, int]]:
    """Requests still open now, by age in days (buckets <1, 1-3, 3-7, 7-30, >30)."""
    scope = [Request.residence_id == residence_id] if residence_id is not None else []
    rows = await s.execute(
        select(Request.created_at).where(
            Request.closed_at.is_(None), Request.status.not_in(CLOSED_REQUEST_STATUSES), *scope
        )
    )
    counts = Counter(
        bucket_of((now - created).total_seconds() / 86400, AGE_BUCKETS) for (created,) in rows
    )
    return [(key, counts.get(key, 0)) for key, _ in AGE_BUCKETS]


# -- transcripts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptFilters:
    text: str = ""
    intent: str = ""
    channel: str = ""
    residence_id: int | None = None
    state: str = ""
    period: Period | None = None
    region: str = DEFAULT_REGION  # how a national phone number in `text` is read

    def is_empty(self) -> bool:
        return not (
            self.text
            or self.intent
            or self.channel
            or self.residence_id is not None
            or self.state
            or self.period
        )


def effective_intent() -> Any:
    """A message's intent as a person corrected it, else as the NLU read it."""
    return func.coalesce(Message.corrected_intent, Message.intent)


def transcript_conditions(f: TranscriptFilters) -> list[Any]:
    conditions: list[Any] = []
    # Names, references, phone numbers in any form, words without regard to accents.
    conditions.extend(search.conditions(f.text, f.region))
    if f.intent:
        conditions.append(
            or_(
                Conversation.intent == f.intent,
                exists().where(
                    Message.conversation_id == Conversation.id, effective_intent() == f.intent
                ),
            )
        )
    if f.channel:
        conditions.append(Conversation.channel == f.channel)
    if f.residence_id is not None:
        conditions.append(Conversation.residence_id == f.residence_id)
    if f.state:
        conditions.append(Conversation.state == f.state)
    if f.period is not None:
        conditions.append(
            exists().where(
                Message.conversation_id == Conversation.id,
                f.period.contains(Message.created_at),
            )
        )
    return conditions


@dataclass(frozen=True, slots=True)
class ConversationRow:
    id: int
    channel: str
    address: str
    tenant: str
    residence: str
    state: str
    intent: str
    priority: int
    created_at: datetime
    last_message_at: datetime
    messages: int
    satisfaction: int | None
    snippet: str


@dataclass(frozen=True, slots=True)
class SearchPage:
    rows: list[ConversationRow]
    total: int


async def search_conversations(
    s: AsyncSession,
    f: TranscriptFilters,
    *,
    limit: int = 50,
    offset: int = 0,
    scope: Any = None,
) -> SearchPage:
    """Conversations matching every filter, most recently active first; `scope`: a further
    condition on `Conversation` (the residences a caretaker may see)."""
    conditions = transcript_conditions(f)
    if scope is not None:
        conditions.append(scope)
    total = int(
        (await s.execute(select(func.count(Conversation.id)).where(*conditions))).scalar_one()
    )
    n_messages = (
        select(func.count(Message.id))
        .where(Message.conversation_id == Conversation.id)
        .correlate(Conversation)
        .scalar_subquery()
    )
    snippet_where = [Message.conversation_id == Conversation.id]
    matching = search.message_match(f.text, f.region)
    if matching is not None:
        snippet_where.append(matching)
    else:
        snippet_where.append(Message.author == Author.TENANT.value)
    snippet = (
        select(Message.text)
        .where(*snippet_where)
        .order_by(Message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )
    stmt = (
        select(
            Conversation.id,
            Conversation.channel,
            Conversation.address,
            Tenant.first_name,
            Tenant.last_name,
            Residence.name,
            Conversation.state,
            Conversation.intent,
            Conversation.priority,
            Conversation.created_at,
            Conversation.last_message_at,
            n_messages,
            Conversation.satisfaction,
            snippet,
        )
        .outerjoin(Tenant, Tenant.id == Conversation.tenant_id)
        .outerjoin(Residence, Residence.id == Conversation.residence_id)
        .where(*conditions)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = [
        ConversationRow(
            id=r[0],
            channel=r[1],
            address=r[2],
            tenant=f"{r[3] or ''} {r[4] or ''}".strip(),
            residence=r[5] or "",
            state=r[6],
            intent=r[7] or "",
            priority=r[8],
            created_at=r[9],
            last_message_at=r[10],
            messages=int(r[11] or 0),
            satisfaction=r[12],
            snippet=r[13] or "",
        )
        for r in await s.execute(stmt)
    ]
    return SearchPage(rows, total)


TRANSCRIPT_COLUMNS = (
    "conversation",
    "date",
    "channel",
    "address",
    "tenant",
    "residence",
    "state",
    "direction",
    "author",
    "staff",
    "internal",
    "intent",
    "corrected_intent",
    "confidence",
    "text",
)


async def transcript_rows(
    s: AsyncSession, f: TranscriptFilters, tz: ZoneInfo, *, max_conversations: int = 10_000
) -> list[list[Any]]:
    """Every message of the matching conversations, one row each (columns above)."""
    ids = list(
        (
            await s.execute(
                select(Conversation.id)
                .where(*transcript_conditions(f))
                .order_by(Conversation.id)
                .limit(max_conversations)
            )
        ).scalars()
    )
    out: list[list[Any]] = []
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        rows = await s.execute(
            select(
                Message.conversation_id,
                Message.created_at,
                Conversation.channel,
                Conversation.address,
                Tenant.first_name,
                Tenant.last_name,
                Residence.name,
                Conversation.state,
                Message.direction,
                Message.author,
                StaffUser.login,
                Message.internal,
                Message.intent,
                Message.corrected_intent,
                Message.confidence,
                Message.text,
            )
            .join(Conversation, Conversation.id == Message.conversation_id)
            .outerjoin(Tenant, Tenant.id == Conversation.tenant_id)
            .outerjoin(Residence, Residence.id == Conversation.residence_id)
            .outerjoin(StaffUser, StaffUser.id == Message.staff_id)
            .where(Message.conversation_id.in_(chunk))
            .order_by(Message.conversation_id, Message.id)
        )
        for r in rows:
            out.append(
                [
                    r[0],
                    r[1].astimezone(tz).isoformat(timespec="seconds"),
                    r[2],
                    r[3],
                    f"{r[4] or ''} {r[5] or ''}".strip(),
                    r[6] or "",
                    r[7],
                    r[8],
                    r[9],
                    r[10] or "",
                    "yes" if r[11] else "",
                    r[12] or "",
                    r[13] or "",
                    "" if r[14] is None else f"{r[14]:.3f}",
                    r[15],
                ]
            )
    return out


# Spreadsheets run a cell beginning with one of these as a formula (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(header: Iterable[str], rows: Iterable[Iterable[Any]], *, delimiter: str = ";") -> bytes:
    """UTF-8 with a BOM (Excel then reads accents right), `;` between cells (what French
    Excel expects), quotes doubled, formula-like cells neutralised."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        writer.writerow([csv_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


# -- NLU review -----------------------------------------------------------------------------


def review_conditions(kind: str, threshold: float) -> list[Any]:
    low = or_(Message.confidence < threshold, Message.intent == "out_of_scope")
    base = [
        Message.direction == Direction.IN.value,
        Message.author == Author.TENANT.value,
        Message.intent.is_not(None),
    ]
    if kind == "todo":
        return [*base, low, Message.corrected_intent.is_(None)]
    if kind == "labelled":
        return [*base, Message.corrected_intent.is_not(None)]
    return [*base, or_(low, Message.corrected_intent.is_not(None))]


async def corrected_examples(
    s: AsyncSession, period: Period | None = None
) -> list[tuple[str, str]]:
    """(intent, text) of every re-labelled tenant message, oldest first; not the messages
    erased under the GDPR (their text is only a marker now)."""
    conditions = [*review_conditions("labelled", LOW_CONFIDENCE), Message.text != ERASED_TEXT]
    if period is not None:
        conditions.append(period.contains(Message.created_at))
    rows = await s.execute(
        select(Message.corrected_intent, Message.text).where(*conditions).order_by(Message.id)
    )
    return [(str(intent), text) for intent, text in rows]


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def training_text(text: str) -> str:
    """One line of a Rasa examples block: no line breaks or control characters."""
    return " ".join(_CONTROL.sub(" ", text).split())


def rasa_nlu_yaml(examples: Iterable[tuple[str, str]]) -> str:
    """Rasa 3 training data (`version: "3.1"`), one block per intent, duplicates dropped."""
    by_intent: dict[str, list[str]] = {}
    for intent, text in examples:
        line = training_text(text)
        if not line:
            continue
        bucket = by_intent.setdefault(intent, [])
        if line not in bucket:
            bucket.append(line)
    out = ['version: "3.1"', "", "nlu:"]
    for intent in sorted(by_intent):
        out.append(f"- intent: {intent}")
        out.append("  examples: |")
        out.extend(f"    - {line}" for line in by_intent[intent])
    return "\n".join(out) + "\n"


# -- audit log ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    staff_id: int | None
    actor: str
    staff_name: str
    action: str
    target_type: str
    target_id: str
    detail: dict[str, Any]


async def audit_entries(
    s: AsyncSession,
    *,
    staff_id: int | None = None,
    action: str = "",
    period: Period | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditRow], int]:
    conditions: list[Any] = []
    if staff_id is not None:
        conditions.append(AuditLog.staff_id == staff_id)
    if action:
        conditions.append(AuditLog.action == action)
    if period is not None:
        conditions.append(period.contains(AuditLog.at))
    total = int((await s.execute(select(func.count(AuditLog.id)).where(*conditions))).scalar_one())
    rows = await s.execute(
        select(AuditLog, StaffUser.display_name)
        .outerjoin(StaffUser, StaffUser.id == AuditLog.staff_id)
        .where(*conditions)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
        .offset(offset)
    )
    out = [
        AuditRow(
            a.id,
            a.at,
            a.staff_id,
            a.actor,
            name or a.actor,
            a.action,
            a.target_type,
            a.target_id,
            dict(a.detail or {}),
        )
        for a, name in rows
    ]
    return out, total


async def audit_actions(s: AsyncSession) -> list[str]:
    rows = await s.execute(select(AuditLog.action).distinct().order_by(AuditLog.action))
    return [a for (a,) in rows]
