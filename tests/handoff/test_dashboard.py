"""The manager dashboard's figures (handoff.dashboard) on a small known world, on SQLite and
PostgreSQL: per residence, per caretaker, trends by ISO week (local time), the backlog by kind
and age, the bot's resolution rate; then the page: residence filter, scoping, demo banner.

Period: Monday 2 to Sunday 15 March 2026 (Europe/Paris, UTC+1); now: Tuesday 17 March noon.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.ops.demo_history import load_history
from bot.storage.db import Database
from bot.storage.models import (
    Conversation,
    Handoff,
    Message,
    RequestEvent,
    Residence,
    StaffUser,
)
from bot.storage.models import Request as Ticket
from handoff import dashboard
from handoff.reports import Period
from tests.handoff.conftest import ClientFactory

PARIS = ZoneInfo("Europe/Paris")
PERIOD = Period(date(2026, 3, 2), date(2026, 3, 15), PARIS)
NOW = datetime(2026, 3, 17, 12, 0, tzinfo=UTC)
QUERY = "start=2026-03-02&end=2026-03-15"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (key, residence, channel, [(UTC time, author, text, intent)])
CONVERSATIONS: list[tuple[str, str, str, list[tuple[str, str, str, str | None]]]] = [
    # A FAQ answered: nothing follows. Resolved by the bot.
    (
        "faq",
        "FLEURS",
        "sms",
        [
            ("2026-03-03T09:00:00", "tenant", "Quels sont les horaires ?", "question"),
            ("2026-03-03T09:00:05", "bot", "De 9 h à 17 h.", None),
        ],
    ),
    # A FAQ answered, then the tenant asks for a person the next day: not resolved.
    (
        "faq-then-person",
        "FLEURS",
        "webchat",
        [
            ("2026-03-04T10:00:00", "tenant", "Comment payer mon loyer ?", "question"),
            ("2026-03-04T10:00:04", "bot", "Sur votre espace locataire.", None),
            ("2026-03-05T10:00:00", "tenant", "je veux parler à quelqu'un", "human_request"),
            ("2026-03-05T10:10:00", "staff", "Bonjour, je vous écoute.", None),
        ],
    ),
    # A question nobody but a person answered: not the bot's.
    (
        "staff-answered",
        "FLEURS",
        "sms",
        [
            ("2026-03-06T09:00:00", "tenant", "Le gardien est là demain ?", "question"),
            ("2026-03-06T09:30:00", "staff", "Oui, dès 8 h.", None),
        ],
    ),
    # The collection day asked twice in two days: one episode, resolved.
    (
        "collection",
        "CANAL",
        "sms",
        [
            ("2026-03-10T08:00:00", "tenant", "C'est quand les encombrants ?", "bulky_waste"),
            ("2026-03-10T08:00:03", "bot", "Jeudi 12 mars.", None),
            ("2026-03-11T08:00:00", "tenant", "Et l'heure de passage ?", "bulky_waste"),
            ("2026-03-11T08:00:03", "bot", "Le matin.", None),
        ],
    ),
    # A pickup request, not a question: not counted.
    (
        "pickup",
        "CANAL",
        "telegram",
        [
            ("2026-03-12T09:00:00", "tenant", "un matelas à jeter", "bulky_waste"),
            ("2026-03-12T09:00:03", "bot", "Quel jour vous arrange ?", None),
        ],
    ),
    # Sunday 15 March 21:00 in Paris: too recent at NOW to say.
    (
        "recent",
        "CANAL",
        "webchat",
        [
            ("2026-03-15T20:00:00", "tenant", "Où en est ma demande ?", "status_request"),
            ("2026-03-15T20:00:03", "bot", "Elle est planifiée.", None),
        ],
    ),
    # 23:30 UTC on Sunday 8 March is 00:30 on Monday 9 March in Paris: ISO week 11.
    (
        "leak",
        "CANAL",
        "sms",
        [
            ("2026-03-08T23:30:00", "tenant", "Fuite sous l'évier", "repair"),
            ("2026-03-08T23:30:04", "bot", "Je transmets au gardien.", None),
            ("2026-03-09T00:00:00", "staff", "Je passe demain.", None),
        ],
    ),
]


@dataclass
class World:
    db: Database
    conv: dict[str, int]
    res: dict[str, int]
    staff: dict[str, int]


@pytest.fixture
async def world(runtime: Runtime) -> AsyncIterator[World]:
    db = runtime.db
    conv: dict[str, int] = {}
    async with db.transaction() as s:
        res = {c: i for i, c in await s.execute(select(Residence.id, Residence.code))}
        staff = {login: i for i, login in await s.execute(select(StaffUser.id, StaffUser.login))}
        for n, (key, residence, channel, msgs) in enumerate(CONVERSATIONS):
            c = Conversation(
                channel=channel,
                address=f"addr-{n}",
                residence_id=res[residence],
                state="bot",
                created_at=utc(msgs[0][0]),
                last_message_at=utc(msgs[-1][0]),
            )
            s.add(c)
            await s.flush()
            conv[key] = c.id
            for at, author, text, intent in msgs:
                s.add(
                    Message(
                        conversation_id=c.id,
                        channel=channel,
                        direction="in" if author == "tenant" else "out",
                        author=author,
                        text=text,
                        intent=intent,
                        created_at=utc(at),
                    )
                )
        # Two handoffs: Karim in 10 min (Fleurs, week 10), Sophie in 30 min (Canal, week 11).
        for key, login, created, wait, closed, score in (
            ("faq-then-person", "karim", "2026-03-05T10:00:00", 600, "2026-03-05T11:00:00", 4),
            ("leak", "sophie", "2026-03-08T23:30:00", 1800, "2026-03-09T09:00:00", 2),
        ):
            c = await s.get(Conversation, conv[key])
            assert c is not None
            s.add(
                Handoff(
                    conversation_id=c.id,
                    residence_id=c.residence_id,
                    intent="human_request" if key != "leak" else "repair",
                    created_at=utc(created),
                    taken_at=utc(created) + timedelta(seconds=wait / 2),
                    taken_by=staff[login],
                    first_reply_at=utc(created) + timedelta(seconds=wait),
                    closed_at=utc(closed),
                )
            )
            c.state, c.closed_at, c.satisfaction = "closed", utc(closed), score
            c.last_caretaker_id = staff[login]
        # (key, residence, kind, status, created, closed, due, conversation)
        requests = [
            ("R1", "FLEURS", "repair", "closed", utc("2026-03-02T10:00:00"),
             utc("2026-03-04T10:00:00"), None, None),
            ("R2", "CANAL", "repair", "taken", utc("2026-03-09T00:00:00"), None,
             utc("2026-03-16T00:00:00"), "leak"),
            ("R3", "CANAL", "nuisance", "received", NOW - timedelta(days=1), None,
             NOW + timedelta(days=20), None),
            ("R4", "FLEURS", "emergency", "received", NOW - timedelta(days=3), None,
             NOW - timedelta(days=2), None),
            ("R5", "CANAL", "bulky_waste", "done", utc("2026-03-12T09:05:00"), None,
             None, None),
        ]  # fmt: skip
        for ref, residence, kind, status, created, closed, due, key in requests:
            t = Ticket(
                reference=f"R-T-{ref}",
                kind=kind,
                status=status,
                residence_id=res[residence],
                conversation_id=conv[key] if key else None,
                created_at=created,
                closed_at=closed,
                due_at=due,
            )
            s.add(t)
            await s.flush()
            if ref == "R1":
                s.add(
                    RequestEvent(
                        request_id=t.id,
                        at=utc("2026-03-04T09:00:00"),
                        staff_id=staff["karim"],
                        actor="staff:karim",
                        from_status="taken",
                        to_status="done",
                    )
                )
    yield World(db, conv, res, staff)


async def test_bot_resolution_counts_faq_answers(world: World) -> None:
    async with world.db.session() as s:
        bot = await dashboard.bot_resolution(s, PERIOD, NOW)
        # faq and collection resolved, faq-then-person not; the pickup and the question a
        # person answered are not the bot's; the recent one waits.
        assert (bot.answered, bot.resolved, bot.pending) == (3, 2, 1)
        assert bot.share == pytest.approx(2 / 3)
        fleurs = await dashboard.bot_resolution(s, PERIOD, NOW, residence_id=world.res["FLEURS"])
        assert (fleurs.answered, fleurs.resolved, fleurs.pending) == (2, 1, 0)
        # Ten days later, the recent one is counted (resolved: nothing followed).
        later = await dashboard.bot_resolution(s, PERIOD, NOW + timedelta(days=10))
        assert (later.answered, later.resolved, later.pending) == (4, 3, 0)
        # A one-day window: the person asked for a day later no longer spoils the answer, and
        # the collection day asked again a day later is a second episode.
        short = await dashboard.bot_resolution(s, PERIOD, NOW + timedelta(days=10), days=1)
        assert (short.answered, short.resolved) == (5, 5)


async def test_bot_resolution_only_faq_conversations_is_above_zero(database_url: str) -> None:
    """The issue's case: a bot that answered FAQ questions only showed 0 %."""
    db = Database(database_url)
    try:
        async with db.transaction() as s:
            for i in range(3):
                c = Conversation(channel="sms", address=f"+3361000000{i}", state="bot")
                s.add(c)
                await s.flush()
                at = utc("2026-03-03T09:00:00") + timedelta(hours=i)
                for author, text, intent, delay in (
                    ("tenant", "Quels sont les horaires de l'agence ?", "question", 0),
                    ("bot", "L'agence est ouverte de 9 h à 17 h.", None, 3),
                ):
                    s.add(
                        Message(
                            conversation_id=c.id,
                            channel="sms",
                            direction="in" if author == "tenant" else "out",
                            author=author,
                            text=text,
                            intent=intent,
                            created_at=at + timedelta(seconds=delay),
                        )
                    )
        async with db.session() as s:
            bot = await dashboard.bot_resolution(s, PERIOD, NOW)
        assert (bot.answered, bot.resolved) == (3, 3)
        assert bot.share == 1.0
    finally:
        await db.dispose()


