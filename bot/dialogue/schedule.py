"""Calendars: next bulky-waste collection from a residence's rule, opening hours, and the
French public holidays of the residence's department (the `holidays` package).

Both honour what managers enter in the console: a collection moved or cancelled on a date
(`exceptions`), and days an office or lodge is closed (`closed` in the hours).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

import holidays as holidays_lib

# Departments with public holidays of their own: Moselle, Alsace (Bas-Rhin, Haut-Rhin) and
# the overseas departments, by the first digits of the postal code.
_REGIONS = {"57": "57", "67": "6AE", "68": "6AE"}
_OVERSEAS = {"971", "972", "973", "974", "976"}


def region_of(postal_code: str) -> str:
    """The `holidays` subdivision of a French postal code ("" for mainland rules)."""
    code = re.sub(r"\D", "", postal_code or "")[:5]
    if code[:3] in _OVERSEAS:
        return code[:3]
    return _REGIONS.get(code[:2], "")


def residence_region(residence: Any) -> str:
    """A residence's holiday region: its own setting, else read from its postal code."""
    return str(getattr(residence, "region", "") or "")


@lru_cache(maxsize=64)
def _calendar(region: str, year: int) -> holidays_lib.HolidayBase:
    return holidays_lib.France(subdiv=region or None, years=year, language="fr")


def holiday_name(day: date, region: str = "") -> str | None:
    """The public holiday on `day` in that region, by its French name, or None."""
    name = _calendar(region, day.year).get(day)
    return str(name) if name else None


def _nth_weekday(year: int, month: int, weekday: int, nth: int) -> date | None:
    first = date(year, month, 1)
    offset = (weekday - first.weekday()) % 7
    day = first + timedelta(days=offset + 7 * (nth - 1))
    return day if day.month == month else None


def _last_weekday(year: int, month: int, weekday: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def next_collection(
    rule: dict[str, Any],
    today: date,
    exceptions: Iterable[dict[str, Any]] = (),
    *,
    region: str = "",
    holidays: bool = True,
) -> date | None:
    """The next collection day on or after `today`, public holidays and managers' changes
    applied.

    Rules: `{kind: weekly, weekday: 3}`, `{kind: monthly, nth: [2], weekday: 1}` (second
    Tuesday), `{kind: monthly_last, weekday: 4}` (last Friday). Weekdays: 0 is Monday.
    `on_holiday: moved` (default: the next working day) or `skipped` (the next planned
    day instead); `region` overrides the rule's own `region` (see `region_of`).
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
        return _next_by_rule(rule, today, region, holidays)
    found: list[date] = []
    day = today - timedelta(days=31)  # a collection moved later may come from before today
    for _ in range(40):
        nxt = _next_by_rule(rule, day, region, holidays)
        if nxt is None:
            break
        actual = changes.get(nxt, nxt)
        if actual is not None and actual >= today:
            found.append(actual)
            if nxt >= today:
                break
        day = nxt + timedelta(days=1)
    return min(found) if found else None


def _next_by_rule(rule: dict[str, Any], today: date, region: str, holidays: bool) -> date | None:
    """The rule's next day on or after `today`, moved or skipped when a public holiday."""
    planned = _planned(rule, today)
    if not holidays or planned is None:
        return planned
    region = region or str(rule.get("region", ""))
    for _ in range(12):
        if planned is None or holiday_name(planned, region) is None:
            return planned
        if (rule.get("on_holiday") or "moved") == "moved":
            day = planned + timedelta(days=1)
            while day.weekday() >= 5 or holiday_name(day, region) is not None:
                day += timedelta(days=1)
            return day
        planned = _planned(rule, planned + timedelta(days=1))
    return planned


def _planned(rule: dict[str, Any], today: date) -> date | None:
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


def is_open(hours: dict[str, Any], when: datetime, region: str = "") -> bool:
    """Whether `when` (local time) falls in weekly hours `{"0": [["08:30", "12:00"], ...]}`,
    on no closure day and no public holiday."""
    if closed_on(hours, when.date()) or holiday_name(when.date(), region) is not None:
        return False
    for start, end in hours.get(str(when.weekday()), []):
        if _t(start) <= when.time() < _t(end):
            return True
    return False


def next_opening(hours: dict[str, Any], when: datetime, region: str = "") -> datetime | None:
    """The next moment (local time) the hours open, strictly after `when` if closed now;
    closures and public holidays skipped."""
    for days in range(0, 63):  # a closure (summer, Christmas) may last weeks
        day = (when + timedelta(days=days)).date()
        if closed_on(hours, day) or holiday_name(day, region) is not None:
            continue
        for start, _end in sorted(hours.get(str(day.weekday()), [])):
            moment = datetime.combine(day, _t(start), tzinfo=when.tzinfo)
            if moment > when:
                return moment
    return None


def _t(hhmm: str) -> time:
    h, m = hhmm.split(":")
    return time(int(h), int(m))
