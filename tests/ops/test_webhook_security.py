"""Webhook authentication on every channel: forged, replayed and misdirected requests.

The channels' own tests cover a missing or wrong signature/secret, a proxy-mangled public URL,
forged web chat sessions and foreign origins; these add tampering, replays and wrong URLs.
"""

from __future__ import annotations

import json

import httpx
import pytest
from twilio.request_validator import RequestValidator

from tests.channels.conftest import (
    PUBLIC_URL,
    TELEGRAM_SECRET,
    Gateway,
    telegram_update,
    twilio_form,
)


def signed(gateway: Gateway, form: dict[str, str], url: str) -> str:
    return RequestValidator(gateway.providers.twilio_token).compute_signature(url, form)


async def test_twilio_tampered_body_keeps_no_signature(gateway: Gateway) -> None:
    form = twilio_form("sms_text")
    signature = signed(gateway, form, PUBLIC_URL + "/channels/sms/twilio")
    for field, value in (("Body", "URGENT fuite de gaz"), ("From", "+33612345601")):
        resp = await gateway.post_twilio({**form, field: value}, signature=signature)
        assert resp.status_code == 403
    # A parameter added after signing, too.
    resp = await gateway.post_twilio(
        {**form, "NumMedia": "1", "MediaUrl0": "https://evil.example/x.jpg"}, signature=signature
    )
    assert resp.status_code == 403
    assert await gateway.messages() == []


async def test_twilio_replay_is_stored_and_answered_once(gateway: Gateway) -> None:
    form = twilio_form("sms_text")
    for _ in range(3):  # Twilio signatures carry no timestamp: idempotency is the defence
        resp = await gateway.post_twilio(form)
        assert resp.status_code == 200
    await gateway.settled()
    assert len(await gateway.messages("in")) == 1
    assert len(gateway.replies("twilio")) == 1


@pytest.mark.parametrize(
    "signed_for",
    [
        PUBLIC_URL + "/channels/sms/twilio/status",  # another of our URLs
        PUBLIC_URL + "/channels/sms/twilio?x=1",  # a query string added
        PUBLIC_URL.replace("https", "http") + "/channels/sms/twilio",  # another scheme
        "https://evil.example/channels/sms/twilio",  # another host
    ],
)
async def test_twilio_signature_for_another_url_is_refused(
    gateway: Gateway, signed_for: str
) -> None:
    resp = await gateway.post_twilio(twilio_form("sms_text"), signed_url=signed_for)
    assert resp.status_code == 403
    assert await gateway.messages() == []


async def test_twilio_status_callback_is_authenticated(gateway: Gateway) -> None:
    form = twilio_form("status_delivered")
    resp = await gateway.post_twilio(form, path="/channels/sms/twilio/status", signature="Zm9yZ2Vk")
    assert resp.status_code == 403
    # Signed for the inbound URL, replayed on the status URL.
    sig = signed(gateway, form, PUBLIC_URL + "/channels/sms/twilio")
    resp = await gateway.post_twilio(form, path="/channels/sms/twilio/status", signature=sig)
    assert resp.status_code == 403


async def test_telegram_replay_is_stored_and_answered_once(gateway: Gateway) -> None:
    update = telegram_update("message_text")
    for _ in range(3):
        resp = await gateway.post_telegram(update)
        assert resp.status_code == 200
    await gateway.settled()
    assert len(await gateway.messages("in")) == 1
    assert len(gateway.replies("telegram")) == 1


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET.upper()},
        {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET + " "},
        {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET[:-1]},
        {"X-Twilio-Signature": "anything"},
    ],
)
async def test_telegram_without_the_exact_secret_header_is_refused(
    gateway: Gateway, headers: dict[str, str]
) -> None:
    body = json.dumps(telegram_update("message_text")).encode()
    resp = await gateway.client.post(
        "/channels/telegram", content=body, headers={"Content-Type": "application/json", **headers}
    )
    assert resp.status_code == 401
    # The secret in the URL instead of the header does not count either.
    resp = await gateway.client.post(
        f"/channels/telegram?secret_token={TELEGRAM_SECRET}",
        content=body,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 401
    assert await gateway.messages() == []


async def test_credentials_of_one_channel_do_not_open_another(gateway: Gateway) -> None:
    # A valid Twilio request sent to the Telegram route, and a Telegram update to Twilio's.
    form = twilio_form("sms_text")
    sig = signed(gateway, form, PUBLIC_URL + "/channels/telegram")
    resp = await gateway.client.post(
        "/channels/telegram",
        content=httpx.QueryParams(form).__str__(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": sig},
    )
    assert resp.status_code == 401
    resp = await gateway.client.post(
        "/channels/sms/twilio",
        content=json.dumps(telegram_update("message_text")),
        headers={
            "Content-Type": "application/json",
            "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
        },
    )
    assert resp.status_code == 403
    assert await gateway.messages() == []


@pytest.mark.parametrize(
    "path", ["/channels/sms", "/channels/sms/twilio/", "/channels/telegram/x", "/channels/twilio"]
)
async def test_wrong_webhook_urls_store_nothing(gateway: Gateway, path: str) -> None:
    form = twilio_form("sms_text")
    resp = await gateway.post_twilio(form, path=path, signed_url=PUBLIC_URL + path)
    assert resp.status_code in (404, 405, 307)
    assert await gateway.messages() == []


async def test_wrong_methods_are_refused(gateway: Gateway) -> None:
    for path in ("/channels/sms/twilio", "/channels/telegram"):
        assert (await gateway.client.get(path)).status_code == 405
        assert (await gateway.client.put(path, content=b"{}")).status_code == 405
