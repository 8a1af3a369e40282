"""Scripted conversations with the real embedded NLU, as `relais chat` runs them.

In-process (the same runtime `relais chat` builds, terminal channel, SQLite), with the
dialogue's clock fixed; one test runs the real command as a subprocess with RELAIS_FAKE_NOW.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.dialogue.hooks import on_closed, on_incident_closed
from bot.storage.models import Conversation, Handoff, Incident, Message, Outbox, Request, Tenant
from nlu.engine import build_engine
from tests.conftest import DATA_DIR, make_settings
from tests.fakes import RecordingChannel
from tests.paths import REPO_ROOT

PARIS = ZoneInfo("Europe/Paris")
TUESDAY_10AM = datetime(2026, 3, 3, 10, 0, tzinfo=PARIS)
SATURDAY_NIGHT = datetime(2026, 3, 7, 23, 30, tzinfo=PARIS)

NADIA = "+33612345600"  # FLEURS A, French
FATOU = "+33612345602"  # HORIZON T (lift), French
CHANTAL = "+33612345606"  # HORIZON T, French
MONIQUE = "+33612345610"  # HORIZON T, French, vulnerable
EMILY = "+33612345614"  # HORIZON T, English
JOHN = "+33612345625"  # CANAL 1, English


class Chat:
    """A terminal conversation: each line sent returns the bot's replies to it."""

    def __init__(self, rt: Runtime, channel: RecordingChannel) -> None:
        self.rt = rt
        self.channel = channel

    async def say(self, address: str, text: str) -> list[str]:
        before = len(self.channel.sent)
        rec = await self.rt.ingest(Inbound(channel="terminal", address=address, text=text))
        await self.settle(rec.message_id)
        return [o.text for o in self.channel.sent[before:] if o.address == address]

    async def settle(self, message_id: int) -> None:
        for _ in range(500):
            async with self.rt.db.session() as s:
                msg = await s.get(Message, message_id)
                pending = (
                    await s.execute(
                        select(func.count(Outbox.id)).where(
                            Outbox.status.in_(("pending", "sending"))
                        )
                    )
                ).scalar_one()
            if msg is not None and msg.processed_at is not None and not pending:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("no reply in time")

    def at(self, now: datetime) -> None:
        # Only the dialogue's clock: delivery keeps real time (as in `relais chat`).
        self.rt.pipeline.clock = lambda: now

    async def conversation(self, address: str) -> Conversation:
        async with self.rt.db.session() as s:
            return (
                (await s.execute(select(Conversation).where(Conversation.address == address)))
                .unique()
                .scalar_one()
            )

    async def requests(self, address: str) -> list[Request]:
        async with self.rt.db.session() as s:
            tenant = (
                (await s.execute(select(Tenant).where(Tenant.phone == address)))
                .unique()
                .scalar_one()
            )
            return list(
                (
                    await s.execute(
                        select(Request).where(Request.tenant_id == tenant.id).order_by(Request.id)
                    )
                ).scalars()
            )


@pytest.fixture(scope="session")
def engine_model(nlu_model_path: Path) -> Path:
    return nlu_model_path


@pytest.fixture
async def chat(sqlite_url: str, engine_model: Path) -> AsyncIterator[Chat]:
    channel = RecordingChannel("terminal")
    engine = build_engine(kind="embedded", model_path=engine_model, data_dir=DATA_DIR)
    rt = Runtime(make_settings(sqlite_url), engine=engine, channels={"terminal": channel})
    await rt.start(Roles(consume=True, outbox=True, recover=False))
    c = Chat(rt, channel)
    c.at(TUESDAY_10AM)
    try:
        yield c
    finally:
        await rt.stop()


# -- questions ----------------------------------------------------------------------------------


