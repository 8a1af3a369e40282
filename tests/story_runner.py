"""The story suite's runner: YAML conversations (tests/stories/*.yml) played through the same
`TraceSession` as `relais chat --trace`, with the state after each turn checked.

Used by tests/dialogue/test_stories.py (pytest), bench/stories.py (figures by kind) and
bench/dialogue_trial.py (held-out contacts). The format is tests/stories/README.md.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from bot.app.chat import MovableClock, TraceSession, parse_wait
from bot.app.factory import prepare_database
from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.core.datadir import DataDir
from bot.core.settings import Settings
from bot.messaging.bus import InProcessBus
from nlu.engine import Engine
from tests.paths import REPO_ROOT

STORIES_DIR = REPO_ROOT / "tests" / "stories"
HELDOUT_DIR = STORIES_DIR / "heldout"
DEFAULT_NOW = "2026-03-03T10:00:00+01:00"  # a Tuesday, 10:00 in Paris
DATA_DIR = DataDir()  # the shipped data


@dataclass
class Story:
    name: str
    kind: str
    turns: list[dict[str, Any]]
    phone: str | None = None
    channel: str = "terminal"
    now: str = DEFAULT_NOW
    outcome: str | None = None  # held-out contacts: the expected end state
    source: str = ""


@dataclass
class Result:
    story: Story
    failures: list[str] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load_stories(folder: Path = STORIES_DIR) -> list[Story]:
    """Every story of the folder's *.yml files (not of its sub-folders: heldout/ is apart)."""
    stories: list[Story] = []
    for path in sorted(folder.glob("*.yml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for raw in doc.get("stories") or []:
            stories.append(
                Story(
                    name=str(raw["name"]),
                    kind=str(raw.get("kind", path.stem)),
                    turns=list(raw.get("turns") or []),
                    phone=raw.get("phone"),
                    channel=str(raw.get("channel") or "terminal"),
                    now=str(raw.get("now") or DEFAULT_NOW),
                    outcome=raw.get("outcome"),
                    source=path.name,
                )
            )
    return stories


def fold(text: str) -> str:
    """Lower case, no accents: what the patterns are matched against."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def sender(story: Story, index: int) -> str:
    if story.phone:
        return str(story.phone)
    if story.channel in ("sms", "terminal"):
        return f"+3369{index:07d}"[:12]  # an unknown French mobile number
    return f"{story.channel}-story-{index}"


class Harness:
    """A prepared demo database copied for each story, and one NLU engine for all."""

    def __init__(self, engine: Engine, workdir: Path | None = None) -> None:
        self.engine = engine
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="relais-stories-"))
        self.template = self.workdir / "template.sqlite3"
        self._ready = False

    def settings(self, path: Path) -> Settings:
        return Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=f"sqlite+aiosqlite:///{path}",
            redis_url="",
            load_demo=True,
        )

    async def prepare(self) -> None:
        if self._ready:
            return
        rt = Runtime(
            self.settings(self.template), engine=self.engine, bus=InProcessBus(partitions=1)
        )
        await prepare_database(rt)
        await rt.db.dispose()
        self._ready = True

    async def run(self, story: Story, index: int = 0) -> Result:
        await self.prepare()
        path = self.workdir / f"story-{index}.sqlite3"
        shutil.copy(self.template, path)
        clock = MovableClock(datetime.fromisoformat(story.now))
        rt = Runtime(
            self.settings(path), engine=self.engine, bus=InProcessBus(partitions=1), clock=clock
        )
        attach_handoff(rt)
        await rt.start(
            Roles(consume=False, outbox=False, recover=False, retention=False, escalate=False)
        )
        rt.pipeline.clock = clock
        result = Result(story)
        try:
            session = TraceSession(rt, sender(story, index), channel=story.channel, clock=clock)
            await session.start()
            for n, turn in enumerate(story.turns, 1):
                trace = await session.line(line_of(turn))
                result.traces.append(trace)
                for problem in check(turn.get("expect") or {}, trace):
                    result.failures.append(f"turn {n} ({line_of(turn)[:60]!r}): {problem}")
        finally:
            # The engine is shared by every story: not closed with this runtime.
            rt._engine = None
            await rt.stop()
            path.unlink(missing_ok=True)
        return result


def line_of(turn: dict[str, Any]) -> str:
    """A story turn as the stdin line `relais chat --trace` would read."""
    if "tenant" in turn:
        return str(turn["tenant"])
    if "wait" in turn:
        line = f"/wait {turn['wait']}"
        if parse_wait(line) is None:
            raise ValueError(f"bad wait: {turn['wait']!r}")
        return line
    staff = turn.get("staff")
    if staff in ("take", "close"):
        return f"/{staff}"
    if isinstance(staff, dict) and "reply" in staff:
        return f"/reply {staff['reply']}"
    raise ValueError(f"unknown turn: {turn!r}")


def check(expect: dict[str, Any], trace: dict[str, Any]) -> Iterator[str]:
    """What differs between a turn's expectations and its trace."""
    replies = fold("\n".join(trace.get("replies") or []))
    if "intent" in expect and trace.get("intent") != expect["intent"]:
        yield f"intent {trace.get('intent')!r}, expected {expect['intent']!r}"
    if "request" in expect:
        yield from _subset("request", expect["request"], trace.get("request"))
    if "request_details_match" in expect:
        req = trace.get("request") or {}
        blob = fold(yaml.safe_dump([req.get("summary"), req.get("details")], allow_unicode=True))
        for pattern in expect["request_details_match"]:
            if not re.search(pattern, blob):
                yield f"request details do not match {pattern!r}: {blob[:300]!r}"
    if "requests_count" in expect and trace.get("requests_count") != expect["requests_count"]:
        yield f"requests_count {trace.get('requests_count')}, expected {expect['requests_count']}"
    if "handoff" in expect:
        yield from _subset("handoff", expect["handoff"], trace.get("handoff"))
    if "alerts" in expect:
        want = expect["alerts"] or []
        got = trace.get("alerts") or []
        if not want and got:
            yield f"alerts {got}, expected none"
        for alert in want:
            if not any(all(a.get(k) == v for k, v in alert.items()) for a in got):
                yield f"no alert {alert} in {got}"
    for pattern in expect.get("replies_match") or []:
        if not re.search(pattern, replies):
            yield f"replies do not match {pattern!r}: {replies[:400]!r}"
    for pattern in expect.get("replies_not_match") or []:
        if re.search(pattern, replies):
            yield f"replies match {pattern!r}: {replies[:400]!r}"
    if "replies_count" in expect and len(trace.get("replies") or []) != expect["replies_count"]:
        yield f"{len(trace.get('replies') or [])} replies, expected {expect['replies_count']}"


def _subset(name: str, want: Any, got: Any) -> Iterator[str]:
    if want is None:
        if got is not None:
            yield f"{name} {got}, expected none"
        return
    if got is None:
        yield f"no {name}, expected {want}"
        return
    for key, value in want.items():
        if got.get(key) != value:
            yield f"{name}.{key} {got.get(key)!r}, expected {value!r}"
