"""Console texts in French (the default) and English, the language chosen by a cookie.

Every text of the console, the managers' pages and the staff alerts is in one catalogue,
handoff/messages.yml, both languages side by side for a translator. Templates call
`t("key")` (or `t("key", n=3)` for a placeholder); code calls `translate(lang, key, ...)`.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import yaml
from fastapi import Request

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
LANG_COOKIE = "relais_lang"

CATALOGUE = "messages.yml"  # in this package: key -> {fr: ..., en: ...}, str.format placeholders


def _load() -> dict[str, dict[str, str]]:
    text = resources.files("handoff").joinpath(CATALOGUE).read_text(encoding="utf-8")
    messages = yaml.safe_load(text)
    if not isinstance(messages, dict) or not all(
        isinstance(v, dict) and DEFAULT in v for v in messages.values()
    ):
        raise ValueError(f"handoff/{CATALOGUE}: every entry needs at least a '{DEFAULT}' text")
    return messages


MESSAGES: dict[str, dict[str, str]] = _load()


def register(messages: dict[str, dict[str, str]]) -> None:
    """Add texts (for pages defined in other modules); a key defined twice is a mistake."""
    for key, texts in messages.items():
        if key in MESSAGES and MESSAGES[key] != texts:
            raise ValueError(f"console text '{key}' is already defined differently")
        MESSAGES[key] = texts


def translate(lang: str, key: str, **values: Any) -> str:
    texts = MESSAGES.get(key)
    if texts is None:
        return key  # visible in the page, so a missing text is noticed rather than hidden
    text = texts.get(lang) or texts.get(DEFAULT) or key
    return text.format(**values) if values else text


def request_language(request: Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, DEFAULT)
    return lang if lang in LANGUAGES else DEFAULT


def other_language(lang: str) -> str:
    return "en" if lang == "fr" else "fr"
