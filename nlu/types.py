"""The NLU result shared by every engine and by the dialogue: `Parse` and `Entity`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

TOPIC_INTENTS: tuple[str, ...] = ("repair", "nuisance", "bulky_waste", "question", "emergency")
CONVERSATION_INTENTS: tuple[str, ...] = (
    "greet",
    "thanks",
    "goodbye",
    "affirm",
    "deny",
    "human_request",
    "status_request",
    "out_of_scope",
)
INTENTS: tuple[str, ...] = TOPIC_INTENTS + CONVERSATION_INTENTS

# The kinds of danger an emergency's `hazard` entity (or a possible danger's `risk`) names: the
# contract between the NLU engines and the dialogue.
HAZARDS: tuple[str, ...] = (
    "gas",
    "fire",
    "smoke",
    "flooding",
    "water_electric",
    "sparks",
    "carbon_monoxide",
    "trapped_lift",
    "trapped",
    "threat",
    "danger",
    "life_support",
)


@dataclass(frozen=True, slots=True)
class Entity:
    """One thing found in the text; `type` is place, object, floor, apartment, date, reference,
    hazard (an emergency's kind, see `HAZARDS`) or risk (a possible danger to check)."""

    type: str
    value: str
    text: str = ""
    start: int = 0
    end: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Parse:
    """What the NLU understood of one message."""

    text: str
    intent: str
    confidence: float
    language: str = "fr"
    entities: tuple[Entity, ...] = ()
    ranking: tuple[tuple[str, float], ...] = ()
    # Other topic intents found in the same message ("une fuite et aussi les encombrants").
    extra_intents: tuple[str, ...] = field(default=())

    def entity(self, type_: str) -> str | None:
        for e in self.entities:
            if e.type == type_:
                return e.value
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": self.intent,
            "confidence": round(self.confidence, 4),
            "entities": [e.to_dict() for e in self.entities],
            "language": self.language,
            "ranking": [{"intent": i, "confidence": round(c, 4)} for i, c in self.ranking],
            "extra_intents": list(self.extra_intents),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Parse:
        return cls(
            text=d.get("text", ""),
            intent=d["intent"],
            confidence=float(d.get("confidence", 0.0)),
            language=d.get("language", "fr"),
            entities=tuple(Entity(**e) for e in d.get("entities", [])),
            ranking=tuple((r["intent"], float(r["confidence"])) for r in d.get("ranking", [])),
            extra_intents=tuple(d.get("extra_intents", [])),
        )