async def test_question_answered_with_the_residence_data_fr_and_en(chat: Chat) -> None:
    replies = await chat.say(NADIA, "bonjour c koi le numero du gardien svp")
    assert "Karim Benali" in replies[0] and "lundi au vendredi" in replies[0]
    replies = await chat.say(EMILY, "what are the opening hours of the agency?")
    assert "Agence Roubaix-Tourcoing" in replies[0] and "Mon to Wed" in replies[0]
    replies = await chat.say(JOHN, "where do I send my home insurance certificate?")
    assert "agence.roubaix@habitat-nord-solidaire.example" in replies[0]
    assert "Sophie Lefebvre" in replies[0]


async def test_question_without_a_good_answer_is_passed_on(chat: Chat) -> None:
    replies = await chat.say(NADIA, "est-ce que je peux faire un barbecue sur mon balcon ?")
    assert "transmets" in replies[0]
    conv = await chat.conversation(NADIA)
    assert conv.state == "queued" and conv.intent == "question"


# -- bulky waste ----------------------------------------------------------------------------------


async def test_bulky_waste_next_collection_for_a_fixed_today(chat: Chat) -> None:
    replies = await chat.say(NADIA, "bonjour quand passent les encombrants ?")
    assert "mardi 10 mars" in replies[0] and "local vélos" in replies[0] and "pneus" in replies[0]
    replies = await chat.say(FATOU, "c quand le ramassage des encombrants")
    assert "lundi 16 mars" in replies[0]
    replies = await chat.say(JOHN, "when is the next bulky waste collection?")
    assert "Thursday 5 March" in replies[0] and "bin room" in replies[0]


async def test_items_dumped_in_a_common_area_become_a_request(chat: Chat) -> None:
    first = await chat.say(NADIA, "quelqu'un a abandonné un matelas et un frigo")
    assert "Où sont-ils" in first[-1]
    replies = await chat.say(NADIA, "devant le local poubelles")
    [req] = await chat.requests(NADIA)
    assert req.kind == "bulky_waste" and req.reference in replies[0]


# -- repairs and incidents ------------------------------------------------------------------------


async def test_repair_intake_over_several_turns_makes_one_complete_request(chat: Chat) -> None:
    assert (await chat.say(NADIA, "bonjour le chauffage marche plus")) == ["Depuis quand ?"]
    # No photo of a heating fault: the request exists once "since" is answered.
    replies = await chat.say(NADIA, "depuis 2 jours")
    [req] = await chat.requests(NADIA)
    assert req.reference and req.reference.startswith("R-2026-") and req.reference in replies[0]
    assert "Karim Benali" in replies[0]
    assert req.details["object"] == "chauffage" and req.details["place"] == "logement"
    assert req.details["since"] == "depuis 2 jours" and req.details["photo"] is False
    async with chat.rt.db.session() as s:
        handoff = (await s.execute(select(Handoff))).scalar_one()
    assert handoff.request_id == req.id and handoff.intent == "repair"


async def test_english_repair_intake(chat: Chat) -> None:
    first = await chat.say(JOHN, "hi there's a leak under my kitchen sink")
    assert first == ["Since when?"]
    assert "photo" in (await chat.say(JOHN, "since yesterday"))[0]
    replies = await chat.say(JOHN, "no")
    [req] = await chat.requests(JOHN)
    assert req.reference in replies[0] and "Sophie Lefebvre will handle it" in replies[0]


