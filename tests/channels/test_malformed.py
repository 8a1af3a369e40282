"""Signed or authenticated but malformed input: a 4xx (never a 500), nothing stored, the
process unharmed; for the web chat, a close frame with a code that says why."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets

from tests.channels.conftest import ORIGIN, Gateway, fixture_text, twilio_form
from tests.channels.test_webchat import Tab, serve

NADIA = "+33612345600"


@pytest.fixture
async def served(gateway: Gateway) -> AsyncIterator[str]:
    async with serve(gateway.app) as host:
        yield host


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


async def _closed_with(ws: Any, frames: list[str | bytes]) -> int | None:
    """Send the frames; the close code the server sent (None: the socket was dropped
    without a close frame, which is what a crash of the handler looked like)."""
    for frame in frames:
        await ws.send(frame)
    with pytest.raises(websockets.exceptions.ConnectionClosed):
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    received = ws.protocol.close_rcvd
    return received.code if received is not None else None


HELLO = json.dumps({"type": "hello", "session": None, "since": 0})
DEEP = '{"type": "message", "id": "c1", "text": ' + "[" * 5_000 + "]" * 5_000 + "}"  # 10 KB


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        # Hellos a widget never sends: a session that is not a string or not ASCII, a
        # `since` past any id (PostgreSQL's integer), JSON nested beyond the parser.
        ([json.dumps({"type": "hello", "session": {"a": 1}})], 1007),
        ([json.dumps({"type": "hello", "session": "jeton.é"})], None),
        ([json.dumps({"type": "hello", "since": 2**70})], 1007),
        ([DEEP], 1009),
        # After a good hello: media that is not a list of strings, deep JSON.
        ([HELLO, json.dumps({"type": "message", "id": "c1", "text": "x", "media": 5})], 1007),
        ([HELLO, json.dumps({"type": "message", "id": "c1", "media": [{"a": 1}]})], 1007),
        ([HELLO, json.dumps({"type": "message", "id": "c1", "text": ["a"]})], 1007),
        ([HELLO, DEEP], 1009),
    ],
)
async def test_malformed_web_chat_frames_close_with_a_code(
    gateway: Gateway, served: str, frames: list[str | bytes], code: int | None
) -> None:
    ws = await websockets.connect(f"ws://{served}/channels/webchat/ws", origin=ORIGIN)  # type: ignore[arg-type]
    if code is None:
        # Not a session we issued: a new one, as for any unknown token; the socket lives.
        await ws.send(frames[0])
        welcome = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert welcome["type"] == "welcome" and welcome["session"] != "jeton.é"
        await ws.close()
    else:
        assert await _closed_with(ws, frames) == code
    assert await gateway.messages() == []
    # The gateway keeps serving.
    tab = await Tab.open(served)
    assert (await tab.say("Bonjour", "client-ok-01"))["message_id"]
    await tab.close()
