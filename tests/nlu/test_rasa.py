"""The Rasa backend: the mapping (always, on a mock transport) and the real server (`rasa`)."""

from __future__ import annotations

import json
import os
import socket
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from nlu.engine import Engine
from nlu.rasa import RasaEngine, RasaUnavailable, parse_from_rasa
from nlu.types import INTENTS, Parse
from tests import services

RASA_URL = os.environ.get("RELAIS_RASA_URL", "http://127.0.0.1:5005")

# A real answer of Rasa 3.6.21 to POST /model/parse, pipeline data/rasa/config.yml
# (intent_ranking trimmed to four of its ten items).
PARSE_ANSWER: dict[str, Any] = {
    "text": "ya une fuite ds la sdb R123456",
    "intent": {"name": "repair", "confidence": 0.9991341233253479},
    "entities": [
        {
            "entity": "place",
            "start": 19,
            "end": 22,
            "confidence_entity": 0.9939893484115601,
            "value": "salle de bain",
            "extractor": "DIETClassifier",
            "processors": ["EntitySynonymMapper"],
        }
    ],
    "text_tokens": [[0, 2], [3, 6], [7, 12], [13, 15], [16, 18], [19, 22], [23, 30]],
    "intent_ranking": [
        {"name": "repair", "confidence": 0.9991341233253479},
        {"name": "status_request", "confidence": 0.00021697996999137104},
        {"name": "affirm", "confidence": 0.00016666192095726728},
        {"name": "out_of_scope", "confidence": 1.7515865692985244e-05},
    ],
}

# What the FallbackClassifier answers below its threshold (real answer to "rouge", trimmed).
FALLBACK_ANSWER: dict[str, Any] = {
    "text": "rouge",
    "intent": {"name": "nlu_fallback", "confidence": 0.4},
    "entities": [],
    "text_tokens": [[0, 5]],
    "intent_ranking": [
        {"name": "nlu_fallback", "confidence": 0.4},
        {"name": "greet", "confidence": 0.36947664618492126},
        {"name": "goodbye", "confidence": 0.24915367364883423},
        {"name": "out_of_scope", "confidence": 0.0123},
    ],
}

RASA_ERROR_500: dict[str, Any] = {
    "version": "3.6.21",
    "status": "failure",
    "message": "An unexpected error occurred. Error: 'text'",
    "reason": "ParsingError",
    "details": {},
    "help": None,
    "code": 500,
}


