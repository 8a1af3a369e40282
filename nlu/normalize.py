"""Text normalisation shared by training and parsing: case, accents, elisions, SMS spellings."""

from __future__ import annotations

import re
import unicodedata

# Longest texts we look at: a tenant's story rarely needs more, and it bounds the work per message.
MAX_CHARS = 1000

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'"})

# One token in, one or more tokens out. Keys are already lower-case and accent-folded.
SMS: dict[str, str] = {
    "ya": "il y a",
    "yen": "il y en",
    "yena": "il y en a",
    "ds": "dans",
    "dan": "dans",
    "sdb": "salle de bain",
    "sdbain": "salle de bain",
    "wc": "toilettes",
    "chofage": "chauffage",
    "chaufage": "chauffage",
    "chauffge": "chauffage",
    "chaufferie": "chaufferie",
    "kan": "quand",
    "qd": "quand",
    "qand": "quand",
    "pa": "pas",
    "pu": "plus",
    "depui": "depuis",
    "dpuis": "depuis",
    "tt": "tout",
    "tte": "toute",
    "tts": "tous",
    "ts": "tous",
    "pr": "pour",
    "vs": "vous",
    "ns": "nous",
    "mtn": "maintenant",
    "dsl": "desole",
    "bat": "batiment",
    "bt": "batiment",
    "chofe": "chauffe",
    "matela": "matelas",
    "frigidaire": "frigo",
    "refrigerateur": "frigo",
    "jsp": "je sais pas",
    "pk": "pourquoi",
    "pq": "pourquoi",
    "pourkoi": "pourquoi",
    "koi": "quoi",
    "ki": "qui",
    "ke": "que",
    "k": "que",
    "kel": "quel",
    "kelle": "quelle",
    "encombrant": "encombrants",
    "encombrent": "encombrants",
    "encombrents": "encombrants",
    "ancombrant": "encombrants",
    "ancombrants": "encombrants",
    "encombrans": "encombrants",
    "slt": "salut",
    "bjr": "bonjour",
    "bsr": "bonsoir",
    "cc": "coucou",
    "mrc": "merci",
    "mci": "merci",
    "mr6": "merci",
    "merki": "merci",
    "stp": "s il te plait",
    "svp": "s il vous plait",
    "svpl": "s il vous plait",
    "jsuis": "je suis",
    "chui": "je suis",
    "chuis": "je suis",
    "jai": "je ai",
    "g": "je ai",
    "c": "c est",
    "cest": "c est",
    "ces": "c est",
    "tjs": "toujours",
    "tjrs": "toujours",
    "toujour": "toujours",
    "bcp": "beaucoup",
    "rdv": "rendez vous",
    "apl": "apl",
    "appart": "appartement",
    "apart": "appartement",
    "appt": "appartement",
    "apt": "appartement",
    "logt": "logement",
    "asc": "ascenseur",
    "ascensseur": "ascenseur",
    "assenceur": "ascenseur",
    "acenseur": "ascenseur",
    "asenseur": "ascenseur",
    "ascenceur": "ascenseur",
    "radiateurs": "radiateurs",
    "radiateur": "radiateur",
    "radiatteur": "radiateur",
    "fuitte": "fuite",
    "fuit": "fuit",
    "voisins": "voisins",
    "voisin": "voisin",
    "voizin": "voisin",
    "bruit": "bruit",
    "brui": "bruit",
    "loye": "loyer",
    "loyé": "loyer",
    "loyee": "loyer",
    "cafard": "cafards",
    "cafar": "cafards",
    "cafards": "cafards",
    "punaise": "punaises",
    "moisi": "moisissure",
    "moisissures": "moisissure",
    "interfone": "interphone",
    "interphonne": "interphone",
    "eletricite": "electricite",
    "electricte": "electricite",
    "electriciter": "electricite",
    "lumiere": "lumiere",
    "plz": "please",
    "pls": "please",
    "u": "you",
    "ur": "your",
    "r": "are",
    "thx": "thanks",
    "ty": "thank you",
    "asap": "as soon as possible",
    "dont": "do not",
    "doesnt": "does not",
    "isnt": "is not",
    "cant": "can not",
    "wont": "will not",
    "im": "i am",
    "ive": "i have",
    "theres": "there is",
    "whats": "what is",
    "bloke": "bloque",
    "blokee": "bloquee",
    "coinse": "coince",
    "lift": "lift",
    "elevator": "lift",
    "flat": "flat",
}

