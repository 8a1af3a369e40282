"""The web chat: its WebSocket and upload over a real uvicorn, and the widget in headless Chromium."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from fastapi import FastAPI
from websockets.asyncio.client import ClientConnection

from bot.app.runtime import Roles, Runtime
from bot.core.types import Outbound
from bot.messaging.bus import InProcessBus, RedisBus
from bot.storage.models import Attachment, Conversation, Message
from bot.storage.store import outbox_row
from channels.registry import build_channels, install_channels
from channels.routes import RelaisApp
from channels.webchat import WebChatChannel
from tests import services
from tests.channels.conftest import ORIGIN, Gateway, gateway_settings
from tests.channels.fakes import FakeProviders
from tests.fakes import KeywordEngine

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e221bc330000000049454e44ae426082"
)


def free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """`app` on a real uvicorn in this event loop; yields "127.0.0.1:<port>"."""
    sock = free_socket()
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def served(gateway: Gateway) -> AsyncIterator[str]:
    async with serve(gateway.app) as host:
        yield host


class Tab:
    """One widget's socket, speaking the widget's protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.session = ""
        self.history: list[dict[str, Any]] = []

    @classmethod
    async def open(
        cls, host: str, session: str | None = None, since: int = 0, origin: str = ORIGIN
    ) -> Tab:
        ws = await websockets.connect(f"ws://{host}/channels/webchat/ws", origin=origin)  # type: ignore[arg-type]
        tab = cls(ws)
        await ws.send(json.dumps({"type": "hello", "session": session, "since": since}))
        welcome = await tab.next("welcome")
        tab.session = welcome["session"]
        tab.history = (await tab.next("history"))["messages"]
        return tab

    async def next(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            data = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if data["type"] == kind:
                return data  # type: ignore[no-any-return]

    async def say(
        self, text: str, client_id: str, media: list[str] | None = None
    ) -> dict[str, Any]:
        await self.ws.send(
            json.dumps({"type": "message", "id": client_id, "text": text, "media": media or []})
        )
        return await self.next("ack")

    async def reply(self) -> dict[str, Any]:
        while True:
            message = (await self.next("message"))["message"]
            if message["author"] != "tenant":
                return message  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()


async def test_a_message_gets_a_reply_and_survives_reconnection(
    gateway: Gateway, served: str
) -> None:
    tab = await Tab.open(served)
    assert gateway.runtime.channels["webchat"].valid_session(tab.session)  # type: ignore[attr-defined]
    assert tab.history == []
    ack = await tab.say("Bonjour", "client-0001")
    reply = await tab.reply()
    assert reply["author"] == "bot" and reply["text"]
    await gateway.settled()
    await tab.close()
    # Back later: the conversation is still there, and `since` gives only what was missed.
    again = await Tab.open(served, session=tab.session)
    channel = gateway.runtime.channels["webchat"]
    assert isinstance(channel, WebChatChannel)
    # A fresh token (each use rotates it) for the same session.
    assert channel.address_of(again.session) == channel.address_of(tab.session)
    assert [(m["author"], m["text"]) for m in again.history] == [
        ("tenant", "Bonjour"),
        ("bot", reply["text"]),
    ]
    assert again.history[0]["client_id"] == "client-0001"
    assert again.history[1]["id"] == reply["id"]
    assert again.history[1]["created_at"] == reply["created_at"]  # live and stored agree
    assert again.history[0]["id"] == ack["message_id"]
    await again.close()
    later = await Tab.open(served, session=tab.session, since=reply["id"])
    assert later.history == []
    await later.close()


async def test_a_reply_is_shown_from_its_outbox_row_without_reading_the_message() -> None:
    """The outbox row carries the author and time the widget shows (store.outbox_row): a
    web-chat send is one publish, no database read."""

    class NoDatabase:
        def session(self) -> Any:
            raise AssertionError("the send read the database")

    bus = InProcessBus()
    channel = WebChatChannel(bus=bus, db=NoDatabase(), secret="s" * 32)  # type: ignore[arg-type]
    session = channel.new_session()
    conv = Conversation(id=3, channel="webchat", address=session)
    at = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    msg = Message(id=41, author="staff", text="Le technicien passe demain matin.", created_at=at)
    shown = outbox_row(conv, msg, key="k").extra["shown"]
    assert shown == {"author": "staff", "created_at": "2026-11-29T08:00:00+00:00"}
    async with bus.subscribe(session) as events:
        await channel.send(
            Outbound(
                outbox_id=7,
                channel="webchat",
                address=session,
                text="Le technicien passe demain matin.",
                idempotency_key="k",
                message_id=41,
                extra={"shown": shown},
            )
        )
        event = events.get_nowait()
    assert event["message"] == {
        "id": 41,
        "text": "Le technicien passe demain matin.",
        "author": "staff",
        "created_at": "2026-11-29T08:00:00+00:00",
        "media": [],
    }


async def test_a_resent_message_is_stored_and_answered_once(gateway: Gateway, served: str) -> None:
    tab = await Tab.open(served)
    first = await tab.say("Bonjour", "client-0002")
    await tab.reply()
    again = await tab.say("Bonjour", "client-0002")  # the widget resends after a reconnect
    assert again["message_id"] == first["message_id"]
    await gateway.settled()
    await asyncio.sleep(0.2)
    assert len(await gateway.messages("in")) == 1 and len(await gateway.messages("out")) == 1
    await tab.close()


async def test_a_session_never_reads_another(gateway: Gateway, served: str) -> None:
    alice = await Tab.open(served)
    await alice.say("j'ai une fuite", "alice-0001")
    await alice.reply()
    await gateway.settled()
    # A token the server did not issue (guessed or tampered with) gets a fresh session.
    for forged in (alice.session + "x", alice.session.split(".")[0] + ".0000", "abc"):
        mallory = await Tab.open(served, session=forged)
        assert mallory.session != alice.session and mallory.history == []
        await mallory.close()
    bob = await Tab.open(served)
    assert bob.history == []
    await bob.say("Bonjour", "bob-00000001")
    bob_reply = await bob.reply()
    assert all(m["author"] != "tenant" or m["text"] == "Bonjour" for m in [bob_reply])
    # Alice's socket saw nothing of Bob's conversation.
    with pytest.raises(TimeoutError):
        await alice.next("message", timeout=0.5)
    await alice.close()
    await bob.close()


async def test_a_foreign_origin_is_refused(gateway: Gateway, served: str) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        await Tab.open(served, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    assert await gateway.messages() == []


async def test_photo_upload_is_private_to_its_session(gateway: Gateway, served: str) -> None:
    tab = await Tab.open(served)
    other = await Tab.open(served)
    base = f"http://{served}"
    async with httpx.AsyncClient(base_url=base, headers={"Origin": ORIGIN}) as http:

        def post(body: bytes, ctype: str, session: str) -> Any:
            return http.post(
                "/channels/webchat/upload",
                content=body,
                headers={"Content-Type": ctype, "X-Webchat-Session": session},
            )

        up = await post(PNG, "image/png", tab.session)
        assert up.status_code == 200 and up.headers["access-control-allow-origin"] == ORIGIN
        ref, url = up.json()["ref"], up.json()["url"]
        assert (await post(PNG, "image/png", "forged.session")).status_code == 403
        assert (await post(b"%PDF-1.7", "application/pdf", tab.session)).status_code == 415
        assert (await post(b"<svg/>", "image/png", tab.session)).status_code == 415
        assert (
            await post(b"\xff\xd8\xff" + b"0" * (6 << 20), "image/jpeg", tab.session)
        ).status_code == 413
        mine = await http.get(url, headers={"X-Webchat-Session": tab.session})
        assert mine.status_code == 200 and mine.content == PNG
        assert (
            await http.get(url, headers={"X-Webchat-Session": other.session})
        ).status_code == 404
        assert (await http.get(url)).status_code == 404
        # Staff read it through the channel (the console calls this).
        channel = gateway.runtime.channels["webchat"]
        assert isinstance(channel, WebChatChannel)
        assert await channel.read_upload(ref) == (PNG, "image/png")
    # Another session cannot attach it; its owner can.
    await other.say("", "other-0001", media=[ref])
    await tab.say("", "tab-00000001", media=[ref])
    await gateway.settled()
    async with gateway.runtime.db.session() as s:
        from sqlalchemy import select

        attachments = list((await s.execute(select(Attachment))).scalars())
    assert [(a.kind, a.url, a.content_type) for a in attachments] == [("photo", url, "image/png")]
    await tab.close()
    await other.close()


async def test_replies_reach_every_tab_of_the_session(gateway: Gateway, served: str) -> None:
    one = await Tab.open(served)
    two = await Tab.open(served, session=one.session)
    await one.say("Bonjour", "tab1-0000001")
    echoed = await two.next("message")  # the tenant's own message, shown in the other tab
    assert echoed["message"]["author"] == "tenant" and echoed["message"]["text"] == "Bonjour"
    assert (await two.reply())["text"] == (await one.reply())["text"]
    await one.close()
    await two.close()


@pytest.mark.redis
async def test_a_reply_sent_by_another_process_reaches_the_socket_through_redis(
    sqlite_url: str, providers: FakeProviders
) -> None:
    """The socket is held by `relais serve`; the reply is sent by a `relais worker`."""
    services.need_redis()
    prefix = f"relais-test-{uuid.uuid4().hex[:8]}"
    settings = gateway_settings(sqlite_url, providers, redis_url=services.REDIS_URL)
    web = Runtime(settings, engine=KeywordEngine(), bus=RedisBus(services.REDIS_URL, prefix=prefix))
    worker = Runtime(
        settings, engine=KeywordEngine(), bus=RedisBus(services.REDIS_URL, prefix=prefix)
    )
    app = RelaisApp()
    install_channels(app, web)
    for channel in build_channels(worker):
        worker.add_channel(channel)
    await web.start(Roles(consume=False, outbox=False, recover=False))
    await worker.start(Roles(consume=True, outbox=True, recover=False))
    try:
        async with serve(app) as host:
            tab = await Tab.open(host)
            await tab.say("Bonjour", "redis-000001")
            reply = await tab.reply()
            assert reply["author"] == "bot" and reply["text"]
            for _ in range(100):  # the worker counts the send just after publishing it
                if worker.outbox.sent:
                    break
                await asyncio.sleep(0.02)
            assert worker.outbox.sent == 1 and web.outbox.sent == 0
            await tab.close()
    finally:
        await web.stop()
        await worker.stop()
        cleanup = RedisBus(services.REDIS_URL, prefix=prefix)
        keys = [k async for k in cleanup.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await cleanup.redis.delete(*keys)
        await cleanup.redis.aclose()


async def test_bad_frames_are_ignored_and_an_oversized_one_closes(
    gateway: Gateway, served: str
) -> None:
    tab = await Tab.open(served)
    await tab.ws.send(b"\x00\x01")
    await tab.ws.send("not json")
    await tab.ws.send(json.dumps({"type": "message", "id": "bad id!", "text": "x"}))
    assert (await tab.next("error"))["reason"] == "bad message id"
    assert (await tab.say("Bonjour", "client-ok-01"))["message_id"]
    await tab.ws.send("x" * (17 * 1024))
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while True:
            await asyncio.wait_for(tab.ws.recv(), 5)
    assert tab.ws.close_code == 1009
    await gateway.settled()
    assert len(await gateway.messages("in")) == 1


def test_widget_is_one_small_file() -> None:
    widget = Path(__file__).parents[2] / "channels" / "webchat_static" / "widget.js"
    assert widget.stat().st_size < 30 * 1024


# -- in a real browser ----------------------------------------------------------------------


class ServerThread:
    """A runtime and uvicorn in a background thread with its own event loop."""

    def __init__(self, settings: Any, uploads: Path) -> None:
        self.settings = settings
        self.uploads = uploads
        self.sock = free_socket()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self.error = exc
            self.ready.set()

    async def _main(self) -> None:
        runtime = Runtime(self.settings, engine=KeywordEngine())
        app = RelaisApp()
        install_channels(app, runtime)
        runtime.channels["webchat"].uploads = self.uploads  # type: ignore[attr-defined]
        await runtime.start(Roles(consume=True, outbox=True, recover=False))
        self.server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        serving = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        while not self.server.started and not serving.done():
            await asyncio.sleep(0.01)
        self.ready.set()
        try:
            await serving
        finally:
            await runtime.stop()

    def __enter__(self) -> ServerThread:
        self.thread.start()
        self.ready.wait(30)
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        if self.server:
            self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if services.required():
            pytest.fail(f"{reason}, and RELAIS_REQUIRE_SERVICES=1 says it must be there")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.mark.browser
def test_the_widget_in_chromium(
    browser: Any, sqlite_url: str, providers: FakeProviders, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings = gateway_settings(sqlite_url, providers, webchat_origins="*")
    with ServerThread(settings, tmp_path / "uploads") as server:
        page = browser.new_page(locale="fr-FR")
        page.goto(server.url + "/webchat/")
        expect(page.get_by_role("heading", name="Habitat Nord Solidaire")).to_be_visible()
        # Keyboard only: focus the bubble, open it, type, send.
        bubble = page.locator("button.bubble")
        expect(bubble).to_have_attribute("aria-expanded", "false")
        bubble.focus()
        page.keyboard.press("Enter")
        expect(bubble).to_have_attribute("aria-expanded", "true")
        log = page.get_by_role("log")
        expect(log).to_have_attribute("aria-live", "polite")
        expect(log.locator("li.bot")).to_have_count(1)  # the local welcome
        page.keyboard.type("Bonjour")
        page.keyboard.press("Enter")
        expect(log.locator("li.bot")).to_have_count(2, timeout=15_000)
        reply = log.locator("li.bot").nth(1).inner_text()
        expect(log.locator("li.tenant:not(.pending)")).to_have_count(1)
        # A photo, through the upload.
        page.locator("input[type=file]").set_input_files(
            files=[{"name": "fuite.png", "mimeType": "image/png", "buffer": PNG}]
        )
        expect(log.locator("li.tenant img")).to_have_count(1)
        expect(log.locator("li.bot")).to_have_count(3, timeout=15_000)
        # Reload: same session, same conversation, the photo fetched with the session's token.
        page.reload()
        expect(log.locator("li.tenant")).to_have_count(2, timeout=15_000)
        expect(log.locator("li.tenant").first).to_contain_text("Bonjour")
        expect(log.locator("li.bot").first).to_contain_text(reply.split("\n")[-1][:30])
        expect(log.locator("li.tenant img")).to_have_attribute("src", lambda_blob())
        # Escape closes the panel and gives focus back to the bubble.
        page.get_by_role("textbox").focus()
        page.keyboard.press("Escape")
        expect(bubble).to_be_focused()
        page.close()


def lambda_blob() -> Any:
    import re

    return re.compile(r"^blob:")


async def test_a_safety_text_is_marked_as_an_emergency(gateway: Gateway, served: str) -> None:
    """The bot's safety text goes out with `"kind": "emergency"` (live and in the history),
    so the widget shows it as one; its other replies carry no kind (older widgets ignore it)."""
    tab = await Tab.open(served)
    await tab.say("ça sent le gaz dans la cage d'escalier", "gas-00000001")
    safety = await tab.reply()
    assert safety.get("kind") == "emergency" and "0 800 47 33 33" in safety["text"]
    question = await tab.reply()  # where are you? (an unknown sender): an ordinary reply
    assert "kind" not in question and question["id"] > safety["id"]
    await gateway.settled()
    await tab.close()
    back = await Tab.open(served, session=tab.session)
    kinds = {m["id"]: m.get("kind") for m in back.history if m["author"] == "bot"}
    assert kinds[safety["id"]] == "emergency" and kinds[question["id"]] is None
    await back.say("Bonjour", "gas-00000002")
    assert "kind" not in await back.reply()
    await back.close()


async def test_forgetting_the_device_ends_the_session(gateway: Gateway, served: str) -> None:
    """ "Oublier cet appareil": the token and every earlier one stop working, the session's
    other tabs are told and closed, and the conversation stays for staff."""
    channel = gateway.runtime.channels["webchat"]
    assert isinstance(channel, WebChatChannel)
    tab = await Tab.open(served)
    await tab.say("Bonjour", "forget-00001")
    await tab.reply()
    await gateway.settled()
    earlier = tab.session
    other = await Tab.open(served, session=tab.session)  # a second tab, a newer token
    token = other.session
    async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Origin": ORIGIN}) as http:
        refused = await http.post("/channels/webchat/forget", headers={"X-Webchat-Session": "x.y"})
        assert refused.status_code == 403
        gone = await http.post("/channels/webchat/forget", headers={"X-Webchat-Session": token})
        assert gone.status_code == 204 and gone.headers["access-control-allow-origin"] == ORIGIN
        # The tabs still open are told, and closed.
        assert (await tab.next("forgotten"))["type"] == "forgotten"
        await other.next("forgotten")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await tab.next("message", timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        # Neither token works any more: not for a socket, an upload, or a second forget.
        for old in (token, earlier):
            assert await channel.current(old) is None
            again = await Tab.open(served, session=old)
            assert again.history == [] and again.session != old
            assert channel.address_of(again.session) != channel.address_of(old)
            await again.close()
            up = await http.post(
                "/channels/webchat/upload",
                content=PNG,
                headers={"Content-Type": "image/png", "X-Webchat-Session": old},
            )
            assert up.status_code == 403
        second = await http.post("/channels/webchat/forget", headers={"X-Webchat-Session": token})
        assert second.status_code == 403
    assert len(await gateway.messages("in")) == 1  # staff keep the conversation
