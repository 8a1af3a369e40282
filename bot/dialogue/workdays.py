"""Working days (public holidays from `holidays`), quiet hours and request deadlines: pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = frozenset(range(5))  # Monday to Friday when a residence says nothing
# Heating or hot water out "in winter": the heating season, October to April.
WINTER_MONTHS = frozenset({10, 11, 12, 1, 2, 3, 4})
HEATING_OBJECTS = frozenset({"chauffage", "radiateur", "chaudiere", "eau_chaude"})
_RULE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|d|wd)\s*$")
_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


@dataclass(frozen=True)
class WorkingDays:
    """A residence's working days: its caretaker's weekdays, minus public holidays."""

    weekdays: frozenset[int]
    public: Any  # a holidays.HolidayBase (a dict-like of date -> name)

    @classmethod
    def of(
        cls,
        caretaker_hours: dict[str, Any] | None,
        country: str = "FR",
        subdivision: str | None = None,
    ) -> WorkingDays:
        hours = (caretaker_hours or {}).get("hours") or {}
        weekdays = frozenset(int(k) for k, v in hours.items() if v) or WEEKDAYS
        return cls(weekdays, holidays.country_holidays(country, subdiv=subdivision))

    def is_working(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.public

    def next(self, start: date, count: int) -> list[date]:
        """The first `count` working days from `start` included."""
        days: list[date] = []
        day = start
        while len(days) < count:
            if self.is_working(day):
                days.append(day)
            day += timedelta(days=1)
        return days

    def add(self, start: date, n: int) -> date:
        """The n-th working day after `start` (`start` itself not counted)."""
        day = start
        while n > 0:
            day += timedelta(days=1)
            if self.is_working(day):
                n -= 1
        return day


def parse_rule(rule: str) -> tuple[float, str]:
    """ "24h" → (24, "h"); "15wd" → (15, "wd") working days; "3d" → (3, "d")."""
    m = _RULE.match(rule or "")
    if not m:
        raise ValueError(f"Deadline '{rule}' is not like 24h, 3d or 15wd.")
    return float(m[1]), m[2]


def deadline_kind(kind: str, details: dict[str, Any] | None, local: datetime) -> str:
    """Which rule applies: emergency, heating in winter, or the request's kind."""
    if kind == "emergency":
        return "emergency"
    obj = (details or {}).get("object")
    if kind == "repair" and obj in HEATING_OBJECTS and local.month in WINTER_MONTHS:
        return "heating_winter"
    return kind


def due_at(
    kind: str,
    details: dict[str, Any] | None,
    created_at: datetime,
    rules: dict[str, str],
    days: WorkingDays,
    tz: ZoneInfo,
) -> datetime | None:
    """When the request is late; None when no rule covers its kind."""
    local = created_at.astimezone(tz)
    rule = rules.get(deadline_kind(kind, details, local))
    if rule is None and kind != "repair":
        rule = rules.get("repair")
    if not rule:
        return None
    amount, unit = parse_rule(rule)
    if unit == "h":
        return created_at + timedelta(hours=amount)
    if unit == "d":
        return created_at + timedelta(days=amount)
    # Working days: the end of the n-th working day after the one it arrived on.
    end = days.add(local.date(), int(amount))
    return datetime.combine(end, time(23, 59), tzinfo=tz)


def quiet_until(now: datetime, spec: str, tz: ZoneInfo) -> datetime | None:
    """The end of the quiet hours `now` falls in ("20:00-08:00"), or None outside them."""
    m = _HHMM.match(spec or "")
    if not m:
        return None
    start, end = time(int(m[1]), int(m[2])), time(int(m[3]), int(m[4]))
    local = now.astimezone(tz)
    t = local.time()
    if start == end:
        return None
    inside = (start <= t or t < end) if start > end else (start <= t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz)
