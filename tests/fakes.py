"""Fakes for pipeline tests: a recording channel and a keyword NLU engine.

The keyword engine keeps pipeline tests about the pipeline (the real classifier has its own
suite in tests/nlu); end-to-end tests use the real embedded engine.
"""

from __future__ import annotations

import asyncio
import re
from typing import ClassVar

from bot.core.channel import Channel
from bot.core.errors import PermanentSendError, TransientSendError
from bot.core.types import Outbound, SendResult
from nlu.types import Entity, Parse

KEYWORDS: list[tuple[str, str]] = [
    (r"gaz|feu|fumée|inond|bloqué", "emergency"),
    (r"fuite|panne|chauffage|ascenseur|cass", "repair"),
    (r"bruit|voisin|tapage", "nuisance"),
    (r"encombrant|matelas|canapé", "bulky_waste"),
    (r"loyer|attestation|horaires|agence|apl", "question"),
    (r"où en est|ma demande|statut", "status_request"),
    (r"humain|conseiller|personne", "human_request"),
    (r"^bonjour|^salut|^hello", "greet"),
    (r"merci|thanks", "thanks"),
    (r"au revoir|bye", "goodbye"),
    (r"^oui|^yes", "affirm"),
    (r"^non|^no\b", "deny"),
]


class KeywordEngine:
    name = "keywords"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls = 0

    async def parse(self, text: str) -> Parse:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        low = text.lower()
        entities: list[Entity] = []
        m = re.search(r"R-\d{4}-\d{6}", text, re.IGNORECASE)
        if m:
            entities.append(Entity("reference", m.group(0).upper(), m.group(0), *m.span()))
        for pattern, intent in KEYWORDS:
            if re.search(pattern, low):
                return Parse(text, intent, 0.9, "fr", tuple(entities), ((intent, 0.9),))
        return Parse(text, "out_of_scope", 0.2, "fr", tuple(entities), (("out_of_scope", 0.2),))

    async def aclose(self) -> None:
        return None


class RecordingChannel(Channel):
    """A sender that records what it was asked to deliver; can be told to fail first."""

    name: ClassVar[str] = "fake"

    def __init__(
        self, name: str = "fake", *, fail_transient: int = 0, fail_permanent: bool = False
    ) -> None:
        self.channel_name = name
        self.sent: list[Outbound] = []
        self.fail_transient = fail_transient
        self.fail_permanent = fail_permanent
        self.attempts = 0
        self.event = asyncio.Event()

    async def send(self, outbound: Outbound) -> SendResult:
        self.attempts += 1
        if self.fail_permanent:
            raise PermanentSendError("recipient unreachable")
        if self.fail_transient > 0:
            self.fail_transient -= 1
            raise TransientSendError("provider answered 500", retry_after=0.01)
        self.sent.append(outbound)
        self.event.set()
        return SendResult(provider_id=f"{self.channel_name}-{outbound.outbox_id}", segments=1)

    def texts(self) -> list[str]:
        return [o.text for o in self.sent]
