"""Small readings of a tenant's text the policy needs beyond the NLU: kinds, places, ratings."""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from typing import Any

from bot.core.phones import DEFAULT_REGION, find_phone

# What the readings look at: a tenant's need is in the first lines, and the patterns cost
# time in the length of the text (a 20,000-character message must not stall a worker).
READ_CHARS = 1500


def fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text[:READ_CHARS].lower())
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
    if re.search(
        r"inond|eau .*partout|flood|deborde|plafond|gicle|water everywhere|pleut|fuite|leak", t
    ):
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
    r"(abandonn|depose|deposes|depot sauvage|laisse|jetee?s?\b|trainent|traine|dump|left|fly.?tip|"
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
    "bulky_waste": r"encombrant|monstre|meuble|canape|matelas|frigo|frigidaire|armoire|sommier|"
    r"bulky|sofa|mattress",
    "nuisance": r"bruit|voisin|musique|tapage|fete|crie|odeur de|noise|neighbou?r|music|party",
    "question": r"loyer|attestation|quittance|apl|caf|agence|charges|preavis|assurance|"
    r"rent|insurance|office",
    "status_request": r"ma demande|ou en est|dossier|reference|\br-20",
    "repair": r"fuite|panne|marche pas|casse|bloque|chauffage|eau chaude|ascenseur|porte|lumiere|"
    r"chaudiere|radiateur|evier|ampoule|volet|fenetre|leak|broken|heating|boiler|cutting out",
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


# -- dangers: what the dialogue reads on every turn, beside the NLU's hazard entity ------------