async def test_per_residence(world: World) -> None:
    async with world.db.session() as s:
        rows = {r.code: r for r in await dashboard.per_residence(s, PERIOD, NOW)}
    # Every residence, by name: Le Parc, Résidence du Canal, Résidence Les Fleurs, Tour Horizon.
    assert list(rows) == ["PARC", "CANAL", "FLEURS", "HORIZON"]
    f, c, h = rows["FLEURS"], rows["CANAL"], rows["HORIZON"]
    assert (f.conversations, f.handed_off, f.median_wait) == (3, 1, 600)
    assert (f.requests_opened, f.open_requests, f.late_requests) == (2, 1, 1)
    assert (f.satisfaction, f.ratings) == (4.0, 1)
    assert (c.conversations, c.handed_off, c.median_wait) == (4, 1, 1800)
    # R2 and R5 opened in the period (R3 after it); R2 and R3 still open; R2 late. R5 is
    # done: not open, not late.
    assert (c.requests_opened, c.open_requests, c.late_requests) == (2, 2, 1)
    assert (c.satisfaction, c.ratings) == (2.0, 1)
    assert (h.conversations, h.median_wait, h.satisfaction) == (0, None, None)
    async with world.db.session() as s:
        only = await dashboard.per_residence(s, PERIOD, NOW, residence_id=world.res["CANAL"])
    assert [r.code for r in only] == ["CANAL"] and only[0] == c


