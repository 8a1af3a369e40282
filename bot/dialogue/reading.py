"""Small readings of a tenant's text the policy needs beyond the NLU: kinds, places, ratings."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Any

from bot.core.phones import DEFAULT_REGION, find_phone


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(c for c in text if not unicodedata.combining(c))


def emergency_kind(text: str) -> str:
    t = fold(text)
    if re.search(r"\bgaz\b|\bgas\b", t):
        return "gas"
    if re.search(r"\bfeu\b|incendie|fumee|\bfire\b|smoke|brule|flamme", t):
        return "fire"
    if re.search(
        r"(bloque|coince|enferme|trapped|stuck).*(ascenseur|asc\b|lift|elevator)", t
    ) or re.search(r"(ascenseur|lift|elevator).*(bloque|coince|enferme|trapped|stuck)", t):
        return "trapped"
    if re.search(r"etincel|spark|court.?circuit|electrocut|prise .*fum|grille", t):
        return "electric"
    if re.search(r"inond|eau .*partout|flood|deborde|plafond .*coule|gicle|water everywhere", t):
        return "water"
    return "generic"


_TENANT_REF = re.compile(r"\bL[-\s]?(\d{4,6})\b", re.IGNORECASE)


def find_identity(text: str, region: str = DEFAULT_REGION) -> str | None:
    """A tenant reference (L-10231) or a phone number (E.164) given by an unknown sender."""
    m = _TENANT_REF.search(text)
    if m:
        return f"L-{m.group(1)}"
    return find_phone(text, region)


_RATING = re.compile(
    r"^\D{0,20}?\b([1-5])\s*(?:/\s*5|sur\s*5|out of 5|etoiles?|stars?)?\b\D{0,20}$"
)


def find_rating(text: str) -> int | None:
    """A 1-5 satisfaction mark: "4", "4/5", "je mets 5", or stars."""
    stars = text.count("⭐") + text.count("★")
    if 1 <= stars <= 5:
        return stars
    m = _RATING.match(fold(text).strip())
    return int(m.group(1)) if m else None


# Places: inside the dwelling, or common areas where one problem concerns every neighbour.
DWELLING_PLACES = frozenset(
    {"cuisine", "salle_de_bain", "toilettes", "chambre", "salon", "balcon", "logement"}
)
COMMON_PLACES = frozenset(
    {"hall", "cage_escalier", "ascenseur", "parking", "cave", "local_poubelles", "couloir", "cour"}
)
# Objects that tell the place on their own.
OBJECT_PLACE = {
    "chauffage": "logement",
    "radiateur": "logement",
    "chaudiere": "logement",
    "eau_chaude": "logement",
    "evier": "logement",
    "robinet": "logement",
    "toilettes": "logement",
    "volet": "logement",
    "fenetre": "logement",
    "moisissure": "logement",
    "vmc": "logement",
    "ascenseur": "ascenseur",
    "boite_aux_lettres": "hall",
    "interphone": "hall",
}
# Faults a vulnerable tenant cannot wait with: a person takes them at once.
ESSENTIAL_OBJECTS = frozenset(
    {"chauffage", "radiateur", "chaudiere", "eau_chaude", "ascenseur", "electricite"}
)
# Common-area faults that one report covers for the whole building.
INCIDENT_OBJECTS = frozenset(
    {
        "ascenseur",
        "lumiere",
        "electricite",
        "porte",
        "interphone",
        "serrure",
        "chauffage",
        "eau_chaude",
    }
)

_DWELLING_WORDS = re.compile(
    r"\b(chez moi|chez nous|mon (logement|appart\w*|domicile)|dans (le |l')?(logement|appart\w*)|"
    r"a la maison|inside|in my (flat|home|apartment)|at home|in the flat|mon studio)\b"
)
_BUILDING_WORDS = re.compile(
    r"\b(immeuble|batiment|residence|entree|parties communes|building|entrance|communal)\b"
)


def place_from_text(text: str) -> str | None:
    t = fold(text)
    if _DWELLING_WORDS.search(t):
        return "logement"
    if _BUILDING_WORDS.search(t):
        return "hall"
    return None


_POSSESSIVE = re.compile(r"\b(mon|ma|mes|my)\b")


def possessive_place(text: str, obj: str | None) -> str | None:
    """ "la porte de mon placard", "my shower": the tenant's own things are in the dwelling."""
    if obj and obj != "ascenseur" and _POSSESSIVE.search(fold(text)):
        return "logement"
    return None


_TIME_CUE = re.compile(
    r"\b(tous les (soirs|jours|matins|week-?ends?)|toute la (nuit|journee)|toutes les nuits|"
    r"la nuit|le soir|le matin|le week-?end|jusqu'a \d{1,2} ?h\w*|apres minuit|vers \d{1,2} ?h\w*|"
    r"\d{1,2} ?h(eures?)?\b|minuit|every (night|evening|day|morning)|at night|all (day|night)|"
    r"weekends?|after midnight|until \d{1,2} ?(am|pm)?)"
)


def time_cue(text: str) -> str | None:
    """When a nuisance happens, in the tenant's words ("tous les soirs jusqu'à 2h")."""
    m = _TIME_CUE.search(fold(text))
    return m.group(0) if m else None


