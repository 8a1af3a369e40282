"""The console never sends staff to a media URL off the providers' media hosts (issue 16)."""

from __future__ import annotations

from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.core.types import Media
from bot.storage.models import Attachment, Conversation
from tests.handoff.conftest import ClientFactory
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # FLEURS: Karim's residence


async def test_unsafe_stored_media_urls_are_neither_shown_nor_followed(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    """Rows stored before the webhook's check (or by any other way in) are not trusted."""
    bad = [
        "http://169.254.169.254/latest/meta-data/iam/",
        "https://10.1.2.3/x.jpg",
        "https://api.twilio.com.evil.example/Media/ME1",
        "http://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1",
    ]
    twilio = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    media = tuple(Media(url=u, content_type="image/jpeg") for u in [*bad, twilio])
    await send(runtime, "je veux parler à une personne", address=NADIA, pid="m1", media=media)
    await settled(runtime)
    async with runtime.db.session() as s:
        ids = list((await s.execute(select(Attachment.id).order_by(Attachment.id))).scalars())
        conv_id = (await s.execute(select(Conversation.id))).scalar_one()
    karim = await client_for("karim")
    for attachment_id in ids[:-1]:
        r = await karim.get(f"/console/media/{attachment_id}")
        assert r.status_code == 404 and "location" not in r.headers
    r = await karim.get(f"/console/media/{ids[-1]}")
    assert r.status_code == 302 and r.headers["location"] == twilio
    page = (await karim.get(f"/console/c/{conv_id}")).text
    assert f'src="{twilio}"' in page
    assert not any(u in page for u in bad)
