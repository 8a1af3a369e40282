"""Requests followed to the end from the console, on SQLite and PostgreSQL: the two-tap moves
and what the tenant is told, quiet hours, late requests and their reminders, unanswered ones
closed, and announcements to a building."""

from __future__ import annotations

import asyncio
import dataclasses
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from bot.app.runtime import Roles, Runtime
from bot.storage.models import (
    AuditLog,
    Broadcast,
    Conversation,
    Incident,
    OptOut,
    Outbox,
    Request,
    RequestEvent,
)
from handoff.broadcasts import counts
from handoff.followup import close_unanswered, remind_late
from nlu.types import Entity, Parse
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.conftest import ClientFactory, csrf_for
from tests.handoff.test_browser import png
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # FLEURS, building A: Karim's residence
# Tuesday 1 December 2026, 10:00 in Paris: inside working hours, outside quiet hours.
TUESDAY_10AM = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Engine(KeywordEngine):
    """The keyword engine, plus the one entity these stories need: the lift."""

    async def parse(self, text: str) -> Parse:
        parse = await super().parse(text)
        at = text.lower().find("ascenseur")
        if at < 0:
            return parse
        lift = Entity("object", "ascenseur", text[at : at + 9], at, at + 9)
        return dataclasses.replace(parse, entities=(*parse.entities, lift))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY_10AM)


@pytest.fixture
async def runtime(
    database_url: str, recording: RecordingChannel, clock: Clock
) -> AsyncIterator[Runtime]:
    """A started runtime on a clock the test moves; SMS to a recording channel."""
    rt = Runtime(
        make_settings(database_url),
        engine=Engine(),
        channels={"sms": recording, "terminal": recording, "telegram": recording},
        clock=clock,
    )
    await rt.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
    try:
        yield rt
    finally:
        await rt.stop()


_pids = iter(range(100_000))


async def say(rt: Runtime, text: str, address: str = NADIA) -> None:
    await send(rt, text, address=address, pid=f"p{next(_pids)}")
    await settled(rt)


async def open_repair(rt: Runtime, recording: RecordingChannel, address: str = NADIA) -> Request:
    await say(rt, "Il y a une fuite sous l'évier de la cuisine", address)
    for answer in ("depuis hier", "non", "non"):
        if any("R-20" in t for t in recording.texts()):
            break
        await say(rt, answer, address)
    async with rt.db.session() as s:
        return (await s.execute(select(Request).order_by(Request.id.desc()).limit(1))).scalar_one()


async def move(client: httpx.AsyncClient, request_id: int, **data: object) -> httpx.Response:
    return await client.post(
        f"/console/requests/{request_id}/move", data={"csrf": await csrf_for(client), **data}
    )


