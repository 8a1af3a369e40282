"""Manager figures and exports, table-tested on SQLite and PostgreSQL over a known world.

The world is a handful of conversations written straight into the tables with known UTC
timestamps, chosen around local midnight (Europe/Paris, UTC+1 in March) so that grouping by
local day is tested too. One test goes through the real pipeline instead.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.storage.db import Database
from bot.storage.models import (
    AuditLog,
    Conversation,
    Handoff,
    Message,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.models import Request as Ticket
from handoff import reports
from handoff.reports import Period, TranscriptFilters
from tests.worker.test_pipeline import send, settled

PARIS = ZoneInfo("Europe/Paris")
PERIOD = Period(date(2026, 3, 1), date(2026, 3, 10), PARIS)
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Msg:
    at: str
    text: str
    author: str = "tenant"
    intent: str | None = None
    confidence: float | None = None
    corrected: str | None = None


@dataclass(frozen=True)
class Conv:
    channel: str
    address: str
    residence: str | None
    state: str
    intent: str | None
    last_message_at: str
    messages: tuple[Msg, ...]
    satisfaction: int | None = None
    closed_at: str | None = None
    priority: int = 0


WORLD: dict[str, Conv] = {
    "leak": Conv(
        "sms",
        "+33612345600",
        "FLEURS",
        "closed",
        "repair",
        "2026-03-02T09:00:00",
        (
            # 23:30 UTC on 1 March is 00:30 on 2 March in Paris.
            Msg(
                "2026-03-01T23:30:00",
                "J'ai une FUITE sous l'évier",
                intent="repair",
                confidence=0.95,
            ),
            Msg("2026-03-01T23:30:05", "Bien reçu, demande R-2026-000001", author="bot"),
            Msg("2026-03-02T08:00:00", "Je passe à 10h", author="staff"),
            Msg(
                "2026-03-02T09:00:00",
                "merci\nà demain",
                intent="thanks",
                confidence=0.4,
                corrected="thanks",
            ),
        ),
        satisfaction=5,
        closed_at="2026-03-02T10:00:00",
    ),
    "noise": Conv(
        "telegram",
        "1001",
        "CANAL",
        "queued",
        "nuisance",
        "2026-03-03T12:01:00",
        (
            Msg(
                "2026-03-03T12:00:00", "Mon voisin fait du bruit", intent="nuisance", confidence=0.9
            ),
            Msg(
                "2026-03-03T12:01:00",
                '=HYPERLINK("http://evil.example";"clic")',
                intent="out_of_scope",
                confidence=0.3,
            ),
        ),
    ),
    "hours": Conv(
        "webchat",
        "web-abc",
        None,
        "bot",
        "question",
        "2026-03-05T09:00:05",
        (
            Msg(
                "2026-03-05T09:00:00",
                "Quels sont les horaires de l'agence ?",
                intent="question",
                confidence=0.55,
            ),
            Msg("2026-03-05T09:00:05", "L'agence répond à 100% des appels", author="bot"),
        ),
        satisfaction=5,
    ),
    "old": Conv(
        "sms",
        "+33612345601",
        "CANAL",
        "closed",
        "bulky_waste",
        "2026-02-20T10:00:00",
        (Msg("2026-02-20T10:00:00", "un matelas à jeter", intent="bulky_waste", confidence=0.9),),
        satisfaction=2,
        closed_at="2026-02-21T10:00:00",
    ),
    "edge": Conv(
        "sms",
        "+33612345602",
        "HORIZON",
        "bot",
        "greet",
        "2026-03-10T23:30:00",
        (
            # 1 March 00:30 in Paris (inside); 11 March 00:30 in Paris (outside).
            Msg("2026-02-28T23:30:00", "Bonjour", intent="greet", confidence=0.99),
            Msg("2026-03-10T23:30:00", "Bonsoir", intent="greet", confidence=0.99),
        ),
    ),
    "xss": Conv(
        "webchat",
        "web-xss",
        "FLEURS",
        "queued",
        "repair",
        "2026-03-06T10:00:00",
        (
            Msg(
                "2026-03-06T10:00:00",
                "<img src=x onerror=alert(1)>",
                intent="out_of_scope",
                confidence=0.2,
                corrected="repair",
            ),
        ),
        satisfaction=4,
    ),
    "gas": Conv(
        "sms",
        "+33612345603",
        "PARC",
        "assigned",
        "emergency",
        "2026-03-07T02:00:00",
        (
            Msg(
                "2026-03-07T02:00:00",
                "odeur de gaz dans la cage d'escalier",
                intent="emergency",
                confidence=0.99,
            ),
        ),
        satisfaction=1,
        priority=10,
    ),
    "anon": Conv(
        "sms",
        "+33700000000",
        None,
        "queued",
        "human_request",
        "2026-03-04T08:00:00",
        (
            Msg(
                "2026-03-04T08:00:00",
                "je veux parler à quelqu'un",
                intent="human_request",
                confidence=0.6,
            ),
        ),
        satisfaction=3,
    ),
}

# (conversation, intent, created, seconds to the first reply or None)
HANDOFFS: list[tuple[str, str, str, int | None]] = [
    ("leak", "repair", "2026-03-01T23:30:00", 60),
    ("noise", "nuisance", "2026-03-03T12:00:00", 120),
    ("xss", "repair", "2026-03-06T10:00:00", 300),
    ("gas", "emergency", "2026-03-07T02:00:00", 600),
    ("gas", "emergency", "2026-03-08T02:00:00", 3600),  # the same conversation twice
    ("noise", "nuisance", "2026-03-09T12:00:00", None),
    ("anon", "human_request", "2026-03-04T08:00:00", None),
    ("old", "bulky_waste", "2026-02-20T10:00:00", 99_999),  # before the period
    ("edge", "human_request", "2026-02-27T10:00:00", 30),  # before the period
]

# (age in days at NOW, status)
REQUESTS: list[tuple[float, str]] = [
    (0.5, "open"),
    (1, "open"),  # exactly one day: the 1-3 bucket
    (2.5, "open"),
    (3, "open"),
    (10, "open"),
    (30, "open"),  # exactly thirty days: the >30 bucket
    (100, "open"),
    (5, "closed"),
]


@dataclass
class World:
    db: Database
    ids: dict[str, int]
    residences: dict[str, int]
    names: dict[str, str]


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[World]:
    db = Database(database_url)
    ids: dict[str, int] = {}
    async with db.transaction() as s:
        res = {
            code: (rid, name)
            for rid, code, name in await s.execute(
                select(Residence.id, Residence.code, Residence.name)
            )
        }
        tenants = {phone: tid for tid, phone in await s.execute(select(Tenant.id, Tenant.phone))}
        for key, c in WORLD.items():
            conv = Conversation(
                tenant_id=tenants.get(c.address),
                channel=c.channel,
                address=c.address,
                residence_id=res[c.residence][0] if c.residence else None,
                state=c.state,
                intent=c.intent,
                priority=c.priority,
                satisfaction=c.satisfaction,
                created_at=utc(c.messages[0].at),
                last_message_at=utc(c.last_message_at),
                closed_at=utc(c.closed_at) if c.closed_at else None,
                dialogue={},
            )
            s.add(conv)
            await s.flush()
            ids[key] = conv.id
            for m in c.messages:
                s.add(
                    Message(
                        conversation_id=conv.id,
                        channel=c.channel,
                        direction="in" if m.author == "tenant" else "out",
                        author=m.author,
                        text=m.text,
                        intent=m.intent,
                        confidence=m.confidence,
                        corrected_intent=m.corrected,
                        nlu={
                            "intent": m.intent,
                            "ranking": [{"intent": m.intent, "confidence": m.confidence}],
                        }
                        if m.intent
                        else None,
                        created_at=utc(m.at),
                    )
                )
        for key, intent, created, wait in HANDOFFS:
            conv_residence = WORLD[key].residence
            s.add(
                Handoff(
                    conversation_id=ids[key],
                    residence_id=res[conv_residence][0] if conv_residence else None,
                    intent=intent,
                    created_at=utc(created),
                    first_reply_at=utc(created) + timedelta(seconds=wait)
                    if wait is not None
                    else None,
                )
            )
        for i, (age, status) in enumerate(REQUESTS):
            created_at = NOW - timedelta(days=age)
            s.add(
                Ticket(
                    kind="repair",
                    status=status,
                    reference=f"R-TEST-{i}",
                    created_at=created_at,
                    closed_at=NOW if status == "closed" else None,
                )
            )
    try:
        yield World(
            db,
            ids,
            {code: rid for code, (rid, _) in res.items()},
            {code: name for code, (_, name) in res.items()},
        )
    finally:
        await db.dispose()


# -- pure helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([7], 50, 7),
        ([7], 90, 7),
        ([1, 2, 3, 4], 50, 2.5),
        ([4, 1, 3, 2], 50, 2.5),  # order does not matter
        ([1, 2, 3], 50, 2),
        ([60, 120, 300, 600, 3600], 50, 300),
        ([60, 120, 300, 600, 3600], 90, 2400),  # rank 3.6: 600 + 0.6 x 3000
        (list(range(1, 11)), 90, 9.1),
        (list(range(1, 11)), 100, 10),
        (list(range(1, 11)), 0, 1),
    ],
)
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    result = reports.percentile(values, q)
    assert result == pytest.approx(expected) if expected is not None else result is None


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, "lt1"),
        (0.99, "lt1"),
        (1, "1to3"),
        (2.99, "1to3"),
        (3, "3to7"),
        (6.99, "3to7"),
        (7, "7to30"),
        (29.99, "7to30"),
        (30, "gt30"),
        (400, "gt30"),
    ],
)
def test_age_buckets(days: float, bucket: str) -> None:
    assert reports.bucket_of(days, reports.AGE_BUCKETS) == bucket


def test_period_is_local_days_in_utc() -> None:
    assert PERIOD.start == utc("2026-02-28T23:00:00")
    assert PERIOD.end == utc("2026-03-10T23:00:00")
    assert len(PERIOD.days()) == 10
    summer = Period(date(2026, 7, 1), date(2026, 7, 1), PARIS)
    assert summer.start == utc("2026-06-30T22:00:00")
    assert summer.end == utc("2026-07-01T22:00:00")


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+33612345600", "'+33612345600"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("bonjour = salut", "bonjour = salut"),
        ("", ""),
        (None, ""),
        (3, "3"),
    ],
)
def test_csv_cell_neutralises_formulas(value: Any, cell: str) -> None:
    assert reports.csv_cell(value) == cell


def test_csv_is_utf8_with_bom_and_escaped() -> None:
    body = reports.to_csv(
        ["a", "b"], [['élève; "cité"', "ligne\nsuivante"], ["=cmd|' /C calc'!A0", 1]]
    )
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert rows == [["a", "b"], ['élève; "cité"', "ligne\nsuivante"], ["'=cmd|' /C calc'!A0", "1"]]


def test_rasa_yaml_export_round_trips() -> None:
    text = reports.rasa_nlu_yaml(
        [
            ("repair", "ya une fuite ds la sdb"),
            ("repair", "ya  une fuite\nds la sdb"),  # the same example once cleaned
            ("nuisance", "- le voisin: # tape\x07 fort"),
            ("repair", "   "),
        ]
    )
    assert text.startswith('version: "3.1"\n')
    doc = yaml.safe_load(text)
    assert doc["version"] == "3.1"
    assert doc["nlu"] == [
        {"intent": "nuisance", "examples": "- - le voisin: # tape fort\n"},
        {"intent": "repair", "examples": "- ya une fuite ds la sdb\n"},
    ]


# -- figures over the world -------------------------------------------------------------


async def test_messages_per_day_by_channel(world: World) -> None:
    async with world.db.session() as s:
        volume = await reports.messages_per_day(s, PERIOD)
    d = date.fromisoformat
    assert volume.counts == {
        (d("2026-03-01"), "sms"): 1,
        (d("2026-03-02"), "sms"): 2,
        (d("2026-03-03"), "telegram"): 2,
        (d("2026-03-04"), "sms"): 1,
        (d("2026-03-05"), "webchat"): 1,
        (d("2026-03-06"), "webchat"): 1,
        (d("2026-03-07"), "sms"): 1,
    }
    assert volume.channels == ["sms", "telegram", "webchat"]
    assert volume.total() == 9
    assert volume.days[0] == d("2026-03-01") and volume.days[-1] == d("2026-03-10")


async def test_automation_share(world: World) -> None:
    async with world.db.session() as s:
        auto = await reports.automation(s, PERIOD)
    # Active: leak, noise, hours, edge, xss, gas, anon. Handed over in the period: leak,
    # noise, xss, gas (twice, counted once), anon. edge's handoff is before the period.
    assert (auto.conversations, auto.handed_off, auto.bot_only) == (7, 5, 2)
    assert auto.share == pytest.approx(2 / 7)


async def test_handoffs_by_intent_and_residence(world: World) -> None:
    async with world.db.session() as s:
        counts = await reports.handoffs_by_intent_and_residence(s, PERIOD)
    n = world.names
    assert counts.cells == {
        ("repair", n["FLEURS"]): 2,
        ("nuisance", n["CANAL"]): 2,
        ("emergency", n["PARC"]): 2,
        ("human_request", ""): 1,
    }
    assert counts.total == 7
    assert counts.intents() == [
        ("emergency", 2),
        ("nuisance", 2),
        ("repair", 2),
        ("human_request", 1),
    ]
    assert dict(counts.residences()) == {n["FLEURS"]: 2, n["CANAL"]: 2, n["PARC"]: 2, "": 1}


async def test_wait_before_first_reply(world: World) -> None:
    async with world.db.session() as s:
        waits = await reports.wait_times(s, PERIOD)
    assert sorted(waits.waits) == [60, 120, 300, 600, 3600]
    assert waits.median == 300
    assert waits.p90 == pytest.approx(2400)
    assert (waits.answered, waits.unanswered) == (5, 2)
    assert waits.buckets == [
        ("lt5m", 2),
        ("5to15m", 2),
        ("15to60m", 0),
        ("1to4h", 1),
        ("4to24h", 0),
        ("gt24h", 0),
    ]


async def test_satisfaction(world: World) -> None:
    async with world.db.session() as s:
        sat = await reports.satisfaction(s, PERIOD)
    # old (2) closed before the period; noise and edge gave no score.
    assert sat.counts == {1: 1, 2: 0, 3: 1, 4: 1, 5: 2}
    assert sat.total == 5
    assert sat.mean == pytest.approx(3.6)


async def test_open_requests_by_age(world: World) -> None:
    async with world.db.session() as s:
        ages = await reports.open_requests_by_age(s, NOW)
    assert ages == [("lt1", 1), ("1to3", 2), ("3to7", 1), ("7to30", 1), ("gt30", 2)]


async def test_an_empty_period_gives_empty_figures(world: World) -> None:
    empty = Period(date(2025, 1, 1), date(2025, 1, 31), PARIS)
    async with world.db.session() as s:
        assert (await reports.messages_per_day(s, empty)).total() == 0
        auto = await reports.automation(s, empty)
        assert auto.conversations == 0 and auto.share is None
        waits = await reports.wait_times(s, empty)
        assert waits.median is None and waits.p90 is None
        assert (await reports.satisfaction(s, empty)).mean is None


# -- transcript search ------------------------------------------------------------------


SEARCHES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("text", {"text": "fuite"}, {"leak"}),
    ("text, any case", {"text": "FuItE"}, {"leak"}),
    ("text in a bot reply", {"text": "100%"}, {"hours"}),
    ("% is literal", {"text": "%"}, {"hours"}),
    ("_ is literal", {"text": "_"}, set()),
    ("markup as text", {"text": "<img"}, {"xss"}),
    ("intent", {"intent": "repair"}, {"leak", "xss"}),
    ("intent as corrected", {"intent": "out_of_scope"}, {"noise"}),
    ("intent of a message", {"intent": "thanks"}, {"leak"}),
    ("channel", {"channel": "webchat"}, {"hours", "xss"}),
    ("state", {"state": "queued"}, {"noise", "xss", "anon"}),
    ("channel and state", {"channel": "sms", "state": "closed"}, {"leak", "old"}),
    ("text and state", {"text": "gaz", "state": "assigned"}, {"gas"}),
    ("text and wrong state", {"text": "gaz", "state": "closed"}, set()),
    ("local day 1 March", {"period": Period(date(2026, 3, 1), date(2026, 3, 1), PARIS)}, {"edge"}),
    ("local day 2 March", {"period": Period(date(2026, 3, 2), date(2026, 3, 2), PARIS)}, {"leak"}),
    ("February", {"period": Period(date(2026, 2, 1), date(2026, 2, 27), PARIS)}, {"old"}),
    ("nothing", {}, set(WORLD)),
]


@pytest.mark.parametrize(("case", "filters", "expected"), SEARCHES, ids=[c for c, _, _ in SEARCHES])
async def test_search_filters(
    world: World, case: str, filters: dict[str, Any], expected: set[str]
) -> None:
    async with world.db.session() as s:
        page = await reports.search_conversations(s, TranscriptFilters(**filters))
    by_id = {v: k for k, v in world.ids.items()}
    assert {by_id[r.id] for r in page.rows} == expected
    assert page.total == len(expected)


@pytest.mark.parametrize(
    ("code", "expected"),
    [("FLEURS", {"leak", "xss"}), ("CANAL", {"noise", "old"}), ("HORIZON", {"edge"})],
)
async def test_search_by_residence(world: World, code: str, expected: set[str]) -> None:
    async with world.db.session() as s:
        page = await reports.search_conversations(
            s, TranscriptFilters(residence_id=world.residences[code])
        )
    assert {r.id for r in page.rows} == {world.ids[k] for k in expected}


async def test_search_rows_describe_the_conversation(world: World) -> None:
    async with world.db.session() as s:
        page = await reports.search_conversations(s, TranscriptFilters(text="fuite"))
        everything = await reports.search_conversations(s, TranscriptFilters(), limit=3, offset=0)
        rest = await reports.search_conversations(s, TranscriptFilters(), limit=100, offset=3)
    (row,) = page.rows
    assert row.tenant == "Nadia Haddad"
    assert row.residence == world.names["FLEURS"]
    assert (row.channel, row.state, row.intent, row.messages) == ("sms", "closed", "repair", 4)
    assert row.snippet == "J'ai une FUITE sous l'évier"
    # Most recently active first, and pages do not overlap.
    assert everything.rows[0].id == world.ids["edge"]
    assert everything.total == len(WORLD)
    assert len(everything.rows) + len(rest.rows) == len(WORLD)
    assert not {r.id for r in everything.rows} & {r.id for r in rest.rows}


async def test_transcript_rows_for_csv(world: World) -> None:
    async with world.db.session() as s:
        rows = await reports.transcript_rows(s, TranscriptFilters(text="fuite"), PARIS)
        noise = await reports.transcript_rows(s, TranscriptFilters(channel="telegram"), PARIS)
    assert len(rows) == 4
    first = dict(zip(reports.TRANSCRIPT_COLUMNS, rows[0], strict=True))
    assert first["conversation"] == world.ids["leak"]
    assert first["date"] == "2026-03-02T00:30:00+01:00"
    assert (first["direction"], first["author"], first["intent"], first["confidence"]) == (
        "in",
        "tenant",
        "repair",
        "0.950",
    )
    assert first["tenant"] == "Nadia Haddad" and first["address"] == "+33612345600"
    assert [r[8] for r in rows] == ["tenant", "bot", "staff", "tenant"]
    assert rows[3][12] == "thanks"  # corrected_intent
    body = reports.to_csv(reports.TRANSCRIPT_COLUMNS, noise)
    parsed = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert parsed[0] == list(reports.TRANSCRIPT_COLUMNS)
    assert parsed[2][-1] == '\'=HYPERLINK("http://evil.example";"clic")'


# -- NLU review ------------------------------------------------------------------------------


async def test_corrected_examples_make_rasa_yaml(world: World) -> None:
    async with world.db.session() as s:
        examples = await reports.corrected_examples(s)
    assert examples == [("thanks", "merci\nà demain"), ("repair", "<img src=x onerror=alert(1)>")]
    doc = yaml.safe_load(reports.rasa_nlu_yaml(examples))
    assert doc["nlu"] == [
        {"intent": "repair", "examples": "- <img src=x onerror=alert(1)>\n"},
        {"intent": "thanks", "examples": "- merci à demain\n"},
    ]


# -- audit log ---------------------------------------------------------------------------------


async def test_audit_entries_filter_by_staff_and_action(world: World) -> None:
    async with world.db.transaction() as s:
        staff = {
            login: sid for sid, login in await s.execute(select(StaffUser.id, StaffUser.login))
        }
        for at, login, action in [
            ("2026-03-02T08:00:00", "karim", "reply"),
            ("2026-03-02T08:05:00", "karim", "close"),
            ("2026-03-03T09:00:00", "claire", "export"),
            ("2026-03-04T09:00:00", "claire", "read"),
        ]:
            s.add(
                AuditLog(
                    at=utc(at),
                    staff_id=staff[login],
                    actor=login,
                    action=action,
                    target_type="conversation",
                    target_id="1",
                )
            )
    async with world.db.session() as s:
        everything, total = await reports.audit_entries(s)
        karim, n_karim = await reports.audit_entries(s, staff_id=staff["karim"])
        exports, _ = await reports.audit_entries(s, action="export")
        march_2, _ = await reports.audit_entries(
            s, period=Period(date(2026, 3, 2), date(2026, 3, 2), PARIS)
        )
        actions = await reports.audit_actions(s)
    assert total == 4 and [a.action for a in everything] == ["read", "export", "close", "reply"]
    assert n_karim == 2 and {a.action for a in karim} == {"reply", "close"}
    assert [(a.actor, a.staff_name) for a in exports] == [("claire", "Claire Dubois")]
    assert [a.action for a in march_2] == ["close", "reply"]
    assert set(actions) >= {"reply", "close", "export", "read"}


# -- through the real pipeline -------------------------------------------------------------


async def test_figures_count_what_the_pipeline_stored(runtime: Runtime) -> None:
    await send(runtime, "je veux parler à un conseiller", pid="R1")
    await send(runtime, "Bonjour", pid="R2", address="+33612345601")
    await settled(runtime)
    today = Period.last_days(1, datetime.now(PARIS).date(), PARIS)
    async with runtime.db.session() as s:
        volume = await reports.messages_per_day(s, today)
        auto = await reports.automation(s, today)
        handoffs = await reports.handoffs_by_intent_and_residence(s, today)
        waits = await reports.wait_times(s, today)
        page = await reports.search_conversations(
            s, replace(TranscriptFilters(), text="à un CONSEILLER")
        )
    assert volume.total() == 2 and volume.channels == ["sms"]
    assert (auto.conversations, auto.handed_off) == (2, 1)
    assert list(handoffs.cells) == [("human_request", "Résidence Les Fleurs")]
    assert (waits.answered, waits.unanswered) == (0, 1)
    assert page.total == 1 and page.rows[0].tenant == "Nadia Haddad"
