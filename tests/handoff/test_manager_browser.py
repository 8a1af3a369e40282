"""The manager pages in headless Chromium against a real uvicorn: sign in, find a conversation,
export CSV, see it counted on the dashboard; screenshots at phone and desktop widths."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.types import Inbound
from bot.storage.models import Conversation, Handoff, Message
from bot.storage.models import Request as Ticket
from tests.browser import (
    DESKTOP,
    PHONE,
    SHOTS,
    Server,
    launch,
    need_chromium,
    serve_in_thread,
    watch_csp,
)
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_csp_violations")]

XSS = "<img src=x onerror=alert(1)>"
NEEDLE = "compteur d'eau"

# (channel, address, texts, days ago, minutes to a person's first reply, satisfaction)
STORY: list[tuple[str, str, tuple[str, ...], int, int | None, int | None]] = [
    ("sms", "+33612345600", (f"Le {NEEDLE} est cassé, ça coule", "dans la cuisine"), 0, None, None),
    ("sms", "+33612345601", ("je veux parler à un conseiller",), 1, 12, 4),
    ("sms", "+33612345602", ("mon voisin fait du tapage toutes les nuits",), 3, 35, 3),
    ("sms", "+33612345603", ("ça sent le gaz dans l'escalier",), 5, 4, 5),
    ("telegram", "5551001", ("Bonjour",), 2, None, None),
    ("sms", "+33612345605", ("un matelas encombrant à jeter",), 8, None, 5),
    ("sms", "+33612345606", ("quels sont les horaires de l'agence ?",), 10, None, 4),
    ("sms", "+33612345609", ("???", XSS), 12, 150, 1),
    ("sms", "+33612345610", ("je veux parler à une personne",), 15, 300, 2),
    ("webchat", "web-77", ("le chauffage est en panne",), 20, None, None),
    ("sms", "+33612345614", ("hello, the ascenseur is broken",), 25, None, 5),
    ("sms", "+33612345613", ("merci beaucoup",), 6, None, None),
    ("sms", "+33612345611", ("je veux parler à un conseiller",), 18, 45, 4),
]
TENANT_MESSAGES = sum(len(texts) for _, _, texts, _, _, _ in STORY)


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


async def tell_the_story(rt: Runtime) -> None:
    """The conversations above through the real pipeline, then moved back in time."""
    for channel, address, texts, _, _, _ in STORY:
        for text in texts:
            await rt.ingest(Inbound(channel, address, text))
            await settled(rt)
    async with rt.db.transaction() as s:
        for channel, address, _, days, reply_minutes, score in STORY:
            conv = (
                (
                    await s.execute(
                        select(Conversation).where(
                            Conversation.channel == channel, Conversation.address == address
                        )
                    )
                )
                .unique()
                .scalar_one()
            )
            shift = timedelta(days=days)
            conv.created_at -= shift
            conv.last_message_at -= shift
            conv.satisfaction = score
            for m in (
                await s.execute(select(Message).where(Message.conversation_id == conv.id))
            ).scalars():
                m.created_at -= shift
            for h in (
                await s.execute(select(Handoff).where(Handoff.conversation_id == conv.id))
            ).scalars():
                h.created_at -= shift
                if reply_minutes is not None:
                    h.taken_at = h.created_at + timedelta(minutes=reply_minutes / 2)
                    h.first_reply_at = h.created_at + timedelta(minutes=reply_minutes)
            for r in (
                await s.execute(select(Ticket).where(Ticket.conversation_id == conv.id))
            ).scalars():
                r.created_at -= shift
        now = rt.clock()
        for i, age in enumerate((0.3, 2, 4, 9, 12, 40)):
            s.add(
                Ticket(
                    kind="repair",
                    status="open",
                    reference=f"R-DEMO-{i}",
                    created_at=now - timedelta(days=age),
                )
            )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("manager-browser") / "relais.sqlite3"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", public_url="http://127.0.0.1")
    recording = RecordingChannel("sms")
    runtime = Runtime(
        settings,
        engine=KeywordEngine(),
        channels={"sms": recording, "telegram": recording, "webchat": recording},
    )
    # prepare=True: the lifespan migrates the SQLite file and loads the demo data.
    app = create_app(settings, runtime=runtime, prepare=True)
    with serve_in_thread(app, runtime) as srv:
        srv.run(tell_the_story(runtime), timeout=60)
        yield srv


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def sign_in(browser: Any, server: Server, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, accept_downloads=True)
    page = watch_csp(context.new_page())
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.dialogs = dialogs
    page.goto(server.url + "/console/manager")
    assert "/console/login" in page.url
    page.fill("input[name=login]", "claire")
    page.fill("input[name=password]", "relais-demo")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(server.url + "/console/manager")
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits_the_width(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def kpi(page: Any, name: str) -> str:
    return str(page.inner_text(f'[data-kpi="{name}"] .kpi-value')).strip()


def test_manager_finds_exports_and_sees_it_counted(server: Server, browser: Any) -> None:
    page = sign_in(browser, server, PHONE)

    # Find the conversation by a few words of it.
    page.click("nav.subnav >> text=Conversations")
    page.fill("input[name=q]", NEEDLE)
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("p.found >> text=1 conversation(s)")
    results = page.locator("ol.results li")
    assert results.count() == 1
    assert "Nadia Haddad" in results.first.inner_text()
    assert fits_the_width(page)
    shot(page, "manager-search-phone")

    # Export what was found.
    with page.expect_download() as info:
        page.click("#export-csv")
    download = info.value
    assert download.suggested_filename.startswith("relais-conversations-")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert {r["tenant"] for r in rows} == {"Nadia Haddad"}
    assert any(NEEDLE in r["text"] for r in rows)

    # Open it, read-only.
    results.first.locator("a.row").click()
    page.wait_for_selector(f"ol.thread >> text={NEEDLE}")
    assert page.locator("textarea").count() == 0
    assert fits_the_width(page)
    shot(page, "manager-conversation-phone")
    conv_url = page.url

    # The dashboard counts it: every tenant message of the last 30 days, today's included.
    page.click("nav.subnav >> text=Tableau de bord")
    page.wait_for_selector('[data-kpi="messages"]')
    assert kpi(page, "messages") == str(TENANT_MESSAGES)
    assert kpi(page, "conversations") == str(len(STORY))
    today_bar = str(page.locator("#chart-volume svg rect title").last.text_content())
    assert today_bar.endswith(": 2")  # Nadia's two messages today, by SMS
    assert page.locator("#chart-wait svg").count() == 1
    assert fits_the_width(page)
    shot(page, "manager-dashboard-story-phone")

    # The export and the reading are in the audit log.
    page.click("nav.subnav >> text=Journal")
    entries = page.locator("ol.audit").inner_text()
    shot(page, "manager-audit-export-phone")
    assert "Claire Dubois a exporté" in entries and "Claire Dubois a lu la conversation" in entries
    assert page.dialogs == []
    assert conv_url.startswith(server.url + "/console/manager/conversations/")


def test_desktop_screenshots_and_escaping(server: Server, browser: Any) -> None:
    page = sign_in(browser, server, DESKTOP)
    page.wait_for_selector("#chart-volume svg.wide-only")
    shot(page, "manager-dashboard-story-desktop")
    page.goto(server.url + "/console/manager/conversations?channel=sms")
    page.wait_for_selector("ol.results li")
    assert XSS in page.locator("ol.results").inner_text()  # shown as text, not run
    assert page.locator("ol.results img").count() == 0
    shot(page, "manager-search-desktop")
    page.goto(server.url + "/console/manager/nlu")
    page.wait_for_selector("ol.review li")
    shot(page, "manager-nlu-desktop")
    assert page.dialogs == []


def test_nlu_relabel_in_the_browser_at_phone_width(server: Server, browser: Any) -> None:
    page = sign_in(browser, server, PHONE)
    page.goto(server.url + "/console/manager/nlu")
    item = page.locator("ol.review li", has_text=XSS)
    item.locator("select[name=other]").select_option("repair")
    item.locator("button.primary").click()
    page.wait_for_selector("ol.review")
    assert page.locator("ol.review li", has_text=XSS).count() == 0
    assert fits_the_width(page)
    shot(page, "manager-nlu-phone")
    page.goto(server.url + "/console/manager/nlu?kind=labelled")
    assert "Corrigé : " in page.locator("ol.review li", has_text=XSS).inner_text()
    with page.expect_download() as info:
        page.click("#export-yaml")
    text = Path(info.value.path()).read_text(encoding="utf-8")
    assert text.startswith('version: "3.1"') and f"    - {XSS}" in text
