"""Calendars: next bulky-waste collection from a residence's rule, and opening hours.

Both honour what managers enter in the console: a collection moved or cancelled on a date
(`exceptions`), and days an office or lodge is closed (`closed` in the hours).
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
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


def next_collection(
    rule: dict[str, Any], today: date, exceptions: Iterable[dict[str, Any]] = ()
) -> date | None:
    """The next collection day on or after `today`.

    Rules: `{kind: weekly, weekday: 3}`, `{kind: monthly, nth: [2], weekday: 1}` (second
    Tuesday), `{kind: monthly_last, weekday: 4}` (last Friday). Weekdays: 0 is Monday.
    `exceptions`: `{date: "2026-12-08", moved_to: "2026-12-10"}` (moved) or
    `{date: "2026-12-08"}` (cancelled) for a collection of the rule.
    """
    changes: dict[date, date | None] = {}
    for e in exceptions:
        try:
            moved = e.get("moved_to")
            changes[date.fromisoformat(str(e["date"]))] = (
                date.fromisoformat(str(moved)) if moved else None
            )
        except (KeyError, ValueError):
            continue  # the console validates them; a bad one is not a reason to fail a turn
    if not changes:
        return _next_by_rule(rule, today)
    found: list[date] = []
    day = today - timedelta(days=31)  # a collection moved later may come from before today
    for _ in range(40):
        nxt = _next_by_rule(rule, day)
        if nxt is None:
            break
        actual = changes.get(nxt, nxt)
        if actual is not None and actual >= today:
            found.append(actual)
            if nxt >= today:
                break
        day = nxt + timedelta(days=1)
    return min(found) if found else None


def _next_by_rule(rule: dict[str, Any], today: date) -> date | None:
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


def closed_on(hours: dict[str, Any], day: date) -> bool:
    """Whether `day` falls in one of the hours' closures `{"closed": [{from, to, note}]}`."""
    for c in hours.get("closed") or []:
        try:
            start = date.fromisoformat(str(c["from"]))
            end = date.fromisoformat(str(c.get("to") or c["from"]))
        except (KeyError, ValueError, TypeError):
            continue
        if start <= day <= end:
            return True
    return False


def is_open(hours: dict[str, Any], when: datetime) -> bool:
    """Whether `when` (local time) falls in weekly hours `{"0": [["08:30", "12:00"], ...]}`
    and on no closure day."""
    if closed_on(hours, when.date()):
        return False
    for start, end in hours.get(str(when.weekday()), []):
        if _t(start) <= when.time() < _t(end):
            return True
    return False


def next_opening(hours: dict[str, Any], when: datetime) -> datetime | None:
    """The next moment (local time) the hours open, strictly after `when` if closed now."""
    for days in range(0, 63):  # a closure (summer, Christmas) may last weeks
        day = (when + timedelta(days=days)).date()
        if closed_on(hours, day):
            continue
        for start, _end in sorted(hours.get(str(day.weekday()), [])):
            moment = datetime.combine(day, _t(start), tzinfo=when.tzinfo)
            if moment > when:
                return moment
    return None


def _t(hhmm: str) -> time:
    h, m = hhmm.split(":")
    return time(int(h), int(m))
