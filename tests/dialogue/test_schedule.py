"""Collection calendars and opening hours."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bot.dialogue.schedule import is_open, next_collection, next_opening

PARIS = ZoneInfo("Europe/Paris")
HOURS = {"0": [["08:30", "12:00"], ["13:30", "17:00"]], "4": [["08:30", "12:00"]]}


@pytest.mark.parametrize(
    ("rule", "today", "expected"),
    [
        ({"kind": "weekly", "weekday": 3}, date(2026, 3, 3), date(2026, 3, 5)),
        ({"kind": "weekly", "weekday": 3}, date(2026, 3, 5), date(2026, 3, 5)),  # today counts
        ({"kind": "monthly", "nth": [2], "weekday": 1}, date(2026, 3, 3), date(2026, 3, 10)),
        ({"kind": "monthly", "nth": [2], "weekday": 1}, date(2026, 3, 11), date(2026, 4, 14)),
        ({"kind": "monthly", "nth": [1, 3], "weekday": 0}, date(2026, 3, 3), date(2026, 3, 16)),
        # The first Monday of April 2026 is Easter Monday: moved to the next working day.
        ({"kind": "monthly", "nth": [1, 3], "weekday": 0}, date(2026, 3, 17), date(2026, 4, 7)),
        ({"kind": "monthly_last", "weekday": 4}, date(2026, 3, 3), date(2026, 3, 27)),
        ({"kind": "monthly_last", "weekday": 4}, date(2026, 12, 26), date(2027, 1, 29)),
        ({"kind": "monthly", "nth": [5], "weekday": 0}, date(2026, 2, 1), date(2026, 3, 30)),
        ({"kind": "unknown"}, date(2026, 3, 3), None),
    ],
)
def test_next_collection(rule: dict, today: date, expected: date | None) -> None:
    assert next_collection(rule, today) == expected


@pytest.mark.parametrize(
    ("when", "open_"),
    [
        (datetime(2026, 3, 2, 8, 29, tzinfo=PARIS), False),
        (datetime(2026, 3, 2, 8, 30, tzinfo=PARIS), True),
        (datetime(2026, 3, 2, 12, 30, tzinfo=PARIS), False),
        (datetime(2026, 3, 2, 16, 59, tzinfo=PARIS), True),
        (datetime(2026, 3, 6, 14, 0, tzinfo=PARIS), False),
        (datetime(2026, 3, 7, 10, 0, tzinfo=PARIS), False),
    ],
)
def test_is_open(when: datetime, open_: bool) -> None:
    assert is_open(HOURS, when) is open_


def test_next_opening() -> None:
    assert next_opening(HOURS, datetime(2026, 3, 2, 12, 30, tzinfo=PARIS)) == datetime(
        2026, 3, 2, 13, 30, tzinfo=PARIS
    )
    # Friday afternoon is closed: next is Monday morning.
    assert next_opening(HOURS, datetime(2026, 3, 6, 12, 0, tzinfo=PARIS)) == datetime(
        2026, 3, 9, 8, 30, tzinfo=PARIS
    )
    assert next_opening({}, datetime(2026, 3, 6, 12, 0, tzinfo=PARIS)) is None