async def test_second_report_of_the_same_lift_joins_the_incident_and_both_are_told(
    chat: Chat,
) -> None:
    await chat.say(FATOU, "l'ascenseur est en panne")
    await chat.say(FATOU, "depuis ce matin")
    await chat.say(FATOU, "non")
    replies = await chat.say(CHANTAL, "bonjour l'ascenseur ne marche plus !!")
    assert "déjà signalé" in replies[0]
    [first] = await chat.requests(FATOU)
    [second] = await chat.requests(CHANTAL)
    assert first.incident_id is not None and first.incident_id == second.incident_id
    assert second.reference in replies[0]
    async with chat.rt.db.session() as s:
        assert (await s.execute(select(func.count(Incident.id)))).scalar_one() == 1
        # Joining a known incident adds no queue item.
        assert (await s.execute(select(func.count(Handoff.id)))).scalar_one() == 1
    # The caretaker closes the incident: every reporter is told, once.
    before = len(chat.channel.sent)
    async with chat.rt.db.transaction() as s:
        incident = await s.get(Incident, first.incident_id)
        assert incident is not None
        told = await on_incident_closed(s, incident, chat.rt.texts)
    chat.rt.outbox.wake()
    assert told == 2
    for _ in range(200):
        if len(chat.channel.sent) >= before + 2:
            break
        await asyncio.sleep(0.02)
    news = {o.address: o.text for o in chat.channel.sent[before:]}
    assert set(news) == {FATOU, CHANTAL} and all("est réglé" in t for t in news.values())


async def test_vulnerable_tenant_without_heating_goes_to_a_person_at_once(chat: Chat) -> None:
    replies = await chat.say(MONIQUE, "je n'ai plus de chauffage depuis hier soir")
    assert "Vu votre situation" in replies[0]
    conv = await chat.conversation(MONIQUE)
    assert conv.state == "queued" and conv.priority == 8


# -- emergencies -----------------------------------------------------------------------------------


async def test_emergency_gets_safety_instructions_before_anything_else(chat: Chat) -> None:
    chat.at(SATURDAY_NIGHT)
    replies = await chat.say(NADIA, "ça sent le gaz dans la cuisine")
    assert replies[0].startswith("URGENT") and "0 800 47 33 33" in replies[0]
    conv = await chat.conversation(NADIA)
    assert conv.state == "queued" and conv.priority == 10
    replies = await chat.say(EMILY, "help my son is stuck in the lift")
    assert "03 20 55 55 01" in replies[0] and "alarm button" in replies[0]


async def test_emergency_in_the_middle_of_a_repair_intake(chat: Chat) -> None:
    await chat.say(NADIA, "j'ai une fuite dans la salle de bain")
    replies = await chat.say(NADIA, "au secours l'eau coule du plafond partout c'est inondé")
    assert replies[0].startswith("URGENT") and "robinet général" in replies[0]


# -- status, people, failures, identity ---------------------------------------------------------------


async def test_status_request_quoting_the_reference(chat: Chat) -> None:
    await chat.say(NADIA, "la porte du hall ferme plus depuis hier")
    await chat.say(NADIA, "non")
    [req] = await chat.requests(NADIA)
    replies = await chat.say(NADIA, f"bonjour où en est ma demande {req.reference} ?")
    assert replies[0].startswith(req.reference) and "enregistrée" in replies[0]
    replies = await chat.say(NADIA, "ou en est ma demande R-2026-999999")
    assert "Je ne trouve pas" in replies[0]


async def test_human_request_and_out_of_hours(chat: Chat) -> None:
    chat.at(SATURDAY_NIGHT)
    replies = await chat.say(NADIA, "je veux parler à un conseiller")
    assert "lundi 9 mars à 8h00" in replies[0]
    conv = await chat.conversation(NADIA)
    assert conv.state == "queued" and conv.intent == "human_request"
    replies = await chat.say(EMILY, "can I talk to a real person please")
    assert "Monday 9 March at 07:30" in replies[0]


async def test_not_understood_twice_hands_off(chat: Chat) -> None:
    first = await chat.say(NADIA, "xkcd qwerty blop")
    assert "pas bien compris" in first[0]
    second = await chat.say(NADIA, "zrbl fnord glip")
    assert "personne de l'équipe" in second[0]
    assert (await chat.conversation(NADIA)).state == "queued"