async def test_per_caretaker(world: World) -> None:
    async with world.db.session() as s:
        rows = {r.id: r for r in await dashboard.per_caretaker(s, PERIOD)}
        fleurs = {
            r.id: r
            for r in await dashboard.per_caretaker(s, PERIOD, residence_id=world.res["FLEURS"])
        }
    karim, sophie = rows[world.staff["karim"]], rows[world.staff["sophie"]]
    assert (karim.taken, karim.median_wait, karim.closed, karim.requests_done) == (1, 600, 1, 1)
    assert (karim.satisfaction, karim.ratings) == (4.0, 1)
    assert (sophie.taken, sophie.median_wait, sophie.closed, sophie.requests_done) == (
        1,
        1800,
        1,
        0,
    )
    assert sophie.satisfaction == 2.0
    # Everyone who covers a residence is listed (zeros included); never the manager.
    assert world.staff["mamadou"] in rows and world.staff["claire"] not in rows
    assert rows[world.staff["mamadou"]].taken == 0
    # Fleurs: its caretaker and the on-call person who covers it; not Sophie (Canal).
    assert set(fleurs) == {world.staff["karim"], world.staff["astreinte"]}
    assert fleurs[world.staff["karim"]] == karim


async def test_weekly_trends_by_iso_week_in_local_time(world: World) -> None:
    mondays = dashboard.trend_weeks(PERIOD)
    assert len(mondays) == 8 and mondays[-1] == date(2026, 3, 9)
    assert all(m.weekday() == 0 for m in mondays)
    async with world.db.session() as s:
        weeks = {w.monday: w for w in await dashboard.weekly_trends(s, mondays, PARIS)}
        canal = {
            w.monday: w
            for w in await dashboard.weekly_trends(
                s, mondays, PARIS, residence_id=world.res["CANAL"]
            )
        }
    w10, w11 = weeks[date(2026, 3, 2)], weeks[date(2026, 3, 9)]
    assert (w10.iso_week, w11.iso_week) == (10, 11)
    # Week 10: faq, faq-then-person, staff-answered; one went to a person in 10 min.
    assert (w10.conversations, w10.handed_off, w10.bot_only, w10.median_wait) == (3, 1, 2, 600)
    assert (w10.resolved, w10.median_resolution) == (1, 2 * 86400)  # R1: two days
    assert (w10.satisfaction, w10.ratings) == (4.0, 1)
    # Week 11: the leak of Sunday 23:30 UTC (Monday in Paris), collection, pickup, recent.
    assert (w11.conversations, w11.handed_off, w11.median_wait) == (4, 1, 1800)
    assert (w11.resolved, w11.median_resolution, w11.satisfaction) == (0, None, 2.0)
    assert weeks[date(2026, 2, 23)].conversations == 0
    assert canal[date(2026, 3, 2)].conversations == 0
    assert canal[date(2026, 3, 9)] == w11


