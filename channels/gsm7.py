"""GSM 03.38 for SMS: fold a reply to the 7-bit alphabet where no meaning is lost; count parts."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# The GSM 03.38 basic character set (one septet each), LF and CR included.
BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (an escape, then the character).
EXTENDED = frozenset("^{}\\[~]|€\f")

# French (and a few common) characters outside GSM-7, folded to what a phone shows the same way.
FOLD = {
    "ê": "e", "ë": "e", "ç": "c", "â": "a", "î": "i", "ï": "i", "ô": "o", "û": "u", "ÿ": "y",
    "á": "a", "í": "i", "ó": "o", "ú": "u", "ã": "a", "õ": "o",
    "À": "A", "Â": "A", "È": "E", "Ê": "E", "Ë": "E", "Î": "I", "Ï": "I", "Ô": "O",
    "Ù": "U", "Û": "U", "Ÿ": "Y", "Á": "A", "Í": "I", "Ó": "O", "Ú": "U",
    "œ": "oe", "Œ": "OE",
    "‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "`": "'",
    "“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "″": '"',
    "–": "-", "—": "-", "‐": "-", "‑": "-", "−": "-", "•": "-", "·": "-",
    "…": "...",
    "\u00a0": " ", "\u202f": " ", "\u2009": " ", "\u2007": " ", "\t": " ",
}  # fmt: skip

# Emoji and pictographs (code point ranges): dropped, they would turn the whole SMS into
# UCS-2 (70 characters).
EMOJI_RANGES = (
    (0x1F000, 0x1FAFF), (0x2600, 0x27BF), (0x1F1E6, 0x1F1FF), (0x2B00, 0x2BFF),
    (0x2190, 0x21FF), (0x2300, 0x23FF), (0xFE0F, 0xFE0F), (0x200D, 0x200D), (0x20E3, 0x20E3),
)  # fmt: skip
_EMOJI = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in EMOJI_RANGES) + "]")
_SPACES = re.compile(r"[ ]{2,}")
# French guillemets hold their text between spaces (« Nord »); straight quotes do not.
GUILLEMET_SPACES = " \u00a0\u202f"
_GUILLEMETS = re.compile(f"«[{GUILLEMET_SPACES}]*|[{GUILLEMET_SPACES}]*»")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


def table() -> dict[str, Any]:
    """The tables above for the console's segment counter (served as /console/gsm7.js), so
    that the browser and the SMS sender count with the same alphabet and folding."""
    return {
        "basic": "".join(sorted(BASIC)),
        "extended": "".join(sorted(EXTENDED)),
        "fold": FOLD,
        "emoji": [list(r) for r in EMOJI_RANGES],
        "guillemet_spaces": GUILLEMET_SPACES,
        "gsm7": [GSM7_SINGLE, GSM7_PART],
        "ucs2": [UCS2_SINGLE, UCS2_PART],
    }


def is_gsm7(text: str) -> bool:
    return all(c in BASIC or c in EXTENDED for c in text)


def fold(text: str) -> str:
    """The text in GSM-7 when only accents, quotes, dashes and emoji stand in the way.

    A text that still needs other characters (Arabic, Cyrillic...) is returned unchanged, to go
    out in UCS-2: meaning matters more than the segment count.
    """
    if is_gsm7(text):
        return text
    out: list[str] = []
    for c in _GUILLEMETS.sub('"', _EMOJI.sub("", text)):
        if c in BASIC or c in EXTENDED:
            out.append(c)
        elif c in FOLD:
            out.append(FOLD[c])
        else:
            # Other Latin letters with a diacritic: keep the base letter if that is GSM-7.
            base = "".join(
                b for b in unicodedata.normalize("NFD", c) if not unicodedata.combining(b)
            )
            out.append(base if base and is_gsm7(base) else c)
    folded = "\n".join(_SPACES.sub(" ", line).rstrip() for line in "".join(out).split("\n"))
    return folded.strip() if is_gsm7(folded) else text


def septets(text: str) -> int:
    return sum(2 if c in EXTENDED else 1 for c in text)


def segments(text: str) -> int:
    """How many SMS parts `text` takes, as the carrier counts them."""
    if is_gsm7(text):
        if septets(text) <= GSM7_SINGLE:
            return 1
        # An escape and its character never straddle two parts.
        return _parts([2 if c in EXTENDED else 1 for c in text], GSM7_PART)
    units = [2 if ord(c) > 0xFFFF else 1 for c in text]  # UTF-16 code units
    if sum(units) <= UCS2_SINGLE:
        return 1
    # Likewise a surrogate pair stays in one part.
    return _parts(units, UCS2_PART)


def _parts(sizes: list[int], capacity: int) -> int:
    parts, used = 1, 0
    for size in sizes:
        if used + size > capacity:
            parts += 1
            used = 0
        used += size
    return parts