async def test_unknown_sender_answered_then_linked_and_resumed(chat: Chat) -> None:
    stranger = "+33699999999"
    replies = await chat.say(stranger, "quels sont les horaires de l'agence ?")
    assert "numéro de locataire" in replies[-1]
    replies = await chat.say(stranger, "mon chauffage est en panne")
    assert "numéro de locataire" in replies[0]
    replies = await chat.say(stranger, "c'est L-10233")
    assert "Fatou" in replies[0] and replies[-1] == "Depuis quand ?"


# -- nuisance, several needs, language, satisfaction, restart ------------------------------------


async def test_nuisance_acknowledged_asked_and_handed_off_anonymously(chat: Chat) -> None:
    first = await chat.say(NADIA, "mon voisin fait la fête toutes les nuits")
    assert "pas facile" in first[0] and "D'où" in first[-1]
    replies = await chat.say(NADIA, "surtout le week-end après minuit, appartement 101")
    [req] = await chat.requests(NADIA)
    assert req.kind == "nuisance" and req.details["confidential"] is True
    assert "jamais donné" in replies[0]
    # A detail afterwards goes into the same report, not a new one.
    more = await chat.say(NADIA, "ils ont encore recommencé cette nuit jusqu'à 4h")
    assert req.reference in more[0] and len(await chat.requests(NADIA)) == 1


async def test_two_needs_in_one_message(chat: Chat) -> None:
    replies = await chat.say(
        NADIA, "j'ai une fuite dans la cuisine et aussi quand passent les encombrants ?"
    )
    assert "mardi 10 mars" in replies[0] and replies[-1] == "Depuis quand ?"


async def test_other_language_gets_a_line_in_it_and_a_person(chat: Chat) -> None:
    replies = await chat.say(NADIA, "hola buenos días, tengo una pregunta por favor")
    assert replies[0].startswith("Hola, hemos recibido su mensaje")
    conv = await chat.conversation(NADIA)
    assert conv.state == "queued" and conv.language == "es"


async def test_satisfaction_after_close_is_stored(chat: Chat) -> None:
    await chat.say(NADIA, "je veux parler à quelqu'un")
    async with chat.rt.db.transaction() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        conv.state = "closed"
        conv.closed_at = datetime.now(PARIS)
        assert await on_closed(s, conv, chat.rt.texts)
    chat.rt.outbox.wake()
    replies = await chat.say(NADIA, "5")
    assert replies[-1].startswith("Merci pour votre note")
    conv = await chat.conversation(NADIA)
    assert conv.satisfaction == 5 and conv.state == "bot"


async def test_a_restart_in_the_middle_of_an_intake_resumes(
    sqlite_url: str, engine_model: Path
) -> None:
    async def session(lines: list[str]) -> list[list[str]]:
        channel = RecordingChannel("terminal")
        engine = build_engine(kind="embedded", model_path=engine_model, data_dir=DATA_DIR)
        rt = Runtime(make_settings(sqlite_url), engine=engine, channels={"terminal": channel})
        await rt.start(Roles(consume=True, outbox=True, recover=False))
        c = Chat(rt, channel)
        c.at(TUESDAY_10AM)
        try:
            return [await c.say(NADIA, line) for line in lines]
        finally:
            await rt.stop()

    assert (await session(["fuite sous l'évier de la cuisine"])) == [["Depuis quand ?"]]
    out = await session(["depuis ce matin", "non"])
    assert "photo" in out[0][0] and "R-2026-" in out[1][0]