async def test_two_taps_from_the_console_tell_the_tenant_each_step(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    request = await open_repair(runtime, recording)
    ref = request.reference
    karim = await client_for("karim")
    page = (await karim.get(f"/console/c/{request.conversation_id}")).text
    assert "Suivi de la demande" in page and ref in page and "Reçue" in page
    # The chips: the residence's next working days, two half-days each, from today.
    chips = re.findall(r'name="when" value="([^"]+)"', page)
    assert chips[:4] == [
        "2026-12-01|morning",
        "2026-12-01|afternoon",
        "2026-12-02|morning",
        "2026-12-02|afternoon",
    ]
    assert "Ascenseurs du Nord" in page  # the residence's lift company, one tap away

    def told() -> str:
        return recording.sent[-1].text

    r = await move(karim, request.id, status="taken")
    assert r.status_code == 303 and r.headers["location"] == f"/console/c/{request.conversation_id}"
    await settled(runtime)
    assert told() == f"Votre demande {ref} est prise en charge par Karim Benali."

    r = await move(karim, request.id, status="scheduled", when="2026-12-03|afternoon")
    await settled(runtime)
    assert told() == f"Votre demande {ref} : intervention prévue le jeudi 3 décembre l'après-midi."

    # Christmas is no working day: refused, said on the page, nothing sent.
    sent = len(recording.sent)
    r = await move(karim, request.id, status="scheduled", day="2026-12-25", slot="morning")
    page = (await karim.get(r.headers["location"])).text
    assert "pas un jour ouvré" in page and len(recording.sent) == sent

    r = await move(karim, request.id, status="waiting_contractor", contractor="Ascenseurs du Nord")
    await settled(runtime)
    assert "nous attendons l'intervention de l'entreprise Ascenseurs du Nord" in told()

    csrf = await csrf_for(karim)
    r = await karim.post(
        f"/console/requests/{request.id}/move",
        data={"csrf": csrf, "status": "done", "note": "Joint du siphon changé"},
        files={"photo": ("siphon.png", png(), "image/png")},
    )
    assert r.status_code == 303
    await settled(runtime)
    assert told() == (
        f"Votre demande {ref} est marquée réparée. Est-ce bien le cas ? Répondez OUI ou NON."
    )
    async with runtime.db.session() as s:
        events = list((await s.execute(select(RequestEvent).order_by(RequestEvent.id))).scalars())
        conv = await s.get(Conversation, request.conversation_id)
    assert [(e.from_status, e.to_status) for e in events] == [
        ("", "received"),
        ("received", "taken"),
        ("taken", "scheduled"),
        ("scheduled", "waiting_contractor"),
        ("waiting_contractor", "done"),
    ]
    assert {e.actor for e in events[1:]} == {"staff:karim"}
    assert events[-1].note == "Joint du siphon changé"
    assert conv is not None and conv.state == "bot"
    assert conv.dialogue == {"asked": "repair_confirmation", "confirming": ref}
    photo = f"/console/requests/{request.id}/photo/{events[-1].data['photo']}"
    got = await karim.get(photo)
    assert got.status_code == 200 and got.content == png()

    # Another residence's caretaker can neither move it nor see its photo.
    sophie = await client_for("sophie")
    assert (await move(sophie, request.id, status="reopened")).status_code == 403
    assert (await sophie.get(photo)).status_code == 404
    # A move that makes no sense is refused with the reason, on the page.
    r = await move(karim, request.id, status="scheduled", when="2026-12-04|morning")
    assert "Impossible depuis" in (await karim.get(r.headers["location"])).text


async def test_quiet_hours_hold_status_messages_but_not_replies_nor_emergencies(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory, clock: Clock
) -> None:
    request = await open_repair(runtime, recording)
    karim = await client_for("karim")
    clock.now = datetime(2026, 12, 1, 20, 30, tzinfo=UTC)  # 21:30 in Paris
    sent = len(recording.sent)
    await move(karim, request.id, status="taken")
    async with runtime.db.session() as s:
        held = (await s.execute(select(Outbox).where(Outbox.status == "pending"))).scalar_one()
    assert held.next_attempt_at == datetime(2026, 12, 2, 7, 0, tzinfo=UTC)  # 08:00 in Paris
    assert held.conversation_id is None  # it keeps nothing of the thread waiting
    # The tenant writes meanwhile: the bot's answer is not held behind it.
    await send(runtime, "merci", address=NADIA, pid="night-1")
    for _ in range(200):
        if len(recording.sent) > sent:
            break
        await runtime.outbox.dispatch_due()
        await asyncio.sleep(0.02)
    assert len(recording.sent) == sent + 1 and "prise en charge" not in recording.sent[-1].text
    # At the end of the quiet hours it goes.
    clock.now = datetime(2026, 12, 2, 7, 0, 1, tzinfo=UTC)
    runtime.outbox.wake()
    await settled(runtime)
    assert recording.sent[-1].text.endswith("est prise en charge par Karim Benali.")

    # An emergency's news is never held.
    clock.now = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)
    await say(runtime, "ça sent le gaz dans l'escalier", "+33612345604")
    async with runtime.db.session() as s:
        urgent = (await s.execute(select(Request).where(Request.kind == "emergency"))).scalar_one()
    assert urgent.due_at == clock.now + timedelta(hours=24)
    karim = await client_for("karim")  # a day later: signed in again
    await move(karim, urgent.id, status="taken")
    await settled(runtime)
    assert (
        recording.sent[-1].text
        == f"Votre demande {urgent.reference} est prise en charge par Karim Benali."
    )


