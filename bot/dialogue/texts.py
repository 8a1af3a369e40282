"""Tenant-facing texts from data/texts.yml, in the tenant's language (French first)."""

from __future__ import annotations

import string
from functools import lru_cache
from typing import Any

import yaml

from bot.core.datadir import DataDir

LANGUAGES = ("fr", "en")


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


class Texts:
    def __init__(self, entries: dict[str, Any], data_dir: DataDir | None = None) -> None:
        self.entries = entries
        self.data_dir = data_dir  # where the other data files (faq.yml) live

    @classmethod
    def load(cls, data_dir: DataDir) -> Texts:
        return _load(data_dir)

    def get(self, key: str, lang: str = "fr", **params: Any) -> str:
        entry = self.entries.get(key)
        if entry is None:
            raise KeyError(f"Text '{key}' is missing from data/texts.yml.")
        template = entry.get(lang if lang in LANGUAGES else "fr") or entry["fr"]
        # A missing placeholder renders empty rather than failing in front of a tenant.
        return string.Formatter().vformat(str(template), (), _Blank(params)).strip()

    def other(self, key: str, lang: str) -> str:
        """A fixed line in a language the bot does not otherwise write (an acknowledgement),
        followed by its French meaning for the staff reading the transcript."""
        entry = self.entries.get(key) or {}
        line = str(entry.get(lang) or entry.get("en") or "")
        french = str(entry.get("fr") or "")
        return f"{line}\n({french})" if french and lang != "fr" else line

    def label(self, group: str, key: str, lang: str = "fr") -> str:
        entry = self.entries.get(group, {}).get(key)
        if not entry:
            return key
        return str(entry.get(lang) or entry.get("fr") or key)


@lru_cache(maxsize=8)
def _load(data_dir: DataDir) -> Texts:
    with data_dir.file("texts.yml").open(encoding="utf-8") as f:
        return Texts(yaml.safe_load(f), data_dir)
