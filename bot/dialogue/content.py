"""Live tenant-facing content: the YAML seed of the data folder under managers' console edits.

Texts (texts.yml) and FAQ answers (faq.yml) are shipped as a seed; what a manager changes in
the console is stored in `content_overrides` and wins. Each process keeps the merged content
in memory and reloads it when told the content changed: by the console in the same process
(`invalidate`), by a `content_changed` live event from another process (the bus's pub/sub),
and at most `RECHECK_SECONDS` late if such an event was missed (a stamp of the overrides is
compared then, the content rebuilt only when it differs). Residence facts (hours, bulky
waste, lift company, agency) live in the `residences` rows, read on every turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.datadir import DataDir
from bot.dialogue.faq import Faq, FaqEntry, load_faq, read_entries
from bot.dialogue.texts import Texts
from bot.storage.models import ContentOverride, Residence

log = logging.getLogger(__name__)

CONTENT_CHANGED = "content_changed"
RECHECK_SECONDS = 30.0


def _seed_texts(data_dir: DataDir) -> dict[str, Any]:
    return dict(Texts.load(data_dir).entries)


@dataclass(frozen=True, slots=True)
class Stamp:
    count: int
    latest: datetime | None


class Content:
    def __init__(self, data_dir: DataDir) -> None:
        self.data_dir = data_dir  # RELAIS_DATA_DIR's files first, then the shipped ones
        self.seed_texts = _seed_texts(data_dir)
        self.seed_faq = read_entries(data_dir.file("faq.yml"))
        self.texts = Texts(dict(self.seed_texts), data_dir)
        self.faq: Faq | None = None  # built at the first refresh (or on first use)
        self.text_overrides: dict[str, dict[str, str]] = {}
        self.faq_overrides: dict[str, dict[str, Any]] = {}
        self._stamp: Stamp | None = None
        self._dirty = True
        self._checked = 0.0

    @property
    def stale(self) -> bool:
        return self._dirty or time.monotonic() - self._checked > RECHECK_SECONDS

    def invalidate(self) -> None:
        self._dirty = True

    def current_faq(self) -> Faq:
        if self.faq is None:
            self.faq = load_faq(self.data_dir)
        return self.faq

    async def refresh(self, s: AsyncSession) -> bool:
        """Reload when stale; True when the content changed."""
        if not self.stale:
            return False
        self._checked = time.monotonic()
        self._dirty = False
        count, latest = (
            await s.execute(
                select(func.count(ContentOverride.id), func.max(ContentOverride.updated_at))
            )
        ).one()
        stamp = Stamp(int(count), latest)
        if stamp == self._stamp and self.faq is not None:
            return False
        rows = (await s.execute(select(ContentOverride))).scalars().all()
        self.apply({(r.kind, r.key): r.value for r in rows})
        self._stamp = stamp
        return True

    def apply(self, overrides: dict[tuple[str, str], dict[str, Any] | None]) -> None:
        self.text_overrides = {
            k: {lang: str(v) for lang, v in value.items()}
            for (kind, k), value in overrides.items()
            if kind == "text" and value
        }
        self.faq_overrides = {
            k: value for (kind, k), value in overrides.items() if kind == "faq" and value
        }
        self.texts = Texts(merged_texts(self.seed_texts, self.text_overrides), self.data_dir)
        if self.faq_overrides:
            self.faq = Faq(merged_faq(self.seed_faq, self.faq_overrides))
        else:
            self.faq = load_faq(self.data_dir)

    async def watch(self, events: asyncio.Queue[dict[str, Any]], stop: asyncio.Event) -> None:
        """Mark the content stale on every `content_changed` event (from any process)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                event = await asyncio.wait_for(events.get(), timeout=1.0)
                if event.get("type") == CONTENT_CHANGED:
                    self.invalidate()


def merged_texts(seed: dict[str, Any], overrides: dict[str, dict[str, str]]) -> dict[str, Any]:
    out = dict(seed)
    for key, value in overrides.items():
        if key in out and isinstance(out[key], dict):
            out[key] = {**out[key], **value}
    return out


def merged_faq(seed: list[FaqEntry], overrides: dict[str, dict[str, Any]]) -> list[FaqEntry]:
    out = []
    for e in seed:
        o = overrides.get(e.id)
        if o is None:
            out.append(e)
            continue
        answer = {**e.answer, **{k: str(v) for k, v in (o.get("answer") or {}).items() if v}}
        examples = tuple(str(x) for x in o.get("examples") or e.examples)
        out.append(FaqEntry(e.id, examples, answer, e.offer_human))
    return out


async def save_override(
    s: AsyncSession, kind: str, key: str, value: dict[str, Any] | None, actor: str
) -> None:
    row = (
        await s.execute(
            select(ContentOverride).where(ContentOverride.kind == kind, ContentOverride.key == key)
        )
    ).scalar_one_or_none()
    if row is None:
        row = ContentOverride(kind=kind, key=key)
        s.add(row)
    row.value = value
    row.updated_at = datetime.now(UTC)
    row.updated_by = actor


# -- export: the data folder's YAML, as the database has it now -------------------------------


def _dump(doc: Any) -> str:
    return yaml.safe_dump(
        doc, allow_unicode=True, sort_keys=False, width=100, default_flow_style=None
    )


def export_texts(content: Content) -> str:
    return _dump(content.texts.entries)


def export_faq(content: Content) -> str:
    entries = []
    for e in content.current_faq().entries:
        item: dict[str, Any] = {"id": e.id, "examples": list(e.examples), "answer": dict(e.answer)}
        if e.offer_human:
            item["offer_human"] = True
        entries.append(item)
    return _dump({"faq": entries})


async def export_residences(s: AsyncSession) -> str:
    rows = (await s.execute(select(Residence).order_by(Residence.id))).scalars().all()
    landlord: dict[str, Any] = {}
    agencies: dict[str, dict[str, Any]] = {}
    residences = []
    for r in rows:
        extra = r.extra or {}
        landlord = landlord or dict(extra.get("landlord") or {})
        agency_key = str(extra.get("agency") or r.agency.get("name") or "")
        if agency_key and r.agency:
            agencies.setdefault(agency_key, dict(r.agency))
        item: dict[str, Any] = {
            "code": r.code,
            "name": r.name,
            "address": r.address,
            "city": r.city,
            "buildings": list(r.buildings or []),
            "agency": agency_key,
            "caretaker": extra.get("caretaker"),
            "caretaker_hours": r.caretaker_hours or {},
            "bulky_waste": r.bulky_waste or {},
            "lift_company": r.lift_company or {},
        }
        residences.append(item)
    return _dump({"landlord": landlord, "agencies": agencies, "residences": residences})
