"""A manager changes a residence's collection day and a FAQ answer in headless Chromium; the
next tenant message gets the new facts. Screenshots at phone and desktop widths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.types import Inbound
from tests.browser import DESKTOP, PHONE, Server, launch, need_chromium, serve_in_thread
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_manager_browser import fits_the_width, shot, sign_in
from tests.worker.test_pipeline import settled

pytestmark = pytest.mark.browser

NADIA = "+33612345600"  # Résidence Les Fleurs: bulky waste the 2nd Tuesday of the month


def monday() -> datetime:
    return datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # Monday 7 December 2026


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Any]:
    path = tmp_path_factory.mktemp("facts-browser") / "relais.sqlite3"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", public_url="http://127.0.0.1")
    recording = RecordingChannel("sms")
    runtime = Runtime(settings, engine=KeywordEngine(), channels={"sms": recording})
    app = create_app(settings, runtime=runtime, prepare=True)
    with serve_in_thread(app, runtime) as srv:
        runtime.pipeline.clock = monday
        runtime.clock = monday  # the console's preview says what the tenant would get that day
        yield srv, recording


def tenant_says(server: Server, recording: RecordingChannel, text: str) -> str:
    async def go(rt: Runtime) -> None:
        await rt.ingest(Inbound("sms", NADIA, text))
        await settled(rt)

    server.run(go(server.runtime))
    return recording.sent[-1].text


def test_manager_changes_collection_day_and_faq_answer_then_tenant_gets_them(
    served: Any, browser: Any
) -> None:
    server, recording = served
    before = tenant_says(server, recording, "quand passent les encombrants ?")
    assert "le 2e mardi du mois, prochain passage le mardi 8 décembre" in before

    page = sign_in(browser, server, PHONE)
    page.click("nav.subnav >> text=Informations")
    page.wait_for_selector("h1 >> text=Informations données aux locataires")
    assert fits_the_width(page)
    shot(page, "manager-facts-phone")

    # The collection day: previewed as Nadia would receive it, then saved.
    page.click("text=Résidence Les Fleurs")
    page.fill("#bw_rule", "chaque jeudi")
    page.fill("input[name=bw_en]", "every Thursday")
    page.fill("#bw_exceptions", "2026-12-10 2026-12-11")  # this week's moved to Friday
    page.click("button[value=preview]")
    preview = page.locator("#preview").inner_text()
    assert "chaque jeudi, prochain passage le vendredi 11 décembre" in preview
    assert "SMS :" in preview and "GSM-7" in preview
    assert fits_the_width(page)
    shot(page, "manager-facts-residence-preview-phone")
    page.click("button[value=save]")
    page.wait_for_selector("p.notice.ok")

    # A FAQ answer.
    page.click("text=← Informations")
    page.click('a[href="/console/manager/facts/faq/agency"]')
    page.fill(
        "#answer_fr", "Votre agence : {agency}, {agency_address}. Permanence le samedi 9h-12h."
    )
    page.click("button[value=preview]")
    assert (
        "Votre agence : Agence Lille Centre, 25 rue Nationale"
        in page.locator("#preview").inner_text()
    )
    page.click("button[value=save]")
    page.wait_for_selector("p.notice.ok")
    assert fits_the_width(page)
    shot(page, "manager-facts-faq-phone")

    # The next tenant messages get the new facts, without a restart.
    bulky = tenant_says(server, recording, "quand passent les encombrants ?")
    assert "chaque jeudi, prochain passage le vendredi 11 décembre" in bulky
    answer = tenant_says(server, recording, "où est mon agence")
    assert "Permanence le samedi 9h-12h" in answer

    # Both edits are in the audit log.
    page.click("nav.subnav >> text=Journal")
    entries = page.locator("ol.audit").inner_text()
    assert entries.count("edit_facts") >= 2 or "Claire Dubois" in entries
    assert page.dialogs == []

    desk = sign_in(browser, server, DESKTOP)
    desk.goto(server.url + "/console/manager/facts/residences/FLEURS")
    desk.click("button[value=preview]")
    desk.wait_for_selector("#preview")
    shot(desk, "manager-facts-residence-desktop")
    desk.goto(server.url + "/console/manager/facts")
    shot(desk, "manager-facts-desktop")
    assert desk.dialogs == []