class FakeRasa:
    """Answers /model/parse like a Rasa server and records the bodies it received."""

    def __init__(self, answer: dict[str, Any], status: int = 200) -> None:
        self.answer = answer
        self.status = status
        self.requests: list[tuple[str, str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append((request.method, request.url.path, body))
        return httpx.Response(self.status, json=self.answer)

    def engine(self) -> RasaEngine:
        client = httpx.AsyncClient(transport=httpx.MockTransport(self))
        return RasaEngine("http://rasa.test:5005/", client=client)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- the mapping, on a mock transport: always runs ---


async def test_parse_maps_a_real_rasa_answer() -> None:
    fake = FakeRasa(PARSE_ANSWER)
    engine = fake.engine()
    parse = await engine.parse("ya une fuite ds la sdb R123456")

    assert fake.requests == [("POST", "/model/parse", {"text": "ya une fuite ds la sdb R123456"})]
    assert parse.intent == "repair"
    assert parse.confidence == pytest.approx(0.9991, abs=1e-4)
    assert parse.language == "fr"
    assert parse.ranking[0] == ("repair", pytest.approx(0.9991, abs=1e-4))
    assert [i for i, _ in parse.ranking] == ["repair", "status_request", "affirm", "out_of_scope"]
    (entity,) = parse.entities
    assert (entity.type, entity.value, entity.text) == ("place", "salle de bain", "sdb")
    assert (entity.start, entity.end) == (19, 22)
    assert parse.entity("place") == "salle de bain"
    await engine.aclose()


async def test_nlu_fallback_becomes_out_of_scope_once_in_the_ranking() -> None:
    parse = parse_from_rasa("rouge", FALLBACK_ANSWER)

    assert parse.intent == "out_of_scope"
    assert parse.confidence == pytest.approx(0.4)
    assert [i for i, _ in parse.ranking] == ["out_of_scope", "greet", "goodbye"]
    assert dict(parse.ranking)["out_of_scope"] == pytest.approx(0.4)


def test_answer_without_intent_name_is_out_of_scope() -> None:
    parse = parse_from_rasa("x", {"text": "x", "intent": {"name": None, "confidence": 0.0}})
    assert (parse.intent, parse.entities, parse.ranking) == ("out_of_scope", (), ())


async def test_english_message_is_tagged_english() -> None:
    engine = FakeRasa(PARSE_ANSWER).engine()
    parse = await engine.parse("there is a leak in my flat since yesterday")
    assert parse.language == "en"
    await engine.aclose()


@pytest.mark.parametrize("text", ["", "   ", "?!", "0612345678"])
async def test_text_without_words_is_out_of_scope_without_asking_rasa(text: str) -> None:
    fake = FakeRasa(PARSE_ANSWER)
    engine = fake.engine()
    parse = await engine.parse(text)
    assert (parse.text, parse.intent, parse.entities) == (text, "out_of_scope", ())
    assert fake.requests == []
    await engine.aclose()


async def test_server_down_raises_rasa_unavailable_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    engine = RasaEngine(url, timeout=2.0)
    with pytest.raises(RasaUnavailable, match=rf"Rasa server at {url} is unavailable"):
        await engine.parse("le chauffage ne marche plus")
    await engine.aclose()
    assert issubclass(RasaUnavailable, RuntimeError)


async def test_server_error_raises_rasa_unavailable_with_the_status() -> None:
    engine = FakeRasa(RASA_ERROR_500, status=500).engine()
    with pytest.raises(RasaUnavailable, match=r"http://rasa.test:5005 answered 500"):
        await engine.parse("le chauffage ne marche plus")
    await engine.aclose()


async def test_a_client_passed_in_is_left_open() -> None:
    client = httpx.AsyncClient(transport=httpx.MockTransport(FakeRasa(PARSE_ANSWER)))
    engine = RasaEngine("http://rasa.test:5005", client=client)
    await engine.aclose()
    assert not client.is_closed
    await client.aclose()


async def test_engine_satisfies_the_engine_protocol() -> None:
    engine = RasaEngine("http://rasa.test:5005")
    assert isinstance(engine, Engine)
    assert engine.name == "rasa"
    await engine.aclose()


# --- the real server started by scripts/rasa-server: `rasa` ---


@pytest.fixture
async def rasa() -> Any:
    split = urlsplit(RASA_URL)
    services.need(
        f"Rasa server {RASA_URL} (scripts/rasa-server up)", split.hostname or "", split.port or 80
    )
    engine = RasaEngine(RASA_URL, timeout=30.0)
    yield engine
    await engine.aclose()


CLEAR_MESSAGES = [
    ("j'ai une fuite d'eau sous l'évier", "repair"),
    ("le chauffage ne marche plus depuis hier", "repair"),
    ("mon voisin fait du bruit toute la nuit", "nuisance"),
    ("je voudrais faire enlever un vieux canapé", "bulky_waste"),
    ("ça sent le gaz dans la cage d'escalier", "emergency"),
    ("bonjour", "greet"),
    ("merci beaucoup", "thanks"),
    ("je veux parler à un conseiller", "human_request"),
]


@pytest.mark.rasa
@pytest.mark.parametrize(("text", "intent"), CLEAR_MESSAGES)
async def test_real_server_classifies_clear_messages(
    rasa: RasaEngine, text: str, intent: str
) -> None:
    parse = await rasa.parse(text)
    assert parse.intent == intent, parse.ranking[:3]


@pytest.mark.rasa
async def test_real_server_parse_is_well_formed(rasa: RasaEngine) -> None:
    text = "ya une fuite ds la sdb"
    parse = await rasa.parse(text)

    assert isinstance(parse, Parse)
    assert parse.text == text
    assert parse.intent in INTENTS
    assert 0.0 <= parse.confidence <= 1.0
    assert parse.language == "fr"
    names = [i for i, _ in parse.ranking]
    assert len(names) == len(set(names)) and set(names) <= set(INTENTS)
    assert [c for _, c in parse.ranking] == sorted((c for _, c in parse.ranking), reverse=True)
    for entity in parse.entities:
        assert 0 <= entity.start < entity.end <= len(text)
        assert entity.text == text[entity.start : entity.end]
    assert json.dumps(parse.to_dict())


@pytest.mark.rasa
@pytest.mark.parametrize("text", ["", "   "])
async def test_real_server_empty_text_is_out_of_scope(rasa: RasaEngine, text: str) -> None:
    parse = await rasa.parse(text)
    assert parse.intent == "out_of_scope"


@pytest.mark.rasa
async def test_real_server_accepts_empty_text_itself(rasa: RasaEngine) -> None:
    # The engine never sends an empty text, but a direct caller may: the server must not fail.
    async with httpx.AsyncClient(timeout=30.0) as client:
        response = await client.post(f"{RASA_URL.rstrip('/')}/model/parse", json={"text": ""})
    assert response.status_code == 200
    assert parse_from_rasa("", response.json()).intent in INTENTS
