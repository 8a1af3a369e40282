"""The Rasa NLU backend: a `Parse` from a Rasa server's `/model/parse` (see scripts/rasa-server)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from nlu.language import detect_language
from nlu.normalize import MAX_CHARS, normalize
from nlu.types import Entity, Parse

# Rasa's FallbackClassifier names an unclear message `nlu_fallback`; Relais calls it out_of_scope.
RASA_FALLBACK_INTENT = "nlu_fallback"
_HAS_LETTER = re.compile(r"[^\W\d_]")


class RasaUnavailable(RuntimeError):
    """The Rasa server could not be reached or did not answer with a parse."""


class RasaEngine:
    """Asks a running Rasa server; the model is trained and served by `scripts/rasa-server up`."""

    name = "rasa"

    def __init__(
        self, url: str, *, client: httpx.AsyncClient | None = None, timeout: float = 5.0
    ) -> None:
        self.url = url.rstrip("/")
        self._parse_url = f"{self.url}/model/parse"
        # A client passed in belongs to the caller, who closes it; ours is closed by `aclose`.
        self._owns_client = client is None
        self._client = client if client is not None else httpx.AsyncClient(timeout=timeout)
        self._timeout = timeout

    async def parse(self, text: str) -> Parse:
        head = text[:MAX_CHARS]
        language = detect_language(normalize(head), head)
        if not _HAS_LETTER.search(head):
            # Rasa still picks an intent for "" or "?!" (an empty text came back `affirm` at 0.50),
            # which the dialogue would act on; with no word there is nothing to classify.
            return Parse(text=text, intent="out_of_scope", confidence=1.0, language=language)
        answer = await self._post(head)
        return parse_from_rasa(text, answer, language=language)

    async def _post(self, text: str) -> dict[str, Any]:
        try:
            response = await self._client.post(
                self._parse_url, json={"text": text}, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            raise RasaUnavailable(
                f"Rasa server at {self.url} is unavailable ({type(exc).__name__}: {exc}); "
                "start it with: scripts/rasa-server up"
            ) from exc
        if response.status_code != httpx.codes.OK:
            raise RasaUnavailable(
                f"Rasa server at {self.url} answered {response.status_code} to POST /model/parse: "
                f"{response.text[:200]}"
            )
        try:
            answer = response.json()
        except ValueError as exc:
            raise RasaUnavailable(
                f"Rasa server at {self.url} answered POST /model/parse with something not JSON"
            ) from exc
        if not isinstance(answer, dict) or not isinstance(answer.get("intent"), dict):
            raise RasaUnavailable(
                f"Rasa server at {self.url} answered POST /model/parse without an intent "
                "(is the model an NLU model?)"
            )
        return answer

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


def _intent_name(name: Any) -> str:
    # Rasa answers intent null when the model has no intent classifier.
    if not name or name == RASA_FALLBACK_INTENT:
        return "out_of_scope"
    return str(name)


def _ranking(items: list[dict[str, Any]]) -> tuple[tuple[str, float], ...]:
    # nlu_fallback and out_of_scope both become out_of_scope: keep the higher of the two, once.
    best: dict[str, float] = {}
    for item in items:
        intent = _intent_name(item.get("name"))
        confidence = float(item.get("confidence") or 0.0)
        best[intent] = max(confidence, best.get(intent, 0.0))
    return tuple(sorted(best.items(), key=lambda kv: kv[1], reverse=True))


def _entity(text: str, item: dict[str, Any]) -> Entity:
    start = int(item.get("start") or 0)
    end = int(item.get("end") or 0)
    return Entity(
        type=str(item["entity"]),
        # After EntitySynonymMapper, `value` is the canonical name ("sdb" → "salle de bain").
        value=str(item.get("value", "")),
        text=text[start:end],
        start=start,
        end=end,
    )


def parse_from_rasa(text: str, answer: dict[str, Any], *, language: str = "fr") -> Parse:
    """Map a Rasa `/model/parse` answer to a `Parse` of `text`."""
    intent = answer.get("intent") or {}
    return Parse(
        text=text,
        intent=_intent_name(intent.get("name")),
        confidence=float(intent.get("confidence") or 0.0),
        language=language,
        entities=tuple(_entity(text, e) for e in answer.get("entities") or () if e.get("entity")),
        ranking=_ranking(answer.get("intent_ranking") or []),
    )
