"""The console in headless Chromium against a real uvicorn: live queue, take, reply, access,
escaping, the SMS counter; screenshots at phone and desktop widths in artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.types import Inbound, Media
from bot.storage.models import Outbox
from channels.gsm7 import fold, segments
from tests.browser import (
    DESKTOP,
    PHONE,
    SHOTS,
    launch,
    need_chromium,
    serve_in_thread,
    watch_csp,
)
from tests.browser import Server as LiveServer
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_csp_violations")]

XSS = "<img src=x onerror=alert(1)>"
HUMAN = "je veux parler à une personne"


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@dataclass
class Server(LiveServer):
    sms: RecordingChannel = field(default_factory=lambda: RecordingChannel("sms"))

    def ingest(self, text: str, address: str, media: tuple[Media, ...] = ()) -> int:
        rec = self.run(self.runtime.ingest(Inbound("sms", address, text, media=media)))
        return int(rec.conversation_id)


@pytest.fixture
def server(sqlite_url: str, chromium: Path, media_server: str) -> Iterator[Server]:
    sms = RecordingChannel("sms")
    # The stand-in for Twilio's media is the configured Twilio: the console's CSP lets its
    # photos in, and only those.
    settings = make_settings(
        sqlite_url, public_url="http://127.0.0.1", twilio_api_base=media_server
    )
    runtime = Runtime(settings, engine=KeywordEngine(), channels={"sms": sms})
    app = create_app(settings, runtime=runtime, prepare=False)
    with serve_in_thread(app, runtime) as live:
        yield Server(live.url, runtime, live.loop, sms)


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def sign_in(browser: Any, server: Server, login: str, viewport: dict[str, int] = PHONE) -> Any:
    page = watch_csp(browser.new_context(viewport=viewport).new_page())
    page.goto(server.url + "/console")
    assert "/console/login" in page.url
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "relais-demo")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/console")
    page.wait_for_selector(".live.on")  # the event stream is connected
    return page


async def _newest_code(runtime: Runtime) -> str:
    """Waits (up to 20 s) for the worker to have stored the code: the tenant's message that
    asks for it is answered in the background."""
    for _ in range(200):
        async with runtime.db.session() as s:
            texts = (
                await s.execute(
                    select(Outbox.text).where(Outbox.channel == "sms").order_by(Outbox.id.desc())
                )
            ).scalars()
            code = next((m.group(1) for t in texts if (m := re.search(r"\b(\d{6})\b", t))), None)
        if code is not None:
            return code
        await asyncio.sleep(0.1)
    raise AssertionError("no one-time code was sent by SMS")


def sms_code(server: LiveServer) -> str:
    """The newest one-time code the bot sent by SMS to prove a web-chat tenant's identity,
    read where every outgoing message is stored."""
    return str(server.run(_newest_code(server.runtime)))


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header at the top of a full-page shot
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_widget_to_caretaker_and_back(server: Server, browser: Any) -> None:
    karim = sign_in(browser, server, "karim")
    sophie = sign_in(browser, server, "sophie")
    karim.evaluate("window.__notReloaded = true")
    assert karim.locator("ol.queue li").count() == 0

    tenant = browser.new_context(viewport=PHONE).new_page()
    tenant.goto(server.url + "/webchat/")
    tenant.click("#relais-webchat .bubble")

    bot_lines = "#relais-webchat li.bot"

    def tenant_says(text: str) -> None:
        before = tenant.locator(bot_lines).count()
        tenant.fill("#relais-input", text)
        tenant.press("#relais-input", "Enter")
        tenant.wait_for_function(
            "n => document.querySelector('#relais-webchat').shadowRoot"
            ".querySelectorAll('li.bot').length > n",
            arg=before,
        )

    # A repair, from a tenant the web chat does not know yet: the bot asks who they are
    # (Nadia Haddad, Les Fleurs: Karim's residence) and, before linking the session to her,
    # sends a one-time code by SMS to her lease's phone (issue 16); she types it back.
    tenant_says("mon chauffage est en panne")
    tenant_says("L-10231")
    assert "Nadia" not in tenant.locator(bot_lines).last.inner_text()
    tenant_says(sms_code(server))
    tenant.wait_for_selector(f"{bot_lines} >> text=Nadia", timeout=5000)
    # Then the details; it stops as soon as it is queued.
    for answer in (
        "dans le salon",
        "depuis hier",
        "non",
        "non",
        "non",
    ):
        tenant_says(answer)
        if "R-20" in tenant.locator(bot_lines).last.inner_text():
            break
    shot(tenant, "webchat-tenant-phone")

    # The handoff appears in Karim's queue, live.
    row = karim.wait_for_selector("ol.queue li a.row >> text=Nadia Haddad", timeout=5000)
    assert karim.evaluate("window.__notReloaded") is True
    row_text = row.evaluate("el => el.closest('a').innerText")
    assert "Chat web" in row_text and "Réparation" in row_text and "Les Fleurs" in row_text
    href = row.evaluate("el => el.closest('a').getAttribute('href')")
    conv_id = int(href.rsplit("/", 1)[1])

    # Sophie (Canal) never sees it, not even by its address.
    sophie.wait_for_timeout(500)
    assert sophie.locator(f"a[href='/console/c/{conv_id}']").count() == 0
    response = sophie.goto(server.url + href)
    assert response is not None and response.status == 403

    karim.click(f"a[href='/console/c/{conv_id}']")
    karim.wait_for_url(server.url + href)
    karim.click("#take")
    karim.wait_for_selector("#reply-text")
    karim.fill("#reply-text", "Bonjour Nadia, je passe chez vous à 14h.")
    karim.click("#send")
    karim.wait_for_selector("#thread li.staff >> text=je passe chez vous à 14h")

    tenant.wait_for_selector(
        "#relais-webchat li.staff >> text=Bonjour Nadia, je passe chez vous à 14h.", timeout=5000
    )
    # The tenant writes again: Karim sees it in the open conversation without reloading.
    karim.evaluate("window.__notReloaded = true")
    # (The bot stays silent now that a person holds the conversation.)
    tenant.fill("#relais-input", "Merci, à tout à l'heure")
    tenant.press("#relais-input", "Enter")
    karim.wait_for_selector("#thread li.tenant >> text=à tout à l'heure", timeout=5000)
    assert karim.evaluate("window.__notReloaded") is True


def png(width: int = 320, height: int = 200) -> bytes:
    """A small photo-like PNG (a gradient), as a provider's media server would serve."""
    rows = b"".join(
        b"\x00" + bytes(v for x in range(width) for v in (40 + x * 150 // width, 90 + y // 2, 160))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def media_server() -> Iterator[str]:
    """A stand-in for Twilio's media URLs."""
    image = png()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(image)))
            self.end_headers()
            self.wfile.write(image)

        def log_message(self, *args: Any) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()


def fill_queue(server: Server, media_url: str) -> int:
    """Several waiting conversations on Les Fleurs; the id of Nadia's (photo and XSS)."""
    server.ingest("ça sent le gaz dans l'escalier du bâtiment B", "+33612345604")
    server.ingest(f"{HUMAN} svp, c'est urgent pour mon bail", "+33612345612")
    nadia = server.ingest(HUMAN, "+33612345600")
    server.ingest(
        f"voilà la photo {XSS}",
        "+33612345600",
        media=(Media(url=f"{media_url}/MM123/Media/ME456", content_type="image/png"),),
    )
    return nadia


def test_screens_escaping_and_sms_counter(server: Server, browser: Any, media_server: str) -> None:
    dialogs: list[str] = []
    for viewport, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page = sign_in(browser, server, "karim", viewport)
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        if label == "phone":
            shot(page, "queue-empty-phone")
            nadia = fill_queue(server, media_server)
            # Locators, not wait_for_function: a string predicate is an eval, which the
            # console's CSP refuses (no 'unsafe-eval').
            page.locator("ol.queue li").nth(2).wait_for()
        page.wait_for_timeout(2100)  # the highlight of new rows fades
        rows = page.locator("ol.queue li")
        assert "emergency" in (rows.nth(0).get_attribute("class") or "")
        text = page.locator("#queue").inner_text()
        assert XSS in text  # shown as text, in the first words of Nadia's row
        shot(page, f"queue-{label}")
        page.goto(f"{server.url}/console/c/{nadia}")
        page.wait_for_selector("#thread img")
        loaded = "() => Array.from(document.querySelectorAll('#thread img')).every(i => i.naturalWidth > 0)"
        for _ in range(100):
            if page.evaluate(loaded):
                break
            page.wait_for_timeout(50)
        assert page.evaluate(loaded), "the photo did not load"
        assert XSS in page.locator("#thread").inner_text()
        assert page.locator("#thread img").count() == 1  # the photo, and no tenant <img>
        shot(page, f"conversation-{label}")
        if label == "phone":
            # Every button and field a caretaker taps is at least 44 px high.
            small = page.evaluate(
                """() => Array.from(document.querySelectorAll(
                    'button, .button, input:not([type=hidden]), select, textarea, a.row'))
                  .filter(e => e.offsetParent !== null)
                  .filter(e => e.getBoundingClientRect().height < 44)
                  .map(e => e.outerHTML.slice(0, 80))"""
            )
            assert small == []
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            check_sms_counter(page)
            page.fill("#reply-text", "Je passe demain matin.")
            shot(page, "reply-phone")
    assert dialogs == []


SAMPLES = [
    "Je passe demain.",
    "Je passe à 14h, prévoyez l'accès à la cave.",
    "Être là à 9h : « merci » — c'est noté…",
    "Le chauffage 🔥 revient ce soir",
    "Прошу прощения",
    "a" * 160,
    "a" * 161,
    "€" * 80,
    "€" * 81,
    "é" * 70 + "ê",
    "ü" * 200,
    "中" * 70,
    "中" * 71,
    "😀" * 34 + "中",
]


def check_sms_counter(page: Any) -> None:
    for text in SAMPLES:
        expected = segments(fold(text))
        got = page.evaluate("t => relaisSmsSegments(t).segments", text)
        assert got == expected, (text, got, expected)
    page.fill("#reply-text", "a" * 161)
    counter = page.locator("#sms-counter")
    assert counter.get_attribute("data-segments") == "2"
    assert re.search(r"161 caractères · 2 SMS", counter.inner_text())