_PERSON = (
    r"\b(enfants?|bebe|petits?|petite|fils|fille|gamins?|mere|maman|pere|papa|"
    r"grand.?(mere|pere)|mamie|papi|voisine? agee|personne agee|vieille dame|vieux monsieur|"
    r"mon mari|ma femme|ma voisine|mon voisin|[6-9]\d ans|1?\d ans|"
    r"child|children|kids?|baby|son|daughter|mum|mom|mother|father|dad|grand\w*|elderly|"
    r"old (lady|man))\b"
)
_LIFT = r"(ascenseur|asc\b|lift|elevator|cabine)"
_STUCK = r"(bloquee?s?|coincee?s?|enfermee?s?|trapped|stuck|locked in)"
_SOMEONE = (
    r"(je suis|j'?suis|jsuis|on est|nous sommes|suis|sommes|i'?m|we'?re|i am|we are|"
    r"quelqu'?un|quelqu un|une personne|des gens|des personnes|someone|somebody|people)"
)
_HAZARD_RULES: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern))
    for name, pattern in (
        (
            "threat",
            r"menac|couteau|\barme\b|pistolet|frapp|agress|tabass|me tuer|nous tuer|violent|"
            r"defonce(r)? (ma|la) porte|threat|knife|\bgun\b|attack|beat me|kill (me|us)",
        ),
        (
            "life_support",
            r"(oxygen|dialys|respirat|concentrateur|apnee|life.?support|machine (medicale|a "
            r"oxygene)).{0,80}(courant|electricit|coupure|panne|power|jus)|"
            r"(courant|electricit|coupure|power).{0,80}(oxygen|dialys|respirat|concentrateur)",
        ),
        ("carbon_monoxide", r"monoxyde|carbon monoxide|detecteur (de )?co\b|\bco detector"),
        (
            "gas",
            r"(odeur|sent|sens|pue|fuite|smell|leak|reniflé)\w*.{0,25}\b(gaz|gas)\b|"
            r"\b(gaz|gas)\b.{0,25}(odeur|sent|fuite|smell|leak|ouvert)",
        ),
        (
            "trapped",
            r"(?!.*"
            + _LIFT
            + r")("
            + _PERSON
            + r".{0,40}"
            + _STUCK
            + r"|"
            + _STUCK
            + r".{0,30}"
            + _PERSON
            + r")",
        ),
        (
            "danger",
            _PERSON + r".{0,120}(tombee?|chute|malaise|inconscient|evanoui|(ne )?repond (plus|pas)|"
            r"respire (plus|mal)|fallen|fell|collapsed|unconscious|not breathing)|"
            r"\b(je suis tombee?|je me suis (fait mal|blesse)|"
            r"(arrive|peux) (pas|plus) a me relever|"
            r"i'?ve fallen|i fell|can'?t get up)|\b(dame|monsieur|voisine?|personne|homme|femme|"
            r"il|elle)\b.{0,30}\b(est|sont) (par terre|au sol|tombee?|inconsciente?|evanouie?)",
        ),
        (
            "trapped_lift",
            _STUCK
            + r" (dans|in) (l'|l |le |la |the )?"
            + _LIFT
            + r"|"
            + _SOMEONE
            + r".{0,25}"
            + _STUCK
            + r".{0,30}"
            + _LIFT
            + r"|"
            + _LIFT
            + r".{0,40}"
            + _SOMEONE
            + r".{0,15}"
            + _STUCK
            + r"|"
            + _PERSON
            + r".{0,40}"
            + _STUCK
            + r".{0,30}"
            + _LIFT,
        ),
        ("fire", r"\bfeu\b|incendie|flamme|\bfire\b|en train de bruler|ca brule|on fire"),
        (
            "smoke",
            r"(fumee|smoke).{0,40}(sort|partout|noire|epaisse|palier|cage|porte|couloir|pouvons|"
            r"coming|everywhere|hall)|(beaucoup|plein) de fumee|odeur de brule|sent le brule",
        ),
        (
            "water_electric",
            r"(eau|fuite|coule|water|leak)\w*.{0,60}(prise|electri|compteur|tableau|disjonct|"
            r"socket|plug|fuse)|(prise|electri|compteur|tableau|socket)\w*.{0,40}"
            r"(mouill|eau|water|wet|coule)",
        ),
        (
            "sparks",
            r"etincel|spark|court.?circuit|electrocut|prise .{0,20}(fume|brule|grille|fond)|"
            r"(fil|cable)s? (denude|a nu)",
        ),
        (
            "flooding",
            r"inond|eau (de )?partout|flood|deborde (partout|dans|sur)|"
            r"plafond.{0,30}(tombe|effondr|cede)|coule (a flot|de partout|partout)|"
            r"water everywhere|gicle|pisse de partout|"
            r"il pleut (dans|chez)|(eau|ca) tombe du plafond|"
            r"ceiling.{0,30}(collaps|pouring)|pouring",
        ),
    )
)
# A child or an elderly person inside: the lift text is not enough.
_VULNERABLE_PERSON = re.compile(_PERSON)
# A danger denied, or told as history.
_NEGATION = re.compile(
    r"(\b(pas|aucune?|jamais|sans|no|not|never|n'?t|rien)\b|(?<!en )\bplus\b)[^.!?,]{0,12}$"
)
_PAST = re.compile(
    r"\b(hier|avant.?hier|la semaine derniere|le mois dernier|l.?an dernier|l.?annee derniere|"
    r"l.?hiver dernier|l.?ete dernier|cet hiver|il y a (\d+|deux|trois|quelques) (jours|semaines|"
    r"mois|ans)|il y avait|c.?etait|a ete|avait ete|on avait eu|yesterday|last (week|month|year|"
    r"winter|summer)|there was|used to|a eu lieu|l.?autre jour|en (janvier|fevrier|mars|avril|"
    r"mai|juin|juillet|aout|septembre|octobre|novembre|decembre)|(19|20)\d\d)\b"
)
# Equipment named after a danger: a detector, an extinguisher, an alarm button, a bill.
_LOOK_ALIKE = re.compile(
    r"detecteur|extincteur|alarme incendie|bouton d.?alarme|alarm button|smoke alarm|"
    r"facture|compteur de gaz|cuisiniere|plaque|exercice|gaz de ville|bouteille de gaz vide|"
    r"porte coupe.?feu|issue de secours|fire door|fire extinguisher|detector"
)
_NOW = re.compile(
    r"\b(encore|toujours|maintenant|en ce moment|depuis|now|still|right now|again|since)\b"
)
_ALL_CLEAR = re.compile(
    r"\b(c'?est bon|c bon|cest bon|c'est fini|c'est regle|c'est repare|plus de danger|"
    r"fausse alerte|tout va bien|tout est rentre dans l'ordre|rien de grave|danger ecarte|"
    r"(grdf|les pompiers|le plombier|l'astreinte|le technicien|le depanneur|ils) "
    r"(est|sont) (passe|repart|venu|intervenu)\w*|on (est|a ete) (sorti|libere|debloque)\w*|"
    r"(il|elle|on|je) (est|a ete|suis|sont) (sorti|libere|debloque)\w*|"
    r"c'etait (une|un|rien|juste)|all clear|false alarm|it'?s (fine|ok|sorted) now|"
    r"we'?re out|(he|she|they) (is|are|got) out|no more (smoke|gas|water)|sorted)"
)
_CALLED = re.compile(
    r"\b(j'?ai|on a|nous avons|mon mari a|ma femme a|le voisin a|i'?ve|i have|we'?ve|we have|i)"
    r" (deja )?(appele|contacte|prevenu|called|phoned|rang)\b|\b(appele|called) (le|les|la|the) "
    r"(18|15|17|112|pompiers|police|samu|grdf|fire|ambulance)"
)
_ARRIVED = re.compile(
    r"\b(ils|elles|il|elle|pompiers|samu|grdf|police|secours|technicien|astreinte|plombier|"
    r"depanneur|ambulance) (sont|est) (deja )?"
    r"(arrive|arrivee|arrives|la|sur place|venus?|en bas)\b|"
    r"\b(arrived|are here|is here|on site|just got here)\b"
)


