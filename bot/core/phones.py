"""Phone numbers to E.164, the one form tenants and staff are stored and recognised in.

One function for every way a number arrives: a landlord's spreadsheet ("06 12 34 56 78",
"0033 6…", "+262 692…"), a Telegram shared contact ("33612345600", international without
the "+"), a number a tenant types in a message. Parsing and validity are the `phonenumbers`
package's (Google's libphonenumber metadata); the region says how a national number ("06…")
is read, RELAIS_PHONE_REGION, France by default.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "FR"

# France's overseas departments have their own country codes (+262 La Réunion and Mayotte,
# +590 Guadeloupe, +594 Guyane, +596 Martinique, +269 Mayotte's older numbers) but their
# numbers are dialled "0692…" from France: a national number that is not valid in France is
# tried in these regions too, so a Réunion landlord's export with "0692 12 34 56" works with
# the default region.
_OVERSEAS = ("RE", "YT", "GP", "GF", "MQ", "BL", "MF", "PM")


def to_e164(
    raw: object, region: str = DEFAULT_REGION, *, international: bool = False
) -> str | None:
    """The number in E.164 ("+33612345678"), or None when `raw` is not a valid phone number.

    `international`: digits without a leading "+" are already international (Telegram's
    contacts), not a national number of `region`.
    """
    text = str(raw or "").strip()
    if not text or len(text) > 40:
        return None
    if international and not text.startswith(("+", "00")):
        text = "+" + text
    if text.startswith("00"):
        text = "+" + text[2:].lstrip()
    regions = (region.upper(), *(r for r in _OVERSEAS if r != region.upper()))
    if text.startswith("+"):
        regions = (region.upper(),)
    for r in regions:
        try:
            number = phonenumbers.parse(text, r)
        except phonenumbers.NumberParseException:
            return None
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return None


def find_phone(text: str, region: str = DEFAULT_REGION) -> str | None:
    """The first valid phone number written in a free text ("c'est le 06 12 34 56 78"), E.164;
    overseas departments' numbers are looked for too, as in `to_e164`."""
    for r in (region.upper(), *(o for o in _OVERSEAS if o != region.upper())):
        try:
            for match in phonenumbers.PhoneNumberMatcher(text, r):
                return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            continue
    return None
