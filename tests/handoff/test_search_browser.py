"""Search, history and transcripts in headless Chromium against a real uvicorn, at phone and
desktop widths: a caretaker finds a tenant by a word without its accent and by a phone
number, not another residence's tenant, and reads the history of closed conversations; a
manager finds both residences' conversations and reads a transcript with its photo, its
events in words and who took part. Screenshots in artifacts/screenshots/."""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.types import Inbound, Media
from bot.storage.models import Conversation, Message, Residence, StaffUser, Tenant
from bot.storage.models import Request as Ticket
from handoff import actions
from tests.browser import (
    DESKTOP,
    PHONE,
    SHOTS,
    Server,
    launch,
    need_chromium,
    serve_in_thread,
    watch_csp,
)
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("no_csp_violations")]

NADIA_TELEGRAM = "5551001"
JEAN = "+33612345601"  # Résidence du Canal: not Karim's


def png(width: int = 160, height: int = 120) -> bytes:
    """A small picture (a blue-to-orange gradient), as a tenant's photo."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((30 + x, 90, 200 - x)) for x in range(width))
        for _ in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class TelegramWithFiles(RecordingChannel):
    """Telegram as the console sees it: messages recorded, a photo's file fetched by id."""

    def download_file(self, file_id: str) -> tuple[bytes, str]:
        return png(), "image/png"


@pytest.fixture(scope="module")
def chromium() -> Path:
    return need_chromium()


async def tell_the_story(rt: Runtime) -> dict[str, int]:
    """Nadia writes on Telegram with a photo of her sink, says who she is (reference, then
    the code sent to her phone), is handed to a person: Karim takes it and transfers it to on call, who answers and closes it. Jean (Le
    Canal) writes about his sink too. Three older closed conversations at Les Fleurs."""
    for text, media in (
        (
            "Bonjour, je veux parler à un conseiller, mon évier fuit",
            (Media(file_id="photo-1", content_type="image/png"),),
        ),
        ("L-10231", ()),
    ):
        await rt.ingest(Inbound("telegram", NADIA_TELEGRAM, text, media=media))
        await settled(rt)
    # She proves who she is with the code sent by SMS to the phone on her lease.
    (code,) = re.findall(r"\b\d{6}\b", rt.channels["sms"].texts()[-1])  # type: ignore[attr-defined]
    await rt.ingest(Inbound("telegram", NADIA_TELEGRAM, code))
    await settled(rt)
    await rt.ingest(Inbound("sms", JEAN, "je veux parler à un conseiller, L'EVIER est bouché"))
    await settled(rt)
    async with rt.db.session() as s:
        convs = dict(
            (await s.execute(select(Conversation.address, Conversation.id))).tuples().all()
        )
        people = {p.login: p for p in (await s.execute(select(StaffUser))).unique().scalars().all()}
    nadia = convs[NADIA_TELEGRAM]
    await actions.take(rt, people["karim"], nadia)
    await actions.transfer(rt, people["karim"], nadia, people["astreinte"].id)
    await actions.reply(
        rt, people["astreinte"], nadia, "Le plombier passe demain à 9 h.", "browser-1"
    )
    await settled(rt)
    await actions.close(rt, people["astreinte"], nadia, "Joint de l'évier changé")
    await settled(rt)
    now = rt.clock()
    async with rt.db.transaction() as s:
        fleurs = (
            await s.execute(select(Residence.id).where(Residence.code == "FLEURS"))
        ).scalar_one()
        tenants = {t.reference: t for t in (await s.execute(select(Tenant))).unique().scalars()}
        conv = await s.get(Conversation, nadia)
        assert conv is not None
        conv.satisfaction = 5
        for i, (ref, text, score) in enumerate(
            (
                ("L-10243", "La lumière du hall B ne s'allume plus", 4),
                ("L-10239", "Mon interphone ne sonne plus", None),
                ("L-10247", "Des encombrants devant le local vélos", 2),
            ),
            start=1,
        ):
            old = Conversation(
                channel="sms",
                address=tenants[ref].phone or "",
                tenant_id=tenants[ref].id,
                residence_id=fleurs,
                state="closed",
                intent="repair" if i != 3 else "bulky_waste",
                created_at=now - timedelta(days=i * 3),
                last_message_at=now - timedelta(days=i * 3),
                closed_at=now - timedelta(days=i * 3 - 1),
                last_caretaker_id=people["karim"].id,
                satisfaction=score,
            )
            s.add(old)
            await s.flush()
            s.add(
                Message(
                    conversation_id=old.id,
                    channel="sms",
                    direction="in",
                    author="tenant",
                    text=text,
                    created_at=old.created_at,
                    processed_at=old.created_at,  # answered long ago: not for the worker
                )
            )
            s.add(
                Ticket(
                    kind=old.intent or "repair",
                    reference=f"R-2026-00010{i}",
                    status="closed",
                    conversation_id=old.id,
                    tenant_id=old.tenant_id,
                    residence_id=fleurs,
                    summary=text,
                    created_at=old.created_at,
                )
            )
    return {"nadia": nadia, "jean": convs[JEAN]}


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory, chromium: Path) -> Iterator[tuple[Server, Any]]:
    path = tmp_path_factory.mktemp("search-browser") / "relais.sqlite3"
    settings = make_settings(f"sqlite+aiosqlite:///{path}", public_url="http://127.0.0.1")
    runtime = Runtime(
        settings,
        engine=KeywordEngine(),
        channels={"sms": RecordingChannel("sms"), "telegram": TelegramWithFiles("telegram")},
    )
    app = create_app(settings, runtime=runtime, prepare=True)
    with serve_in_thread(app, runtime) as srv:
        ids = srv.run(tell_the_story(runtime), timeout=60)
        yield srv, ids


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    with launch(chromium) as b:
        yield b


