"""The manager pages over HTTP: roles, transcript search and CSV, NLU relabelling and its
YAML export, the audit log, escaping and the language switch (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import re

import httpx
import pytest
import yaml
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.storage.models import AuditLog, Conversation, Message, Residence
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

XSS = "<img src=x onerror=alert(1)>"
NADIA = "+33612345600"  # Résidence Les Fleurs
JEAN = "+33612345601"  # Résidence du Canal


@pytest.fixture
async def seeded(runtime: Runtime) -> dict[str, int]:
    """Three conversations through the real pipeline (keyword NLU): a handoff at Les Fleurs,
    a message the NLU did not understand at Le Canal, a Telegram greeting."""
    await send(
        runtime, "je veux parler à un conseiller pour le chauffe-eau", pid="M1", address=NADIA
    )
    await send(runtime, XSS, pid="M2", address=JEAN)
    await send(runtime, "=1+1 salut", pid="M3", address=JEAN)
    await send(runtime, "Bonjour", pid="M4", address="424242", channel="telegram")
    await settled(runtime)
    async with runtime.db.session() as s:
        convs = {
            address: cid
            for cid, address in await s.execute(select(Conversation.id, Conversation.address))
        }
    return {"nadia": convs[NADIA], "jean": convs[JEAN], "telegram": convs["424242"]}


def all_routes(routes: list) -> list[APIRoute]:
    """The app's routes, looking into included routers (FastAPI >= 0.16x keeps them apart)."""
    out: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            out.append(route)
        elif hasattr(route, "original_router"):
            out.extend(all_routes(route.original_router.routes))
    return out


# Path parameters of the facts pages that are not numbers (handoff.facts_pages).
SAMPLE_PARAMS = {"code": "FLEURS", "agency": "lille", "entry_id": "agency", "text_key": "greet"}


def manager_routes(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for route in all_routes(app.routes):
        if route.path.startswith("/console/manager"):
            path = re.sub(r"\{([^}]+)\}", lambda m: SAMPLE_PARAMS.get(m.group(1), "1"), route.path)
            out.extend((method, path) for method in sorted(route.methods))
    return out


def result_ids(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'href="/console/manager/conversations/(\d+)', html)}


async def audit_rows(runtime: Runtime, action: str) -> list[AuditLog]:
    async with runtime.db.session() as s:
        rows = await s.execute(
            select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)
        )
        return list(rows.scalars())


# -- roles -------------------------------------------------------------------------------


