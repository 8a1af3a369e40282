"""Web-chat sessions (issue 16): managers see a pseudonym, tokens rotate and expire."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from bot.storage.models import Conversation
from channels.webchat import ROTATION_GRACE, WebChatChannel
from tests.channels.conftest import ORIGIN, Gateway
from tests.channels.test_webchat import PNG, Tab, serve


@pytest.fixture
async def served(gateway: Gateway) -> AsyncIterator[str]:
    async with serve(gateway.app) as host:
        yield host


def webchat(gateway: Gateway) -> WebChatChannel:
    channel = gateway.runtime.channels["webchat"]
    assert isinstance(channel, WebChatChannel)
    return channel


async def addresses(gateway: Gateway) -> list[str]:
    async with gateway.runtime.db.session() as s:
        rows = await s.execute(
            select(Conversation.address)
            .where(Conversation.channel == "webchat")
            .order_by(Conversation.id)
        )
        return list(rows.scalars())


async def test_staff_see_a_stable_pseudonym_never_the_token(gateway: Gateway, served: str) -> None:
    tab = await Tab.open(served)
    await tab.say("Bonjour", "pseudo-00001")
    await tab.reply()
    await gateway.settled()
    first = tab.session
    await tab.close()
    again = await Tab.open(served, session=first)  # the token rotates on use...
    await again.say("Vous êtes là ?", "pseudo-00002")
    await again.reply()
    await gateway.settled()
    await again.close()
    (address,) = await addresses(gateway)  # ...and the conversation stays one, under one name
    assert address.startswith("web-") and len(address) == 20
    # The transcript page and the CSV show Conversation.address: nothing of a bearer token.
    for token in (first, again.session):
        for part in token.split("."):
            assert part not in address
    assert address == webchat(gateway).address_of(again.session)
    assert webchat(gateway).address_of(first + "x") is None


async def test_tokens_rotate_on_use_and_expire_after_inactivity(
    gateway: Gateway, served: str
) -> None:
    channel = webchat(gateway)
    tab = await Tab.open(served)
    await tab.say("Bonjour", "rotate-00001")
    await tab.reply()
    await gateway.settled()
    await tab.close()
    back = await Tab.open(served, session=tab.session)
    assert back.session != tab.session and back.history[0]["text"] == "Bonjour"
    # A message is a use too: the socket hands over a fresh token.
    await back.ws.send('{"type": "message", "id": "rotate-00002", "text": "merci"}')
    fresh = (await back.next("session"))["session"]
    assert fresh not in (back.session, tab.session) and channel.valid_session(fresh)
    await back.close()
    # Idle past the limit: every token of the session is refused, a new session starts.
    idle = gateway.runtime.settings.webchat_session_idle_hours * 3600
    channel.clock = lambda: time.time() + idle + 60
    assert not channel.valid_session(fresh)
    later = await Tab.open(served, session=fresh)
    assert later.session != fresh and later.history == []
    assert channel.address_of(later.session) != channel.address_of(tab.session)
    await later.close()


async def test_a_new_device_starts_a_new_session(gateway: Gateway, served: str) -> None:
    phone = await Tab.open(served)
    await phone.say("j'ai une fuite", "device-00001")
    await phone.reply()
    await gateway.settled()
    laptop = await Tab.open(served)  # no token: nothing links it to the phone's session
    assert laptop.history == []
    assert webchat(gateway).address_of(laptop.session) != webchat(gateway).address_of(phone.session)
    await phone.close()
    await laptop.close()


async def test_a_replaced_token_stops_working(gateway: Gateway, served: str) -> None:
    """Rotation revokes: a token copied before the tenant used the chat again is refused once
    the grace for other tabs has passed (and no upload goes in with it)."""
    channel = webchat(gateway)
    start = time.time()
    tab = await Tab.open(served)
    await tab.say("Bonjour", "revoke-00001")
    await tab.reply()
    await gateway.settled()
    copied = tab.session  # e.g. read from the device by someone else
    await tab.close()
    channel.clock = lambda: start + ROTATION_GRACE + 30  # the tenant comes back later
    back = await Tab.open(served, session=copied)
    assert channel.address_of(back.session) == channel.address_of(copied)
    assert back.history  # the tenant's conversation, under the fresh token
    assert await channel.current(copied) is None and await channel.current(back.session)
    thief = await Tab.open(served, session=copied)
    assert thief.history == []
    assert channel.address_of(thief.session) != channel.address_of(copied)
    async with httpx.AsyncClient(base_url=f"http://{served}", headers={"Origin": ORIGIN}) as http:
        up = await http.post(
            "/channels/webchat/upload",
            content=PNG,
            headers={"Content-Type": "image/png", "X-Webchat-Session": copied},
        )
    assert up.status_code == 403
    await back.close()
    await thief.close()
