"""The web app: health checks and the shared webhook route, with a minimal provider channel."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import ClassVar

import httpx
import pytest
from sqlalchemy import func, select

from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.core.channel import WebhookChannel, WebhookRequest
from bot.core.errors import BadSignature, Malformed, Unsupported
from bot.core.types import Inbound, Outbound, SendResult
from bot.storage.models import Message
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled

SECRET = b"s3cret"


class SignedJsonChannel(WebhookChannel):
    """The smallest real channel: JSON body, HMAC-SHA256 signature header."""

    name: ClassVar[str] = "sms"
    path: ClassVar[str] = "/channels/test"

    def __init__(self) -> None:
        self.sent: list[Outbound] = []

    async def verify(self, request: WebhookRequest) -> None:
        expected = hmac.new(SECRET, request.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("x-signature", "")):
            raise BadSignature()

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        body = request.json
        if not isinstance(body, dict) or "from" not in body:
            raise Malformed("missing 'from'")
        if body.get("event") == "typing":
            raise Unsupported("typing events are ignored")
        return [
            Inbound(
                channel="sms",
                address=body["from"],
                text=body.get("text", ""),
                provider_id=body.get("id"),
            )
        ]

    async def send(self, outbound: Outbound) -> SendResult:
        self.sent.append(outbound)
        return SendResult(provider_id=f"t{outbound.outbox_id}")


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    sig = hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return body, {"x-signature": sig, "content-type": "application/json"}


@pytest.fixture
async def client(
    database_url: str,
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, SignedJsonChannel]]:
    channel = SignedJsonChannel()
    rt = Runtime(make_settings(database_url), engine=KeywordEngine())
    rt.add_channel(channel)
    app = create_app(rt.settings, runtime=rt, prepare=False)
    from channels.routes import install_posts, webhook_endpoint

    install_posts(app, {channel.path: webhook_endpoint(channel, rt)})
    await rt.start(Roles())
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://relais.test"
    ) as c:
        yield c, rt, channel
    await rt.stop()


async def stored(rt: Runtime) -> int:
    async with rt.db.session() as s:
        return (
            await s.execute(select(func.count(Message.id)).where(Message.direction == "in"))
        ).scalar_one()


async def test_health_and_readiness(client) -> None:
    c, _rt, _ch = client
    assert (await c.get("/healthz")).json() == {"status": "ok"}
    ready = await c.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"


async def test_webhook_stores_once_and_replies_once(client) -> None:
    c, rt, channel = client
    body, headers = signed({"from": "+33612345600", "text": "bonjour", "id": "m1"})
    for _ in range(3):  # the provider retries
        r = await c.post("/channels/test", content=body, headers=headers)
        assert r.status_code == 200
    await settled(rt)
    assert await stored(rt) == 1
    assert len(channel.sent) == 1 and "Nadia" in channel.sent[0].text


@pytest.mark.parametrize(
    ("payload", "headers", "status"),
    [
        ({"from": "+33612345600", "text": "x", "id": "1"}, {"x-signature": "forged"}, 403),
        ({"from": "+33612345600", "text": "x", "id": "2"}, {}, 403),
        ({"text": "no sender"}, None, 400),
        ({"from": "+33612345600", "event": "typing"}, None, 200),
    ],
    ids=["forged", "unsigned", "malformed", "unsupported-event"],
)
async def test_bad_requests_store_nothing(client, payload, headers, status) -> None:
    c, rt, _ch = client
    body, good = signed(payload)
    r = await c.post(
        "/channels/test",
        content=body,
        headers=good if headers is None else {**headers, "content-type": "application/json"},
    )
    assert r.status_code == status
    assert await stored(rt) == 0


async def test_a_body_over_64kb_is_refused(client) -> None:
    c, rt, _ch = client
    body, headers = signed({"from": "+33612345600", "text": "x" * 70_000, "id": "big"})
    r = await c.post("/channels/test", content=body, headers=headers)
    assert r.status_code == 413
    assert await stored(rt) == 0


async def test_database_down_answers_503_so_the_provider_retries() -> None:
    # Nothing listens on port 1: the database is "briefly unavailable".
    settings = make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/test")
    channel = SignedJsonChannel()
    rt = Runtime(settings, engine=KeywordEngine(), channels={"sms": RecordingChannel()})
    app = create_app(settings, runtime=rt, prepare=False)
    from channels.routes import install_posts, webhook_endpoint

    install_posts(app, {channel.path: webhook_endpoint(channel, rt)})
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://relais.test"
    ) as c:
        body, headers = signed({"from": "+33612345600", "text": "bonjour", "id": "d1"})
        r = await c.post("/channels/test", content=body, headers=headers)
        assert r.status_code == 503
        ready = await c.get("/readyz")
        assert ready.status_code == 503
    await rt.db.dispose()