async def test_every_manager_route_is_for_managers_only(
    app: FastAPI, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    routes = manager_routes(app)
    assert {p for _, p in routes} >= {
        "/console/manager",
        "/console/manager/conversations",
        "/console/manager/conversations.csv",
        "/console/manager/conversations/1",
        "/console/manager/nlu",
        "/console/manager/nlu/1",
        "/console/manager/nlu.yml",
        "/console/manager/audit",
    }
    for login in ("karim", "astreinte"):
        client = await client_for(login)
        token = csrf_of((await client.get("/console")).text)
        for method, path in routes:
            r = await client.request(
                method, path, data={"csrf": token, "intent": "repair"} if method == "POST" else None
            )
            assert r.status_code == 403, (login, method, path, r.status_code)
    anonymous = await client_for()
    for method, path in routes:
        r = await anonymous.request(method, path)
        assert r.status_code in (303, 401), (method, path)
    manager = await client_for("claire")
    for method, path in routes:
        if method == "GET":
            r = await manager.get(path)
            assert r.status_code == 200, (path, r.text[:500])
    # Nothing a caretaker tried was applied.
    async with app.state.runtime.db.session() as s:
        assert (
            await s.execute(select(Message.id).where(Message.corrected_intent.is_not(None)))
        ).first() is None


async def test_the_menu_shows_management_to_managers_only(client_for: ClientFactory) -> None:
    caretaker = await client_for("karim")
    assert "/console/manager" not in (await caretaker.get("/console")).text
    manager = await client_for("claire")
    assert 'href="/console/manager"' in (await manager.get("/console")).text


# -- transcripts ---------------------------------------------------------------------------


async def test_search_filters(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    async with runtime.db.session() as s:
        res = {code: rid for rid, code in await s.execute(select(Residence.id, Residence.code))}
    cases: list[tuple[dict[str, str], set[str]]] = [
        ({}, {"nadia", "jean", "telegram"}),
        ({"q": "chauffe-eau"}, {"nadia"}),
        ({"q": "CONSEILLER"}, {"nadia"}),
        ({"q": "<img"}, {"jean"}),
        ({"q": "introuvable"}, set()),
        ({"intent": "human_request"}, {"nadia"}),
        ({"intent": "greet"}, {"telegram"}),
        ({"intent": "not-an-intent"}, {"nadia", "jean", "telegram"}),  # ignored
        ({"channel": "telegram"}, {"telegram"}),
        ({"channel": "sms"}, {"nadia", "jean"}),
        ({"residence": str(res["CANAL"])}, {"jean"}),
        ({"residence": str(res["FLEURS"])}, {"nadia"}),
        ({"state": "queued"}, {"nadia", "jean"}),  # jean: twice not understood
        ({"state": "bot"}, {"telegram"}),
        ({"state": "closed"}, set()),
        ({"start": "2020-01-01", "end": "2020-01-31"}, set()),
        ({"start": "2020-01-01"}, {"nadia", "jean", "telegram"}),  # up to today
        ({"channel": "sms", "state": "bot"}, set()),
        ({"channel": "telegram", "state": "bot"}, {"telegram"}),
    ]
    for params, expected in cases:
        r = await c.get("/console/manager/conversations", params=params)
        assert r.status_code == 200
        assert result_ids(r.text) == {seeded[k] for k in expected}, params


async def test_tenant_text_is_escaped_everywhere(
    client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    pages = [
        f"/console/manager/conversations/{seeded['jean']}",
        "/console/manager/nlu?kind=all",
        "/console/manager/conversations?q=%3Cimg",
    ]
    for url in pages:
        html = (await c.get(url)).text
        assert XSS not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
    # A search for markup is echoed back escaped in the search box.
    html = (
        await c.get("/console/manager/conversations", params={"q": '"><script>x</script>'})
    ).text
    assert "<script>x</script>" not in html


async def test_opening_a_conversation_is_read_only_and_audited(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    r = await c.get(
        f"/console/manager/conversations/{seeded['nadia']}",
        params={"back": "q=chauffe&channel=sms"},
    )
    assert r.status_code == 200
    assert "chauffe-eau" in r.text and "Nadia Haddad" in r.text
    assert 'href="/console/manager/conversations?q=chauffe&amp;channel=sms"' in r.text
    assert 'name="text"' not in r.text and "/reply" not in r.text  # no reply box
    (read,) = [a for a in await audit_rows(runtime, "read") if a.actor == "claire"]
    assert (read.target_type, read.target_id) == ("conversation", str(seeded["nadia"]))
    assert (await c.get("/console/manager/conversations/999999")).status_code == 404


async def test_csv_export(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    r = await c.get("/console/manager/conversations.csv", params={"channel": "sms"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"].startswith(
        'attachment; filename="relais-conversations-'
    )
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(
        csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"), newline=""), delimiter=";")
    )
    assert {int(row["conversation"]) for row in rows} == {seeded["nadia"], seeded["jean"]}
    tenant_texts = [row["text"] for row in rows if row["author"] == "tenant"]
    assert XSS in tenant_texts  # a CSV is data: the text is kept as written
    assert "'=1+1 salut" in tenant_texts  # ...but never as a formula
    assert all(not row["address"].startswith("+") for row in rows)
    assert any(
        row["tenant"] == "Nadia Haddad" and row["residence"] == "Résidence Les Fleurs"
        for row in rows
    )
    assert all(not v.startswith(("=", "+", "-", "@")) for row in rows for v in row.values())
    (export,) = await audit_rows(runtime, "export")
    assert export.actor == "claire" and export.target_type == "transcripts"
    assert export.detail["channel"] == "sms" and export.detail["format"] == "csv"
    assert export.detail["conversations"] == 2 and export.detail["rows"] == len(rows)
    # The export link on the search page carries the filters.
    page = await c.get("/console/manager/conversations", params={"q": "salut", "channel": "sms"})
    assert 'href="/console/manager/conversations.csv?q=salut&amp;channel=sms"' in page.text


async def test_searches_with_filters_are_audited(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    await c.get("/console/manager/conversations")
    assert await audit_rows(runtime, "search") == []
    await c.get("/console/manager/conversations", params={"q": "chauffe"})
    (search,) = await audit_rows(runtime, "search")
    assert search.detail == {"text": "chauffe"}


# -- NLU review ----------------------------------------------------------------------------


async def message_id(runtime: Runtime, text: str) -> int:
    async with runtime.db.session() as s:
        return (await s.execute(select(Message.id).where(Message.text == text))).scalar_one()


async def test_relabel_with_one_click_and_export_yaml(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    page = await c.get("/console/manager/nlu")
    mid = await message_id(runtime, XSS)
    assert f'id="m{mid}"' in page.text  # out_of_scope: to review
    token = csrf_of(page.text)
    r = await c.post(
        f"/console/manager/nlu/{mid}",
        data={
            "csrf": token,
            "intent": "repair",
            "other": "greet",
            "next": "/console/manager/nlu?kind=all",
        },
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/manager/nlu?kind=all#m{mid}"
    async with runtime.db.session() as s:
        msg = await s.get(Message, mid)
        assert msg is not None and (msg.intent, msg.corrected_intent) == ("out_of_scope", "repair")
    (relabel,) = await audit_rows(runtime, "relabel")
    assert (relabel.actor, relabel.target_type, relabel.target_id) == (
        "claire",
        "message",
        str(mid),
    )
    assert relabel.detail["predicted"] == "out_of_scope" and relabel.detail["corrected"] == "repair"
    # Gone from "to review", listed under "relabelled".
    assert f'id="m{mid}"' not in (await c.get("/console/manager/nlu")).text
    assert f'id="m{mid}"' in (await c.get("/console/manager/nlu?kind=labelled")).text
    # The select (no button value) works too, and an open redirect is refused.
    other = await message_id(runtime, "=1+1 salut")
    r = await c.post(
        f"/console/manager/nlu/{other}",
        data={"csrf": token, "other": "greet", "next": "https://evil.example/"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/console/manager/nlu#m{other}"

    y = await c.get("/console/manager/nlu.yml")
    assert y.status_code == 200 and y.headers["content-disposition"].startswith("attachment;")
    assert y.text.startswith('version: "3.1"\n')
    doc = yaml.safe_load(y.text)
    assert doc["nlu"] == [
        {"intent": "greet", "examples": "- =1+1 salut\n"},
        {"intent": "repair", "examples": f"- {XSS}\n"},
    ]
    export = [a for a in await audit_rows(runtime, "export") if a.target_type == "nlu"]
    assert len(export) == 1 and export[0].detail["examples"] == 2

    # Undo: back to the NLU's reading, and to review.
    r = await c.post(f"/console/manager/nlu/{mid}", data={"csrf": token, "intent": ""})
    assert r.status_code == 303
    async with runtime.db.session() as s:
        msg = await s.get(Message, mid)
        assert msg is not None and msg.corrected_intent is None


async def test_relabel_refuses_bad_requests(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    token = csrf_of((await c.get("/console/manager/nlu")).text)
    mid = await message_id(runtime, XSS)
    assert (
        await c.post(f"/console/manager/nlu/{mid}", data={"intent": "repair"})
    ).status_code == 403
    assert (
        await c.post(f"/console/manager/nlu/{mid}", data={"csrf": "forged", "intent": "repair"})
    ).status_code == 403
    assert (
        await c.post(f"/console/manager/nlu/{mid}", data={"csrf": token, "intent": "pizza"})
    ).status_code == 400
    assert (
        await c.post("/console/manager/nlu/999999", data={"csrf": token, "intent": "repair"})
    ).status_code == 404
    async with runtime.db.session() as s:
        bot_reply = (
            (await s.execute(select(Message.id).where(Message.author == "bot"))).scalars().first()
        )
    assert (
        await c.post(f"/console/manager/nlu/{bot_reply}", data={"csrf": token, "intent": "repair"})
    ).status_code == 404
    assert await audit_rows(runtime, "relabel") == []


# -- audit log, dashboard, language ---------------------------------------------------------------


async def test_audit_log_page_filters(
    runtime: Runtime, client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    karim = await client_for("karim")
    await karim.get("/console")
    c = await client_for("claire")
    await c.get(f"/console/manager/conversations/{seeded['jean']}")
    await c.get("/console/manager/conversations.csv")
    page = await c.get("/console/manager/audit")
    assert page.status_code == 200
    for text in (
        "Claire Dubois a lu la conversation de Jean Dupont (L-10232)",
        "Claire Dubois a exporté",
        "Karim Benali s&#39;est connecté(e)",
    ):
        assert text in page.text
    async with runtime.db.session() as s:
        from bot.storage.models import StaffUser

        ids = {login: sid for sid, login in await s.execute(select(StaffUser.id, StaffUser.login))}
    only_karim = (await c.get("/console/manager/audit", params={"staff": ids["karim"]})).text
    entries = only_karim.split('<ol class="audit">')[1]
    assert "Karim Benali" in entries and "Claire Dubois" not in entries
    exports = (await c.get("/console/manager/audit", params={"action": "export"})).text.split(
        '<ol class="audit">'
    )[1]
    assert "a exporté" in exports and " a lu " not in exports and "connecté" not in exports


async def test_dashboard_counts_and_charts(
    client_for: ClientFactory, seeded: dict[str, int]
) -> None:
    c = await client_for("claire")
    html = (await c.get("/console/manager")).text

    def kpi(name: str) -> str:
        m = re.search(rf'data-kpi="{name}"><span class="kpi-value">([^<]*)<', html)
        assert m, name
        return m.group(1).strip()

    assert kpi("messages") == "4"
    assert kpi("conversations") == "3"
    assert kpi("handoffs") == "2"  # nadia asked for a person; jean was twice not understood
    assert kpi("automation") == "33 %"
    assert (
        html.count("<svg") >= 5
        and "<script" not in html.split("</header>")[1].split("<script src")[0]
    )
    assert "Demande un humain" in html or "human_request" in html
    # An explicit period with nothing in it.
    empty = (
        await c.get("/console/manager", params={"start": "2020-01-01", "end": "2020-01-31"})
    ).text
    assert 'data-kpi="messages"><span class="kpi-value">0<' in empty
    assert 'value="2020-01-01"' in empty


async def test_english_switch(client_for: ClientFactory, seeded: dict[str, int]) -> None:
    c = await client_for("claire")
    assert "Tableau de bord" in (await c.get("/console/manager")).text
    r = await c.get("/console/lang/en", params={"next": "/console/manager"})
    assert r.status_code == 303 and r.headers["location"] == "/console/manager"
    html = (await c.get("/console/manager")).text
    assert "Dashboard" in html and "Messages received" in html and "Tableau de bord" not in html
    assert "Export as CSV" in (await c.get("/console/manager/conversations")).text


async def test_a_signed_out_manager_page_redirects_to_sign_in(client_for: ClientFactory) -> None:
    c: httpx.AsyncClient = await client_for()
    r = await c.get("/console/manager/conversations?q=x")
    assert r.status_code == 303
    assert (
        r.headers["location"] == "/console/login?next=%2Fconsole%2Fmanager%2Fconversations%3Fq%3Dx"
    )


def test_quick_intents_confirm_then_runners_up_then_topics() -> None:
    from datetime import UTC, datetime

    from handoff.manager import quick_intents
    from handoff.review import ReviewItem

    row = ReviewItem(
        1,
        1,
        datetime.now(UTC),
        "sms",
        "x",
        "out_of_scope",
        0.3,
        None,
        [("out_of_scope", 0.3), ("greet", 0.2), ("repair", 0.1)],
    )
    assert quick_intents(row) == [
        "out_of_scope",
        "greet",
        "repair",
        "nuisance",
        "bulky_waste",
        "question",
    ]
    relabelled = ReviewItem(1, 1, datetime.now(UTC), "sms", "x", "question", 0.5, "repair", [])
    assert quick_intents(relabelled) == ["question", "nuisance", "bulky_waste", "emergency"]
