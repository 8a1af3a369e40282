"""Knowing without looking (issue 19), in headless Chromium at 360 px and at a desk: a sound
and the count in the title when something arrives live, the queue in words with its notices
folded, the installable console (service worker, offline page), and a staff alert that could
not be sent said on the queue. Screenshots in artifacts/screenshots/console-*.png."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.types import Inbound
from tests.browser import (
    DESKTOP,
    PHONE,
    launch,
    need_chromium,
    serve_in_thread,
    watch_csp,
)
from tests.browser import Server as LiveServer
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_browser import shot
from tests.worker.test_pipeline import settled

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_csp_violations")]

HUMAN = "je veux parler à une personne"
NADIA, GAS_TENANT = "+33612345600", "+33612345604"  # both at Les Fleurs, Karim's residence
# Tuesday 1 December 2026, 19:30 in Paris: every lodge is closed (the on-call notices show).
EVENING = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)

# The test's eyes and ears in the page, installed before any script of it runs: whether the
# caretaker is looking at the page (the browser's focus, which a headless page always has),
# and every sound started through Web Audio.
SPY = """
window.__looking = true;
document.hasFocus = function () { return window.__looking; };
window.__sounds = [];
(function () {
  var start = AudioScheduledSourceNode.prototype.start;
  AudioScheduledSourceNode.prototype.start = function () {
    window.__sounds.push(this.frequency ? this.frequency.value : 0);
    return start.apply(this, arguments);
  };
})();
"""


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def _serve(sqlite_url: str, channels: dict[str, Any]) -> Iterator[LiveServer]:
    settings = make_settings(sqlite_url, public_url="http://127.0.0.1")
    runtime = Runtime(settings, engine=KeywordEngine(), channels=channels, clock=lambda: EVENING)
    app = create_app(settings, runtime=runtime, prepare=False)
    with serve_in_thread(app, runtime) as live:
        yield live


@pytest.fixture
def server(sqlite_url: str, chromium: Path) -> Iterator[LiveServer]:
    yield from _serve(sqlite_url, {"sms": RecordingChannel("sms")})


@pytest.fixture
def server_without_sms(sqlite_url: str, chromium: Path) -> Iterator[LiveServer]:
    """No SMS sender configured (a Telegram bot only): on-call alerts by SMS cannot go."""
    yield from _serve(sqlite_url, {"telegram": RecordingChannel("telegram")})


def say(server: LiveServer, text: str, address: str) -> None:
    """A tenant's SMS, processed (and its replies delivered) before the test goes on."""

    async def go() -> None:
        await server.runtime.ingest(Inbound("sms", address, text))
        await settled(server.runtime)

    server.run(go())


def open_console(browser: Any, server: LiveServer, login: str, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport)
    context.add_init_script(SPY)
    page = watch_csp(context.new_page())
    page.goto(server.url + "/console")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "relais-demo")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/console")
    page.wait_for_selector(".live.on")
    return page


def until(page: Any, check: Any, what: str, timeout: float = 8.0) -> None:
    """Poll from the test (a string predicate in the page is an eval, which the CSP refuses)."""
    for _ in range(int(timeout / 0.05)):
        if check():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"{what}: not after {timeout} s")


