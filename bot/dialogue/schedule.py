"""Calendars: next bulky-waste collection from a residence's rule, and opening hours."""

from __future__ import annotations

import calendar
from datetime import date, datetime, time, timedelta
from typing import Any


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    day = first + timedelta(days=offset + 7 * (nth - 1))
    return day if day.month == month else None


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def next_collection(rule: dict[str, Any], today: date) -> date | None:
    """The next collection day on or after `today`.

    Rules: `{kind: weekly, weekday: 3}`, `{kind: monthly, nth: [2], weekday: 1}` (second
    Tuesday), `{kind: monthly_last, weekday: 4}` (last Friday). Weekdays: 0 is Monday.
    """
    kind = rule.get("kind")
    weekday = int(rule.get("weekday", 0))
    if kind == "weekly":
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    year, month = today.year, today.month
    for _ in range(14):
        if kind == "monthly":
            candidates = [
                d
                for n in rule.get("nth", [1])
                if (d := _nth_weekday(year, month, weekday, int(n))) is not None
            ]
        elif kind == "monthly_last":
            candidates = [_last_weekday(year, month, weekday)]
        else:
            return None
        upcoming = sorted(d for d in candidates if d >= today)
        if upcoming:
            return upcoming[0]
        month += 1
        if month == 13:
            year, month = year + 1, 1
    return None


def is_open(hours: dict[str, Any], when: datetime) -> bool:
    """Whether `when` (local time) falls in weekly hours `{"0": [["08:30", "12:00"], ...]}`."""
    for start, end in hours.get(str(when.weekday()), []):
        if _t(start) <= when.time() < _t(end):
            return True
    return False


def next_opening(hours: dict[str, Any], when: datetime) -> datetime | None:
    """The next moment (local time) the hours open, strictly after `when` if closed now."""
    for days in range(0, 8):
        day = (when + timedelta(days=days)).date()
        for start, _end in sorted(hours.get(str(day.weekday()), [])):
            moment = datetime.combine(day, _t(start), tzinfo=when.tzinfo)
            if moment > when:
                return moment
    return None


def _t(hhmm: str) -> time:
    h, m = hhmm.split(":")
    return time(int(h), int(m))
