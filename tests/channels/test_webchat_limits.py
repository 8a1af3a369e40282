"""Anonymous web chat is limited per client address and in all (issue 16, item 1).

A script opening sixty sockets and writing "urgent fuite de gaz" in each used to get sixty
sessions, sixty answers and sixty SMS to the on-call phone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import websockets
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.storage.models import Message, Outbox
from channels.clients import client_address
from channels.registry import install_channels
from channels.routes import RelaisApp
from handoff.escalation import escalate_due
from tests.channels.conftest import ORIGIN, Gateway, gateway_settings
from tests.channels.fakes import FakeProviders
from tests.channels.test_webchat import PNG, Tab, free_socket
from tests.fakes import KeywordEngine

ONCALL, MANAGER = "+33611000009", "+33611000010"

GatewayFactory = Callable[..., Any]


@contextlib.asynccontextmanager
async def serve(app: RelaisApp) -> AsyncIterator[str]:
    """uvicorn as `relais serve` runs it: without its own X-Forwarded-For handling."""
    sock = free_socket()
    config = uvicorn.Config(app, lifespan="off", log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
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
async def gateway_with(
    database_url: str, providers: FakeProviders, tmp_path: Path
) -> AsyncIterator[GatewayFactory]:
    """`await gateway_with(**settings)`: the channels' routes served by uvicorn; (gw, host)."""
    opened: list[tuple[Runtime, Gateway, Any]] = []

    async def make(**overrides: Any) -> tuple[Gateway, str]:
        runtime = Runtime(
            gateway_settings(database_url, providers, **overrides), engine=KeywordEngine()
        )
        app = RelaisApp()
        install_channels(app, runtime)
        runtime.channels["webchat"].uploads = tmp_path / "uploads"  # type: ignore[attr-defined]
        await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
        gw = Gateway(runtime, app, providers)
        served = serve(app)
        host = await served.__aenter__()
        opened.append((runtime, gw, served))
        return gw, host

    try:
        yield make
    finally:
        for runtime, gw, served in opened:
            await served.__aexit__(None, None, None)
            await gw.client.aclose()
            await runtime.stop()


async def hello(host: str, **headers: str) -> tuple[dict[str, Any], Any]:
    """Open a socket and say hello; (first frame, socket) — the frame is an error if refused."""
    ws = await websockets.connect(
        f"ws://{host}/channels/webchat/ws",
        origin=ORIGIN,  # type: ignore[arg-type]
        additional_headers=headers,
    )
    await ws.send(json.dumps({"type": "hello", "session": None, "since": 0}))
    return json.loads(await asyncio.wait_for(ws.recv(), 10)), ws


async def closed_with(ws: Any) -> int | None:
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    return ws.close_code  # type: ignore[no-any-return]


def texts_to(gw: Gateway, number: str) -> list[str]:
    return [m["Body"] for m in gw.providers.twilio_sent() if m["To"] == number]


async def test_sixty_sockets_from_one_script_do_not_page_sixty_times(
    gateway_with: GatewayFactory,
) -> None:
    gw, host = await gateway_with()
    limit = gw.runtime.settings.webchat_sessions_per_ip_hour
    accepted, refused = [], 0
    for _ in range(60):
        first, ws = await hello(host)
        if first["type"] == "welcome":
            accepted.append(ws)
        else:
            assert first == {
                "type": "error",
                "id": None,
                "reason": "busy",
                "retry": False,
                "retry_after": first["retry_after"],
            }
            assert 0 < first["retry_after"] <= 3601
            assert await closed_with(ws) == 1013
            refused += 1
    assert (len(accepted), refused) == (limit, 60 - limit)
    for i, ws in enumerate(accepted):  # each session says it, and is answered at once
        await ws.send(
            json.dumps({"type": "message", "id": f"flood-{i:06d}", "text": "urgent fuite de gaz"})
        )
    for ws in accepted:
        tab = Tab(ws)
        assert "URGENT" in (await tab.reply())["text"]
    await gw.settled()
    assert await escalate_due(gw.runtime) == limit  # every report is in the queue...
    gw.runtime.outbox.wake()
    for _ in range(500):
        async with gw.runtime.db.session() as s:
            due = await s.scalar(
                select(func.count(Outbox.id)).where(
                    Outbox.status.in_(("pending", "sending")),
                    Outbox.next_attempt_at <= gw.runtime.clock(),
                )
            )
        if not due:
            break
        await asyncio.sleep(0.02)
    pages = [t for t in texts_to(gw, ONCALL) if "/console/c/" in t]
    assert len(pages) == 1  # ...and on call is paged once, the others grouped for later
    # The flood itself is told once to on-call and to the manager.
    assert len([t for t in texts_to(gw, ONCALL) if "afflux" in t]) == 1
    assert len([t for t in texts_to(gw, MANAGER) if "afflux" in t]) == 1
    for ws in accepted:
        await ws.close()


