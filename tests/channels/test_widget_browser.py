"""The tenant's web-chat widget in headless Chromium, at phone (360 px) and desktop widths:
time stamps and day separators, links and phone numbers as links, the emergency message,
the unread badge, a 16 px text box and drawn icons, reconnection after a server restart with
nothing lost or doubled, and "Oublier cet appareil". Screenshots in artifacts/screenshots/."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import uvicorn
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.storage.models import Conversation, Message
from bot.storage.store import add_outbound
from channels.registry import install_channels
from channels.routes import RelaisApp
from channels.webchat import WebChatChannel
from tests.browser import DESKTOP, PHONE, SHOTS, launch, need_chromium
from tests.channels.conftest import gateway_settings
from tests.channels.fakes import FakeProviders
from tests.fakes import KeywordEngine

pytestmark = pytest.mark.browser

W = "#relais-webchat"
KEY = "relais.webchat.session"
XSS = "<img src=x onerror=window.__xss=1>"
ERRORS: dict[int, list[str]] = {}  # page → its uncaught script errors
SIZES = [pytest.param(PHONE, id="phone"), pytest.param(DESKTOP, id="desktop")]


class Gateway:
    """The runtime and uvicorn in a thread with their own event loop, on a given port: stopped
    and started again on the same port, as a deploy restarts `relais serve`."""

    def __init__(self, settings: Any, uploads: Path, port: int = 0) -> None:
        self.settings = settings
        self.uploads = uploads
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.runtime: Runtime | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        runtime = self.runtime = Runtime(self.settings, engine=KeywordEngine())
        app = RelaisApp()
        install_channels(app, runtime)
        runtime.channels["webchat"].uploads = self.uploads  # type: ignore[attr-defined]
        await runtime.start(Roles(consume=True, outbox=True, recover=False))
        config = uvicorn.Config(
            app, lifespan="off", log_level="warning", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        serving = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.01)
        self.ready.set()
        try:
            await serving
        finally:
            await runtime.stop()

    def start(self) -> Gateway:
        self.thread.start()
        self.ready.wait(30)
        if self.error:
            raise self.error
        return self

    def stop(self) -> None:
        if self.server:
            self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()

    def run(self, coro: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(30)

    @property
    def channel(self) -> WebChatChannel:
        assert self.runtime is not None
        channel = self.runtime.channels["webchat"]
        assert isinstance(channel, WebChatChannel)
        return channel

    def staff_says(self, token: str, text: str, when: datetime | None = None) -> None:
        """A caretaker's reply to the session's conversation, stored and sent by the outbox."""
        self.run(_staff_says(self, token, text, when))

    def count(self, direction: str) -> int:
        return int(self.run(_count(self, direction)))


async def _staff_says(gw: Gateway, token: str, text: str, when: datetime | None) -> None:
    assert gw.runtime is not None
    address = gw.channel.address_of(token)
    async with gw.runtime.db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.address == address)))
            .scalars()
            .one()
        )
        msg, row = await add_outbound(s, conv, text, author="staff", key=f"t:{time.time_ns()}")
        if when is not None:
            msg.created_at = when
            row.extra = {**row.extra, "shown": {"author": "staff", "created_at": when.isoformat()}}
        await s.commit()
    assert gw.runtime.outbox is not None
    gw.runtime.outbox.wake()


async def _count(gw: Gateway, direction: str) -> int:
    assert gw.runtime is not None
    async with gw.runtime.db.session() as s:
        return int(
            (
                await s.execute(
                    select(func.count(Message.id)).where(
                        Message.channel == "webchat", Message.direction == direction
                    )
                )
            ).scalar_one()
        )


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


@pytest.fixture
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


@pytest.fixture
def settings(sqlite_url: str, providers: FakeProviders) -> Any:
    return gateway_settings(sqlite_url, providers, webchat_origins="*")


@pytest.fixture
def gateway(settings: Any, tmp_path: Path) -> Iterator[Gateway]:
    gw = Gateway(settings, tmp_path / "uploads").start()
    try:
        yield gw
    finally:
        gw.stop()


def tenant_page(browser: Any, gateway: Gateway, viewport: dict[str, int]) -> Any:
    context = browser.new_context(viewport=viewport, locale="fr-FR", timezone_id="Europe/Paris")
    page = context.new_page()
    errors = ERRORS.setdefault(id(page), [])
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(gateway.url + "/webchat/")
    return page


def q(page: Any, script: str, arg: Any = None) -> Any:
    """Evaluate `script` (a function of the widget's shadow root and `arg`) in the page."""
    return page.evaluate(
        f"([arg]) => ((root, arg) => {script})(document.querySelector('{W}').shadowRoot, arg)",
        [arg],
    )


def count(page: Any, selector: str) -> int:
    return int(q(page, "root.querySelectorAll(arg).length", selector))


def wait_count(page: Any, selector: str, n: int, timeout: float = 15_000) -> None:
    page.wait_for_function(
        f"([s, n]) => document.querySelector('{W}').shadowRoot.querySelectorAll(s).length >= n",
        arg=[selector, n],
        timeout=timeout,
    )


def open_chat(page: Any) -> None:
    """Open the panel, and wait for the conversation to be there (the welcome, or history)."""
    page.click(f"{W} .bubble")
    wait_count(page, "li.bot", 1)


def says(page: Any, text: str) -> None:
    """The tenant writes; returns once the bot answered."""
    before = count(page, "li.bot")
    page.fill("#relais-input", text)
    page.press("#relais-input", "Enter")
    wait_count(page, "li.bot", before + 1)


def token(page: Any) -> str:
    return str(page.evaluate(f"localStorage.getItem('{KEY}')"))


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def paris_greeting() -> str:
    hour = datetime.now(ZoneInfo("Europe/Paris")).hour
    return "Bonsoir" if hour >= 18 or hour < 5 else "Bonjour"


@pytest.mark.parametrize("viewport", SIZES)
def test_a_conversation_with_times_links_and_drawn_icons(
    browser: Any, gateway: Gateway, viewport: dict[str, int]
) -> None:
    page = tenant_page(browser, gateway, viewport)
    page.click(f"{W} .bubble")
    wait_count(page, "li.bot", 1)
    # The local welcome greets for the hour in Paris.
    assert q(page, "root.querySelector('li.bot .text').textContent").startswith(
        paris_greeting() + " !"
    )
    # Icons are drawn (SVG), not characters a font may lack; each button still has a name.
    for button in (".bubble", ".close", ".attach", ".send"):
        view = q(
            page,
            "(b => [b.querySelectorAll('svg').length, b.innerText.trim(), b.getAttribute('aria-label')])"
            "(root.querySelector(arg))",
            button,
        )
        assert view[0] == 1 and view[1] == "" and view[2], (button, view)
    # 16 px: iOS does not zoom into the text box.
    assert q(page, "getComputedStyle(root.querySelector('textarea')).fontSize") == "16px"

    says(page, "Bonjour")
    gateway.staff_says(
        token(page),
        f"Bonjour, le détail est sur https://www.habitat-nord-solidaire.example/espace. "
        f"Sinon appelez la loge au 03 20 55 55 01. {XSS}",
    )
    wait_count(page, "li.staff", 1)
    # Time stamps on every message, and the day above them.
    assert q(page, "[...root.querySelectorAll('li.day')].map(d => d.textContent)") == [
        "Aujourd'hui"
    ]
    times = q(page, "[...root.querySelectorAll('li:not(.day) time.at')].map(t => t.textContent)")
    assert len(times) == count(page, "li:not(.day)") >= 4
    assert all(re.fullmatch(r"\d\d:\d\d", t) for t in times), times
    assert page.locator(f"{W} li.staff time.at").is_visible()
    # The link opens in a new tab, the number calls; the markup in the text stays text.
    link = q(
        page,
        "[...root.querySelectorAll('li.staff a')].map(a => [a.tagName, a.getAttribute('href'),"
        " a.target, a.rel, a.textContent])",
    )
    assert link == [
        [
            "A",
            "https://www.habitat-nord-solidaire.example/espace",
            "_blank",
            "noopener noreferrer",
            "https://www.habitat-nord-solidaire.example/espace",
        ],
        ["A", "tel:0320555501", "", "", "03 20 55 55 01"],
    ]
    assert count(page, "li.staff img") == 0 and page.evaluate("window.__xss") is None
    assert XSS in q(page, "root.querySelector('li.staff').textContent")
    # At 360 px the panel stays inside the screen.
    box = page.locator(f"{W} .panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    name = "phone" if viewport is PHONE else "desktop"
    shot(page, f"widget-conversation-{name}")

    # The next day, the same messages are "Hier".
    page.clock.set_fixed_time(datetime.now() + timedelta(days=1))
    page.reload()
    wait_count(page, "li.staff", 1)
    assert q(page, "[...root.querySelectorAll('li.day')].map(d => d.textContent)") == ["Hier"]
    assert ERRORS[id(page)] == []


@pytest.mark.parametrize("viewport", SIZES)
def test_the_emergency_message_stands_out_and_its_numbers_call(
    browser: Any, gateway: Gateway, viewport: dict[str, int]
) -> None:
    page = tenant_page(browser, gateway, viewport)
    open_chat(page)
    says(page, "il y a le feu dans le local poubelles, ça fume")
    wait_count(page, "li.emergency", 1)
    urgent = page.locator(f"{W} li.emergency").first
    assert urgent.locator(".who").text_content() == "Urgence"
    assert urgent.locator(".who svg").count() == 1
    calls = urgent.locator("a").evaluate_all("as => as.map(a => a.getAttribute('href'))")
    assert "tel:18" in calls and "tel:112" in calls, calls
    styles = q(
        page,
        "[root.querySelector('li.emergency'), root.querySelector('li.bot:not(.emergency)')]"
        ".map(li => [getComputedStyle(li).backgroundColor, getComputedStyle(li).borderLeftWidth])",
    )
    assert styles[0][0] != styles[1][0] and styles[0][1] == "5px", styles
    # A number that is an hour or a date is left alone; the tenant's own "18" too.
    says(page, "le chauffage ne marche plus depuis 18 h")
    assert count(page, "li.tenant a") == 0
    box = urgent.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= viewport["width"]
    name = "phone" if viewport is PHONE else "desktop"
    urgent.scroll_into_view_if_needed()
    shot(page, f"widget-emergency-{name}")


@pytest.mark.parametrize("viewport", SIZES)
def test_the_closed_bubble_counts_replies(
    browser: Any, gateway: Gateway, viewport: dict[str, int]
) -> None:
    page = tenant_page(browser, gateway, viewport)
    open_chat(page)
    says(page, "Bonjour")
    page.click(f"{W} .close")
    badge = page.locator(f"{W} .badge")
    assert not badge.is_visible()
    replies = count(page, "li.bot, li.staff")
    gateway.staff_says(token(page), "Bonjour, je passe demain à 10 h.")
    wait_count(page, "li.staff", 1)
    assert badge.text_content() == str(count(page, "li.bot, li.staff") - replies)
    gateway.staff_says(token(page), "Pouvez-vous m'envoyer une photo ?")
    wait_count(page, "li.staff", 2)
    page.wait_for_timeout(500)  # a late answer of the bot's counts too
    unread = count(page, "li.bot, li.staff") - replies
    assert unread >= 2 and badge.text_content() == str(unread) and badge.is_visible()
    label = page.locator(f"{W} .bubble").get_attribute("aria-label")
    assert label == f"Ouvrir la messagerie — {unread} nouveaux messages"
    name = "phone" if viewport is PHONE else "desktop"
    shot(page, f"widget-badge-{name}")
    # Still unread after a reload (the history brings them back), read once opened.
    page.reload()
    page.wait_for_function(
        f"document.querySelector('{W}').shadowRoot.querySelector('.badge').textContent === '{unread}'"
    )
    page.click(f"{W} .bubble")
    assert not badge.is_visible()
    page.click(f"{W} .close")
    page.reload()
    page.wait_for_timeout(1000)
    assert not badge.is_visible()


def test_the_widget_reconnects_after_a_server_restart(
    browser: Any, settings: Any, tmp_path: Path
) -> None:
    """The server restarts: "Reconnexion…" shows, the widget is back within seconds, what was
    typed meanwhile is sent once, and a reply written while it was down arrives once."""
    first = Gateway(settings, tmp_path / "uploads").start()
    page = tenant_page(browser, first, PHONE)
    open_chat(page)
    says(page, "Bonjour")
    assert not page.locator(f"{W} .panel.off").count()
    old_token = token(page)
    first.staff_says(old_token, "Je regarde votre dossier.")
    wait_count(page, "li.staff", 1)
    first.stop()
    page.wait_for_selector(f"{W} .panel.off", timeout=5000)
    assert page.locator(f"{W} .status").inner_text() == "Reconnexion…"
    # Typed while the server is away: kept, sent on return.
    page.fill("#relais-input", "Vous êtes là ?")
    page.press("#relais-input", "Enter")
    assert q(page, "root.querySelector('li.tenant.pending .at').textContent") == "envoi…"
    shot(page, "widget-reconnecting-phone")
    second = Gateway(settings, tmp_path / "uploads", port=first.port)
    try:
        second.start()
        restarted = time.monotonic()
        # A reply sent as soon as the server is back, likely before the widget is: it comes
        # with the history (since the last message shown) or live, once either way.
        second.staff_says(old_token, "Le technicien passe à 14 h.")
        page.wait_for_selector(f"{W} .panel:not(.off)", timeout=6000)
        assert time.monotonic() - restarted < 6
        wait_count(page, "li.bot", 3)  # welcome, and the answers to both messages
        wait_count(page, "li.staff", 2)
        page.wait_for_timeout(1000)
        texts = q(page, "[...root.querySelectorAll('li.tenant .text')].map(t => t.textContent)")
        assert texts == ["Bonjour", "Vous êtes là ?"]
        assert count(page, "li.tenant.pending") == 0 and count(page, "li.staff") == 2
        assert second.count("in") == 2
        # Exchanging goes on as before.
        says(page, "Merci")
        assert second.count("in") == 3
        assert ERRORS[id(page)] == []
    finally:
        second.stop()


@pytest.mark.parametrize("viewport", SIZES)
def test_forget_this_device(browser: Any, gateway: Gateway, viewport: dict[str, int]) -> None:
    page = tenant_page(browser, gateway, viewport)
    open_chat(page)
    says(page, "Bonjour")
    old = token(page)
    assert gateway.run(gateway.channel.current(old)) is not None
    page.click(f"{W} .forget")
    page.wait_for_selector(f"{W} .confirm:not([hidden])")
    name = "phone" if viewport is PHONE else "desktop"
    shot(page, f"widget-forget-{name}")
    page.click(f"{W} .confirm .erase")
    page.wait_for_function(f"localStorage.getItem('{KEY}') === null")
    assert count(page, "li") == 0
    assert page.locator(f"{W} .status").inner_text() == "Conversation effacée de cet appareil."
    # The server ended the session: the old token no longer works.
    deadline = time.monotonic() + 5
    while gateway.run(gateway.channel.current(old)) is not None:
        assert time.monotonic() < deadline, "the session was not revoked"
        time.sleep(0.1)
    # Writing again starts a new session, with nothing of the old one.
    says(page, "Bonjour")
    assert token(page) not in (old, "None")
    assert gateway.channel.address_of(token(page)) != gateway.channel.address_of(old)
    page.reload()
    wait_count(page, "li.tenant", 1)
    assert count(page, "li.tenant") == 1


@pytest.mark.parametrize(("hour", "greeting"), [(10, "Bonjour"), (20, "Bonsoir")])
def test_the_welcome_fits_the_hour_in_paris(
    browser: Any, gateway: Gateway, hour: int, greeting: str
) -> None:
    """By Paris time, as the bot greets, wherever the browser's clock is set (here New York)."""
    context = browser.new_context(viewport=PHONE, locale="fr-FR", timezone_id="America/New_York")
    page = context.new_page()
    page.clock.set_fixed_time(datetime(2026, 3, 3, hour, 0, tzinfo=ZoneInfo("Europe/Paris")))
    page.goto(gateway.url + "/webchat/")
    open_chat(page)
    welcome = q(page, "root.querySelector('li.bot .text').textContent")
    assert welcome.startswith(f"{greeting} ! Décrivez votre demande"), welcome
