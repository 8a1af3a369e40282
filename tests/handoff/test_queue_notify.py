"""The queue in words (issue 19): what each item is about, one priority label, a count of what
waits, folded notices; the installable console (manifest, service worker, offline page) and
/favicon.ico. Over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from datetime import UTC, datetime

import httpx
from sqlalchemy import select, update

from bot.app.runtime import Runtime
from bot.storage.models import Handoff, Request
from handoff.queue import meaningful, request_summary
from tests.handoff.conftest import ClientFactory
from tests.handoff.test_console import HUMAN, JEAN, NADIA, post, queued
from tests.worker.test_pipeline import send, settled

LEAK = "Fuite sous l'évier · cuisine · depuis ce matin · photo"


def row_of(page: str, conv_id: int) -> str:
    m = re.search(rf'<li [^>]*data-id="{conv_id}">(.*?)</li>', page, re.S)
    assert m, f"conversation {conv_id} not in the queue"
    return m.group(1)


def text_of(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def summary_of(row: str) -> str:
    m = re.search(r'<strong class="summary">(.*?)</strong>', row, re.S)
    assert m, row
    return text_of(m.group(1))


async def attach_request(rt: Runtime, conv_id: int, summary: str = LEAK) -> None:
    """The request the bot filed for this handoff (what the dialogue stores, as it stores it)."""
    async with rt.db.transaction() as s:
        request = Request(
            reference=f"R-TEST-{conv_id}",
            kind="repair",
            conversation_id=conv_id,
            summary=summary,
            details={"what": "fuite sous l'évier", "place": "cuisine", "photo": True},
        )
        s.add(request)
        await s.flush()
        await s.execute(
            update(Handoff)
            .where(Handoff.conversation_id == conv_id, Handoff.closed_at.is_(None))
            .values(request_id=request.id)
        )


def test_what_says_something_and_what_does_not() -> None:
    assert meaningful("mon chauffage ne marche plus")
    assert meaningful("Il y a une fuite sous l'évier")
    for answer in (
        "non",
        "4",
        "oui merci",
        "L-10231",
        "ok",
        "dans le salon",
        "depuis hier matin",
        "123456",
    ):
        assert not meaningful(answer), answer
    r = Request(kind="repair", summary=LEAK, details={})
    assert request_summary(r) == "Fuite sous l'évier · cuisine"


async def test_an_item_says_the_request_in_words_not_the_last_answer(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, HUMAN, pid="q1")
    await attach_request(runtime, conv)
    for i, answer in enumerate(("non", "4")):
        await send(runtime, answer, address=NADIA, pid=f"q1-{i}")
    await settled(runtime)
    page = (await (await client_for("karim")).get("/console")).text
    row = row_of(page, conv)
    assert summary_of(row) == "Fuite sous l'évier · cuisine"
    assert "R-TEST" in row  # its reference, to quote on the phone
    # The last message is still there, below, said to be one.
    assert "Dernier message : 4" in text_of(row)


async def test_without_a_request_the_first_message_that_says_something(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, f"{HUMAN}, le chauffage est en panne", pid="q2")
    await send(runtime, "non", address=NADIA, pid="q2-1")
    await settled(runtime)
    page = (await (await client_for("karim")).get("/console")).text
    assert summary_of(row_of(page, conv)) == f"{HUMAN}, le chauffage est en panne"


async def test_an_emergency_has_one_label_and_the_count_counts_what_waits(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    gas = await queued(runtime, "ça sent le gaz", address="+33612345604", pid="g")
    other = await queued(runtime, HUMAN, pid="o")
    karim = await client_for("karim")
    page = (await karim.get("/console")).text
    row = text_of(row_of(page, gas))
    assert row.count("URGENCE") == 1 and "Urgence" not in row, row
    assert 'id="queue-count" data-waiting="2"' in page
    assert "2 en attente" in text_of(page)
    r = await post(karim, f"/console/c/{other}/take")
    assert r.status_code == 303
    page = (await karim.get("/console")).text
    count = text_of(re.search(r'<p [^>]*id="queue-count".*?</p>', page, re.S).group(0))
    assert count == "1 en attente · prises en charge : 1"
    assert "taken" in re.search(rf'<li class="([^"]*)" data-id="{other}"', page).group(1)
    # The emergency's one label in English too.
    await karim.get("/console/lang/en?next=/console")
    row = text_of(row_of((await karim.get("/console")).text, gas))
    assert row.count("EMERGENCY") == 1 and "Emergency" not in row, row


async def test_closed_lodges_and_late_requests_are_folded(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    runtime.clock = lambda: datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # Tuesday 19:30
    await queued(runtime, HUMAN, address=JEAN, pid="f")
    page = (await (await client_for("astreinte")).get("/console")).text
    folded = re.search(r'<details class="folded closed-lodges"[^>]*>(.*?)</details>', page, re.S)
    assert folded, "the closed lodges are not folded"
    summary = text_of(re.search(r"<summary>(.*?)</summary>", folded.group(1), re.S).group(1))
    assert summary.startswith("Loges fermées (") and "Résidence Les Fleurs" in summary
    assert "Loge fermée : Résidence Les Fleurs" in folded.group(1)  # inside, one tap away
    assert page.index("</details>") < page.index('<ol class="queue">')


# -- the installable console ------------------------------------------------------------------


async def test_the_manifest_names_the_app_and_its_icons(client_for: ClientFactory) -> None:
    anonymous = await client_for()  # a browser fetches the manifest without cookies
    r = await anonymous.get("/console/manifest.webmanifest")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/manifest+json")
    m = json.loads(r.text)
    assert m["start_url"] == "/console" and m["scope"] == "/console"
    assert m["display"] == "standalone" and m["short_name"] == "Relais"
    assert re.fullmatch(r"#[0-9a-f]{6}", m["theme_color"])
    sizes = {i["sizes"]: i for i in m["icons"]}
    assert {"192x192", "512x512", "any"} <= set(sizes)
    for icon in m["icons"]:
        got = await anonymous.get(icon["src"])
        assert got.status_code == 200, icon
        assert got.headers["content-type"].startswith(icon["type"]), icon
        if icon["type"] == "image/png":
            assert got.content[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = int.from_bytes(got.content[16:20]), int.from_bytes(got.content[20:24])
            assert f"{width}x{height}" == icon["sizes"]
    page = (await (await client_for("karim")).get("/console")).text
    assert '<link rel="manifest" href="/console/manifest.webmanifest">' in page
    assert '<meta name="theme-color"' in page


async def test_the_service_worker_is_served_for_the_whole_console(
    client_for: ClientFactory,
) -> None:
    anonymous = await client_for()
    r = await anonymous.get("/console/sw.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/javascript")
    # /console/sw.js may control /console itself, the queue (one folder up from its own).
    assert r.headers["service-worker-allowed"] == "/console"
    assert r.headers["cache-control"] == "no-store"  # a new version is found at once
    assert "caches" in r.text and "/console/offline" in r.text
    # It may only keep the shell: no page, fragment or API path in its list.
    shell = re.search(r"var SHELL = \[(.*?)\];", r.text, re.S)
    assert shell
    for path in re.findall(r'"(/[^"]*)"', shell.group(1)):
        assert path == "/console/offline" or path.startswith("/console/static/"), path


async def test_the_offline_page_speaks_both_languages_and_holds_nobody(
    client_for: ClientFactory,
) -> None:
    karim = await client_for("karim")
    r = await karim.get("/console/offline")
    assert r.status_code == 200
    text = text_of(r.text)
    assert "Hors connexion" in text and "Offline" in text
    # Kept by the service worker: no name, no CSRF token, no tenant data in it.
    assert "Karim" not in r.text and "csrf" not in r.text
    assert "<script>" not in r.text and " style=" not in r.text


async def test_the_console_policy_allows_the_app_and_nothing_more(
    client_for: ClientFactory,
) -> None:
    r = await (await client_for("karim")).get("/console")
    csp = {d.split()[0]: d.split()[1:] for d in r.headers["content-security-policy"].split("; ")}
    assert csp["manifest-src"] == ["'self'"] and csp["worker-src"] == ["'self'"]
    assert csp["default-src"] == ["'none'"] and "media-src" not in csp  # the sound is Web Audio


async def test_favicon_at_the_root(client_for: ClientFactory) -> None:
    anonymous = await client_for()
    r = await anonymous.get("/favicon.ico")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/x-icon"
    icon = r.content
    assert icon[:4] == b"\x00\x00\x01\x00"  # an ICO directory
    count = int.from_bytes(icon[4:6], "little")
    assert count >= 2
    sizes = {icon[6 + 16 * i] or 256 for i in range(count)}
    assert {16, 32} <= sizes
    assert b"\x89PNG" in icon


async def test_favicon_is_what_the_web_chat_page_gets(app: object) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        page = await c.get("/webchat/")
        assert page.status_code == 200
        assert (await c.get("/favicon.ico")).status_code == 200


async def test_a_request_of_another_residence_is_not_summarised_to_me(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    conv = await queued(runtime, HUMAN, address=JEAN, pid="iso")
    await attach_request(runtime, conv, "Secret de Jean · salon")
    page = (await (await client_for("karim")).get("/console")).text
    assert "Secret de Jean" not in page
    async with runtime.db.session() as s:
        assert (await s.execute(select(Request.id))).scalars().all()