# Dangers whose words carry a negation of their own ("plus de courant", "ne répond plus").
_NO_NEGATION = frozenset({"life_support", "danger", "trapped", "trapped_lift", "threat"})


def hazard(text: str) -> str | None:
    """A danger happening now, read from the text: one of `nlu.types.HAZARDS`, or None.

    A danger denied ("pas d'odeur de gaz") or told as history ("il y a deux ans le gaz...")
    is not one now; an all-clear is not one either."""
    t = fold(text)
    if _ALL_CLEAR.search(t) and not _NOW.search(t.split("mais")[-1] if "mais" in t else ""):
        return None
    for name, pattern in _HAZARD_RULES:
        m = pattern.search(t)
        if m is None or _not_now(t, m, name):
            continue
        return name
    return None


_CLAUSE_END = re.compile(r"[.;!?\n]|,\s*(mais|maintenant|now|but)\b|\b(mais|maintenant|but now)\b")


def _clause(t: str, start: int, end: int) -> str:
    """The clause of the text around a match (cut at punctuation, "mais", "maintenant")."""
    before = [m.end() for m in _CLAUSE_END.finditer(t, 0, start)]
    after = _CLAUSE_END.search(t, end)
    return t[(before[-1] if before else 0) : (after.start() if after else len(t))]


def _not_now(t: str, m: re.Match[str], name: str) -> bool:
    """A danger denied, told as history, or named after equipment, in its own clause."""
    if name not in _NO_NEGATION and _NEGATION.search(t[max(0, m.start() - 20) : m.start()]):
        return True
    clause = _clause(t, m.start(), m.end())
    if _PAST.search(clause) and not _NOW.search(clause):
        return True
    return name in ("fire", "smoke", "gas", "trapped_lift") and bool(_LOOK_ALIKE.search(clause))


_DANGER_WORDS = re.compile(
    r"gaz|gas\b|feu\b|fire|fumee|smoke|incendie|brul|inond|flood|alarme|alarm|monoxyde|"
    r"etincel|spark|secours"
)


def look_alike(text: str) -> bool:
    """Danger words that name equipment or history ("le détecteur de fumée bipe"), with no
    danger of their own: not an emergency, whatever the classifier thought."""
    t = fold(text)
    if hazard(text) is not None or not _DANGER_WORDS.search(t):
        return False
    return bool(_LOOK_ALIKE.search(t) or (_PAST.search(t) and not _NOW.search(t)))


_RISK_WATER = re.compile(
    r"plafond.{0,30}(coule|goutte|fuit|degouline)|(coule|goutte|fuit|degouline).{0,30}plafond|"
    r"fuite (importante|enorme|grosse)|grosse fuite|ca coule (beaucoup|fort|vite)|"
    r"ceiling.{0,30}(leak|drip)|(leak|drip)\w*.{0,30}ceiling"
)


