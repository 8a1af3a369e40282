"""Canned replies of the console, from data/canned_replies.yml (French and English).

A reply may hold placeholders, filled in on the server from the conversation being answered
(never from another): `{tenant_name}`, `{reference}` (the request's), `{next_collection}`
(the next bulky-waste collection day of the tenant's residence). A reply whose placeholder
has no value for this conversation is not offered, so no "{reference}" ever reaches a tenant.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.datadir import DataDir
from bot.dialogue.reading import format_date
from bot.dialogue.schedule import next_collection, region_of
from bot.storage.models import Conversation, Residence, Tenant

PLACEHOLDERS = ("tenant_name", "reference", "next_collection")


@dataclass(frozen=True, slots=True)
class Canned:
    id: str
    label: str  # in the caretaker's language
    text: str  # in the tenant's language, placeholders filled in


@lru_cache(maxsize=4)
def _load(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    replies = doc.get("replies", [])
    if not isinstance(replies, list):
        raise ValueError(f"{path}: 'replies' must be a list")
    return replies


def _fill(text: str, values: dict[str, str]) -> str | None:
    """The text with its placeholders filled; None when one has no value here."""
    names = [name for _, name, _, _ in string.Formatter().parse(text) if name]
    if any(not values.get(name) for name in names):
        return None
    return text.format(**{name: values[name] for name in names}) if names else text


def canned_replies(
    data_dir: DataDir,
    *,
    staff_lang: str,
    tenant_lang: str,
    values: dict[str, str] | None = None,
) -> list[Canned]:
    out = []
    for r in _load(data_dir.file("canned_replies.yml")):
        labels = r.get("label") or {}
        assert isinstance(labels, dict)
        raw = str(r.get(tenant_lang) or r.get("fr") or "")
        text = _fill(raw, values or {})
        if text is None:
            continue
        label = labels.get(staff_lang) or labels.get("fr") or str(r.get("id", ""))
        out.append(Canned(id=str(r.get("id", "")), label=str(label), text=text))
    return out


async def placeholder_values(
    s: AsyncSession, rt: Any, conv: Conversation, tenant: Tenant | None, request: Any, lang: str
) -> dict[str, str]:
    """The placeholders' values for this conversation's tenant, in the tenant's language."""
    tenant_lang = conv.language if conv.language in ("fr", "en") else "fr"
    values: dict[str, str] = {}
    if tenant is not None:
        values["tenant_name"] = tenant.display_name or ""
    if request is not None and getattr(request, "reference", None):
        values["reference"] = str(request.reference)
    residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
    bulky = (residence.bulky_waste or {}) if residence is not None else {}
    if residence is not None and bulky.get("rule"):
        extra = residence.extra or {}
        region = str(extra.get("holiday_region") or region_of(residence.city or ""))
        today = rt.clock().astimezone(ZoneInfo(rt.settings.timezone)).date()
        day = next_collection(bulky["rule"], today, bulky.get("exceptions") or (), region=region)
        if day is not None:
            values["next_collection"] = format_date(day, tenant_lang)
    return values