def test_relais_chat_command_with_a_fixed_clock(tmp_path: Path, nlu_model_path: Path) -> None:
    env = {
        **os.environ,
        "RELAIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}",
        "RELAIS_NLU_MODEL_PATH": str(nlu_model_path),
        "RELAIS_REDIS_URL": "",
        "RELAIS_FAKE_NOW": "2026-03-03T10:00:00+01:00",
    }
    script = "\n".join(
        [
            "quand passent les encombrants ?",
            "ça sent le gaz dans l'entrée",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "chat", "--phone", NADIA],
        input=script + "\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "mardi 10 mars" in lines[0]
    assert lines[1].startswith("URGENT") and "0 800 47 33 33" in lines[1]


async def test_a_batch_reads_what_its_earlier_turns_wrote(
    sqlite_url: str, engine_model: Path
) -> None:
    """A worker behind on a burst takes many messages in one transaction, reading tenants,
    requests and incidents once for all of them: what a turn of the batch writes (a request, a
    building incident) must still be seen by the next turns, as if they had come one by one."""
    channel = RecordingChannel("terminal")
    engine = build_engine(kind="embedded", model_path=engine_model, data_dir=DATA_DIR)
    rt = Runtime(make_settings(sqlite_url), engine=engine, channels={"terminal": channel})
    await rt.start(Roles(consume=False, outbox=True, recover=False))
    rt.pipeline.clock = lambda: TUESDAY_10AM
    try:
        script = [
            (FATOU, "l'ascenseur est en panne"),
            (FATOU, "depuis ce matin"),
            (FATOU, "non"),
            (CHANTAL, "bonjour l'ascenseur ne marche plus !!"),
            (FATOU, "où en est ma demande ?"),
            (NADIA, "bonjour"),
        ]
        ids = [
            (await rt.ingest(Inbound(channel="terminal", address=a, text=t))).message_id
            for a, t in script
        ]
        await rt.pipeline.process_many(ids)
        await rt.outbox.drain()
        chat = Chat(rt, channel)
        [first] = await chat.requests(FATOU)
        [second] = await chat.requests(CHANTAL)
    finally:
        await rt.stop()
    said = {a: [o.text for o in channel.sent if o.address == a] for a in (FATOU, CHANTAL, NADIA)}
    assert first.incident_id is not None and first.incident_id == second.incident_id
    assert "déjà signalé" in said[CHANTAL][0] and second.reference in said[CHANTAL][0]
    assert first.reference in said[FATOU][-1]  # the status of the request made in the batch
    assert said[NADIA] and "Nadia" in said[NADIA][0]  # known by her phone, fetched for the batch


def test_relais_chat_trace_prints_one_json_line_per_line(
    tmp_path: Path, nlu_model_path: Path
) -> None:
    """The trace contract: one JSON object per stdin line, `/wait` runs what falls due."""
    env = {
        **os.environ,
        "RELAIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'trace.sqlite3'}",
        "RELAIS_NLU_MODEL_PATH": str(nlu_model_path),
        "RELAIS_REDIS_URL": "",
        "RELAIS_FAKE_NOW": "2026-03-03T10:00:00+01:00",
    }
    script = "le robinet de la douche goutte\n/wait 45m\nça sent le gaz dans l'entrée\n"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "chat", "--phone", NADIA, "--trace"],
        input=script,
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO_ROOT,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 3
    keys = {"text", "intent", "confidence", "language", "entities", "replies", "request"}
    assert all(keys | {"handoff", "alerts"} <= set(line) for line in lines)
    first, wait, gas = lines
    assert first["intent"] == "repair" and first["request"] is None
    assert first["replies"] == ["Depuis quand ?"]
    # Silence: the intake became a request and the tenant was told its reference.
    assert wait["text"] == "/wait 45m" and wait["request"]["kind"] == "repair"
    assert wait["request"]["reference"] in wait["replies"][0]
    assert wait["handoff"]["status"] == "queued" and "robinet" in wait["handoff"]["reason"]
    # An emergency while the conversation already waits for a person: on-call at once.
    assert gas["replies"][0].startswith("URGENT") and gas["handoff"]["priority"] == "urgent"
    assert [a["to"] for a in gas["alerts"]] == ["oncall"]
    assert gas["request"]["kind"] == "emergency"


def test_relais_chat_help_lists_trace() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli.main", "chat", "--help"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0 and "--trace" in result.stdout
