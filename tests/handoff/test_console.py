"""The caretaker console over HTTP, on SQLite and PostgreSQL: queue, access, actions."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from bot.app.runtime import Runtime
from bot.core.types import Media
from bot.storage.db import Database
from bot.storage.models import Attachment, AuditLog, Conversation, Handoff, Message, Outbox
from channels import gsm7
from tests.fakes import RecordingChannel
from tests.handoff.conftest import ClientFactory, csrf_for, csrf_of
from tests.worker.test_pipeline import send, settled

HUMAN = "je veux parler à une personne"  # queued at once, whatever the dialogue asks for needs
NADIA = "+33612345600"  # FLEURS, building A: Karim's residence
JEAN = "+33612345601"  # CANAL: Sophie's residence
XSS = "<img src=x onerror=alert(1)>"


async def queued(rt: Runtime, text: str, address: str = NADIA, pid: str | None = None) -> int:
    """Make a tenant write something the bot hands to a person; the conversation id."""
    await send(rt, text, address=address, pid=pid)
    await settled(rt)
    async with rt.db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.address == address)))
            .unique()
            .scalar_one()
        )
    assert conv.state == "queued", conv.state
    return conv.id


async def post(client: httpx.AsyncClient, url: str, **data: object) -> httpx.Response:
    return await client.post(url, data={"csrf": await csrf_for(client), **data})


async def test_queue_shows_only_my_residences_emergencies_first(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    leak = await queued(runtime, HUMAN, pid="1")
    gas = await queued(runtime, "ça sent le gaz", address="+33612345604", pid="2")
    other = await queued(runtime, HUMAN, address=JEAN, pid="3")
    karim = await client_for("karim")
    page = (await karim.get("/console")).text
    assert f"/console/c/{gas}" in page and f"/console/c/{leak}" in page
    assert page.index(f"/console/c/{gas}") < page.index(f"/console/c/{leak}")
    assert f"/console/c/{other}" not in page
    assert "Nadia Haddad" in page and HUMAN in page and "SMS" in page
    sophie = await client_for("sophie")
    page = (await sophie.get("/console")).text
    assert f"/console/c/{other}" in page and f"/console/c/{leak}" not in page
    # On call sees every emergency, and their own residences (all four in the demo).
    oncall = (await (await client_for("astreinte")).get("/console")).text
    assert all(f"/console/c/{i}" in oncall for i in (gas, leak, other))


async def test_other_residence_is_forbidden_on_every_route(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    conv = await queued(runtime, HUMAN, pid="x")
    bot_replies = len(recording.sent)
    sophie = await client_for("sophie")
    assert (await sophie.get(f"/console/c/{conv}")).status_code == 403
    assert (await sophie.get(f"/console/api/c/{conv}/live")).status_code == 403
    for action, data in [
        ("take", {}),
        ("reply", {"text": "hello"}),
        ("note", {"text": "x"}),
        ("transfer", {"to": "1"}),
        ("close", {"resolution": "x"}),
        ("give-back", {}),
    ]:
        r = await post(sophie, f"/console/c/{conv}/{action}", **data)
        assert r.status_code == 403, action
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
        notes = (await s.execute(select(func.count(Message.id)).where(Message.internal))).scalar()
    assert c is not None and c.assigned_to is None and notes == 0
    await settled(runtime)
    assert len(recording.sent) == bot_replies
    # Signed out: pages redirect, APIs answer 401.
    anon = await client_for()
    assert (await anon.get(f"/console/c/{conv}")).status_code == 303
    assert (await anon.get("/console/api/queue")).status_code == 401
    assert (await anon.get("/console/events")).status_code == 401


async def test_manager_reads_everything_but_acts_on_nothing(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, HUMAN, pid="m")
    claire = await client_for("claire")
    page = await claire.get(f"/console/c/{conv}")
    assert page.status_code == 200 and HUMAN in page.text
    assert (await post(claire, f"/console/c/{conv}/take")).status_code == 403
    assert (await post(claire, f"/console/c/{conv}/reply", text="x")).status_code == 403


async def test_tenant_text_is_escaped(runtime: Runtime, client_for: ClientFactory) -> None:
    conv = await queued(runtime, f"{HUMAN} {XSS}", pid="xss")
    karim = await client_for("karim")
    for url in ("/console", f"/console/c/{conv}"):
        html = (await karim.get(url)).text
        assert XSS not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_take_reply_reaches_the_tenant_and_is_audited(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    conv = await queued(runtime, HUMAN, pid="t")
    karim = await client_for("karim")
    assert (await karim.get(f"/console/c/{conv}")).status_code == 200
    r = await post(karim, f"/console/c/{conv}/take")
    assert r.status_code == 303
    r = await post(karim, f"/console/c/{conv}/reply", text="Je passe à 14h.", nonce="n1")
    assert r.status_code == 303
    # The same form posted again (a double tap) sends nothing more.
    await post(karim, f"/console/c/{conv}/reply", text="Je passe à 14h.", nonce="n1")
    await settled(runtime)
    assert recording.texts()[-1] == "Je passe à 14h." and recording.sent[-1].address == NADIA
    assert recording.texts().count("Je passe à 14h.") == 1
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
        h = (await s.execute(select(Handoff))).scalar_one()
        staff_msg = (await s.execute(select(Message).where(Message.author == "staff"))).scalar_one()
        actions = list((await s.execute(select(AuditLog.action).order_by(AuditLog.id))).scalars())
    assert c is not None and c.state == "assigned" and c.assigned_to == staff_msg.staff_id
    assert h.taken_at is not None and h.first_reply_at is not None
    assert staff_msg.delivery_status == "sent"
    assert [a for a in actions if a in ("take", "reply")] == ["take", "reply"]
    assert "read" in actions  # opening the conversation is recorded too


async def test_two_caretakers_taking_at_once_one_wins(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, HUMAN, pid="r")
    a, b = await client_for("karim"), await client_for("astreinte")
    ta, tb = await csrf_for(a), await csrf_for(b)
    for _ in range(3):  # the race, several times over: never two winners
        ra, rb = await asyncio.gather(
            a.post(f"/console/c/{conv}/take", data={"csrf": ta}),
            b.post(f"/console/c/{conv}/take", data={"csrf": tb}),
        )
        assert sorted([ra.status_code, rb.status_code]) == [303, 409]
        async with runtime.db.session() as s:
            c = await s.get(Conversation, conv)
            takes = (
                await s.execute(select(func.count(AuditLog.id)).where(AuditLog.action == "take"))
            ).scalar_one()
        assert c is not None and takes == 1
        loser = rb if ra.status_code == 303 else ra
        assert "Déjà prise par" in loser.text
        # Put it back in the queue for the next round.
        async with runtime.db.transaction() as s:
            await s.execute(
                AuditLog.__table__.delete().where(AuditLog.action == "take")  # type: ignore[attr-defined]
            )
            c = await s.get(Conversation, conv)
            assert c is not None
            c.assigned_to, c.state = None, "queued"


async def test_note_is_never_sent(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    conv = await queued(runtime, HUMAN, pid="n")
    before = len(recording.sent)
    karim = await client_for("karim")
    assert (
        await post(karim, f"/console/c/{conv}/note", text="clé chez la voisine")
    ).status_code == 303
    await settled(runtime)
    await asyncio.sleep(0.1)
    assert len(recording.sent) == before
    async with runtime.db.session() as s:
        note = (await s.execute(select(Message).where(Message.internal))).scalar_one()
        rows = await s.execute(select(func.count(Outbox.id)).where(Outbox.message_id == note.id))
    assert rows.scalar_one() == 0
    assert "clé chez la voisine" in (await karim.get(f"/console/c/{conv}")).text


async def test_transfer_to_a_colleague_of_the_residence_only(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    conv = await queued(runtime, HUMAN, pid="tr")
    karim = await client_for("karim")
    await post(karim, f"/console/c/{conv}/take")
    async with runtime.db.session() as s:
        from bot.storage.models import StaffUser

        ids = dict((await s.execute(select(StaffUser.login, StaffUser.id))).tuples().all())
    r = await post(karim, f"/console/c/{conv}/transfer", to=str(ids["sophie"]))  # CANAL
    assert r.status_code == 400
    r = await post(karim, f"/console/c/{conv}/transfer", to=str(ids["astreinte"]))
    assert r.status_code == 303
    await settled(runtime)
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
    assert c is not None and c.assigned_to == ids["astreinte"]
    alert = recording.sent[-1]
    assert alert.address == "+33611000009" and f"/console/c/{conv}" in alert.text
    # Karim no longer holds it: he cannot reply or close any more.
    assert (await post(karim, f"/console/c/{conv}/reply", text="x")).status_code == 409


async def test_close_then_give_back(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    conv = await queued(runtime, HUMAN, pid="c1")
    karim = await client_for("karim")
    await post(karim, f"/console/c/{conv}/take")
    assert (await post(karim, f"/console/c/{conv}/close", resolution="")).status_code == 400
    r = await post(karim, f"/console/c/{conv}/close", resolution="joint changé")
    assert r.status_code == 303
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
        h = (await s.execute(select(Handoff))).scalar_one()
    assert c is not None and c.state == "closed" and c.last_caretaker_id is not None
    assert h.closed_at is not None and h.resolution == "joint changé"
    await settled(runtime)
    assert recording.sent[-1].address == NADIA  # the dialogue's satisfaction question
    conv2 = await queued(runtime, HUMAN, address=JEAN, pid="c2")
    sophie = await client_for("sophie")
    assert (await post(sophie, f"/console/c/{conv2}/give-back")).status_code == 303
    async with runtime.db.session() as s:
        c2 = await s.get(Conversation, conv2)
        h2 = (await s.execute(select(Handoff).where(Handoff.conversation_id == conv2))).scalar_one()
    assert c2 is not None and c2.state == "bot" and h2.closed_at is not None


async def test_photos_are_served_to_those_who_may_see_them(
    runtime: Runtime, client_for: ClientFactory, app: object
) -> None:
    webchat = runtime.channels["webchat"]
    ref = "0123456789abcdef/" + "a" * 32 + ".png"
    path = webchat.upload_path(ref)  # type: ignore[attr-defined]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n-photo-")
    twilio = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    await send(
        runtime,
        HUMAN,
        address=NADIA,
        pid="p",
        media=(
            Media(url=twilio, content_type="image/jpeg"),
            Media(url=f"/channels/webchat/media/{ref}", content_type="image/png"),
            Media(file_id="AgACAgQAAx0", content_type="image/jpeg"),
        ),
    )
    await settled(runtime)
    async with runtime.db.session() as s:
        ids = list((await s.execute(select(Attachment.id).order_by(Attachment.id))).scalars())
    karim, sophie = await client_for("karim"), await client_for("sophie")
    r = await karim.get(f"/console/media/{ids[0]}")
    assert r.status_code == 302 and r.headers["location"] == twilio
    r = await karim.get(f"/console/media/{ids[1]}")
    assert r.status_code == 200 and r.content.endswith(b"-photo-")
    assert r.headers["content-type"] == "image/png"
    assert (await karim.get(f"/console/media/{ids[2]}")).status_code == 404  # no Telegram here
    for i in ids:
        assert (await sophie.get(f"/console/media/{i}")).status_code == 403
    async with runtime.db.session() as s:
        conv_id = (await s.execute(select(Conversation.id))).scalar_one()
    conv_page = (await karim.get(f"/console/c/{conv_id}")).text
    assert f'src="{twilio}"' in conv_page and f'src="/console/media/{ids[1]}"' in conv_page
    assert "non affichable" in conv_page


async def test_outside_lodge_hours_the_queue_shows_who_is_on_call(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    runtime.clock = lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # Tuesday 10:00 in Paris
    karim = await client_for("karim")
    assert "Loge fermée" not in (await karim.get("/console")).text
    runtime.clock = lambda: datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # Tuesday 19:30
    page = (await karim.get("/console")).text
    assert "Loge fermée : Résidence Les Fleurs" in page
    assert 'Astreinte technique <a href="tel:+33611000009">' in page
    assert "02/12 08:00" in page  # when the lodge opens again


async def test_a_shared_location_shows_its_coordinates(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    # Channels store a location as {"lat", "lon"} (Twilio's Latitude/Longitude, Telegram's
    # location): the conversation page shows those numbers and a map link, not blanks.
    conv = await queued(runtime, HUMAN, pid="loc")
    await send(
        runtime,
        "",
        address=NADIA,
        pid="loc2",
        media=(Media(kind="location", data={"lat": 48.8566, "lon": 2.3522}),),
    )
    await settled(runtime)
    page = (await (await client_for("karim")).get(f"/console/c/{conv}")).text
    assert "48.8566, 2.3522" in page
    assert "https://www.openstreetmap.org/?mlat=48.8566&amp;mlon=2.3522" in page


async def test_console_answers_forbid_framing_caching_and_inline_code(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, HUMAN, pid="h")
    anonymous = await client_for()
    karim, manager = await client_for("karim"), await client_for("claire")
    answers = [
        await anonymous.get("/console/login"),
        await karim.get("/console"),
        await karim.get(f"/console/c/{conv}"),
        await karim.get(f"/console/api/c/{conv}/live"),
        await manager.get("/console/manager"),
        await manager.get("/console/manager/conversations"),
    ]
    for r in answers:
        assert r.status_code == 200, r.url
        h = r.headers
        assert h["x-frame-options"] == "DENY", r.url
        assert h["cache-control"] == "no-store", r.url
        csp = {d.split()[0]: d.split()[1:] for d in h["content-security-policy"].split("; ")}
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["default-src"] == ["'none'"]
        assert csp["script-src"] == ["'self'"] and csp["style-src"] == ["'self'"]
        # The policy holds because the pages carry no inline code or style.
        assert "<script>" not in r.text and " style=" not in r.text and " onclick=" not in r.text
    # The web-chat widget stays embeddable in the landlord's site.
    widget = await anonymous.get("/webchat/")
    assert widget.status_code == 200
    assert "x-frame-options" not in widget.headers
    assert "frame-ancestors" not in widget.headers.get("content-security-policy", "")


async def test_ids_past_what_a_table_holds_are_refused_not_500(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    # 2**31 is past PostgreSQL's integer: the query itself failed (a 500) before.
    karim, claire = await client_for("karim"), await client_for("claire")
    big = 2**31
    for client, method, url in [
        (karim, "GET", f"/console/c/{big}"),
        (karim, "GET", f"/console/api/c/{big}/live"),
        (karim, "GET", f"/console/media/{big}"),
        (karim, "POST", f"/console/c/{big}/take"),
        (karim, "POST", f"/console/c/{big}/incident/{big}/close"),
        (claire, "GET", f"/console/manager/conversations/{big}"),
        (claire, "POST", f"/console/manager/nlu/{big}"),
        (claire, "GET", f"/console/manager/conversations?residence={big}&page={big}"),
    ]:
        if method == "GET":
            r = await client.get(url)
        else:
            r = await post(client, url)
        assert 400 <= r.status_code < 500 or (r.status_code == 200 and "residence" in url), (
            url,
            r.status_code,
        )
    conv = await queued(runtime, HUMAN, pid="t")
    r = await post(karim, f"/console/c/{conv}/transfer", to=str(big))
    assert 400 <= r.status_code < 500


async def test_console_answers_503_while_the_database_is_away(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    karim = await client_for("karim")
    token = await csrf_for(karim)
    conv = await queued(runtime, HUMAN, pid="d")
    working = runtime.db
    # A database nobody answers for: a closed port (PostgreSQL), a folder that is not there
    # (SQLite).
    away = (
        "postgresql+asyncpg://postgres@127.0.0.1:1/relais"
        if working.dialect == "postgresql"
        else "sqlite+aiosqlite:////nonexistent/relais/relais.sqlite3"
    )
    runtime.db = Database(away)
    try:
        for method, url, api in [
            ("GET", "/console", False),
            ("GET", f"/console/c/{conv}", False),
            ("GET", f"/console/api/c/{conv}/live", True),
            ("GET", "/console/api/queue", True),
            ("POST", f"/console/c/{conv}/take", False),
        ]:
            if method == "GET":
                r = await karim.get(url)
            else:
                r = await karim.post(url, data={"csrf": token})
            assert r.status_code == 503, (url, r.status_code)
            if not api:
                assert "indisponible" in r.text
        page = await karim.get("/console/login")
        r = await karim.post(
            "/console/login",
            data={"login": "karim", "password": "relais-demo", "csrf": csrf_of(page.text)},
        )
        assert r.status_code == 503
    finally:
        await runtime.db.dispose()
        runtime.db = working
    assert (await karim.get("/console")).status_code == 200


async def test_the_console_counts_sms_with_the_senders_gsm7_table(
    client_for: ClientFactory,
) -> None:
    """One table: the script the console loads is channels/gsm7.py's, loaded before the
    console's own script (which has no copy of it)."""
    anonymous = await client_for()
    r = await anonymous.get("/console/gsm7.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    prefix, _, rest = r.text.partition(" = ")
    assert prefix == "window.RELAIS_GSM7"
    assert json.loads(rest.rstrip().rstrip(";")) == json.loads(json.dumps(gsm7.table()))
    karim = await client_for("karim")
    page = (await karim.get("/console")).text
    assert page.index('src="/console/gsm7.js"') < page.index('src="/console/static/console.js"')
    script = (await karim.get("/console/static/console.js")).text
    assert "RELAIS_GSM7" in script and "ΦΓΛΩ" not in script


# -- conversation page (issue 19) ---------------------------------------------------------

LEILA_PHONE = "+33611000011"


async def leila(rt: Runtime) -> int:
    """A second caretaker of Les Fleurs (Karim's residence), who can sign in."""
    from bot.ops.users import add_user

    await add_user(
        rt.settings,
        login="leila",
        role="caretaker",
        residences=["FLEURS"],
        password="relais-demo",
        name="Leïla Mansour",
        phone=LEILA_PHONE,
    )
    async with rt.db.session() as s:
        from bot.storage.models import StaffUser

        return int(
            (await s.execute(select(StaffUser.id).where(StaffUser.login == "leila"))).scalar_one()
        )


async def staff_ids(rt: Runtime) -> dict[str, int]:
    from bot.storage.models import StaffUser

    async with rt.db.session() as s:
        return dict((await s.execute(select(StaffUser.login, StaffUser.id))).tuples().all())


def transfer_options(page: str) -> list[str]:
    form = page[page.index('id="transfer-form"') :]
    form = form[: form.index("</form>")]
    import html as html_lib

    found = re.findall(r'<option value="([^"]+)">([^<]+)</option>', form)
    return [(value, html_lib.unescape(label)) for value, label in found]


async def test_transfer_to_a_caretaker_of_the_residence_or_to_on_call(
    runtime: Runtime, client_for: ClientFactory, recording: RecordingChannel
) -> None:
    leila_id = await leila(runtime)
    ids = await staff_ids(runtime)
    conv = await queued(runtime, HUMAN, pid="tt")
    karim = await client_for("karim")
    await post(karim, f"/console/c/{conv}/take")
    page = (await karim.get(f"/console/c/{conv}")).text
    # Offered: on call, Leïla (same residence), the on-call person; never Sophie (another
    # residence), Claire (a manager reads but does not answer) nor Karim himself.
    offered = dict(transfer_options(page))
    assert offered == {
        "oncall": "L'astreinte (la personne de garde)",
        f"staff:{leila_id}": "Leïla Mansour",
        f"staff:{ids['astreinte']}": "Astreinte technique",
    }
    assert "Gardiens de la résidence" in page
    # Forged targets: another residence's caretaker, a manager, oneself, garbage.
    for forged, status in [
        (f"staff:{ids['sophie']}", 403),
        (f"staff:{ids['claire']}", 403),
        (f"staff:{ids['karim']}", 403),
        ("staff:99999", 403),
        ("sophie", 422),
        ("staff:-1", 422),
        ("staff:" + "9" * 30, 422),
    ]:
        r = await post(karim, f"/console/c/{conv}/transfer", target=forged)
        assert r.status_code == status, forged
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
    assert c is not None and c.assigned_to == ids["karim"]
    # To Leïla: she is told on her phone, and finds it in her queue, held for her.
    sent = len(recording.sent)
    r = await post(karim, f"/console/c/{conv}/transfer", target=f"staff:{leila_id}")
    assert r.status_code == 303 and r.headers["location"] == "/console"
    await settled(runtime)
    alerts = [m for m in recording.sent[sent:] if m.address == LEILA_PHONE]
    assert len(alerts) == 1 and f"/console/c/{conv}" in alerts[0].text
    assert "Karim Benali" in alerts[0].text
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
        audit_row = (
            await s.execute(select(AuditLog).where(AuditLog.action == "transfer"))
        ).scalar_one()
    assert c is not None and c.assigned_to == leila_id and c.state == "assigned"
    assert audit_row.detail == {"to": "leila"}
    other = await client_for("leila")
    queue = (await other.get("/console")).text
    assert f"/console/c/{conv}" in queue
    # Karim no longer holds it; Leïla hands it on to on call in one choice.
    assert (await post(karim, f"/console/c/{conv}/reply", text="x")).status_code == 409
    r = await post(other, f"/console/c/{conv}/transfer", target="oncall")
    assert r.status_code == 303
    await settled(runtime)
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
    assert c is not None and c.assigned_to == ids["astreinte"]
    assert recording.sent[-1].address == "+33611000009"
    # The original form (a `to` field) still works.
    oncall = await client_for("astreinte")
    r = await post(oncall, f"/console/c/{conv}/transfer", to=str(ids["karim"]))
    assert r.status_code == 303
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
    assert c is not None and c.assigned_to == ids["karim"]


async def test_another_residence_cannot_transfer_nor_be_transferred_to(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    ids = await staff_ids(runtime)
    conv = await queued(runtime, HUMAN, pid="iso")
    sophie = await client_for("sophie")
    r = await post(sophie, f"/console/c/{conv}/transfer", target=f"staff:{ids['sophie']}")
    assert r.status_code == 403
    r = await post(sophie, f"/console/c/{conv}/transfer", target="oncall")
    assert r.status_code == 403
    async with runtime.db.session() as s:
        c = await s.get(Conversation, conv)
    assert c is not None and c.assigned_to is None and c.state == "queued"


def canned_texts(page: str) -> dict[str, str]:
    import html as html_lib

    pairs = re.findall(r'data-canned="([^"]*)" data-canned-id="([^"]+)"', page)
    return {cid: html_lib.unescape(text) for text, cid in pairs}


async def test_canned_replies_are_filled_from_this_conversation_only(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    from zoneinfo import ZoneInfo

    from bot.dialogue.reading import format_date
    from bot.dialogue.schedule import next_collection

    nadia = await queued(runtime, HUMAN, pid="cn1")
    jean = await queued(runtime, HUMAN, address=JEAN, pid="cn2")
    today = datetime.now(ZoneInfo(runtime.settings.timezone)).date()
    fleurs = format_date(
        next_collection({"kind": "monthly", "nth": [2], "weekday": 1}, today), "fr"
    )
    karim = await client_for("karim")
    page = (await karim.get(f"/console/c/{nadia}")).text
    texts = canned_texts(page)
    assert texts["bulky_next"] == (
        "Bonjour Nadia Haddad, le prochain ramassage des encombrants de votre résidence "
        f"a lieu le {fleurs}."
    )
    # No request yet: the reply that names one is not offered (never a raw "{reference}").
    assert "noted" not in texts and "on_my_way" in texts
    assert not any("{" in t for t in texts.values())
    assert "Jean Dupont" not in page
    sophie = await client_for("sophie")
    other = canned_texts((await sophie.get(f"/console/c/{jean}")).text)
    canal = format_date(next_collection({"kind": "weekly", "weekday": 3}, today), "fr")
    assert other["bulky_next"] == (
        "Bonjour Jean Dupont, le prochain ramassage des encombrants de votre résidence "
        f"a lieu le {canal}."
    )
