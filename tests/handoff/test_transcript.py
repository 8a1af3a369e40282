"""A manager's transcript (/console/manager/conversations/{id}): the tenant's photos as
thumbnails, the handoff, take, transfer and close in words between the messages, who took
part (tenant, bot, caretaker, on call, the manager who read it), no raw status words."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.core.types import Media
from bot.storage.models import Attachment, Conversation, StaffUser
from handoff.manager import resolution_words
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # Résidence Les Fleurs: Karim, and the on-call account
PHOTO = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"


def visible(html: str) -> str:
    """The page's text, tags removed and spaces collapsed (enough for ordering checks)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


async def test_transcript_shows_photos_events_and_who_took_part(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    await send(
        runtime,
        "je veux parler à un conseiller, la fuite sous l'évier",
        address=NADIA,
        media=(Media(url=PHOTO, content_type="image/jpeg"),),
    )
    await settled(runtime)
    async with runtime.db.session() as s:
        conv_id = (await s.execute(select(Conversation.id))).scalar_one()
        oncall = (
            await s.execute(select(StaffUser.id).where(StaffUser.login == "astreinte"))
        ).scalar_one()
        (photo_id,) = (await s.execute(select(Attachment.id))).scalars()
    karim = await client_for("karim")
    csrf = csrf_of((await karim.get(f"/console/c/{conv_id}")).text)
    assert (await karim.post(f"/console/c/{conv_id}/take", data={"csrf": csrf})).status_code == 303
    r = await karim.post(f"/console/c/{conv_id}/transfer", data={"csrf": csrf, "to": str(oncall)})
    assert r.status_code == 303
    astreinte = await client_for("astreinte")
    csrf = csrf_of((await astreinte.get(f"/console/c/{conv_id}")).text)
    r = await astreinte.post(
        f"/console/c/{conv_id}/reply",
        data={"csrf": csrf, "text": "Le plombier passe demain matin.", "nonce": "n1"},
    )
    assert r.status_code == 303
    await settled(runtime)
    r = await astreinte.post(
        f"/console/c/{conv_id}/close", data={"csrf": csrf, "resolution": "Joint changé"}
    )
    assert r.status_code == 303
    await send(runtime, "4", address=NADIA)  # the rating the bot asked for
    await settled(runtime)

    claire = await client_for("claire")
    await claire.get(f"/console/manager/conversations/{conv_id}")  # a first reading
    html = (await claire.get(f"/console/manager/conversations/{conv_id}")).text
    text = visible(html)

    # The photo, as a thumbnail linking to the full picture.
    assert f'<img class="thumb" src="{PHOTO}"' in html
    assert f"/console/media/{photo_id}" not in html  # a Twilio photo is shown from Twilio
    # The events in words, in the order they happened, between the messages.
    order = [
        "la fuite sous l'évier",
        "Le robot a passé la main à un gardien",
        "Karim Benali a pris la conversation",
        "Karim Benali a transféré la conversation à Astreinte technique",
        "Le plombier passe demain matin.",
        "Astreinte technique a clos la conversation « Joint changé »",
    ]
    positions = [text.find(words) for words in order]
    assert -1 not in positions, list(zip(order, positions, strict=True))
    assert positions == sorted(positions)
    # A rating is an answer, not something the NLU read: no intent badge on it.
    rating = next(
        li
        for li in html.split("<li ")
        if li.rstrip().endswith("4\n      </li>") or re.search(r"</span>\s*4\s*</li>", li)
    )
    assert 'class="badge' not in rating, rating
    # Who took part, with their roles.
    people = visible(html.split('id="participants"')[1].split("</section>")[0])
    for words in (
        "Nadia Haddad · locataire",
        "Robot · réponses automatiques",
        "Karim Benali · gardien",
        "a pris la conversation, l'a transférée",
        "Astreinte technique · astreinte",
        "1 message(s), l'a reçue par transfert, l'a close",
        "Claire Dubois · responsable",
        "l'a lue",
    ):
        assert words in people, (words, people)
    # Statuses in French: the reply's delivery, the conversation's state.
    assert "envoyée" in text
    for raw in (" sent", " closed", " queued", "assigned", " open "):
        assert raw not in text, raw

    english = await client_for("claire")
    english.cookies.set("relais_lang", "en")
    text = visible((await english.get(f"/console/manager/conversations/{conv_id}")).text)
    assert "Karim Benali transferred the conversation to Astreinte technique" in text
    assert "Who took part" in text


def test_stored_resolutions_are_said_in_words() -> None:
    assert resolution_words("fr", "returned_to_bot") == "rendue au robot"
    assert resolution_words("fr", "R-2026-000012: done") == "demande R-2026-000012 réparée"
    assert resolution_words("en", "R-2026-000012: done") == "request R-2026-000012 done"
    assert resolution_words("fr", "Joint changé: fait") == "Joint changé: fait"