def risk(text: str) -> str | None:
    """A possible danger, not a certain one (water through a ceiling): worth one safety
    question, not the emergency text."""
    return "flooding" if _RISK_WATER.search(fold(text)) else None


def hazard_from_kind(kind: str) -> str:
    """The safety text of a hazard ("smoke" shares the fire text)."""
    return {
        "gas": "gas",
        "fire": "fire",
        "smoke": "fire",
        "flooding": "water",
        "water_electric": "water_electric",
        "sparks": "electric",
        "carbon_monoxide": "carbon_monoxide",
        "trapped_lift": "trapped",
        "trapped": "trapped_person",
        "threat": "threat",
        "life_support": "life_support",
    }.get(kind, "generic")


def denied_or_past(text: str) -> bool:
    """Danger words present, but denied, told as history, or an all-clear."""
    t = fold(text)
    if is_all_clear(text):
        return True
    for name, pattern in _HAZARD_RULES:
        m = pattern.search(t)
        if m and _not_now(t, m, name):
            return True
    words = re.search(r"(gaz|gas|feu|fire|fumee|smoke|inond|flood|incendie|brule)", t)
    return bool(words and _not_now(t, words, "fire")) or look_alike(text)


def vulnerable_person(text: str) -> bool:
    return bool(_VULNERABLE_PERSON.search(fold(text)))


def is_all_clear(text: str) -> bool:
    return bool(_ALL_CLEAR.search(fold(text)))


_SAFE = re.compile(
    r"\b(dehors|sorti(e|s)?|en securite|a l'abri|chez (un|une|le|la) voisin\w*|on est (en bas|"
    r"dehors)|outside|we'?re out|i'?m out|safe now|in the street)\b"
)


# What an answer to "where are you?" holds: a number, or a word of an address.
_ADDRESS_CUE = re.compile(
    r"\d|\b(rue|avenue|av|bd|boulevard|allee|chemin|impasse|place|quai|route|square|cite|"
    r"residence|res|batiment|bat|bt|etage|porte|appart\w*|apt|escalier|esc|hall|logement|"
    r"lotissement|tour|immeuble|rdc|rez)\b"
)
_ASKING = re.compile(
    r"\?|^(c'?est grave|est.ce|quoi|comment|pourquoi|quand|qui\b|que\b|qu'|je fais quoi|"
    r"on fait quoi|vous venez|ils? (arrive|vien)|combien|ou\b|what|how|when|why|is it)"
)


def asks_instead_of_answering(text: str) -> bool:
    """A reply to "what is your address?" that is a question of its own ("c'est grave ?",
    "vous venez quand ?") and holds nothing of an address."""
    t = fold(text).strip()
    return bool(_ASKING.search(t)) and not _ADDRESS_CUE.search(t)


def follow_up(text: str) -> str | None:
    """An emergency's follow-up: "over" (the danger is gone), "arrived", "called", "safe"
    (the tenant is out of the way), or None."""
    t = fold(text)
    if _ALL_CLEAR.search(t):
        return "over"
    if _SAFE.search(t) and not _ARRIVED.search(t) and not _CALLED.search(t):
        return "safe"
    if _ARRIVED.search(t):
        return "arrived"
    if _CALLED.search(t):
        return "called"
    return None


# -- the tenant's mood and what a message after a request is about ------------------------------