def area_of(place: str | None) -> str | None:
    if place in DWELLING_PLACES:
        return "dwelling"
    if place in COMMON_PLACES:
        return "common"
    return None


def incident_key(place: str | None, obj: str | None) -> str | None:
    """The key under which a common-area problem is shared by the building, if it is one."""
    if obj == "ascenseur" or place == "ascenseur":
        return "ascenseur"
    if area_of(place) != "common" or obj not in INCIDENT_OBJECTS:
        return None
    if obj == "electricite":
        obj = "lumiere"
    return f"{place}:{obj}"


_VAGUE_WORDS_TEXT = """
    j je ai a un une le la les de du des mon ma mes il y est ca c on pas plus ne n me m
    probleme souci soucis panne truc chose quelque marche fonctionne casse cassee reparer
    reparation signaler bonjour svp merci besoin aide urgent depuis encore toujours logement
    chez moi appartement appart une intervention technicien venir passer quelqu peut pouvez
    vous voudrais veux faut j'ai qui que quoi
    i have a the my is broken problem issue repair something not working help please there
    """
_VAGUE_WORDS = frozenset(_VAGUE_WORDS_TEXT.split())


def is_vague(text: str) -> bool:
    """Whether a repair message says nothing of what is broken ("j'ai un problème")."""
    words = re.findall(r"[a-z']+", fold(text))
    content = [w for w in words if w not in _VAGUE_WORDS and len(w) > 2]
    return len(content) < 1


_DUMPED = re.compile(
    r"(abandonn|depose|deposes|depot sauvage|laisse|jete|trainent|traine|dump|left|fly.?tip|"
    r"bloque le passage|encombre)"
)
_ASKING = re.compile(
    r"\?|\bquand\b|\bquel(le)?s?\b|\bcomment\b|\bou\b.*\b(mettre|deposer|jeter)\b|\bwhen\b|\bhow\b|\bwhere\b"
)


def is_dumped_report(text: str) -> bool:
    """Bulky items left in a common area (a report for the caretaker), not a question."""
    t = fold(text)
    return bool(_DUMPED.search(t)) and not _ASKING.search(t)


# Words that point a sentence at one topic, to give each need of a two-need message its part.
_TOPIC_CUES = {
    "bulky_waste": r"encombrant|meuble|canape|matelas|frigo|frigidaire|armoire|sommier|"
    r"bulky|sofa|mattress",
    "nuisance": r"bruit|voisin|musique|tapage|fete|crie|odeur de|noise|neighbou?r|music|party",
    "question": r"loyer|attestation|quittance|apl|caf|agence|charges|preavis|assurance|"
    r"rent|insurance|office",
    "status_request": r"ma demande|ou en est|dossier|reference|\br-20",
    "repair": r"fuite|panne|marche pas|casse|chauffage|eau chaude|ascenseur|porte|lumiere|"
    r"leak|broken|heating",
}
_PARTS = re.compile(
    r"[.?!;\n]+\s*|\s*,?\s*\b(?:et aussi|aussi|egalement|par ailleurs|autre chose|autre question|"
    r"d'autre part|et puis|en plus|sinon|also|another thing|and also|by the way|btw)\b\s*,?\s*"
)


def split_needs(text: str, intents: list[str]) -> dict[str, tuple[str, int]]:
    """For each intent, the part of the text (and its offset) that speaks of it.

    Parts are cut where a second need usually starts; an intent with no matching cue gets
    the whole text.
    """
    folded = fold(text)
    parts: list[tuple[int, int]] = []
    start = 0
    for m in _PARTS.finditer(folded):
        if m.start() > start:
            parts.append((start, m.start()))
        start = m.end()
    if start < len(text):
        parts.append((start, len(text)))
    found: dict[str, tuple[str, int]] = {}
    for intent in intents:
        cue = _TOPIC_CUES.get(intent)
        for a, b in parts:
            if cue and re.search(cue, folded[a:b]):
                found[intent] = (text[a:b].strip(" ,"), a)
                break
        else:
            found[intent] = (text, 0)
    return found


_MONTHS_FR = (
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
)
_DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS_EN = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_DAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def format_date(day: date | Any, lang: str) -> str:
    """ "mardi 10 mars" / "Tuesday 10 March" (no locale: the server's is not the tenant's)."""
    if lang == "en":
        return f"{_DAYS_EN[day.weekday()]} {day.day} {_MONTHS_EN[day.month - 1]}"
    return f"{_DAYS_FR[day.weekday()]} {day.day} {_MONTHS_FR[day.month - 1]}"


def format_moment(moment: datetime, now: datetime, lang: str) -> str:
    """When a person will answer: "demain à 8h00", "lundi 3 mars à 8h30", "today at 13:30"."""
    days = (moment.date() - now.date()).days
    clock = f"{moment.hour}h{moment.minute:02d}" if lang != "en" else f"{moment:%H:%M}"
    if lang == "en":
        day = "today" if days == 0 else "tomorrow" if days == 1 else format_date(moment, "en")
        return f"{day} at {clock}"
    day = "aujourd'hui" if days == 0 else "demain" if days == 1 else format_date(moment, "fr")
    return f"{day} à {clock}"
