"""The embedded NLU engine: normalise, detect language, classify, extract entities, apply rules."""

from __future__ import annotations

import re
from pathlib import Path

from nlu.entities import extract_entities
from nlu.language import detect_language
from nlu.normalize import MAX_CHARS, fold, normalize
from nlu.rules import decide, emergency_rule
from nlu.training import Model, load_model
from nlu.types import TOPIC_INTENTS, Parse

# Where a second need usually starts: a new sentence, a question mark, "et aussi", "also".
_PART_SPLIT = re.compile(
    r"[.?!;\n]+\s*|\s*,?\s*\b(?:et aussi|aussi|egalement|par ailleurs|autre chose|"
    r"autre question|d'autre part|et puis|en plus|also|another thing|and also)\b\s*,?\s*"
)
_HAS_LETTER = re.compile(r"[^\W\d_]")
# A second topic is reported only when the part alone is clear about it.
EXTRA_MIN_CONFIDENCE = 0.5
EXTRA_MIN_WORDS = 3
# Each part costs a classification; a tenant rarely has more than a few needs in one message.
EXTRA_MAX_PARTS = 8


class EmbeddedEngine:
    """In-process engine: pure CPU, sub-millisecond, no I/O after `load`."""

    name = "embedded"

    def __init__(self, model: Model, *, threshold: float | None = None) -> None:
        self.model = model
        self.threshold = model.threshold if threshold is None else threshold
        self._classes = model.classifier.classes

    @classmethod
    def load(cls, model_path: Path, *, threshold: float | None = None) -> EmbeddedEngine:
        return cls(load_model(model_path), threshold=threshold)

    async def parse(self, text: str) -> Parse:
        # Sub-millisecond and CPU-bound: a thread hop would cost more than the work itself.
        return self.parse_sync(text)

    async def aclose(self) -> None:
        return None

    def _ranking(self, normalized: str) -> tuple[tuple[str, float], ...]:
        proba = self.model.classifier.predict(normalized)
        order = proba.argsort()[::-1]
        return tuple((self._classes[i], float(proba[i])) for i in order)

    def parse_sync(self, text: str) -> Parse:
        """Understand one message. Never raises on odd input; returns `out_of_scope` instead."""
        text = text if isinstance(text, str) else str(text or "")
        head = text[:MAX_CHARS]
        normalized = normalize(head)
        language = detect_language(normalized, head)
        entities = extract_entities(head)
        if not _HAS_LETTER.search(normalized):
            # Empty, emoji, punctuation, a phone number alone: nothing to classify.
            return Parse(
                text=text,
                intent="out_of_scope",
                confidence=1.0,
                language=language,
                entities=entities,
            )
        parts = self._parts(head)
        # Rules also run sentence by sentence, so that "ça sent le gaz. Et ma facture..." is not
        # excused by a harmless word from another sentence.
        emergency = emergency_rule(normalized) is not None or (
            len(parts) > 1 and any(emergency_rule(p) for p in parts)
        )
        ranking = self._ranking(normalized)
        intent, confidence = decide(ranking, normalized, self.threshold, emergency=emergency)
        extras = self._extra_intents(parts, intent)
        if intent == "out_of_scope" and extras:
            # Two needs split the whole message's vote below the threshold, yet each sentence
            # is clear on its own: the first one becomes the intent.
            (intent, confidence), extras = extras[0], extras[1:]
        return Parse(
            text=text,
            intent=intent,
            confidence=confidence,
            language=language,
            entities=entities,
            ranking=ranking,
            extra_intents=tuple(name for name, _ in extras),
        )

    def _parts(self, head: str) -> list[str]:
        """The message cut where a new need usually starts, each part normalised."""
        parts = [p for p in _PART_SPLIT.split(fold(head)) if p and p.strip()]
        return [normalize(p) for p in parts[:EXTRA_MAX_PARTS]]

    def _extra_intents(self, parts: list[str], main: str) -> list[tuple[str, float]]:
        """Topics that single sentences state clearly, other than `main`, in order of appearance."""
        if len(parts) < 2:
            return []
        extras: list[tuple[str, float]] = []
        for normalized in parts:
            if len(normalized.split()) < EXTRA_MIN_WORDS:
                continue
            if emergency_rule(normalized):
                found, confidence = "emergency", 0.99
            else:
                found, confidence = self._ranking(normalized)[0]
                if confidence < max(EXTRA_MIN_CONFIDENCE, self.threshold):
                    continue
            if found in TOPIC_INTENTS and found != main and found not in (n for n, _ in extras):
                extras.append((found, confidence))
        return extras
