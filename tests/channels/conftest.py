"""The channel test bench: the real routes, a started runtime and the fake provider servers.

`gateway.check_webhook("twilio/sms_text", ...)` feeds a fixture through the route, waits for the
pipeline and the outbox, and checks what was stored and what the provider received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from bot.app.runtime import Roles, Runtime
from bot.storage.models import Message
from channels.registry import install_channels
from channels.routes import RelaisApp
from tests.channels.fakes import FakeProviders
from tests.conftest import make_settings
from tests.fakes import KeywordEngine
from tests.worker.test_pipeline import settled

FIXTURES = Path(__file__).parent / "fixtures"
PUBLIC_URL = "https://relais.habitat-nord.example"
TELEGRAM_SECRET = "s3cret-Token_for-tests"
ORIGIN = "https://www.habitat-nord.example"


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def twilio_form(name: str, **overrides: str) -> dict[str, str]:
    form = dict(parse_qsl(fixture_text(f"twilio/{name}.form"), keep_blank_values=True))
    form.update(overrides)
    return form


def telegram_update(name: str, **overrides: Any) -> dict[str, Any]:
    update: dict[str, Any] = json.loads(fixture_text(f"telegram/{name}.json"))
    update.update(overrides)
    return update


@dataclass
class Checked:
    inbound: Message
    replies: list[dict[str, Any]]  # as the fake provider received them


class Gateway:
    def __init__(self, runtime: Runtime, app: FastAPI, providers: FakeProviders) -> None:
        self.runtime = runtime
        self.app = app
        self.providers = providers
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )

    # -- posting provider requests -----------------------------------------------------

    async def post_twilio(
        self,
        form: dict[str, str],
        *,
        path: str = "/channels/sms/twilio",
        signed_url: str | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST a form as Twilio does, signed for `signed_url` (by default our public URL)."""
        validator = RequestValidator(self.providers.twilio_token)
        if signature is None:
            signature = validator.compute_signature(signed_url or PUBLIC_URL + path, form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if signature:
            headers["X-Twilio-Signature"] = signature
        return await self.client.post(path, content=urlencode(form), headers=headers)

    async def post_telegram(
        self, update: dict[str, Any] | bytes, *, secret: str | None = TELEGRAM_SECRET
    ) -> httpx.Response:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = update if isinstance(update, bytes) else json.dumps(update).encode()
        return await self.client.post("/channels/telegram", content=body, headers=headers)

    # -- the shortest right test -------------------------------------------------------

    async def check_webhook(
        self,
        fixture: str,
        *,
        text: str | None = None,
        replies: int = 1,
        reply_contains: str | None = None,
        **overrides: Any,
    ) -> Checked:
        """Feed `<provider>/<name>` through its route; check the stored message and replies."""
        provider, name = fixture.split("/", 1)
        if provider == "twilio":
            resp = await self.post_twilio(twilio_form(name, **overrides))
            assert resp.status_code == 200, resp.text
            assert resp.headers["content-type"].startswith("text/xml")
            assert resp.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
        else:
            resp = await self.post_telegram(telegram_update(name, **overrides))
            assert resp.status_code == 200, resp.text
        await self.settled()
        inbound = (await self.messages("in"))[-1]
        if text is not None:
            assert inbound.text == text
        got = self.replies(provider)
        assert len(got) == replies, got
        if reply_contains is not None:
            assert reply_contains in _reply_text(got[-1]), got[-1]
        return Checked(inbound, got)

    def replies(self, provider: str) -> list[dict[str, Any]]:
        if provider == "twilio":
            return self.providers.twilio_sent()
        return self.providers.telegram_calls("sendMessage") + self.providers.telegram_calls(
            "sendPhoto"
        )

    async def settled(self, timeout: float = 15.0) -> None:
        await settled(self.runtime, timeout)

    async def messages(self, direction: str | None = None) -> list[Message]:
        async with self.runtime.db.session() as s:
            stmt = select(Message).order_by(Message.id)
            if direction:
                stmt = stmt.where(Message.direction == direction)
            return list((await s.execute(stmt)).scalars())


def _reply_text(reply: dict[str, Any]) -> str:
    return str(reply.get("Body") or reply.get("text") or reply.get("caption") or "")


@pytest.fixture
def providers() -> Iterator[FakeProviders]:
    fake = FakeProviders().start()
    try:
        yield fake
    finally:
        fake.stop()


def gateway_settings(database_url: str, providers: FakeProviders, **overrides: Any) -> Any:
    values: dict[str, Any] = dict(
        public_url=PUBLIC_URL,
        twilio_account_sid=providers.twilio_sid,
        twilio_auth_token=providers.twilio_token,
        twilio_from="+33757000000",
        twilio_api_base=providers.url,
        telegram_token=providers.telegram_token,
        telegram_secret=TELEGRAM_SECRET,
        telegram_api_base=providers.url,
        webchat_origins=ORIGIN,
        outbox_max_attempts=3,
    )
    values.update(overrides)
    return make_settings(database_url, **values)


@pytest.fixture
async def gateway(
    database_url: str, providers: FakeProviders, tmp_path: Path
) -> AsyncIterator[Gateway]:
    """The channels' routes on the parametrised database, replies going to the fake providers."""
    runtime = Runtime(gateway_settings(database_url, providers), engine=KeywordEngine())
    app = RelaisApp()
    install_channels(app, runtime)
    runtime.channels["webchat"].uploads = tmp_path / "uploads"  # type: ignore[attr-defined]
    await runtime.start(Roles(consume=True, outbox=True, recover=False))
    gw = Gateway(runtime, app, providers)
    try:
        yield gw
    finally:
        await gw.client.aclose()
        await runtime.stop()
