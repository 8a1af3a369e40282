"""Twilio SMS and WhatsApp through the real routes, on SQLite and PostgreSQL, to a fake Twilio."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from bot.storage.models import Attachment, Message, Outbox
from channels import gsm7
from tests.channels.conftest import PUBLIC_URL, Gateway, twilio_form

NADIA = "+33612345600"


async def test_sms_text_is_stored_and_answered_once(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("twilio/sms_text", text="Bonjour", reply_contains="Nadia")
    reply = checked.replies[0]
    assert reply["To"] == NADIA and reply["From"] == "+33757000000"
    assert reply["StatusCallback"] == PUBLIC_URL + "/channels/sms/twilio/status"
    assert checked.inbound.channel == "sms"
    assert checked.inbound.provider_id == "SM1f0e8ae6ade43cb3c0ce4525424e404f"
    out = (await gateway.messages("out"))[0]
    assert (
        out.delivery_status == "sent" and out.provider_id and out.provider_id.startswith("out:SM")
    )
    # What is stored is what Twilio got, GSM-7 folded, with its segment count.
    assert out.text == reply["Body"] and gsm7.is_gsm7(out.text)
    assert out.segments == gsm7.segments(reply["Body"])


async def test_mms_with_two_photos_keeps_both(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("twilio/mms_two_photos", text="ya une fuite ds la sdb")
    async with gateway.runtime.db.session() as s:
        attachments = list((await s.execute(select(Attachment).order_by(Attachment.id))).scalars())
    assert [(a.kind, a.content_type) for a in attachments] == [
        ("photo", "image/jpeg"),
        ("photo", "image/png"),
    ]
    assert all(a.message_id == checked.inbound.id for a in attachments)
    assert attachments[0].url and attachments[0].url.endswith(
        "/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f"
    )
    assert len(checked.inbound.media) == 2


async def test_whatsapp_replies_go_back_to_whatsapp(gateway: Gateway) -> None:
    checked = await gateway.check_webhook("twilio/whatsapp_text", reply_contains="Jean")
    assert (checked.inbound.channel, await _address(gateway, checked.inbound)) == (
        "whatsapp",
        "+33612345601",
    )
    assert checked.replies[0]["To"] == "whatsapp:+33612345601"
    assert checked.replies[0]["From"] == "whatsapp:+33757000000"


@pytest.mark.parametrize("signature", ["", "bm90IHRoZSBzaWduYXR1cmU="])
async def test_bad_or_missing_signature_is_403_and_stores_nothing(
    gateway: Gateway, signature: str
) -> None:
    resp = await gateway.post_twilio(twilio_form("sms_text"), signature=signature)
    assert resp.status_code == 403
    assert await gateway.messages() == []


async def test_wrong_public_url_is_403_and_the_log_names_the_url(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    # Twilio signed the proxy's internal address, not RELAIS_PUBLIC_URL.
    caplog.set_level(logging.WARNING, logger="channels.sms")
    resp = await gateway.post_twilio(
        twilio_form("sms_text"), signed_url="http://10.0.0.5:8000/channels/sms/twilio"
    )
    assert resp.status_code == 403
    line = next(r.getMessage() for r in caplog.records if r.name == "channels.sms")
    assert PUBLIC_URL + "/channels/sms/twilio" in line and "RELAIS_PUBLIC_URL" in line
    assert NADIA not in caplog.text and "Bonjour" not in caplog.text
    assert await gateway.messages() == []


async def test_status_callback_updates_the_delivery_status(gateway: Gateway) -> None:
    await gateway.check_webhook("twilio/sms_text")
    sid = gateway.providers.twilio_sent()  # the fake numbers its SIDs
    async with gateway.runtime.db.session() as s:
        row = (await s.execute(select(Outbox))).scalar_one()
    assert sid and row.provider_id
    path = "/channels/sms/twilio/status"
    resp = await gateway.post_twilio(
        twilio_form("status_delivered", MessageSid=row.provider_id), path=path
    )
    assert resp.status_code == 200
    assert (await gateway.messages("out"))[0].delivery_status == "delivered"
    # A late "sent" callback does not undo "delivered".
    late = twilio_form("status_delivered", MessageSid=row.provider_id, MessageStatus="sent")
    assert (await gateway.post_twilio(late, path=path)).status_code == 200
    assert (await gateway.messages("out"))[0].delivery_status == "delivered"
    # Unknown SIDs are answered 200 (Twilio stops retrying); unsigned callbacks are refused.
    unknown = twilio_form("status_undelivered", MessageSid="SM" + "f" * 32)
    assert (await gateway.post_twilio(unknown, path=path)).status_code == 200
    unsigned = twilio_form("status_undelivered", MessageSid=row.provider_id)
    assert (await gateway.post_twilio(unsigned, path=path, signature="")).status_code == 403
    assert (await gateway.messages("out"))[0].delivery_status == "delivered"


async def test_stop_then_start(gateway: Gateway) -> None:
    stop = await gateway.check_webhook("twilio/sms_text", Body="STOP", MessageSid="SMstop1")
    assert "START" in stop.replies[0]["Body"]
    # While opted out, nothing goes to Twilio.
    await gateway.check_webhook("twilio/sms_text", MessageSid="SMwhileout", replies=1)
    await gateway.check_webhook("twilio/sms_text", Body="START", MessageSid="SMstart1", replies=2)
    async with gateway.runtime.db.session() as s:
        statuses = [
            r.status for r in (await s.execute(select(Outbox).order_by(Outbox.id))).scalars()
        ]
    assert statuses == ["sent", "suppressed", "sent"]


async def test_a_retried_message_sid_is_stored_and_answered_once(gateway: Gateway) -> None:
    await gateway.check_webhook("twilio/sms_text")
    await gateway.check_webhook("twilio/sms_text")
    await gateway.settled()  # processed and delivered: a second reply would be there by now
    assert len(await gateway.messages("in")) == 1
    assert len(gateway.providers.twilio_sent()) == 1


async def test_a_100_kb_body_is_413(gateway: Gateway) -> None:
    resp = await gateway.post_twilio(twilio_form("sms_text", Body="x" * 100_000))
    assert resp.status_code == 413
    assert await gateway.messages() == []


@pytest.mark.parametrize(
    ("fixture", "overrides"),
    [
        ("malformed_no_sender", {}),
        ("sms_text", {"NumMedia": "two"}),
        ("sms_text", {"NumMedia": "1"}),
    ],
)
async def test_malformed_is_400_with_a_short_reason(
    gateway: Gateway, caplog: pytest.LogCaptureFixture, fixture: str, overrides: dict[str, str]
) -> None:
    caplog.set_level(logging.INFO)
    resp = await gateway.post_twilio(twilio_form(fixture, **overrides))
    assert resp.status_code == 400
    assert await gateway.messages() == []
    assert NADIA not in caplog.text and "Bonjour" not in caplog.text


async def test_twilio_500_then_200_delivers_once(gateway: Gateway) -> None:
    gateway.providers.fail("twilio", 500)
    await gateway.check_webhook("twilio/sms_text", replies=1)
    assert [c.status for c in gateway.providers.attempts("twilio")] == [500, 201]
    assert (await gateway.messages("out"))[0].delivery_status == "sent"


async def test_twilio_429_waits_retry_after(gateway: Gateway) -> None:
    gateway.providers.fail("twilio", 429, retry_after=1)
    await gateway.check_webhook("twilio/sms_text", replies=1)
    first, second = gateway.providers.attempts("twilio")
    assert second.at - first.at >= 0.9


async def test_an_invalid_number_fails_at_once(gateway: Gateway) -> None:
    gateway.providers.fail("twilio", 400, code=21211, description="The 'To' number is not valid")
    await gateway.check_webhook("twilio/sms_text", replies=0)
    async with gateway.runtime.db.session() as s:
        row = (await s.execute(select(Outbox))).scalar_one()
    assert (row.status, row.attempts) == ("failed", 1)
    assert row.last_error and "21211" in row.last_error and NADIA not in row.last_error
    assert (await gateway.messages("out"))[0].delivery_status == "failed"


async def test_twilio_down_is_retried_then_marked_failed(gateway: Gateway) -> None:
    gateway.providers.fail("twilio", 503, times=10)
    await gateway.check_webhook("twilio/sms_text", replies=0)
    assert len(gateway.providers.attempts("twilio")) == 3  # outbox_max_attempts
    assert (await gateway.messages("out"))[0].delivery_status == "failed"


async def _address(gateway: Gateway, message: Message) -> str:
    from bot.storage.models import Conversation

    async with gateway.runtime.db.session() as s:
        conv = await s.get(Conversation, message.conversation_id)
        assert conv is not None
        return conv.address
