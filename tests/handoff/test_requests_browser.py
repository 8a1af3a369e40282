"""The caretaker's two-tap moves on a 360 px phone in headless Chromium, against a real
uvicorn, with the tenant's web-chat widget receiving each update live; screenshots in
artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from tests.browser import PHONE, launch, need_chromium, serve_in_thread
from tests.browser import Server as LiveServer
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_browser import shot, sign_in, sms_code

pytestmark = pytest.mark.browser

BOT = "#relais-webchat li.bot"
STAFF = "#relais-webchat li.staff"


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@pytest.fixture
def server(sqlite_url: str, chromium: Path) -> Iterator[LiveServer]:
    settings = make_settings(sqlite_url, public_url="http://127.0.0.1", quiet_hours="")
    runtime = Runtime(settings, engine=KeywordEngine(), channels={"sms": RecordingChannel("sms")})
    app = create_app(settings, runtime=runtime, prepare=False)
    with serve_in_thread(app, runtime) as live:
        yield live


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def count(page: Any, selector: str) -> int:
    return int(
        page.evaluate(
            "s => document.querySelector('#relais-webchat').shadowRoot.querySelectorAll(s).length",
            selector.replace("#relais-webchat ", ""),
        )
    )


def wait_for_new(page: Any, selector: str, before: int) -> str:
    """The text of the next line `selector` matches in the widget, once it is there."""
    page.wait_for_function(
        "([s, n]) => document.querySelector('#relais-webchat').shadowRoot"
        ".querySelectorAll(s).length > n",
        arg=[selector.replace("#relais-webchat ", ""), before],
        timeout=8000,
    )
    # (A staff line opens with who speaks: "Équipe de proximité".)
    return str(page.locator(selector).nth(before).inner_text()).splitlines()[-1]


def test_two_taps_on_a_phone_and_the_tenant_hears_of_each_live(
    server: LiveServer, browser: Any
) -> None:
    tenant = browser.new_context(viewport=PHONE).new_page()
    tenant.goto(server.url + "/webchat/")
    tenant.click("#relais-webchat .bubble")

    def tenant_says(text: str) -> str:
        before = count(tenant, BOT)
        tenant.fill("#relais-input", text)
        tenant.press("#relais-input", "Enter")
        return wait_for_new(tenant, BOT, before)

    # Nadia proves who she is with the code sent by SMS to her lease's phone (issue 16).
    tenant_says("mon chauffage est en panne")
    tenant_says("L-10231")
    tenant_says(sms_code(server))
    for answer in ("dans le salon", "depuis hier", "non", "non", "non"):
        reply = tenant_says(answer)
        if "R-20" in reply:
            break
    reference = next(w.strip(".,:;") for w in reply.split() if w.startswith("R-20"))

    karim = sign_in(browser, server, "karim")
    karim.click("ol.queue li a.row >> text=Nadia Haddad")
    karim.wait_for_selector("#track")
    assert karim.locator("#track-status").inner_text() == "Reçue"
    shot(karim, "request-card-phone")

    def tap_tap(first: str, second: str) -> str:
        """Two taps in the console; what the tenant's widget shows next, live."""
        before = count(tenant, STAFF)
        karim.evaluate("window.__notReloaded = true")
        if first:
            karim.click(first)
        karim.click(second)
        karim.wait_for_load_state()
        return wait_for_new(tenant, STAFF, before)

    said = tap_tap("", "#move-taken")  # taking it is a single tap
    assert said == f"Votre demande {reference} est prise en charge par Karim Benali."
    karim.wait_for_selector("#track-status >> text=Prise en charge")

    said = tap_tap("#move-schedule summary", "#move-schedule .chip >> nth=1")
    assert said.startswith(f"Votre demande {reference} : intervention prévue le ")
    assert said.endswith("l'après-midi.")
    karim.wait_for_selector("#track-status >> text=Planifiée")
    karim.click("#move-wait summary")  # open, to show the contractor chips
    shot(karim, "request-contractor-chips-phone")

    said = tap_tap("", "#move-wait .chip >> text=Ascenseurs du Nord")
    assert "nous attendons l'intervention de l'entreprise Ascenseurs du Nord" in said
    karim.wait_for_selector("#track-status >> text=Attente entreprise")

    karim.click("#move-done summary")
    karim.fill("#move-done textarea[name=note]", "Vanne du radiateur remplacée")
    shot(karim, "request-done-phone")
    said = tap_tap("", "#mark-done")
    assert said == (
        f"Votre demande {reference} est marquée réparée. Est-ce bien le cas ? Répondez OUI ou NON."
    )
    karim.wait_for_selector("#track-status >> text=Réparée (à confirmer)")

    # The tenant confirms in the widget: closed, and the satisfaction question follows.
    before = count(tenant, BOT)
    tenant.fill("#relais-input", "oui c'est bon merci")
    tenant.press("#relais-input", "Enter")
    thanks = wait_for_new(tenant, BOT, before)
    assert thanks == f"Merci de votre confirmation : la demande {reference} est close."
    assert "de 1 (pas satisfait) à 5" in wait_for_new(tenant, BOT, before + 1)
    shot(tenant, "webchat-lifecycle-phone")

    karim.reload()
    karim.wait_for_selector("#track-status >> text=Close")
    karim.click("#track details.history summary")
    history = karim.locator("#track ol.events").inner_text()
    assert "Vanne du radiateur remplacée" in history and "Karim Benali" in history
    shot(karim, "request-history-phone")

    # On the phone: nothing wider than the screen, every control at least 44 px high.
    assert karim.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small = karim.evaluate(
        """() => Array.from(document.querySelectorAll(
            '#track button, #track .button, #track summary, #track input:not([type=hidden])'))
          .filter(e => e.offsetParent !== null)
          .filter(e => e.getBoundingClientRect().height < 44)
          .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert small == []