def queue_above_the_fold(page: Any, viewport: dict[str, int]) -> bool:
    top = page.locator("ol.queue li").first.bounding_box()
    return top is not None and top["y"] + 60 < viewport["height"]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_live_arrival_rings_and_counts_in_the_title(
    server: LiveServer, browser: Any, viewport: dict[str, int]
) -> None:
    label = "phone" if viewport is PHONE else "desktop"
    karim = open_console(browser, server, "karim", viewport)
    karim.evaluate("window.__notReloaded = true")
    title = karim.title()
    assert title == "File d'attente · Relais"

    # Karim looks elsewhere; Nadia's repair is filed by the bot and handed over.
    karim.evaluate("window.__looking = false")
    for text in ("mon chauffage est en panne", "dans le salon", "depuis hier", "non", "non"):
        say(server, text, NADIA)
    until(karim, lambda: karim.title() == f"(1) {title}", "the title counting one arrival")
    until(karim, lambda: len(karim.evaluate("window.__sounds")) >= 2, "the arrival's sound")
    assert karim.evaluate("window.__sounds").count(880) == 1  # two notes: an ordinary arrival

    # A gas leak: a second conversation, and the emergency's four notes.
    before = len(karim.evaluate("window.__sounds"))
    say(server, "ça sent le gaz dans l'escalier", GAS_TENANT)
    until(karim, lambda: karim.title() == f"(2) {title}", "the title counting two")
    until(karim, lambda: len(karim.evaluate("window.__sounds")) >= before + 4, "four notes")
    # Nadia again in the same conversation: still two conversations with news.
    say(server, "le radiateur de la chambre aussi est froid", NADIA)
    karim.wait_for_timeout(600)
    assert karim.title() == f"(2) {title}"

    # Karim comes back to the page: the count clears.
    karim.evaluate("window.__looking = true; window.dispatchEvent(new Event('focus'))")
    until(karim, lambda: karim.title() == title, "the count cleared")
    assert karim.evaluate("window.__notReloaded") is True  # all of it live

    # The queue in words: the request's problem and place, one label for the emergency.
    rows = karim.locator("ol.queue li")
    assert rows.count() == 2
    emergency = rows.nth(0).inner_text()
    assert emergency.count("URGENCE") == 1 and "Urgence" not in emergency, emergency
    nadia_row = rows.nth(1).locator(".summary").inner_text()
    assert nadia_row.startswith("Chauffage") or "chauffage" in nadia_row.lower(), nadia_row
    assert karim.locator("#queue-count").inner_text() == "2 en attente"
    # The closed lodge's notice is one line, and the queue starts above the fold.
    assert karim.locator("details#closed-lodges").get_attribute("open") is None
    assert karim.locator("details#closed-lodges .warn").is_visible() is False
    assert queue_above_the_fold(karim, viewport)
    karim.wait_for_timeout(2100)  # the highlight of new rows fades
    assert karim.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    shot(karim, f"console-queue-{label}")

    # The sound can be switched off, and stays so.
    karim.click("#sound-toggle")
    assert karim.locator("#sound-toggle").inner_text() == "Son coupé"
    before = len(karim.evaluate("window.__sounds"))
    karim.evaluate("window.__looking = false")
    say(server, HUMAN, "+33612345612")
    until(karim, lambda: karim.title().startswith("(1) "), "counted, silently")
    karim.wait_for_timeout(400)
    assert len(karim.evaluate("window.__sounds")) == before
    karim.reload()
    karim.wait_for_selector(".live.on")
    assert karim.locator("#sound-toggle").inner_text() == "Son coupé"


# A phone's browser plays nothing before the page is touched (its autoplay rule). Chromium
# under Playwright counts the test's own evaluations as touches, so the rule is played here:
# an AudioContext stays suspended until a real press reaches the page.
HELD = """
(function () {
  var Real = window.AudioContext;
  var touched = false;
  document.addEventListener("pointerdown", function (e) { touched = e.isTrusted; }, true);
  window.AudioContext = function () {
    var ctx = new Real();
    var held = true;
    Object.defineProperty(ctx, "state", { get: function () { return held ? "suspended" : "running"; } });
    var resume = ctx.resume.bind(ctx);
    ctx.resume = function () {
      if (!touched) { return new Promise(function () {}); }
      return resume().then(function () {
        if (held) { held = false; setTimeout(function () { ctx.dispatchEvent(new Event("statechange")); }, 0); }
      });
    };
    return ctx;
  };
})();
"""


def test_where_the_browser_holds_the_sound_one_tap_lets_it_out(
    server: LiveServer, browser: Any
) -> None:
    """Held, the console says so ("Activer le son") instead of staying silent without a word;
    the tap on it is what lets the sound out, not a switch-off."""
    context = browser.new_context(viewport=PHONE)
    context.add_init_script(SPY)
    context.add_init_script(HELD)
    karim = watch_csp(context.new_page())
    karim.goto(server.url + "/console")
    karim.fill("input[name=login]", "karim")
    karim.fill("input[name=password]", "relais-demo")
    karim.click("button[type=submit]")
    karim.wait_for_url(server.url + "/console")
    karim.wait_for_selector(".live.on")
    toggle = karim.locator("#sound-toggle")
    assert toggle.inner_text() == "Activer le son"
    shot(karim, "console-queue-sound-held-phone")
    toggle.click()
    until(karim, lambda: toggle.inner_text() == "Son activé", "the sound let out")
    assert len(karim.evaluate("window.__sounds")) == 2  # the sample chime
    toggle.click()  # and now the same button switches it off
    assert toggle.inner_text() == "Son coupé"


