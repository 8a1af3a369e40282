"""The console's history of closed conversations (/console/history): a caretaker's own
residences only, newest first, each with its summary, date, who closed it and the tenant's
rating, paginated, opening read-only."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from bot.app.runtime import Runtime
from bot.storage.models import Conversation, Residence, StaffUser
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # Résidence Les Fleurs (Karim)
JEAN = "+33612345601"  # Résidence du Canal (Sophie)


def history_ids(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li data-id="(\d+)"', html)]


async def queued(runtime: Runtime, address: str, text: str) -> int:
    await send(runtime, text, address=address)
    await settled(runtime)
    async with runtime.db.session() as s:
        return int(
            (
                await s.execute(select(Conversation.id).where(Conversation.address == address))
            ).scalar_one()
        )


async def close_as(client: httpx.AsyncClient, conv_id: int, resolution: str) -> None:
    page = await client.get(f"/console/c/{conv_id}")
    csrf = csrf_of(page.text)
    r = await client.post(f"/console/c/{conv_id}/take", data={"csrf": csrf})
    assert r.status_code == 303, r.text
    r = await client.post(
        f"/console/c/{conv_id}/close", data={"csrf": csrf, "resolution": resolution}
    )
    assert r.status_code == 303, r.text


async def test_history_lists_closed_conversations_of_my_residences(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    karim = await client_for("karim")
    sophie = await client_for("sophie")
    nadia = await queued(runtime, NADIA, "je veux parler à un conseiller pour le chauffe-eau")
    jean = await queued(runtime, JEAN, "je veux parler à un conseiller, la porte du hall")
    await close_as(karim, nadia, "Chauffe-eau remplacé par le plombier")
    await close_as(sophie, jean, "Porte réparée")
    async with runtime.db.transaction() as s:
        await s.execute(update(Conversation).where(Conversation.id == nadia).values(satisfaction=4))

    page = (await karim.get("/console/history")).text
    assert history_ids(page) == [nadia]  # not Jean's, of Le Canal
    item = page.split(f'<li data-id="{nadia}"')[1].split("</li>")[0]
    assert "Close par Karim Benali" in item
    assert "Chauffe-eau remplacé par le plombier" in item
    assert "Note du locataire : 4/5" in item
    assert "Nadia Haddad" in item and "Résidence Les Fleurs" in item
    assert "chauffe-eau" in item  # the tenant's first words, as the summary
    assert f'href="/console/c/{nadia}"' in item
    assert history_ids((await sophie.get("/console/history")).text) == [jean]
    # The header's search link leads to it; the manager reads every residence's history.
    claire = await client_for("claire")
    assert set(history_ids((await claire.get("/console/history")).text)) == {nadia, jean}

    # Opened from the history, a closed conversation cannot be answered.
    opened = await karim.get(f"/console/c/{nadia}")
    assert opened.status_code == 200
    assert 'id="reply-form"' not in opened.text and 'id="take"' not in opened.text
    # Another residence's closed conversation stays closed to Karim.
    assert (await karim.get(f"/console/c/{jean}")).status_code == 403


async def test_history_is_newest_first_and_paginated(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    now = runtime.clock()
    async with runtime.db.transaction() as s:
        fleurs = (
            await s.execute(select(Residence.id).where(Residence.code == "FLEURS"))
        ).scalar_one()
        karim = (await s.execute(select(StaffUser).where(StaffUser.login == "karim"))).scalar_one()
        convs = [
            Conversation(
                channel="sms",
                address=f"+3361234{i:04d}",
                residence_id=fleurs,
                state="closed",
                closed_at=now - timedelta(hours=i),
                last_caretaker_id=karim.id,
                satisfaction=(i % 5) + 1,
            )
            for i in range(25)
        ]
        s.add_all(convs)
    by_age = [c.id for c in convs]  # convs[0] closed last
    client = await client_for("karim")
    first = (await client.get("/console/history")).text
    assert history_ids(first) == by_age[:20]
    assert "25 conversation(s) close(s)" in first
    assert 'href="/console/history?page=2"' in first
    second = (await client.get("/console/history", params={"page": "2"})).text
    assert history_ids(second) == by_age[20:]
    assert 'href="/console/history?page=1"' in second
    assert history_ids((await client.get("/console/history?page=x")).text) == by_age[:20]
    english = await client_for("karim")
    english.cookies.set("relais_lang", "en")
    assert "Tenant rating: 1/5" in (await english.get("/console/history")).text
