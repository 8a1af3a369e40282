"""Managers edit the facts tenants get (/console/manager/facts) over HTTP: roles, CSRF,
validation, preview, audit, and the next tenant message gets the new facts (SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime

import httpx
import pytest
import redis.asyncio as redis
import yaml
from sqlalchemy import select

from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.dialogue.content import Content, export_faq, export_residences
from bot.messaging.bus import RedisBus
from bot.storage.models import AuditLog, ContentOverride, Residence
from tests import services
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.conftest import ClientFactory, csrf_of, sign_in
from tests.worker.test_pipeline import send, settled, until

NADIA = "+33612345600"  # Résidence Les Fleurs (FLEURS)
FLEURS = "/console/manager/facts/residences/FLEURS"
AGENCY_FAQ = "/console/manager/facts/faq/agency"


def monday_morning() -> datetime:
    return datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 7 December 2026, 10:00 in Paris


def residence_form(html: str) -> dict[str, str]:
    """The form's fields as the browser would send them back unchanged."""
    out = {}
    for name, value in re.findall(r'<input name="([^"]+)"[^>]*?value="([^"]*)"', html):
        out[name] = value
    for name, value in re.findall(r'<textarea name="([^"]+)"[^>]*>([^<]*)</textarea>', html):
        out[name] = value
    out["csrf"] = csrf_of(html)
    return {k: _unescape(v) for k, v in out.items()}


def _unescape(value: str) -> str:
    return (
        value.replace("&#39;", "'").replace("&quot;", '"').replace("&lt;", "<")
        .replace("&gt;", ">").replace("&amp;", "&")
    )  # fmt: skip


async def audit_of(rt: Runtime, target_type: str) -> list[AuditLog]:
    async with rt.db.session() as s:
        rows = await s.execute(
            select(AuditLog)
            .where(AuditLog.action == "edit_facts", AuditLog.target_type == target_type)
            .order_by(AuditLog.id)
        )
        return list(rows.scalars())


async def test_only_managers_see_or_edit_the_facts(client_for: ClientFactory) -> None:
    karim = await client_for("karim")  # caretaker of Les Fleurs
    for path in (
        "/console/manager/facts",
        FLEURS,
        AGENCY_FAQ,
        "/console/manager/facts/texts/greet",
    ):
        assert (await karim.get(path)).status_code == 403, path
    page = await karim.get("/console")
    r = await karim.post(FLEURS, data={"csrf": csrf_of(page.text), "bw_rule": "chaque lundi"})
    assert r.status_code == 403
    claire = await client_for("claire")
    index = await claire.get("/console/manager/facts")
    assert index.status_code == 200
    assert "Résidence Les Fleurs" in index.text and "Agence Lille Centre" in index.text
    # Without the CSRF token a manager's post is refused too.
    r = await claire.post(FLEURS, data={"bw_rule": "chaque lundi"})
    assert r.status_code == 403
    anonymous = await client_for(None)
    r = await anonymous.get("/console/manager/facts")
    assert r.status_code == 303 and "/console/login" in r.headers["location"]