_ELISION = re.compile(r"\b(qu|[cdjlmnst])'(?=\w)")
_ELIDED = {
    "qu": "que ",
    "c": "ce ",
    "d": "de ",
    "j": "je ",
    "l": "le ",
    "m": "me ",
    "n": "ne ",
    "s": "se ",
    "t": "te ",
}
_ENGLISH_CONTRACTIONS = re.compile(r"\b(\w+)'(s|t|re|ve|ll|d|m)\b")
_NUMBER_WORDS = {
    "deux": "2",
    "trois": "3",
    "quatre": "4",
    "cinq": "5",
    "six": "6",
    "sept": "7",
    "huit": "8",
    "neuf": "9",
    "dix": "10",
    "quinze": "15",
    "vingt": "20",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "ten": "10",
}
# Colloquial words for the same thing, in the same language (language detection reads the
# normalised text, so a word is never swapped for one of another language).
COLLOQUIAL: dict[str, str] = {
    "flotte": "eau",
    "chiottes": "toilettes",
    "chiotte": "toilettes",
    "gamin": "enfant",
    "gamins": "enfants",
    "gosse": "enfant",
    "gosses": "enfants",
    "mome": "enfant",
    "momes": "enfants",
    "naze": "en panne",
    "nase": "en panne",
    "hs": "en panne",
    "foutu": "casse",
    "foutue": "cassee",
    "nique": "casse",
    "niquee": "cassee",
    "keufs": "police",
    "flics": "police",
    "busted": "broken",
    "bust": "broken",
    "knackered": "broken",
    "kaput": "broken",
    "telly": "tv",
    "loo": "toilet",
    "fag": "cigarette",
    "fags": "cigarettes",
    "mum": "mother",
    "mam": "mother",
    "mammy": "mother",
}
# Idioms for "broken" and the like, replaced after the word table (keys are normalised words).
IDIOMS: dict[str, str] = {
    "en rade": "en panne",
    "hors service": "en panne",
    "a rendu le ame": "est en panne",
    "a lache": "est en panne",
    "packed up": "broken",
    "packed in": "broken",
    "conked out": "broken",
    "on the blink": "broken",
    "playing up": "broken",
    "gave up": "broke",
    "given up": "broken",
}
_IDIOM = re.compile(r"\b(?:" + "|".join(re.escape(k) for k in IDIOMS) + r")\b")
_NON_WORD = re.compile(r"[^\w\s]+")
_REPEATS = re.compile(r"(\w)\1{2,}")
_SPACES = re.compile(r"\s+")
_DIGITS_LETTERS = re.compile(r"(\d)([a-z])|([a-z])(\d)")


def fold(text: str) -> str:
    """Lower-case and strip accents, keeping one output character per input character.

    Keeping the length lets entity patterns run on the folded text and report offsets that are
    valid in the tenant's original text.
    """
    out = []
    for ch in text.lower():
        if ch.isascii():
            out.append(ch)
            continue
        base = unicodedata.normalize("NFD", ch)[0]
        out.append(base if base.isascii() else ch)
    return "".join(out).translate(_APOSTROPHES)


def _expand_elisions(text: str) -> str:
    text = _ELISION.sub(lambda m: _ELIDED[m.group(1)], text)
    return _ENGLISH_CONTRACTIONS.sub(_english_contraction, text)


def _english_contraction(m: re.Match[str]) -> str:
    word, suffix = m.group(1), m.group(2)
    if suffix == "t" and word.endswith("n"):
        stem = {"can": "can", "won": "will", "don": "do"}.get(word, word[:-1])
        return f"{stem} not"
    return {
        "s": f"{word} s",
        "re": f"{word} are",
        "ve": f"{word} have",
        "ll": f"{word} will",
        "d": f"{word} would",
        "m": f"{word} am",
    }.get(suffix, word)


def normalize(text: str, *, synonyms: bool = True) -> str:
    """Return the canonical form the classifier and the emergency rules read.

    `synonyms=False` skips the colloquial words and idioms (bench/nlu_options.py measures what
    they bring).

    >>> normalize("Ya une fuite ds la SDB !!")
    'il y a une fuite dans la salle de bain'
    """
    text = fold(text[:MAX_CHARS])
    text = _expand_elisions(text)
    text = _NON_WORD.sub(" ", text)
    text = _REPEATS.sub(r"\1\1", text)
    words = []
    for word in text.split():
        word = SMS.get(word, word)
        if synonyms:
            word = COLLOQUIAL.get(word, word)
        word = _NUMBER_WORDS.get(word, word)
        words.append(word)
    text = _SPACES.sub(" ", " ".join(words)).strip()
    if synonyms:
        text = _IDIOM.sub(lambda m: IDIOMS[m.group(0)], text)
    return text
