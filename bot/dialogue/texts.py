"""Tenant-facing texts from data/texts.yml, in the tenant's language (French first)."""

from __future__ import annotations

import re
import string
import unicodedata
from datetime import datetime
from functools import lru_cache
from typing import Any

import yaml

from bot.core.datadir import DataDir

LANGUAGES = ("fr", "en")

# Names inserted into tenant texts that take an article in French ("à la Résidence Les
# Fleurs", "au Parc", "de l'agence Lille Centre"): a text writes `{at_residence}`,
# `{of_agency}` or `{the_agency}` where it would write `à {residence}`.
PLACES = ("residence", "agency", "landlord", "caretaker")
# Common nouns a place's name may begin with, and their gender.
_FEMININE = frozenset(
    [
        "résidence",
        "tour",
        "cité",
        "maison",
        "villa",
        "cour",
        "place",
        "agence",
        "halte",
        "ferme",
        "chaumière",
        "école",
        "caserne",
    ]
)
_MASCULINE = frozenset(
    [
        "foyer",
        "domaine",
        "clos",
        "hameau",
        "square",
        "parc",
        "pavillon",
        "village",
        "quartier",
        "immeuble",
        "ensemble",
        "bâtiment",
        "carré",
        "jardin",
        "mail",
        "moulin",
        "château",
        "verger",
        "bois",
    ]
)
# Nouns written lower case after their article ("l'agence Lille Centre"): part of a sentence,
# not of the name. A residence's "Résidence" or "Tour" is kept as written.
_LOWERED = frozenset({"agence"})
# Words already bearing their determiner: nothing to add ("votre agence").
_DETERMINED = frozenset(
    [
        "votre",
        "vos",
        "notre",
        "nos",
        "mon",
        "ma",
        "mes",
        "ton",
        "ta",
        "tes",
        "son",
        "sa",
        "ses",
        "leur",
        "leurs",
        "ce",
        "cet",
        "cette",
        "ces",
        "un",
        "une",
    ]
)
# Words beginning with an h that is not elided ("au Hameau", "de Hautmont").
_H_ASPIRE = re.compile(r"^(ha(ut|mea|ll|ngar|ie|lle|rdi)|hé(ron|risson)|hon(te|grie)|hu(tte|ch))")


def _elides(word: str) -> bool:
    """Whether le/la/de before `word` lose their vowel: a vowel or an h that is not aspirated."""
    plain = unicodedata.normalize("NFD", word.lower())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    if not plain:
        return False
    if plain[0] in "aeiouy":
        return True
    return plain[0] == "h" and not _H_ASPIRE.match(plain)


def place(name: str, prep: str = "") -> str:
    """`name` with the French article it takes, after `prep` ("", "à" or "de"):
    place("Résidence Les Fleurs", "à") == "à la Résidence Les Fleurs",
    place("Agence Lille Centre", "à") == "à l'agence Lille Centre",
    place("Foyer Saint-Jean", "à") == "au Foyer Saint-Jean", place("Le Parc", "de") == "du Parc",
    place("Habitat Nord Solidaire", "de") == "d'Habitat Nord Solidaire"."""
    name = " ".join(str(name or "").split())
    if not name:
        return ""
    first, _, rest = name.partition(" ")
    low = first.lower()
    if low in _DETERMINED:  # already determined: "votre agence"
        return f"{prep} {name}".strip()
    if low.startswith(("l'", "l’")):  # "L'Oasis"
        article, noun = "l'", name[2:]
    elif low in ("le", "la", "les") and rest:  # "Le Parc"
        article, noun = low + " ", rest
    elif low in _FEMININE or low in _MASCULINE:  # "Résidence Les Fleurs", "Foyer Saint-Jean"
        word = first.lower() if low in _LOWERED else first
        article = "l'" if _elides(first) else "la " if low in _FEMININE else "le "
        noun = f"{word} {rest}".strip()
    else:  # a proper name ("Habitat Nord Solidaire", "Lille"): no article
        article, noun = "", name
    contracted = {"à": {"le ": "au ", "les ": "aux "}, "de": {"le ": "du ", "les ": "des "}}
    joined = contracted.get(prep, {}).get(article)
    if joined is None:
        if prep == "de" and article == "" and _elides(noun):
            joined = "d'"
        else:
            joined = f"{prep} {article}" if prep else article
    return f"{joined}{noun}"


def with_places(params: dict[str, Any], lang: str = "fr") -> dict[str, Any]:
    """`params` and, for each place name in it, `at_<x>`, `of_<x>` and `the_<x>` (in English
    "at X", "of X" and X: the English texts write their own)."""
    out = dict(params)
    for key in PLACES:
        value = params.get(key)
        if not isinstance(value, str) or not value.strip():
            continue
        if lang == "fr":
            out.setdefault(f"at_{key}", place(value, "à"))
            out.setdefault(f"of_{key}", place(value, "de"))
            out.setdefault(f"the_{key}", place(value))
        else:
            out.setdefault(f"at_{key}", f"at {value}")
            out.setdefault(f"of_{key}", f"of {value}")
            out.setdefault(f"the_{key}", value)
    return out


def hello(now: datetime | None, lang: str = "fr") -> str:
    """The greeting for the hour (`now` in the landlord's local time): "Bonsoir" from 18:00
    until 05:00, "Bonjour" by day; English says "Hello" at any hour."""
    if lang != "fr":
        return "Hello"
    return "Bonsoir" if now is not None and (now.hour >= 18 or now.hour < 5) else "Bonjour"


def good_day(now: datetime | None, lang: str = "fr") -> str:
    """The leave-taking for the hour: "Bonne soirée" from 18:00, "Bonne journée" by day."""
    if lang != "fr":
        return "Have a good day"
    evening = now is not None and (now.hour >= 18 or now.hour < 5)
    return "Bonne soirée" if evening else "Bonne journée"


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
        lang = lang if lang in LANGUAGES else "fr"
        filled = _Blank(with_places(params, lang))
        filled.setdefault("hello", hello(None, lang))
        filled.setdefault("good_day", good_day(None, lang))
        return string.Formatter().vformat(str(template), (), filled).strip()

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