async def test_collection_moved_then_the_tenant_gets_the_new_date(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    runtime.pipeline.clock = monday_morning
    runtime.clock = monday_morning
    claire = await client_for("claire")
    page = await claire.get(FLEURS)
    assert page.status_code == 200
    form = residence_form(page.text)
    assert form["bw_rule"] == "le 2e mardi du mois"
    # Second Tuesday of December 2026: the 8th. Moved to Thursday 10th, previewed first.
    form.update(bw_exceptions="2026-12-08 2026-12-10", action="preview")
    preview = await claire.post(FLEURS, data=form)
    assert preview.status_code == 200
    assert "jeudi 10 décembre" in preview.text and "SMS :" in preview.text
    assert "GSM-7" in preview.text
    async with runtime.db.session() as s:
        row = (await s.execute(select(Residence).where(Residence.code == "FLEURS"))).scalar_one()
        assert "exceptions" not in row.bulky_waste  # a preview saves nothing
    form["action"] = "save"
    saved = await claire.post(FLEURS, data=form)
    assert saved.status_code == 303
    assert (await claire.get(saved.headers["location"])).text.count("Enregistré") == 1
    await send(runtime, "quand passent les encombrants ?", address=NADIA, pid="E1")
    await settled(runtime)
    assert "jeudi 10 décembre" in recording.sent[-1].text, recording.sent[-1].text
    entries = await audit_of(runtime, "residence")
    assert entries[-1].actor == "claire" and entries[-1].detail["changed"] == ["bulky_waste"]


async def test_new_collection_day_and_bad_input_is_refused_with_reasons(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    runtime.pipeline.clock = monday_morning
    claire = await client_for("claire")
    form = residence_form((await claire.get(FLEURS)).text)
    bad = {
        **form,
        "bw_rule": "quand il fait beau",
        "ch_hours_0": "8h-midi",
        "bw_exceptions": "le 8 décembre",
        "lift_phone": "pas de numéro",
        "action": "save",
    }
    r = await claire.post(FLEURS, data=bad)
    assert r.status_code == 422
    assert "Jour de collecte non compris « quand il fait beau »" in r.text
    assert "Lundi : horaires non compris « 8h-midi »" in r.text
    assert "« pas de numéro » n&#39;est pas un numéro de téléphone" in r.text
    assert "ligne non comprise « le 8 décembre »" in r.text
    assert await audit_of(runtime, "residence") == []
    # English page, English reasons.
    claire.cookies.set("relais_lang", "en")
    r = await claire.post(FLEURS, data=bad)
    assert "Collection day not understood" in r.text
    claire.cookies.set("relais_lang", "fr")
    good = {**form, "bw_rule": "chaque mercredi", "bw_en": "every Wednesday", "action": "save"}
    assert (await claire.post(FLEURS, data=good)).status_code == 303
    await send(runtime, "encombrants ?", address=NADIA, pid="E2")
    await settled(runtime)
    assert "chaque mercredi, prochain passage le mercredi 9 décembre" in recording.sent[-1].text


async def test_faq_answer_edited_previewed_and_live(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    claire = await client_for("claire")
    page = await claire.get(AGENCY_FAQ)
    assert page.status_code == 200
    csrf = csrf_of(page.text)
    new = "Agence {agency} : {agency_address}. Accueil sans rendez-vous le mardi matin."
    base = {"csrf": csrf, "answer_en": "Agency {agency}.", "examples": "où est mon agence"}
    bad = await claire.post(
        AGENCY_FAQ, data={**base, "answer_fr": "Voir {agence}.", "action": "save"}
    )
    assert bad.status_code == 422 and "champ inconnu {agence}" in bad.text
    preview = await claire.post(
        AGENCY_FAQ, data={**base, "answer_fr": new, "residence": "CANAL", "action": "preview"}
    )
    assert "Agence Roubaix-Tourcoing : 8 place de la Liberté, 59100 Roubaix." in preview.text
    saved = await claire.post(AGENCY_FAQ, data={**base, "answer_fr": new, "action": "save"})
    assert saved.status_code == 303
    await send(runtime, "où est mon agence", address=NADIA, pid="F1")
    await settled(runtime)
    assert "Accueil sans rendez-vous le mardi matin" in recording.sent[-1].text
    assert "Agence Lille Centre" in recording.sent[-1].text
    [entry] = await audit_of(runtime, "faq")
    assert entry.detail["after"]["fr"] == new
    # Exported as faq.yml; the seed itself is untouched.
    async with runtime.db.session() as s:
        content = Content(runtime.settings.data)
        await content.refresh(s)
    exported = yaml.safe_load(export_faq(content))
    agency = next(e for e in exported["faq"] if e["id"] == "agency")
    assert agency["answer"]["fr"] == new and agency["examples"] == ["où est mon agence"]
    assert new not in runtime.settings.data.file("faq.yml").read_text(encoding="utf-8")
    # Back to the seed.
    page = await claire.get(AGENCY_FAQ)
    r = await claire.post(AGENCY_FAQ, data={"csrf": csrf_of(page.text), "action": "reset"})
    assert r.status_code == 303
    async with runtime.db.session() as s:
        row = (await s.execute(select(ContentOverride))).scalar_one()
        assert row.value is None
    await send(runtime, "où est mon agence", address=NADIA, pid="F2")
    await settled(runtime)
    assert "mardi matin" not in recording.sent[-1].text


async def test_a_text_edited_with_sms_figures_and_its_placeholders_checked(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    claire = await client_for("claire")
    path = "/console/manager/facts/texts/greet"
    page = await claire.get(path)
    assert "{landlord}" in page.text and "{name}" in page.text
    csrf = csrf_of(page.text)
    long_text = "Bonjour{name} ! " + "é" * 200
    preview = await claire.post(
        path, data={"csrf": csrf, "text_fr": long_text, "text_en": "Hi", "action": "preview"}
    )
    assert "216 caractères, 2 SMS (GSM-7)" in preview.text  # é folds to e: GSM-7, 2 parts
    emoji = await claire.post(
        path, data={"csrf": csrf, "text_fr": "Bonjour{name} ! Ça va ? \u0416", "action": "preview"}
    )
    assert "(UCS-2)" in emoji.text
    bad = await claire.post(
        path, data={"csrf": csrf, "text_fr": "Bonjour {prenom}", "action": "save"}
    )
    assert bad.status_code == 422 and "{prenom}" in bad.text
    unbalanced = await claire.post(
        path, data={"csrf": csrf, "text_fr": "Bonjour {", "action": "save"}
    )
    assert unbalanced.status_code == 422 and "accolades" in unbalanced.text
    ok = await claire.post(
        path,
        data={
            "csrf": csrf,
            "text_fr": "Bienvenue{name} chez {landlord} !",
            "text_en": "",
            "action": "save",
        },
    )
    assert ok.status_code == 303
    await send(runtime, "bonjour", address=NADIA, pid="T1")
    await settled(runtime)
    assert recording.sent[-1].text == "Bienvenue Nadia chez Habitat Nord Solidaire !"


async def test_agency_closure_and_hours(
    runtime: Runtime, recording: RecordingChannel, client_for: ClientFactory
) -> None:
    runtime.pipeline.clock = monday_morning
    claire = await client_for("claire")
    path = "/console/manager/facts/agencies/lille"
    form = residence_form((await claire.get(path)).text)
    assert form["hours_0"] == "08:30-12:00, 13:30-17:00"
    form.update(closures="2026-12-24 2026-12-26 Noël", action="save")
    r = await claire.post(path, data=form)
    assert r.status_code == 303, r.text
    async with runtime.db.session() as s:
        rows = {r.code: r.agency for r in (await s.execute(select(Residence))).scalars()}
    assert rows["FLEURS"]["hours"]["closed"] == [
        {"from": "2026-12-24", "to": "2026-12-26", "note": "Noël"}
    ]
    assert rows["PARC"]["hours"]["closed"] == rows["FLEURS"]["hours"]["closed"]
    assert "closed" not in rows["CANAL"]["hours"]  # another agency
    await send(runtime, "quels sont les horaires de l'agence", address=NADIA, pid="A1")
    await settled(runtime)
    assert "fermée du jeudi 24 décembre au samedi 26 décembre" in recording.sent[-1].text
    async with runtime.db.session() as s:
        exported = yaml.safe_load(await export_residences(s))
    assert exported["agencies"]["lille"]["hours"]["closed"][0]["note"] == "Noël"
    assert [r["code"] for r in exported["residences"]][:1] == ["FLEURS"]


async def test_content_change_reaches_another_process_by_the_live_event(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    """A second runtime on the same database and bus (another worker) reloads on the event."""
    other = Content(runtime.settings.data)
    async with runtime.db.session() as s:
        await other.refresh(s)
    assert not other.stale
    async with runtime.bus.subscribe() as events:
        claire = await client_for("claire")
        page = await claire.get("/console/manager/facts/texts/thanks")
        await claire.post(
            "/console/manager/facts/texts/thanks",
            data={"csrf": csrf_of(page.text), "text_fr": "Merci à vous !", "action": "save"},
        )
        event = await events.get()
    assert event == {"type": "content_changed"}
    stop = asyncio.Event()
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    queue.put_nowait(event)
    watcher = asyncio.create_task(other.watch(queue, stop))
    await asyncio.sleep(0.05)
    stop.set()
    await watcher
    assert other.stale
    async with runtime.db.session() as s:
        assert await other.refresh(s)
    assert other.texts.get("thanks") == "Merci à vous !"


@pytest.mark.redis
async def test_an_edit_in_the_console_process_reaches_a_worker_process_through_redis(
    sqlite_url: str,
) -> None:
    """Two runtimes as two processes would be: a console-only gateway and a worker, sharing
    the database and Redis. The worker never sees the edit happen, only the live event."""
    services.need_redis()
    prefix = f"relais-test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(sqlite_url)
    recording = RecordingChannel("sms")

    def bus() -> RedisBus:
        return RedisBus(services.REDIS_URL, partitions=2, prefix=prefix, heartbeat_s=0.2)

    console = Runtime(settings, engine=KeywordEngine(), bus=bus(), channels={"sms": recording})
    worker = Runtime(settings, engine=KeywordEngine(), bus=bus(), channels={"sms": recording})
    await console.start(Roles(consume=False, outbox=False, recover=False, retention=False))
    await worker.start(Roles(consume=True, outbox=True, recover=False, retention=False))
    app = create_app(settings, runtime=console, prepare=False)
    try:
        await console.ingest(Inbound("sms", NADIA, "merci", provider_id="R1"))
        await until(lambda: len(recording.sent) == 1, timeout=20)
        assert recording.sent[-1].text == "Avec plaisir ! Je reste là si besoin."
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as claire:
            await sign_in(claire, "claire")
            # Her second thanks in the same conversation gets the `_again` variant (the
            # dialogue never says the same sentence twice): that is the text edited.
            page = await claire.get("/console/manager/facts/texts/thanks_again")
            r = await claire.post(
                "/console/manager/facts/texts/thanks_again",
                data={"csrf": csrf_of(page.text), "text_fr": "Merci à vous !", "action": "save"},
            )
            assert r.status_code == 303
        await until(lambda: worker.content.stale, timeout=10)
        await console.ingest(Inbound("sms", NADIA, "merci", provider_id="R2"))
        await until(lambda: len(recording.sent) == 2, timeout=20)
        assert recording.sent[-1].text == "Merci à vous !"
    finally:
        await worker.stop()
        await console.stop()
        async with redis.from_url(services.REDIS_URL) as r:
            keys = [k async for k in r.scan_iter(f"{prefix}:*")]
            if keys:
                await r.delete(*keys)
