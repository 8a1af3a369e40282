"""Entity extraction by patterns: place, object, floor, apartment, date and request reference."""

from __future__ import annotations

import re

from nlu.normalize import MAX_CHARS, fold
from nlu.types import Entity

# Patterns read the folded text (lower-case, no accents, same length as the original).
_PLACES: dict[str, str] = {
    "cuisine": r"cuisines?|kitchen",
    "salle_de_bain": r"salles? de bains?|sdb|salle d'eau|douche|baignoire|bathroom|shower",
    "toilettes": r"toilettes?|wc|w\.c\.|toilet|loo",
    "hall": r"hall( d'entree)?|entree de l'immeuble|entree de la residence|lobby|entrance hall",
    "cage_escalier": r"cages? d'escaliers?|escaliers?|stair(s|case|well)s?|palier",
    "ascenseur": r"ascenseurs?|asc|lifts?|elevators?",
    "parking": r"parkings?|sous-sol|garages?|car ?park|parking lot",
    "cave": r"caves?|cellars?|basement",
    "chambre": r"chambres?|bedrooms?",
    "salon": r"salon|sejour|salle a manger|living ?room|lounge",
    "balcon": r"balcons?|terrasse|loggia|balcony",
    "local_poubelles": r"(?:local|locaux) (a |des )?poubelles?|local vide-ordures?|vide-ordures?|"
    r"bin (room|store|area)",
    "couloir": r"couloirs?|corridors?|hallway",
    "cour": r"cour|jardin|espaces? verts?|courtyard|garden",
}

_OBJECTS: dict[str, str] = {
    "chauffage": r"chauffage|chofage|chaufage|heating|heater",
    "radiateur": r"radiateurs?|radiators?",
    "chaudiere": r"chaudieres?|boiler",
    "eau_chaude": r"eau chaude|ballon d'eau chaude|cumulus|hot water",
    "fuite": r"fuites?|fuit|fuite d'eau|leak(s|ing)?|degats? des eaux|infiltrations?",
    "porte": r"portes?( d'entree)?|doors?",
    "serrure": r"serrures?|verrous?|cylindres?|locks?",
    "interphone": r"interphones?|interfone|digicode|visiophone|intercom|buzzer",
    "electricite": r"electricite|courant|disjoncteur|tableau electrique|prises?( electriques?)?|"
    r"electricity|power|fuse ?box|sockets?",
    "volet": r"volets?( roulants?)?|stores?|shutters?|blinds?",
    "fenetre": r"fenetres?|vitres?|carreaux|windows?",
    "moisissure": r"moisissures?|moisi|champignons?|humidite|mould|mold|damp",
    "nuisibles": r"cafards?|blattes?|punaises?( de lit)?|souris|rats?|nuisibles|pigeons?|"
    r"cockroach(es)?|roach(es)?|bed ?bugs?|mice|mouse|pests?|vermin",
    "lumiere": r"lumieres?|eclairage|ampoules?|minuterie|lights?|lighting|bulbs?",
    "ascenseur": r"ascenseurs?|lifts?|elevators?",
    "evier": r"eviers?|lavabos?|sink|basin",
    "toilettes": r"chasse d'eau|cuvette|toilettes?|wc|toilet",
    "robinet": r"robinets?|mitigeur|taps?|faucet",
    "canalisation": r"canalisations?|evacuation|bouche|bouchee?s?|tuyaux?|pipes?|drains?|clogged",
    "vmc": r"vmc|ventilation|aeration|extractor",
    "gaz": r"gaz|gas",
    "plafond": r"plafonds?|ceilings?",
    "boite_aux_lettres": r"boites? aux lettres|mailbox|letterbox",
}

