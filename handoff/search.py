"""What a search box finds: the conditions on `Conversation` for one typed query, shared by
the managers' conversation search and the caretakers' search in the console.

One box, read three ways:
- a phone number in any form ("06 12 34 56 78", "0612345678", "+33 6 12…", "0033 6…") is
  put in E.164 by `bot.core.phones` and matches the tenant's phone on file or the address
  the conversation came from;
- a reference ("L-10231", "l10231", "R-2026-000012") matches the tenant whose reference it
  is, or the request that has it: the tenant's conversations, not every conversation whose
  messages quote one (the bot's prompts give "L-10231" as an example);
- anything else is words, each of which must be found in the tenant's name or in a message
  of the conversation, without regard to case or accents ("evier" finds "Évier").

Accents and case are folded the same way in Python and in SQL (`bot.storage.fold`), on
SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, func, or_, select

from bot.core.phones import DEFAULT_REGION, to_e164
from bot.storage.fold import Fold, fold
from bot.storage.models import Conversation, Message, Request, Tenant

MAX_QUERY = 200
MAX_WORDS = 6
# "L-10231", "R-2026-000012" are references; "bat 3" or "A 12" (a building, a flat) are words.
MIN_REFERENCE_DIGITS = 4


def _contains(column: Any, word: str) -> Any:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Fold(column).like(f"%{escaped}%", escape="\\")


# -- reading the query --------------------------------------------------------------------

# A tenant's or a request's reference: letters, then digits (separated by dashes or spaces).
_REFERENCE = re.compile(r"^[A-Za-z]{1,4}[\s-]?\d+(?:[\s-]\d+)*$")
_PHONE_CHARS = re.compile(r"^\+?[\d\s().-]+$")


def _reference_key(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower())


@dataclass(frozen=True, slots=True)
class Query:
    """A typed search, read: a phone number, a reference, or words."""

    phone: str | None = None  # E.164
    reference: str | None = None  # lower case, letters and digits only
    words: tuple[str, ...] = ()  # folded

    def is_empty(self) -> bool:
        return not (self.phone or self.reference or self.words)


def parse(text: str, region: str = DEFAULT_REGION) -> Query:
    text = " ".join(text.split())[:MAX_QUERY]
    if not text:
        return Query()
    digits = sum(c.isdigit() for c in text)
    if _PHONE_CHARS.match(text) and digits >= 9:
        phone = to_e164(text, region)
        if phone is None and text.isdigit():
            phone = to_e164(text, region, international=True)
        if phone is not None:
            return Query(phone=phone)
    if _REFERENCE.match(text) and digits >= MIN_REFERENCE_DIGITS:
        return Query(reference=_reference_key(text))
    words = tuple(dict.fromkeys(w for w in fold(text).split() if w))[:MAX_WORDS]
    return Query(words=words)


# -- what it matches -----------------------------------------------------------------------


def _tenants(*where: Any) -> Any:
    return Conversation.tenant_id.in_(select(Tenant.id).where(*where))


def _reference_column(column: Any) -> Any:
    return func.lower(func.replace(func.replace(column, "-", ""), " ", ""))


def conditions(text: str, region: str = DEFAULT_REGION) -> list[Any]:
    """The conditions on `Conversation` for a typed query (none for an empty one)."""
    q = parse(text, region)
    if q.phone is not None:
        return [
            or_(
                _tenants(Tenant.phone == q.phone),
                Conversation.address == q.phone,  # an SMS or WhatsApp conversation
            )
        ]
    if q.reference is not None:
        return [
            or_(
                _tenants(_reference_column(Tenant.reference) == q.reference),
                exists().where(
                    Request.conversation_id == Conversation.id,
                    _reference_column(Request.reference) == q.reference,
                ),
            )
        ]
    return [
        or_(
            _tenants(or_(_contains(Tenant.first_name, w), _contains(Tenant.last_name, w))),
            exists().where(Message.conversation_id == Conversation.id, _contains(Message.text, w)),
        )
        for w in q.words
    ]


def message_match(text: str, region: str = DEFAULT_REGION) -> Any | None:
    """The condition on `Message` for the message to show under a result: one holding a
    searched word (None when the query is a phone number or a reference, or empty)."""
    q = parse(text, region)
    if not q.words:
        return None
    return or_(*(_contains(Message.text, w) for w in q.words))
