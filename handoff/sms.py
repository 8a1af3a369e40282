"""SMS segment count (GSM-7 or UCS-2), the same rules as the console's counter in console.js."""

from __future__ import annotations

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = "^{}\\[~]|€\f"  # each costs two septets (escape + character)
_BASIC = frozenset(GSM7_BASIC)
_EXTENDED = frozenset(GSM7_EXTENDED)


def segments(text: str) -> tuple[str, int, int]:
    """(encoding, units, segments): GSM-7 counts septets, 160 in one SMS or 153 per part;
    UCS-2 counts UTF-16 code units (an emoji is two), 70 in one SMS or 67 per part."""
    if all(c in _BASIC or c in _EXTENDED for c in text):
        units = sum(2 if c in _EXTENDED else 1 for c in text)
        single, part, encoding = 160, 153, "gsm7"
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part, encoding = 70, 67, "ucs2"
    if units == 0:
        return encoding, 0, 0
    if units <= single:
        return encoding, units, 1
    return encoding, units, -(-units // part)
