"""Language guess for one message: French by default, English and others by stop words or script."""

from __future__ import annotations

_STOP_WORDS: dict[str, frozenset[str]] = {
    "fr": frozenset(
        [
            "le",
            "la",
            "les",
            "un",
            "une",
            "des",
            "de",
            "du",
            "et",
            "est",
            "il",
            "elle",
            "je",
            "ai",
            "pas",
            "ne",
            "que",
            "qui",
            "dans",
            "pour",
            "sur",
            "au",
            "aux",
            "avec",
            "mon",
            "ma",
            "mes",
            "son",
            "sa",
            "ses",
            "nous",
            "vous",
            "ils",
            "on",
            "ce",
            "cette",
            "ca",
            "c",
            "y",
            "a",
            "en",
            "plus",
            "tres",
            "bonjour",
            "merci",
            "quand",
            "depuis",
            "chez",
            "mais",
            "ou",
            "est",
            "suis",
            "sont",
            "fait",
            "toujours",
            "encore",
            "rien",
            "voisin",
            "chauffage",
            "fuite",
        ]
    ),
    "en": frozenset(
        [
            "the",
            "a",
            "an",
            "and",
            "is",
            "are",
            "was",
            "were",
            "i",
            "my",
            "me",
            "you",
            "your",
            "it",
            "its",
            "of",
            "to",
            "in",
            "on",
            "at",
            "for",
            "with",
            "not",
            "no",
            "have",
            "has",
            "been",
            "there",
            "this",
            "that",
            "from",
            "since",
            "please",
            "hello",
            "hi",
            "thanks",
            "when",
            "what",
            "how",
            "can",
            "do",
            "does",
            "would",
            "will",
            "my",
            "flat",
            "neighbour",
            "neighbor",
            "broken",
            "leak",
            "heating",
        ]
    ),
    "es": frozenset(
        [
            "el",
            "los",
            "las",
            "una",
            "por",
            "para",
            "con",
            "es",
            "esta",
            "hay",
            "mi",
            "que",
            "no",
            "se",
            "del",
            "al",
            "pero",
            "muy",
            "hola",
            "gracias",
            "tengo",
            "vecino",
            "agua",
        ]
    ),
    "de": frozenset(
        [
            "der",
            "die",
            "das",
            "und",
            "ist",
            "ich",
            "nicht",
            "ein",
            "eine",
            "mit",
            "von",
            "zu",
            "auf",
            "den",
            "dem",
            "es",
            "wir",
            "sie",
            "hallo",
            "danke",
            "meine",
            "wohnung",
        ]
    ),
    "pt": frozenset(
        [
            "o",
            "os",
            "uma",
            "um",
            "com",
            "nao",
            "sim",
            "obrigado",
            "ola",
            "minha",
            "meu",
            "esta",
            "tem",
            "agua",
            "vizinho",
            "voce",
        ]
    ),
}

# Languages tenants write besides French and English (stop words and greetings, accents folded).
_MORE_STOP_WORDS: dict[str, frozenset[str]] = {
    "it": frozenset(
        [
            "lo",
            "gli",
            "della",
            "delle",
            "nel",
            "nella",
            "che",
            "sono",
            "ho",
            "hai",
            "abbiamo",
            "buongiorno",
            "buonasera",
            "grazie",
            "uno",
            "mio",
            "mia",
            "casa",
            "acqua",
            "riscaldamento",
            "problema",
            "perdita",
            "funziona",
            "c'e",
            "cucina",
            "bagno",
            "salve",
            "ciao",
        ]
    ),
    "tr": frozenset(
        [
            "merhaba",
            "ve",
            "bir",
            "bu",
            "icin",
            "cok",
            "var",
            "yok",
            "ben",
            "biz",
            "evde",
            "su",
            "musluk",
            "sorun",
            "tesekkurler",
            "lutfen",
            "iyi",
            "gunler",
            "calismiyor",
            "mutfak",
            "banyo",
            "kapi",
            "asansor",
            "selam",
            "ediyor",
            "degil",
        ]
    ),
    "ro": frozenset(
        [
            "buna",
            "ziua",
            "si",
            "este",
            "sunt",
            "nu",
            "avem",
            "cu",
            "pentru",
            "apa",
            "caldura",
            "problema",
            "multumesc",
            "va",
            "rog",
            "bucatarie",
            "baie",
            "usa",
            "liftul",
            "ziua",
            "dimineata",
            "seara",
            "casa",
            "meu",
            "mea",
        ]
    ),
    "pl": frozenset(
        [
            "dzien",
            "dobry",
            "nie",
            "mam",
            "jest",
            "sa",
            "ze",
            "prosze",
            "dziekuje",
            "woda",
            "wody",
            "cieplej",
            "ogrzewanie",
            "kuchni",
            "lazience",
            "drzwi",
            "winda",
            "od",
            "wczoraj",
            "mieszkaniu",
        ]
    ),
}
# Letters that tell a language apart from French and English on their own.
_LETTERS: tuple[tuple[str, str], ...] = (
    ("ğşıİ", "tr"),
    ("șțşţă", "ro"),
    ("ąćęłńśźżŁŚŻ", "pl"),
    ("ãõ", "pt"),
    ("ñ¿¡", "es"),
    ("ß", "de"),
)

_SCRIPTS: tuple[tuple[int, int, str], ...] = (
    (0x0600, 0x06FF, "ar"),
    (0x0400, 0x04FF, "ru"),
    (0x0370, 0x03FF, "el"),
    (0x0590, 0x05FF, "he"),
    (0x4E00, 0x9FFF, "zh"),
    (0x3040, 0x30FF, "ja"),
    (0xAC00, 0xD7AF, "ko"),
    (0x0E00, 0x0E7F, "th"),
)


def detect_language(normalized: str, original: str = "") -> str:
    """Guess the language from the normalised text (and the original for its script).

    Short or ambiguous texts count as French: most tenants write French.
    """
    letters = [ch for ch in original if ch.isalpha()]
    if letters:
        counts: dict[str, int] = {}
        for ch in letters:
            code = ord(ch)
            for low, high, lang in _SCRIPTS:
                if low <= code <= high:
                    counts[lang] = counts.get(lang, 0) + 1
                    break
        if counts:
            lang, n = max(counts.items(), key=lambda kv: kv[1])
            if n * 2 >= len(letters):
                return lang
    for chars, lang in _LETTERS:
        if any(ch in chars for ch in original):
            return lang
    words = normalized.split()
    if not words:
        return "fr"
    scores = {lang: sum(w in stops for w in words) for lang, stops in _STOP_WORDS.items()}
    scores.update(
        {lang: sum(w in stops for w in words) for lang, stops in _MORE_STOP_WORDS.items()}
    )
    best = max(scores, key=lambda lang: scores[lang])
    if best == "fr" or scores[best] == 0:
        return "fr"
    # A foreign language must beat French clearly; one English word in a French SMS is common.
    if scores[best] > scores["fr"] and (scores[best] >= 2 or len(words) <= 3):
        return best
    return "fr"