async def test_late_requests_are_shown_reminded_then_unanswered_ones_closed(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory, clock: Clock
) -> None:
    request = await open_repair(runtime, recording)
    # 15 working days from Tuesday 1 December: Christmas is not one; due 22 December.
    assert request.due_at == datetime(2026, 12, 22, 22, 59, tzinfo=UTC)
    karim = await client_for("karim")
    assert "Demandes en retard" not in (await karim.get("/console")).text
    clock.now = datetime(2026, 12, 23, 9, 0, tzinfo=UTC)
    karim = await client_for("karim")  # weeks later: signed in again
    queue = (await karim.get("/console")).text
    assert "Demandes en retard" in queue and request.reference in queue
    assert "En retard" in (await karim.get(f"/console/c/{request.conversation_id}")).text
    claire = await client_for("claire")
    assert request.reference in (await claire.get("/console/manager")).text
    sophie = await client_for("sophie")
    assert request.reference not in (await sophie.get("/console")).text

    assert await remind_late(runtime) == 1  # Karim, FLEURS' caretaker
    assert await remind_late(runtime) == 0  # once
    clock.now += timedelta(hours=25)
    assert await remind_late(runtime) == 1  # then Claire, the manager
    assert await remind_late(runtime) == 0
    await settled(runtime)
    alerts = [o for o in recording.sent if o.extra.get("staff_alert") == "late"]
    assert [o.address for o in alerts] == ["+33611000001", "+33611000010"]
    assert request.reference in alerts[0].text and "Nadia" not in alerts[0].text

    # Done, and the tenant never answers: closed after seven days, without a word.
    karim = await client_for("karim")
    await move(karim, request.id, status="done")
    await settled(runtime)
    sent = len(recording.sent)
    clock.now += timedelta(days=6)
    assert await close_unanswered(runtime) == 0
    clock.now += timedelta(days=2)
    assert await close_unanswered(runtime) == 1
    async with runtime.db.session() as s:
        row = await s.get(Request, request.id)
        conv = await s.get(Conversation, request.conversation_id)
    assert row is not None and row.status == "closed"
    assert conv is not None and conv.dialogue == {}
    await settled(runtime)
    assert len(recording.sent) == sent