def sign_in(browser: Any, server: Server, viewport: dict[str, int], login: str) -> Any:
    context = browser.new_context(viewport=viewport, locale="fr-FR")
    page = watch_csp(context.new_page())
    page.goto(server.url + "/console/login")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "relais-demo")
    page.click("form.stack button[type=submit]")
    page.wait_for_url(lambda url: "/console/login" not in url)
    return page


def shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits_the_width(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def search(page: Any, q: str) -> list[str]:
    page.fill("#find-q", q)
    with page.expect_navigation():
        page.click("form.find button[type=submit]")
    return [str(x) for x in page.locator("ol.results li").all_inner_texts()]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_caretaker_searches_and_reads_the_history(
    story: tuple[Server, dict[str, int]], browser: Any, viewport: dict[str, int]
) -> None:
    server, ids = story
    size = "phone" if viewport is PHONE else "desktop"
    page = sign_in(browser, server, viewport, "karim")
    page.click("header.top >> text=Rechercher")
    page.wait_for_selector("#find-q")

    # A word without its accent: Nadia's sink, not Jean's (Le Canal is not Karim's).
    found = search(page, "evier")
    assert len(found) == 1 and "Nadia Haddad" in found[0] and "évier" in found[0]
    assert page.inner_text("#found") == "1 conversation(s) trouvée(s)"
    assert fits_the_width(page)
    shot(page, f"console-search-{size}")
    # Her phone number as people write it, her reference; Jean's name finds nothing.
    assert len(search(page, "06 12 34 56 00")) == 1
    assert len(search(page, "l10231")) == 1
    assert search(page, "Dupont") == []
    assert page.inner_text("p.empty") == "Aucune conversation ne correspond."

    # The history of closed conversations, newest first.
    with page.expect_navigation(url="**/console/history"):
        page.click("text=Conversations closes")
    items = [str(x) for x in page.locator("ol.history li").all_inner_texts()]
    assert len(items) == 4
    assert "Close par Astreinte technique" in items[0] and "Note du locataire : 5/5" in items[0]
    assert "Joint de l'évier changé" in items[0]
    assert "La lumière du hall B" in items[1] and "Close par Karim Benali" in items[1]
    assert "Pas de note" in items[2]
    assert not any("Dupont" in item for item in items)
    assert fits_the_width(page)
    shot(page, f"console-history-{size}")

    # Opened from the history: read, not answered.
    page.locator("ol.history li").first.locator("a.row").click()
    page.wait_for_url(f"**/console/c/{ids['nadia']}")
    page.wait_for_selector("#thread")
    assert page.locator("#reply-form").count() == 0
    assert page.locator("#take").count() == 0


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_manager_finds_and_reads_a_transcript(
    story: tuple[Server, dict[str, int]], browser: Any, viewport: dict[str, int]
) -> None:
    server, ids = story
    size = "phone" if viewport is PHONE else "desktop"
    page = sign_in(browser, server, viewport, "claire")
    page.goto(server.url + "/console/manager/conversations")
    page.fill("input[name=q]", "EVIER")
    with page.expect_navigation():
        page.click("form.filters button[type=submit]")
    assert page.inner_text("p.found") == "2 conversation(s)"
    texts = page.locator("ol.results").inner_text()
    assert "Nadia Haddad" in texts and "Jean Dupont" in texts
    assert fits_the_width(page)
    shot(page, f"manager-search-{size}")

    page.locator("ol.results li", has_text="Nadia Haddad").locator("a.row").click()
    page.wait_for_url(f"**/console/manager/conversations/{ids['nadia']}?**")
    thumb = page.locator("img.thumb").first
    thumb.wait_for()
    page.wait_for_function("() => document.querySelector('img.thumb').naturalWidth > 0")
    assert thumb.get_attribute("src", timeout=1000).startswith("/console/media/")
    thread = page.inner_text("ol.thread")
    for words in (
        "Le robot a passé la main à un gardien",
        "Karim Benali a pris la conversation",
        "Karim Benali a transféré la conversation à Astreinte technique",
        "Le plombier passe demain à 9 h.",
        "Astreinte technique a clos la conversation « Joint de l'évier changé »",
    ):
        assert words in thread, words
    people = page.inner_text("#participants")
    assert "Karim Benali · gardien" in people and "Astreinte technique · astreinte" in people
    assert "Robot" in people and "Nadia Haddad" in people
    assert fits_the_width(page)
    shot(page, f"manager-transcript-{size}")