def test_on_call_sees_the_queue_above_four_folded_notices(server: LiveServer, browser: Any) -> None:
    say(server, HUMAN, NADIA)
    oncall = open_console(browser, server, "astreinte", PHONE)
    assert oncall.locator("details#closed-lodges .warn").count() == 4
    summary = oncall.locator("details#closed-lodges summary").inner_text()
    assert summary.startswith("Loges fermées (4)")
    assert queue_above_the_fold(oncall, PHONE)
    oncall.click("details#closed-lodges summary")  # one tap opens them
    assert oncall.locator("details#closed-lodges .warn").nth(3).is_visible()
    oncall.click("details#closed-lodges summary")
    shot(oncall, "console-queue-oncall-phone")


def test_the_console_installs_and_shows_an_offline_page(server: LiveServer, browser: Any) -> None:
    karim = open_console(browser, server, "karim", PHONE)
    scope = karim.evaluate("navigator.serviceWorker.ready.then(function (r) { return r.scope; })")
    assert scope == server.url + "/console"
    karim.reload()  # the next load of the page is under the worker
    karim.wait_for_selector(".live.on")
    assert karim.evaluate("!!navigator.serviceWorker.controller")
    manifest = karim.evaluate(
        "fetch(document.querySelector('link[rel=manifest]').href).then(r => r.json())"
    )
    assert manifest["display"] == "standalone"
    say(server, HUMAN, NADIA)
    karim.locator("ol.queue li").first.wait_for()
    karim.click("ol.queue li a.row")
    karim.wait_for_selector("#thread")
    # What the worker kept: the shell, never a page, a fragment or a tenant's words.
    kept = karim.evaluate(
        """caches.keys().then(keys => Promise.all(keys.map(k => caches.open(k)
             .then(c => c.keys()).then(rs => rs.map(r => new URL(r.url).pathname)))))
           .then(lists => [].concat.apply([], lists))"""
    )
    assert "/console/offline" in kept
    assert all(p == "/console/offline" or p.startswith("/console/static/") for p in kept), kept

    karim.context.set_offline(True)
    karim.goto(server.url + "/console")
    karim.wait_for_selector("main.offline")
    assert "Hors connexion" in karim.inner_text("main") and "Offline" in karim.inner_text("main")
    assert karim.locator("main.offline img").evaluate("i => i.naturalWidth") > 0
    shot(karim, "console-offline-phone")
    karim.context.set_offline(False)  # back online: the page goes back to the queue by itself
    karim.wait_for_selector("ol.queue li", timeout=10000)


def test_a_failed_alert_is_said_on_the_queue_live(
    server_without_sms: LiveServer, browser: Any
) -> None:
    server = server_without_sms
    for viewport, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
        karim = open_console(browser, server, "karim", viewport)
        if label == "phone":
            karim.evaluate("window.__notReloaded = true")
            say(server, "ça sent le gaz dans l'escalier", GAS_TENANT)
        banner = karim.locator("#alert-failures")
        banner.wait_for()
        assert banner.inner_text().startswith(
            "L'alerte SMS à l'astreinte (Astreinte technique) n'a pas pu être envoyée : "
            "aucun expéditeur SMS configuré"
        )
        if label == "phone":
            assert karim.evaluate("window.__notReloaded") is True  # it came live
        assert queue_above_the_fold(karim, viewport)
        karim.wait_for_timeout(2100)
        shot(karim, f"console-notification-failed-{label}")
        if label == "phone":
            karim.click("#alert-failures a")  # to the conversation: said there too
            karim.wait_for_selector("#thread")
            assert karim.locator("#alert-failures").inner_text().startswith("L'alerte SMS")
            shot(karim, "console-notification-failed-conversation-phone")