async def test_backlog_by_kind_and_age(world: World) -> None:
    async with world.db.session() as s:
        b = await dashboard.backlog(s, NOW)
        fleurs = await dashboard.backlog(s, NOW, residence_id=world.res["FLEURS"])
    assert b.kinds[:4] == ["emergency", "repair", "nuisance", "bulky_waste"]
    assert b.cells == {("repair", "gt7"): 1, ("nuisance", "lt2"): 1, ("emergency", "2to7"): 1}
    assert b.late == {"repair": 1, "emergency": 1}
    assert (b.total, b.late_total, b.row_total("bulky_waste"), b.column_total("lt2")) == (
        3,
        2,
        0,
        1,
    )
    assert fleurs.cells == {("emergency", "2to7"): 1} and fleurs.late == {"emergency": 1}


def kpi(html: str, name: str) -> str:
    m = re.search(rf'data-kpi="{name}"><span class="kpi-value">([^<]*)<', html)
    assert m, name
    return m.group(1)


def row_cells(html: str, attr: str) -> dict[str, str]:
    row = re.search(rf"<tr {attr}>(.*?)</tr>", html, re.S)
    assert row, attr
    return dict(re.findall(r'data-col="(\w+)">([^<]*)<', row.group(1)))


async def test_dashboard_page_residence_filter_and_scoping(
    world: World, runtime: Runtime, client_for: ClientFactory
) -> None:
    runtime.clock = lambda: NOW
    claire = await client_for("claire")
    page = await claire.get(f"/console/manager?{QUERY}")
    assert page.status_code == 200
    html = page.text
    assert kpi(html, "conversations") == "7"
    assert kpi(html, "bot-resolved") == "67 %"
    assert "Comment ce taux est calculé" in html
    assert row_cells(html, 'data-residence="FLEURS"')["conversations"] == "3"
    assert row_cells(html, 'data-residence="CANAL"')["wait"] == "30 min"
    assert 'data-kind="emergency"' in html and "S11" in html
    assert 'id="demo-banner"' not in html  # no demo history here
    # Every residence is offered to the manager.
    assert len(re.findall(r'<option value="[A-Z]+"', html)) == 4

    fleurs = (await claire.get(f"/console/manager?{QUERY}&residence=FLEURS")).text
    assert kpi(fleurs, "conversations") == "3"
    assert kpi(fleurs, "handoffs") == "1"
    assert kpi(fleurs, "open-requests") == "1"
    assert kpi(fleurs, "bot-resolved") == "50 %"
    assert '<option value="FLEURS" selected>' in fleurs
    assert 'data-residence="CANAL"' not in fleurs
    assert f'data-staff="{world.staff["sophie"]}"' not in fleurs
    assert f'data-staff="{world.staff["karim"]}"' in fleurs
    # Canal's late repair is not on Fleurs' page; Fleurs' late emergency is.
    assert "R-T-R2" not in fleurs and "R-T-R4" in fleurs
    # An unknown residence filters nothing (and does not fail).
    unknown = (await claire.get(f"/console/manager?{QUERY}&residence=NOPE")).text
    assert kpi(unknown, "conversations") == "7"
    # Caretakers and on call never see the dashboard, filtered or not.
    for login in ("karim", "astreinte"):
        client = await client_for(login)
        r = await client.get("/console/manager?residence=FLEURS")
        assert r.status_code == 403, login


