"""Canned replies of the console, from data/canned_replies.yml (French and English)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from bot.core.datadir import DataDir


@dataclass(frozen=True, slots=True)
class Canned:
    id: str
    label: str  # in the caretaker's language
    text: str  # in the tenant's language


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


def canned_replies(data_dir: DataDir, *, staff_lang: str, tenant_lang: str) -> list[Canned]:
    out = []
    for r in _load(data_dir.file("canned_replies.yml")):
        labels = r.get("label") or {}
        assert isinstance(labels, dict)
        text = r.get(tenant_lang) or r.get("fr") or ""
        label = labels.get(staff_lang) or labels.get("fr") or str(r.get("id", ""))
        out.append(Canned(id=str(r.get("id", "")), label=str(label), text=str(text)))
    return out
