"""Telegram through the real route, on SQLite and PostgreSQL, to a fake Bot API server."""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from sqlalchemy import select

from bot.storage.models import Conversation, Outbox, Tenant
from channels.telegram import TelegramChannel, poll_updates
from tests.channels.conftest import Gateway, telegram_update

CHAT = "111222333"


async def test_text_is_stored_and_answered(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("telegram/message_text", text="Bonjour")
    assert checked.inbound.channel == "telegram" and checked.inbound.provider_id == "810000001"
    reply = checked.replies[0]
    assert reply["chat_id"] == CHAT
    out = (await gateway.messages("out"))[0]
    assert out.delivery_status == "sent" and out.provider_id and out.provider_id.startswith("out:")
    assert out.text == reply["text"]


async def test_an_unknown_user_is_offered_the_contact_button(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("telegram/message_leak")
    assert "L-10231" in checked.replies[0]["text"]  # who are you?
    markup = json.loads(checked.replies[0]["reply_markup"])
    button = markup["keyboard"][0][0]
    assert button["request_contact"] is True and "numéro" in button["text"]
    assert markup["one_time_keyboard"] is True


async def test_photo_keeps_the_largest_size(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("telegram/message_photo", text="la fuite sous l'évier")
    (photo,) = checked.inbound.media
    assert photo["kind"] == "photo" and photo["file_id"] == "AgACAgQAAxkBAAMSZ1large"
    assert photo["content_type"] == "image/jpeg"


async def test_location(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("telegram/message_location", text="")
    (location,) = checked.inbound.media
    assert location["kind"] == "location"
    assert location["data"] == {"lat": 50.62925, "lon": 3.057256}


async def test_sharing_ones_own_contact_links_the_tenant(gateway: Gateway) -> None:
    await gateway.check_webhook("telegram/message_leak")
    # Linked, greeted, and the leak they reported first is taken up (the next question).
    checked = await gateway.check_webhook("telegram/message_contact", replies=3)
    (contact,) = checked.inbound.media
    assert contact["data"] == {"phone": "+33612345600", "own": True}
    async with gateway.runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        tenant = await s.get(Tenant, conv.tenant_id)
    assert tenant is not None and tenant.first_name == "Nadia"
    assert tenant.telegram_chat_id == CHAT
    # Greeted by name and asked what they need, not thanked for a "photo".
    assert "Nadia" in checked.replies[-2]["text"] and "photo" not in checked.replies[-2]["text"]
    # Once known, no more contact button.
    assert "reply_markup" not in checked.replies[-1]


async def test_someone_elses_contact_does_not_link(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("telegram/message_contact_other")
    assert checked.inbound.media[0]["data"] == {"phone": "+33612345601", "own": False}
    async with gateway.runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
    assert conv.tenant_id is None


@pytest.mark.parametrize("secret", [None, "", "wrong-secret"])
async def test_wrong_secret_is_401_and_stores_nothing(gateway: Gateway, secret: str | None) -> None:
    resp = await gateway.post_telegram(telegram_update("message_text"), secret=secret)
    assert resp.status_code == 401
    assert await gateway.messages() == []


async def test_a_duplicate_update_id_is_stored_and_answered_once(gateway: Gateway) -> None:
    await gateway.check_webhook("telegram/message_text")
    await gateway.check_webhook("telegram/message_text")
    await gateway.settled()  # processed and delivered: a second reply would be there by now
    assert len(await gateway.messages("in")) == 1
    assert len(gateway.replies("telegram")) == 1


@pytest.mark.parametrize("fixture", ["edited_message", "callback_query", "my_chat_member"])
async def test_unsupported_updates_are_200_and_ignored(gateway: Gateway, fixture: str) -> None:
    resp = await gateway.post_telegram(telegram_update(fixture))
    assert resp.status_code == 200
    assert await gateway.messages() == []


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"message": {"text": "x"}}',
        b'{"update_id": 1, "message": {"text": "x"}}',
    ],
)
async def test_malformed_is_400(gateway: Gateway, body: bytes) -> None:
    resp = await gateway.post_telegram(body)
    assert resp.status_code == 400
    assert await gateway.messages() == []


async def test_a_100_kb_update_is_413(gateway: Gateway) -> None:
    update = telegram_update("message_text")
    update["message"]["text"] = "x" * 100_000
    assert (await gateway.post_telegram(update)).status_code == 413
    assert await gateway.messages() == []


async def test_429_retry_after_is_respected(gateway: Gateway) -> None:
    gateway.providers.fail("telegram", 429, retry_after=1)
    await gateway.check_webhook("telegram/message_text")
    first, second = gateway.providers.attempts("telegram")
    assert (first.status, second.status) == (429, 200)
    assert second.at - first.at >= 0.9


async def test_5xx_is_retried_without_sending_twice(gateway: Gateway) -> None:
    gateway.providers.fail("telegram", 502, times=2)
    await gateway.check_webhook("telegram/message_text", replies=1)
    assert [c.status for c in gateway.providers.attempts("telegram")] == [502, 502, 200]
    async with gateway.runtime.db.session() as s:
        row = (await s.execute(select(Outbox))).scalar_one()
    assert (row.status, row.attempts) == ("sent", 3)


async def test_a_blocked_bot_fails_at_once(gateway: Gateway) -> None:
    gateway.providers.fail("telegram", 403)
    await gateway.check_webhook("telegram/message_text", replies=0)
    async with gateway.runtime.db.session() as s:
        row = (await s.execute(select(Outbox))).scalar_one()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error and "blocked" in row.last_error


async def test_download_file_for_the_console(gateway: Gateway) -> None:
    channel = gateway.runtime.channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    data, content_type = await channel.download_file("AgACAgQAAxkBAAMSZ1large")
    assert data.startswith(b"\xff\xd8\xff") and content_type == "image/jpeg"
    assert gateway.providers.telegram_calls("getFile")[0]["file_id"] == "AgACAgQAAxkBAAMSZ1large"


async def test_long_polling_stores_updates_like_the_webhook(gateway: Gateway) -> None:
    channel = gateway.runtime.channels["telegram"]
    assert isinstance(channel, TelegramChannel)
    gateway.providers.updates += [
        telegram_update("message_leak"),
        telegram_update("callback_query"),
        telegram_update("message_photo"),
    ]

    def offsets() -> list[str | None]:
        return [c.get("offset") for c in gateway.providers.telegram_calls("getUpdates")]

    polling = asyncio.create_task(poll_updates(channel.bot, gateway.runtime.ingest, wait=0))
    try:
        await gateway.settled()
        deadline = asyncio.get_running_loop().time() + 10
        while len(await gateway.messages("in")) < 2 or "810000011" not in offsets():
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.05)
    finally:
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling
    assert gateway.providers.telegram_calls("deleteWebhook")
    assert [m.provider_id for m in await gateway.messages("in")] == ["810000002", "810000010"]
    assert "810000011" in offsets()  # acknowledged past the last one, the ignored one included