async def test_dashboard_banner_with_demo_history(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    await load_history(runtime.db, weeks=2, seed=3, now=datetime.now(UTC))
    claire = await client_for("claire")
    html = (await claire.get("/console/manager")).text
    assert 'id="demo-banner"' in html and "Données de démonstration" in html
    assert int(kpi(html, "conversations")) > 50
    assert kpi(html, "bot-resolved").endswith("%") and kpi(html, "bot-resolved") != "0 %"


async def test_report_figures_filtered_by_residence(world: World) -> None:
    from handoff import reports

    fleurs, canal = world.res["FLEURS"], world.res["CANAL"]
    async with world.db.session() as s:
        volume = await reports.messages_per_day(s, PERIOD, residence_id=fleurs)
        # Fleurs' tenant messages: faq 1, faq-then-person 2, staff-answered 1.
        assert volume.total() == 4 and volume.channels == ["sms", "webchat"]
        auto = await reports.automation(s, PERIOD, residence_id=canal)
        assert (auto.conversations, auto.handed_off) == (4, 1)
        handoffs = await reports.handoffs_by_intent_and_residence(s, PERIOD, residence_id=canal)
        assert handoffs.cells == {("repair", "Résidence du Canal"): 1}
        waits = await reports.wait_times(s, PERIOD, residence_id=fleurs)
        assert waits.waits == [600.0]
        sat = await reports.satisfaction(s, PERIOD, residence_id=canal)
        assert sat.counts[2] == 1 and sat.total == 1
        ages = dict(await reports.open_requests_by_age(s, NOW, residence_id=canal))
        assert sum(ages.values()) == 2 and ages["lt1"] == 0 and ages["7to30"] == 1
        # Canal's: collection 2, pickup 1, recent 1, leak 1; unfiltered, both add up.
        assert (await reports.messages_per_day(s, PERIOD, residence_id=canal)).total() == 5
        assert (await reports.messages_per_day(s, PERIOD)).total() == 4 + 5


async def test_dashboard_in_english_has_every_text(
    world: World, runtime: Runtime, client_for: ClientFactory
) -> None:
    runtime.clock = lambda: NOW
    claire = await client_for("claire")
    claire.cookies.set("relais_lang", "en")
    html = (await claire.get(f"/console/manager?{QUERY}&residence=CANAL")).text
    assert "Questions resolved by the bot" in html and "Open requests by kind and age" in html
    assert "W11" in html and "By caretaker" in html
    assert not re.search(r">\s*mgr\.[a-z_.]+", html)  # no key left untranslated
    assert "Résolues" not in html and "Passées à un humain" not in html


def test_line_chart_breaks_on_missing_weeks_and_escapes() -> None:
    from handoff import charts

    svg = str(
        charts.line_chart(
            ["S1", "S2", "<S3>", "S4", "S5"],
            [10, 20, None, 5, 15],
            shown=["10 min", "20 min", "–", "5 min", "<b>"],
            label="Attente & co",
        )
    )
    # Two pieces of line around the missing week, a point and its value for each other week.
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4
    assert ">20 min</text>" in svg and "&lt;b&gt;" in svg and "&lt;S3&gt;" in svg
    assert "<b>" not in svg and 'aria-label="Attente &amp; co"' in svg
    # The highest value is drawn higher (smaller y) than the lowest.
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert ys[1] == min(ys) and ys[2] == max(ys)
