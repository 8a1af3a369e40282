"""Signed or authenticated but malformed input: a 4xx (never a 500), nothing stored, the
process unharmed; for the web chat, a close frame with a code that says why."""

from __future__ import annotations

import json
import logging

import pytest

from tests.channels.conftest import Gateway, fixture_text, twilio_form

NADIA = "+33612345600"


@pytest.mark.parametrize(
    "fixture",
    [
        "whatsapp_location_nan",  # Latitude=nan
        "whatsapp_location_out_of_range",  # Latitude=123.5
        "sms_sid_too_long",  # a MessageSid of 322 characters
        "sms_body_nul",  # a NUL byte in Body
        "sms_from_nul",  # a NUL byte in From
    ],
)
async def test_signed_but_malformed_twilio_form_is_400(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, fixture: str
) -> None:
    caplog.set_level(logging.INFO)
    resp = await gateway.post_twilio(twilio_form(fixture))
    assert resp.status_code == 400, resp.text
    assert await gateway.messages() == []
    assert NADIA not in caplog.text
    # The gateway still takes the next, well-formed message.
    await gateway.check_webhook("twilio/sms_text", text="Bonjour")


@pytest.mark.parametrize(
    "fixture",
    [
        "message_photo_not_a_list",  # "photo": "<file id>" instead of an array of sizes
        "message_photo_sizes_not_objects",  # "photo": [90, 320]
        "message_location_nan",  # "latitude": NaN
        "message_text_nul",  # a NUL character in the text
        "message_text_not_a_string",  # "text": {...}
        "message_chat_id_too_big",  # a chat id of 2**70
    ],
)
async def test_authenticated_but_malformed_telegram_update_is_400(
    gateway: Gateway, fixture: str
) -> None:
    body = fixture_text(f"telegram/{fixture}.json").encode()
    resp = await gateway.post_telegram(body)
    assert resp.status_code == 400, resp.text
    assert await gateway.messages() == []
    await gateway.check_webhook("telegram/message_text", text="Bonjour")


async def test_deeply_nested_json_is_400(gateway: Gateway) -> None:
    # Valid JSON, 100,000 arrays deep: the parser's recursion must not become a 500.
    body = b'{"update_id": 1, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = await gateway.post_telegram(body)
    assert resp.status_code in (400, 413), resp.text
    deep = json.dumps({"update_id": 2, "message": {"chat": {"id": 5, "type": "private"}}})
    deep = deep.replace('"type"', '"x": ' + "[" * 5000 + "]" * 5000 + ', "type"')
    resp = await gateway.post_telegram(deep.encode())
    assert resp.status_code == 400, resp.text
    assert await gateway.messages() == []