_ANGER = re.compile(
    r"inadmissible|inacceptable|scandal|honte|marre|ras le bol|ras-le-bol|n'importe quoi|"
    r"vous (ne )?faites rien|personne (ne )?(bouge|fait rien|repond)|foutez|foutre|bordel|"
    r"merde|putain|degueulasse|incompetent|nul(s)?\b|j'en peux plus|j'en ai assez|"
    r"je vais porter plainte|avocat|!!!|unacceptable|disgrace|fed up|ridiculous|useless|"
    r"nobody (does|cares)|you do nothing|incapables?|bande d|escroc|voleurs|honteux|venez voir|"
    r"se fout|se moque|fichez|pas serieux|c'est abuse|abuse|enerve|en colere|furieu|"
    r"ca suffit|j'en ai marre|jen ai marre|angry|furious|disgusting|joke"
)
_FEAR = re.compile(
    r"\bpeur\b|j'ai peur|effray|angoiss|inquiet|panique|terrifi|je tremble|scared|afraid|"
    r"frightened|worried|terrified"
)
_WORSE = re.compile(
    r"empire|s'aggrave|de pire en pire|plus fort|encore plus|ca s'etend|maintenant ca|"
    r"getting worse|worse"
)
_STILL = re.compile(
    r"toujours (pas|en panne|rien|le meme|bloquee?|pareil|cassee?|ouverte?|fermee?|hs|froid|"
    r"rien|sans|la meme|autant)|toujours pas|tjrs pas|tjs pas|on m.?avait (dit|promis)|"
    r"devait (passer|venir)|vous deviez|personne (n'?est|est) (jamais )?(venu|passe)|"
    r"j'?attends (toujours|encore|depuis)|sans nouvelles?|aucune nouvelle|"
    r"(n'est |est )?pas (encore )?(repare|regle|venu|passe)|personne (n'est|est) (venu|passe)|"
    r"still (not|broken|no|nothing|waiting)|nobody came|not (yet )?fixed"
)
_REPEAT = re.compile(
    r"(\d+|deuxieme|troisieme|quatrieme|cinquieme|2e|3e|4e|5e|2eme|3eme|4eme|5eme|"
    r"plusieurs|combien de) ?(fois|eme fois)|deja signale|deja dit|je (vous )?l'ai deja|"
    r"encore une fois|je redis|je relance|relance|again and again|(second|third|fourth) time|"
    r"already (reported|told)"
)
_THANKS_PAST = re.compile(
    r"^\W*(merci|thanks|thank you|super merci|un grand merci)\b.{0,80}"
    r"(pour|for|d'avoir|c'est (repare|regle|bon)|(est|a ete) (repare|regle|passe|venu))"
)
_ANSWER_YES = re.compile(r"^\W*(oui|ouais|ouai|yes|yep|si|exact|c'est ca|voila|tout a fait)\b")
_ANSWER_NO = re.compile(r"^\W*(non|nan|no|nope|pas du tout|absolument pas)\b")


def is_angry(text: str) -> bool:
    """Anger: its words, "!!!", or a message shouted in capitals."""
    letters = [c for c in text if c.isalpha()]
    shouted = len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6
    return bool(_ANGER.search(fold(text))) or text.count("!") >= 3 or shouted


def is_afraid(text: str) -> bool:
    return bool(_FEAR.search(fold(text)))


def is_worse(text: str) -> bool:
    return bool(_WORSE.search(fold(text)))


def is_still_broken(text: str) -> bool:
    return bool(_STILL.search(fold(text)))


def says_repeat(text: str) -> bool:
    return bool(_REPEAT.search(fold(text)))


def thanks_for_past(text: str) -> bool:
    """ "merci pour la réparation de la fuite": thanks, not a new repair."""
    return bool(_THANKS_PAST.search(fold(text)))


def yes_no(text: str) -> bool | None:
    t = fold(text)
    if _ANSWER_NO.search(t):
        return False
    if _ANSWER_YES.search(t):
        return True
    return None


_TIME_EXPR = re.compile(
    r"\b(depuis|hier|avant.?hier|ce matin|cette nuit|ce soir|aujourd'?hui|tout a l'heure|"
    r"toussaint|paques|rentree|ete|hiver|automne|printemps|commence|ca fait|un moment|"
    r"un bail|des lustres|plusieurs|quelques|matin|soir|nuit|semaine|"
    r"la semaine|le mois|l'an|ans?|jours?|semaines?|mois|heures?|minutes?|lundi|mardi|"
    r"mercredi|jeudi|vendredi|samedi|dimanche|week.?end|longtemps|recemment|toujours|"
    r"\d+ ?(j|h|jrs?|sem)\b|\d{1,2}/\d{1,2}|since|yesterday|today|this morning|last night|"
    r"days?|weeks?|months?|hours?|ago|monday|tuesday|wednesday|thursday|friday|saturday|"
    r"sunday|janvier|fevrier|mars|avril|mai|juin|juillet|aout|septembre|octobre|novembre|"
    r"decembre|noel|vacances)\b"
)