async def test_only_the_configured_header_names_the_client(gateway_with: GatewayFactory) -> None:
    # Without RELAIS_FORWARDED_HEADER a client's X-Forwarded-For is not believed.
    _, host = await gateway_with(webchat_sessions_per_ip_hour=2)
    results = [
        (await hello(host, **{"X-Forwarded-For": f"203.0.113.{i}"}))[0]["type"] for i in range(3)
    ]
    assert results == ["welcome", "welcome", "error"]
    # With it (behind the proxy), the last address in the header is the client's.
    _, host = await gateway_with(webchat_sessions_per_ip_hour=2, forwarded_header="X-Forwarded-For")
    proxied = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}
    results = [(await hello(host, **proxied))[0]["type"] for _ in range(3)]
    assert results == ["welcome", "welcome", "error"]
    assert (await hello(host, **{"X-Forwarded-For": "203.0.113.8"}))[0]["type"] == "welcome"


async def test_messages_and_uploads_are_limited_per_address(
    gateway_with: GatewayFactory,
) -> None:
    gw, host = await gateway_with(webchat_messages_per_ip_minute=3)
    tab = await Tab.open(host)
    for i in range(3):
        assert (await tab.say(f"message {i}", f"limited-{i:04d}"))["message_id"]
    await tab.ws.send(json.dumps({"type": "message", "id": "limited-0003", "text": "encore"}))
    refusal = await tab.next("error")
    assert refusal["reason"] == "busy" and refusal["retry"] and refusal["id"] == "limited-0003"
    async with httpx.AsyncClient(base_url=f"http://{host}", headers={"Origin": ORIGIN}) as http:
        up = await http.post(
            "/channels/webchat/upload",
            content=PNG,
            headers={"Content-Type": "image/png", "X-Webchat-Session": tab.session},
        )
    assert up.status_code == 429 and int(up.headers["retry-after"]) > 0
    await gw.settled()
    async with gw.runtime.db.session() as s:
        stored = await s.scalar(select(func.count(Message.id)).where(Message.direction == "in"))
    assert stored == 3  # the refused one was not stored: the widget sends it again later
    await tab.close()


@pytest.mark.parametrize(
    ("peer", "headers", "header", "expected"),
    [
        (("192.0.2.1", 5000), {"x-forwarded-for": "203.0.113.7"}, None, "192.0.2.1"),
        (
            ("192.0.2.1", 5000),
            {"x-forwarded-for": "10.0.0.1, 203.0.113.7"},
            "X-Forwarded-For",
            "203.0.113.7",
        ),
        (("192.0.2.1", 5000), {"x-real-ip": "203.0.113.9"}, "X-Real-IP", "203.0.113.9"),
        (("192.0.2.1", 5000), {}, "X-Real-IP", "192.0.2.1"),  # not through the proxy
        (
            ("192.0.2.1", 5000),
            {"forwarded": 'for="[2001:db8:1:2::5]:443";proto=https'},
            "Forwarded",
            "2001:db8:1:2::/64",
        ),
        (("2001:db8:aa:bb:1:2:3:4", 5000), {}, None, "2001:db8:aa:bb::/64"),
        (("::ffff:192.0.2.4", 5000), {}, None, "192.0.2.4"),
        (("192.0.2.1", 5000), {"x-forwarded-for": "not an address"}, "X-Forwarded-For", "unknown"),
        (None, {}, None, "unknown"),
    ],
)
def test_client_address(
    peer: Any, headers: dict[str, str], header: str | None, expected: str
) -> None:
    assert client_address(peer, headers, header) == expected