async def test_an_announcement_reaches_the_building_and_makes_reports_known(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    async with runtime.db.transaction() as s:
        s.add(OptOut(channel="sms", address="+33612345612"))  # Samira said STOP
    karim = await client_for("karim")
    page = (await karim.get("/console/broadcasts")).text
    assert "Résidence Les Fleurs" in page and "Canal" not in page
    r = await karim.post(
        "/console/broadcasts",
        data={
            "csrf": await csrf_for(karim),
            "residence": "1",
            "building": "A",
            "problem": "ascenseur",
            "text": "Ascenseur du bâtiment A en panne, réparation prévue jeudi.",
        },
    )
    assert r.status_code == 303
    await settled(runtime)
    async with runtime.db.session() as s:
        incident = (await s.execute(select(Incident))).scalar_one()
        broadcast = (await s.execute(select(Broadcast))).scalar_one()
        c = await counts(s, broadcast)
        audited = (
            await s.execute(select(AuditLog).where(AuditLog.action == "broadcast"))
        ).scalar_one()
    assert (incident.key, incident.building) == ("ascenseur", "A")
    told = {o.address for o in recording.sent}
    assert NADIA in told and "+33612345612" not in told and "+33612345604" not in told
    assert c.recipients >= 3 and c.suppressed == 1 and c.sent == c.recipients - 1
    assert audited.detail["recipients"] == c.recipients
    page = (await karim.get("/console/broadcasts")).text
    assert f"{c.recipients} destinataires" in page and "1 désinscrits" in page
    # Sophie (Canal) may not announce to Les Fleurs.
    sophie = await client_for("sophie")
    r = await sophie.post(
        "/console/broadcasts",
        data={"csrf": await csrf_for(sophie), "residence": "1", "text": "x"},
    )
    assert r.status_code == 403

    # A tenant of building A reports the lift: it is known.
    await say(runtime, "l'ascenseur est en panne", "+33612345624")
    assert "déjà signalé" in recording.sent[-1].text


# -- the request card in words (issue 19) -------------------------------------------------

TWILIO_PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"


def card_of(page: str) -> str:
    """The request card of a conversation page, its moves left out."""
    card = page[page.index('id="card-live"') :]
    return card[: card.index('<div class="moves">')] if '<div class="moves">' in card else card


async def test_the_request_card_speaks_words_not_the_data_model(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    from bot.core.types import Media
    from bot.storage.models import Tenant

    await send(
        runtime,
        "",
        address=NADIA,
        pid="photo-1",
        media=(Media(kind="photo", url=TWILIO_PHOTO, content_type="image/jpeg"),),
    )
    await settled(runtime)
    request = await open_repair(runtime, recording)
    # What the dialogue stores for "une fuite dans la cuisine depuis ce matin", with a photo.
    async with runtime.db.transaction() as s:
        row = await s.get(Request, request.id)
        assert row is not None
        row.details = {
            "what": "ça fuit sous l'évier",
            "object": "fuite",
            "place": "cuisine",
            "area": "dwelling",
            "since": "depuis ce matin",
            "photo": True,
            "notes": ["depuis ce matin", "le voisin du dessous a une tache"],
            "text": "ça fuit sous l'évier",
        }
        row.due_at = datetime(2026, 12, 3, 17, 0, tzinfo=UTC)  # Thursday 3 December, 18:00
        tenant = await s.get(Tenant, row.tenant_id)
        assert tenant is not None
        tenant.vulnerable, tenant.vulnerability = True, "personne âgée, vit seule"
    async with runtime.db.session() as s:
        from bot.storage.models import Attachment

        photo = (await s.execute(select(Attachment.id))).scalar_one()
    karim = await client_for("karim")
    card = card_of((await karim.get(f"/console/c/{request.conversation_id}")).text)
    assert "<dt>Problème</dt><dd>Fuite — « ça fuit sous l&#39;évier »</dd>" in card
    assert "<dt>Lieu</dt><dd>Cuisine (dans le logement)</dd>" in card
    assert "<dt>Depuis</dt><dd>depuis ce matin</dd>" in card
    # Said once: "depuis ce matin" is the "since", not repeated among the details.
    assert "<dt>Précisions</dt><dd>le voisin du dessous a une tache</dd>" in card
    assert "Locataire fragile" in card and "personne âgée, vit seule" in card
    assert "À traiter avant le jeudi 3 décembre" in card and "Reçue" in card
    assert f'<img src="/console/media/{photo}"' in card
    for raw in ("area", "dwelling", "object", "True", "[&#39;", "['", "what"):
        assert raw not in card.replace('id="card-live"', ""), raw
    # English, from the same catalogue.
    karim.cookies.set("relais_lang", "en")
    card = card_of((await karim.get(f"/console/c/{request.conversation_id}")).text)
    assert "<dt>Problem</dt><dd>Leak — « ça fuit sous l&#39;évier »</dd>" in card
    assert "<dt>Place</dt><dd>Kitchen (in the home)</dd>" in card
    assert "Due by Thursday 3 December" in card and "Vulnerable tenant" in card
    karim.cookies.set("relais_lang", "fr")
    # Due today: said so, with the hour.
    async with runtime.db.transaction() as s:
        row = await s.get(Request, request.id)
        assert row is not None
        row.due_at = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # today (Tuesday), 18:00
    card = card_of((await karim.get(f"/console/c/{request.conversation_id}")).text)
    assert "À traiter aujourd&#39;hui, avant 18h00" in card
    # The caretaker's photo of the repair shows beside the tenant's.
    assert (await move(karim, request.id, status="taken")).status_code == 303
    csrf = await csrf_for(karim)
    r = await karim.post(
        f"/console/requests/{request.id}/move",
        data={"csrf": csrf, "status": "done", "note": "Joint changé"},
        files={"photo": ("joint.png", png(), "image/png")},
    )
    assert r.status_code == 303
    card = card_of((await karim.get(f"/console/c/{request.conversation_id}")).text)
    assert "Photos de l&#39;intervention" in card
    done = re.search(
        rf'<img src="(/console/requests/{request.id}/photo/[0-9a-f]{{32}}\.png)"', card
    )
    assert done is not None
    assert (await karim.get(done.group(1))).content == png()
    # Another residence's caretaker sees neither the card nor its photos.
    sophie = await client_for("sophie")
    assert (await sophie.get(f"/console/c/{request.conversation_id}")).status_code == 403
    assert (await sophie.get(done.group(1))).status_code == 404
    assert (await sophie.get(f"/console/media/{photo}")).status_code == 403