_DONT_KNOW = re.compile(
    r"\b(je (ne )?sais (pas|plus)|j.?sais pas|jsp|jsais pas|aucune idee|sais plus|"
    r"je me souviens (pas|plus)|pas sur|i don'?t know|no idea|not sure|dunno|can'?t remember)\b"
)
_NO_PHOTO = re.compile(
    r"(pas (de |d |d')?(photo|appareil|telephone)|ya pas d|peux pas|pas possible|impossible|"
    r"pas de tel|tel (est )?casse|no (photo|camera|picture)|can'?t|cannot|don'?t have|"
    r"pas moyen|je n'?ai pas de photo)"
)


_WANTS_PERSON = re.compile(
    r"parler (a|avec) (quelqu.?un|une personne|un conseiller|une conseillere|un humain|"
    r"un responsable|le responsable|votre responsable|le gardien|la gardienne|un agent)|"
    r"un (vrai )?humain|une vraie personne|(talk|speak) to (someone|somebody|a person|a human|"
    r"a manager|an agent)|real person"
)
_SINCE = re.compile(
    r"\b(depuis|since)\b(\s+\S+){1,4}|\b(ca fait|cela fait|for( the (last|past))?)\s+"
    r"(\d+|un|une|deux|trois|quatre|quelques|plusieurs|a|two|three|few|several)\s+"
    r"(jours?|semaines?|mois|ans?|heures?|minutes?|days?|weeks?|months?|years?|hours?)"
)


_STATUS = re.compile(
    r"\b(ou|o) en est|des nouvelles de (ma|mon|la)|quand (est-ce que )?(vous )?(passez|venez|"
    r"quelqu.?un (passe|vient))|any news|what'?s happening with|status of"
)
_ANOTHER = re.compile(
    r"\b(autre chose|autre probleme|un autre (souci|probleme)|autre souci|par ailleurs|"
    r"sinon|another (thing|problem|issue)|something else|also)\b"
)


_FAULT = re.compile(
    r"\b(bloquee?s?|coincee?s?|en panne|panne|ne marche (plus|pas)|marche (plus|pas)|fuit|"
    r"fuite|cassee?s?|ne ferme (plus|pas)|ne s.?ouvre (plus|pas)|hs|ne fonctionne (plus|pas)|"
    r"keeps cutting out|cuts out|broken|stuck|leak\w*|not working|doesn.?t work)\b"
)


def fault_words(text: str) -> bool:
    """Words of a fault ("bloqué", "en panne", "fuit"): a repair is being reported."""
    return bool(_FAULT.search(fold(text)))


def asks_status(text: str) -> bool:
    return bool(_STATUS.search(fold(text)))


def after_status(text: str) -> str:
    """What follows a status question in the same message ("…? et aussi le digicode …")."""
    m = re.search(r"\?|\b(et aussi|aussi|par ailleurs|autre chose|sinon|also)\b", text, re.I)
    return text[m.end() :].strip(" ,.;") if m else ""


def another_thing(text: str) -> bool:
    return bool(_ANOTHER.search(fold(text)))


def wants_person(text: str) -> bool:
    return bool(_WANTS_PERSON.search(fold(text)))


def since_phrase(text: str) -> str | None:
    """ "depuis des mois", "ça fait trois jours": since when, in the tenant's words."""
    m = _SINCE.search(fold(text))
    return m.group(0)[:60] if m else None


def dont_know(text: str) -> bool:
    return bool(_DONT_KNOW.search(fold(text)))


def no_photo(text: str) -> bool:
    return bool(_NO_PHOTO.search(fold(text)))


_WHERE_CUE = re.compile(
    r"\b(du|au|le|appartement|appart|logement|porte|apt|flat|no) ?(\d{2,4}[a-z]?)\b|"
    r"\b(\d{1,2}) ?(e|eme|er|ieme)? ?etage\b|\b(au[- ]dessus|en dessous|au[- ]dessous|"
    r"d'?en face|du dessus|du dessous|a cote|next door|upstairs|downstairs|above|below)\b"
)