_NUMBER = r"\d{1,3}"
_FLOOR = re.compile(
    rf"\b(?:(?P<n1>{_NUMBER}|1er|premier)\s*(?:e|eme|em|er|ere|°)?\s*etage"
    rf"|etage\s*(?:n°|no|numero)?\s*(?P<n2>{_NUMBER})"
    rf"|(?P<n3>{_NUMBER})(?:st|nd|rd|th)\s+floor|floor\s+(?P<n4>{_NUMBER})"
    r"|(?P<rdc>rdc|rez[- ]de[- ]chaussee|ground floor))\b"
)
_APARTMENT = re.compile(
    r"\b(?:appartement|appart|appt|apt|logement|flat|apartment|porte)\s*(?:n°|no|numero|num|#)?\s*"
    r"(?P<n>\d{1,4}\s?[a-z]?)\b"
)
_COUNT = (
    r"(?:\d{1,3}|un|une|deux|trois|quatre|cinq|six|sept|huit|dix|quinze|plusieurs|quelques|"
    r"a|an|one|two|three|four|five|several|a few)"
)
_UNIT = (
    r"(?:minutes?|heures?|h|jours?|j|semaines?|mois|ans?|annees?|"
    r"hours?|days?|weeks?|months?|years?)"
)
_DAY = (
    r"(?:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|monday|tuesday|wednesday|"
    r"thursday|friday|saturday|sunday)"
)
_DATE = re.compile(
    r"\b(?:"
    rf"(?:depuis|ca fait|cela fait|il y a|pendant|for|since|over)\s+(?:plus de\s+|more than\s+)?"
    rf"{_COUNT}\s+{_UNIT}"
    rf"|{_COUNT}\s+{_UNIT}\s+(?:que|ago|now)"
    rf"|(?:depuis|since)\s+(?:hier soir|avant-hier|hier|ce matin|cette nuit|ce week-end|"
    rf"le week-end|samedi dernier|la semaine derniere|le mois dernier|noel|la rentree|"
    rf"{_DAY}( dernier)?|yesterday|this morning|last night|last week|last month|the weekend)"
    r"|hier soir|avant-hier|hier|ce matin|cette nuit|ce soir|cet apres-midi|aujourd'hui|"
    r"demain|la nuit derniere|la semaine derniere|le mois dernier|"
    rf"{_DAY}(?: (?:dernier|prochain|matin|soir))?|"
    r"yesterday|this morning|last night|tonight|today|tomorrow|last week|next week"
    r")\b"
)
_REFERENCE = re.compile(r"\br\s?-?\s?(?P<year>20\d\d)\s?-?\s?(?P<num>\d{1,6})\b")


def _combined(table: dict[str, str]) -> re.Pattern[str]:
    # One alternation with a named group per value scans the text once instead of once per value.
    # Inner groups must not capture, or `lastgroup` would name them instead of the value.
    parts = [(value, re.sub(r"\((?!\?)", "(?:", pattern)) for value, pattern in table.items()]
    return re.compile("|".join(rf"\b(?P<{value}>{pattern})\b" for value, pattern in parts))


_PLACE_PATTERN = _combined(_PLACES)
_OBJECT_PATTERN = _combined(_OBJECTS)


def _spans(kind: str, pattern: re.Pattern[str], folded: str, text: str) -> list[Entity]:
    return [
        Entity(kind, m.lastgroup or "", text[m.start() : m.end()], m.start(), m.end())
        for m in pattern.finditer(folded)
    ]


def extract_entities(text: str) -> tuple[Entity, ...]:
    """Find entities in the tenant's text; offsets index the original text."""
    text = text[:MAX_CHARS]
    folded = fold(text)
    entities: list[Entity] = []
    # "l'ascenseur" is both where and what; both are reported and the dialogue picks.
    entities += _spans("place", _PLACE_PATTERN, folded, text)
    entities += _spans("object", _OBJECT_PATTERN, folded, text)
    for m in _FLOOR.finditer(folded):
        if m.group("rdc"):
            value = "0"
        else:
            raw = m.group("n1") or m.group("n2") or m.group("n3") or m.group("n4") or ""
            value = "1" if raw in ("1er", "premier") else str(int(raw))
        entities.append(Entity("floor", value, text[m.start() : m.end()], m.start(), m.end()))
    for m in _APARTMENT.finditer(folded):
        value = m.group("n").replace(" ", "").upper()
        entities.append(Entity("apartment", value, text[m.start() : m.end()], m.start(), m.end()))
    for m in _DATE.finditer(folded):
        value = " ".join(m.group(0).split())
        entities.append(Entity("date", value, text[m.start() : m.end()], m.start(), m.end()))
    for m in _REFERENCE.finditer(folded):
        value = f"R-{m.group('year')}-{int(m.group('num')):06d}"
        entities.append(Entity("reference", value, text[m.start() : m.end()], m.start(), m.end()))
    entities.sort(key=lambda e: (e.start, e.end))
    return tuple(entities)
