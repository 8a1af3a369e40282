"""Media URLs: only the providers' media hosts are stored, shown or redirected to (issue 16)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.storage.models import Attachment
from channels.media import own_media, provider_url, redirectable
from tests.channels.conftest import Gateway, twilio_form

TWILIO_MEDIA = (
    "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages/"
    "MM8b2b8d6c9e8e4b2f8a6f1d2c3b4a5e6f/Media/ME0a1b2c3d4e5f60718293a4b5c6d7e8f"
)
TELEGRAM_FILE = "https://api.telegram.org/file/bot123456:ABC-DEF/photos/file_0.jpg"
REFUSED = [
    "file:///etc/passwd",
    "javascript:alert(document.cookie)",
    "data:image/png;base64,iVBORw0KGgo=",
    "http://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",  # not https
    "https://169.254.169.254/latest/meta-data/",
    "https://127.0.0.1/x.jpg",
    "https://[::1]/x.jpg",
    "https://10.0.0.5/x.jpg",
    "https://localhost/x.jpg",
    "https://api.twilio.com.evil.example/2010-04-01/Media/ME1",  # look-alike host
    "https://evil.example/api.twilio.com/x.jpg",
    "https://api.twilio.com@evil.example/x.jpg",  # credentials: the host is evil.example
    "https://user:pw@api.twilio.com/x.jpg",
    "https://api.twilio.com:8443/x.jpg",
    "https://api.twilio.com:bad/x.jpg",
    "//api.twilio.com/x.jpg",
    "https://api.twilio.com/x\n.jpg",
    "",
]


@pytest.mark.parametrize("url", REFUSED)
def test_only_provider_media_hosts_are_accepted(url: str) -> None:
    assert provider_url(url) is None and redirectable(url) is None and not own_media(url)


def test_provider_media_urls_as_documented() -> None:
    assert provider_url(TWILIO_MEDIA) == TWILIO_MEDIA == redirectable(TWILIO_MEDIA)
    assert provider_url("https://API.twilio.com./2010-04-01/x") is not None
    # Telegram's file URLs hold the bot token: stored if a payload has one, never redirected to.
    assert provider_url(TELEGRAM_FILE) == TELEGRAM_FILE and redirectable(TELEGRAM_FILE) is None
    assert own_media("/channels/webchat/media/0123456789abcdef/" + "a" * 32 + ".png")
    assert not own_media("/channels/webchat/media/../../etc/" + "a" * 32 + ".png")


def test_the_configured_twilio_api_is_shown_too_and_only_its_exact_origin() -> None:
    """An operator's `twilio_api_base` (a stand-in, a regional edge) is a media origin as the
    console's CSP says; the payload cannot widen it: same scheme, host and port only."""
    base = "http://127.0.0.1:8931"
    photo = f"{base}/MM1/Media/ME1"
    assert redirectable(photo) is None
    assert redirectable(photo, base) == photo
    assert redirectable(TWILIO_MEDIA, base) == TWILIO_MEDIA
    for other in (
        "http://127.0.0.1:8932/MM1/Media/ME1",
        "https://127.0.0.1:8931/MM1/Media/ME1",
        "http://user@127.0.0.1:8931/x",
        "http://127.0.0.1:8931/x\n",
        "javascript:alert(1)",
        "file:///etc/passwd",
    ):
        assert redirectable(other, base) is None, other


async def test_mms_keeps_the_message_and_only_twilio_media(gateway: Gateway) -> None:
    """A signed MMS (shaped as Twilio sends it) whose media URLs point elsewhere: the message
    is stored and answered, the Twilio photo kept, the others dropped."""
    bad = ["file:///etc/passwd", "javascript:alert(1)", "https://169.254.169.254/latest/"]
    form = twilio_form(
        "mms_two_photos",
        NumMedia=str(len(bad) + 1),
        MediaUrl1=bad[0],
        MediaUrl2=bad[1],
        MediaContentType2="image/jpeg",
        MediaUrl3=bad[2],
        MediaContentType3="image/jpeg",
    )
    assert (await gateway.post_twilio(form)).status_code == 200
    await gateway.settled()
    (inbound,) = await gateway.messages("in")
    assert inbound.text == "ya une fuite ds la sdb"
    async with gateway.runtime.db.session() as s:
        urls = list((await s.execute(select(Attachment.url))).scalars())
    assert urls == [form["MediaUrl0"]]
    assert [m.get("url") for m in inbound.media] == [form["MediaUrl0"]]
    assert len(gateway.replies("twilio")) == 1