def where_cue(text: str) -> str | None:
    """Where a nuisance comes from, in the tenant's words ("du 301", "au-dessus")."""
    m = _WHERE_CUE.search(fold(text))
    return m.group(0) if m else None


_BULKY_WORDS = re.compile(
    r"\b(encombrants?|monstres?|sommier|matelas|canape|armoire|frigo|frigidaire|gros meubles?|"
    r"vieux meubles?|bulky|mattress|sofa)\b"
)


def bulky_words(text: str) -> bool:
    return bool(_BULKY_WORDS.search(fold(text)))


_DAYS_FOLDED = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_DAYS_EN_LOW = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def day_asked(text: str, today: date) -> date | None:
    """The day a question is about: "demain", "lundi", "tomorrow"... (the next one)."""
    t = fold(text)
    if re.search(r"\b(apres.?demain)\b", t):
        return today + timedelta(days=2)
    if re.search(r"\b(demain|tomorrow)\b", t):
        return today + timedelta(days=1)
    if re.search(r"\b(aujourd.?hui|today|ce matin|cet apres.?midi|this morning)\b", t):
        return today
    for names in (_DAYS_FOLDED, _DAYS_EN_LOW):
        for i, name in enumerate(names):
            if re.search(rf"\b{name}\b", t):
                return today + timedelta(days=(i - today.weekday()) % 7)
    return None


def time_expression(text: str) -> str | None:
    m = _TIME_EXPR.search(fold(text))
    return text.strip()[:100] if m else None


_NUMBER_WORDS_FR = ("", "", "deuxième", "troisième", "quatrième", "cinquième", "sixième")
_NUMBER_WORDS_EN = ("", "", "second", "third", "fourth", "fifth", "sixth")


def ordinal(n: int, lang: str) -> str:
    words = _NUMBER_WORDS_EN if lang == "en" else _NUMBER_WORDS_FR
    if n < len(words):
        return words[n]
    return f"{n}th" if lang == "en" else f"{n}e"


def mentioned(text: str, names: list[str], *, any_word: bool = False) -> int | None:
    """The index of the first name (a residence, an agency) the text mentions, if any: all
    its distinctive words, or with `any_word` one of them (agencies by their town)."""
    t = fold(text)
    for i, name in enumerate(names):
        core = re.sub(r"\b(residence|la|le|les|du|de|des|tour|agence|centre)\b", " ", fold(name))
        words = [w for w in re.findall(r"[a-z0-9]+", core) if len(w) > 2]
        found = [bool(re.search(rf"\b{re.escape(w)}\b", t)) for w in words]
        if words and (any(found) if any_word else all(found)):
            return i
    return None


_ASKS_WHEN = re.compile(
    r"\bquand\b|\bc.?est quand\b|\bdate\b|\bjour\b|\bpassage\b|ramass|\bwhen\b|\?"
)


def asks_when(text: str) -> bool:
    return bool(_ASKS_WHEN.search(fold(text)))


_VULNERABLE_SITUATION = re.compile(
    r"fauteuil|handicap|enceinte|oxygen|dialys|malade|bebe|nourrisson|personne agee|"
    r"\b[89]\d ans\b|je ne peux (plus|pas) (sortir|descendre|monter)|wheelchair|disabled|"
    r"pregnant|newborn"
)


def vulnerable_situation(text: str) -> bool:
    return bool(_VULNERABLE_SITUATION.search(fold(text)))


_CODE = re.compile(r"^\D*(\d{6})\D*$")


def find_code(text: str) -> str | None:
    """A six-digit one-time code typed back by the sender."""
    m = _CODE.match(text.strip())
    return m.group(1) if m else None


_ROOMS = re.compile(
    r"\b(cuisine|salle de bain|sdb|salle d'eau|toilettes?|wc|chambre|salon|sejour|balcon|"
    r"entree|couloir|cave|parking|garage|hall|escalier|palier|ascenseur|local|cour|grenier|"
    r"buanderie|dressing|placard|douche|baignoire|kitchen|bathroom|toilet|bedroom|living|"
    r"hallway|stairs|cellar|car park|lift|landing|etage|rdc|rez)\b"
)


def room_word(text: str) -> str | None:
    m = _ROOMS.search(fold(text))
    return m.group(0) if m else None
