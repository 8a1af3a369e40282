"""The request lifecycle's pure parts: the table of moves, working days, deadlines, quiet hours,
and the dialogue's reading of "is it fixed?" as a multi-turn story with the state after each."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.dialogue import Decision, RequestView, TenantView, Turn, decide
from bot.dialogue.confirmation import read_answer
from bot.dialogue.texts import Texts
from bot.dialogue.workdays import WorkingDays, due_at, parse_rule, quiet_until
from bot.worker.lifecycle import ACTIVE, TRANSITIONS, RequestStatus, allowed_from, status_of
from nlu.types import Parse
from tests.conftest import DATA_DIR

PARIS = ZoneInfo("Europe/Paris")
S = RequestStatus
RULES = {"emergency": "24h", "heating_winter": "48h", "repair": "15wd", "nuisance": "3d"}


def test_the_table_of_moves() -> None:
    assert set(TRANSITIONS) == set(S)
    # Done or closed move on only by being reopened (or, done, by being closed).
    assert TRANSITIONS[S.DONE] == {S.CLOSED, S.REOPENED}
    assert TRANSITIONS[S.CLOSED] == {S.REOPENED}
    assert allowed_from("done") == ["closed", "reopened"]
    # Every other state can reach done and closed, and nothing reopens what is not finished.
    for state in ACTIVE:
        assert {S.DONE, S.CLOSED} <= TRANSITIONS[state]
        assert S.REOPENED not in TRANSITIONS[state]
    assert S.RECEIVED not in {t for targets in TRANSITIONS.values() for t in targets}
    # Rows stored before the lifecycle: "open" is received.
    assert status_of("open") == S.RECEIVED and status_of("in_progress") == S.TAKEN
    with pytest.raises(ValueError):
        status_of("fixed")


def test_working_days_skip_weekends_public_holidays_and_the_lodge_closed_days() -> None:
    days = WorkingDays.of({})
    assert days.next(date(2026, 12, 24), 3) == [
        date(2026, 12, 24),
        date(2026, 12, 28),
        date(2026, 12, 29),
    ]
    assert not days.is_working(date(2026, 11, 11))  # Armistice
    assert days.add(date(2026, 12, 1), 15) == date(2026, 12, 22)
    # A lodge open Monday to Wednesday only.
    short = WorkingDays.of(
        {"hours": {"0": [["8:00", "12:00"]], "1": [["8:00", "12:00"]], "2": [["8:00", "12:00"]]}}
    )
    assert short.next(date(2026, 12, 3), 2) == [date(2026, 12, 7), date(2026, 12, 8)]
    # Alsace-Moselle keeps 26 December.
    assert WorkingDays.of({}).is_working(date(2026, 12, 28))
    assert not WorkingDays.of({}, "FR", "57").is_working(date(2025, 12, 26))
    assert WorkingDays.of({}, "FR").is_working(date(2025, 12, 26))


@pytest.mark.parametrize(
    ("kind", "details", "created", "expected"),
    [
        # An emergency: 24 hours, night or day.
        (
            "emergency",
            {},
            datetime(2026, 12, 5, 22, 0, tzinfo=UTC),
            datetime(2026, 12, 6, 22, 0, tzinfo=UTC),
        ),
        # Heating in winter: 48 hours.
        (
            "repair",
            {"object": "chauffage"},
            datetime(2026, 1, 10, 9, 0, tzinfo=UTC),
            datetime(2026, 1, 12, 9, 0, tzinfo=UTC),
        ),
        # Heating in July is an ordinary repair: 15 working days (14 July is a holiday).
        (
            "repair",
            {"object": "chauffage"},
            datetime(2026, 7, 1, 9, 0, tzinfo=UTC),
            datetime(2026, 7, 23, 21, 59, tzinfo=UTC),
        ),
        (
            "repair",
            {"object": "fuite"},
            datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 22, 22, 59, tzinfo=UTC),
        ),
        (
            "nuisance",
            {},
            datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 4, 9, 0, tzinfo=UTC),
        ),
        # A kind with no rule of its own takes the repair's.
        (
            "bulky_waste",
            {},
            datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            datetime(2026, 12, 22, 22, 59, tzinfo=UTC),
        ),
    ],
)
def test_deadlines(
    kind: str, details: dict[str, str], created: datetime, expected: datetime
) -> None:
    assert due_at(kind, details, created, RULES, WorkingDays.of({}), PARIS) == expected


def test_deadline_rules_are_checked() -> None:
    assert parse_rule("15wd") == (15, "wd") and parse_rule(" 24 h") == (24, "h")
    with pytest.raises(ValueError, match="24h, 3d or 15wd"):
        parse_rule("two weeks")


@pytest.mark.parametrize(
    ("local", "spec", "until"),
    [
        ("2026-12-01 21:30", "20:00-08:00", "2026-12-02 08:00"),
        ("2026-12-02 06:59", "20:00-08:00", "2026-12-02 08:00"),
        ("2026-12-02 08:00", "20:00-08:00", None),
        ("2026-12-02 19:59", "20:00-08:00", None),
        ("2026-12-02 13:00", "12:00-14:00", "2026-12-02 14:00"),
        ("2026-12-02 23:00", "", None),
        ("2026-12-02 23:00", "nonsense", None),
    ],
)
def test_quiet_hours(local: str, spec: str, until: str | None) -> None:
    now = datetime.fromisoformat(local).replace(tzinfo=PARIS)
    expected = datetime.fromisoformat(until).replace(tzinfo=PARIS) if until else None
    assert quiet_until(now.astimezone(UTC), spec, PARIS) == expected


@pytest.mark.parametrize(
    ("text", "intent", "answer"),
    [
        ("oui", "affirm", True),
        ("Oui c'est bon merci", "affirm", True),
        ("c réparé", "out_of_scope", True),
        ("yes", "affirm", True),
        ("non", "deny", False),
        ("toujours pas réparé", "repair", False),
        ("oui mais ça fuit encore", "affirm", False),
        ("le radiateur ne chauffe toujours pas", "repair", False),
        ("no, still broken", "deny", False),
        ("quand passe le gardien ?", "question", None),
        ("ma voisine fait du bruit", "nuisance", None),
    ],
)
def test_reading_the_answer(text: str, intent: str, answer: bool | None) -> None:
    assert read_answer(text, intent) is answer


TEXTS = Texts.load(DATA_DIR)
NADIA = TenantView(id=1, reference="L-10231", first_name="Nadia", building="A")
ASKED = {"asked": "repair_confirmation", "confirming": "R-2026-000214"}


def turn(text: str, intent: str, state: dict[str, object]) -> Turn:
    return Turn(
        text=text,
        parse=Parse(text, intent, 0.9, "fr", (), ((intent, 0.9),)),
        channel="sms",
        now=datetime(2026, 12, 8, 18, 0, tzinfo=PARIS),
        state=dict(state),
        tenant=NADIA,
        requests=(
            RequestView("R-2026-000214", "repair", "done", datetime(2026, 12, 1, tzinfo=UTC)),
        ),
    )


def test_yes_closes_and_asks_the_satisfaction_question_which_is_then_read() -> None:
    d = decide(turn("oui merci", "affirm", ASKED), TEXTS)
    assert d.request_update is not None
    assert (d.request_update.reference, d.request_update.status) == ("R-2026-000214", "closed")
    assert d.replies == [
        "Merci de votre confirmation : la demande R-2026-000214 est close.",
        TEXTS.get("satisfaction_question", "fr"),
    ]
    assert d.state == {"asked": "satisfaction"} and d.handoff is None
    # Next turn: the rating, read by the policy as before.
    d2 = decide(turn("4", "out_of_scope", d.state), TEXTS)
    assert d2.satisfaction == 4 and d2.state.get("asked") is None


def test_no_reopens_it_to_the_caretaker_with_the_tenants_words() -> None:
    d: Decision = decide(turn("non ça coule toujours sous l'évier", "deny", ASKED), TEXTS)
    assert d.request_update is not None
    assert d.request_update.status == "reopened"
    assert d.request_update.note == "non ça coule toujours sous l'évier"
    assert d.handoff is not None and d.handoff.reason == "not_fixed"
    assert d.replies[0].startswith(
        "Désolé que ce ne soit pas réglé. Je rouvre la demande R-2026-000214"
    )
    assert "asked" not in d.state and "confirming" not in d.state


def test_an_answer_that_is_not_one_is_read_as_a_message_of_its_own() -> None:
    d = decide(turn("il y a une fuite dans la cave", "repair", ASKED), TEXTS)
    assert d.request_update is None
    assert d.state.get("topic") == "repair"  # a new intake, the question dropped
    assert "confirming" not in d.state
    # An emergency is never an answer: safety first.
    d = decide(turn("non il y a de la fumée partout", "emergency", ASKED), TEXTS)
    assert d.request_update is None and d.intent == "emergency"
    assert d.handoff is not None and d.handoff.priority == 10
