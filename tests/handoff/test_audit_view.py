"""The audit log in words over HTTP: caretakers' actions named with the names the console
shows, refused accesses (403) recorded once by the console's error handler with no body and no
phone number, filters by person and action, pages, and GDPR erasure reaching the sentences
(SQLite and PostgreSQL)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select

from bot.app.runtime import Runtime
from bot.ops.gdpr import erase_tenant
from bot.storage.models import AuditLog, Conversation, StaffUser
from bot.storage.store import audit
from handoff import actions
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # Résidence Les Fleurs (Karim Benali)
JEAN = "+33612345601"  # Résidence du Canal (not Karim's)


async def staff(rt: Runtime, login: str) -> StaffUser:
    async with rt.db.session() as s:
        return (await s.execute(select(StaffUser).where(StaffUser.login == login))).scalar_one()


async def refusals(rt: Runtime) -> list[AuditLog]:
    async with rt.db.session() as s:
        rows = await s.execute(
            select(AuditLog).where(AuditLog.action == "forbidden").order_by(AuditLog.id)
        )
        return list(rows.scalars())


def entries(html: str) -> str:
    return (
        html.split('<ol class="audit">')[1].split("</ol>")[0]
        if '<ol class="audit">' in html
        else ""
    )


@pytest.fixture
async def convs(runtime: Runtime) -> dict[str, int]:
    await send(runtime, "je veux parler à un conseiller pour le chauffe-eau", address=NADIA)
    await send(runtime, "je veux parler à une personne", address=JEAN)
    await settled(runtime)
    async with runtime.db.session() as s:
        found = dict(
            (address, cid)
            for cid, address in await s.execute(select(Conversation.id, Conversation.address))
        )
    return {"nadia": found[NADIA], "jean": found[JEAN]}


async def test_actions_in_words(
    runtime: Runtime, client_for: ClientFactory, convs: dict[str, int]
) -> None:
    karim = await staff(runtime, "karim")
    await actions.take(runtime, karim, convs["nadia"])
    await actions.close(runtime, karim, convs["nadia"], "Chauffe-eau relancé")
    c = await client_for("claire")
    await c.get("/console/manager/conversations", params={"q": "chauffe"})
    html = entries((await c.get("/console/manager/audit")).text)
    assert "Karim Benali a pris la conversation de Nadia Haddad (L-10231)" in html
    assert "Karim Benali a clôturé la conversation de Nadia Haddad (L-10231)" in html
    assert "Chauffe-eau relancé" in html
    assert "Claire Dubois a cherché dans les conversations" in html and "chauffe" in html
    assert f'href="/console/manager/conversations/{convs["nadia"]}"' in html
    # No data-model words in the French sentences.
    for word in (">take<", ">close<", "conversation 1<", "resolution", '{"'):
        assert word not in html
    # English switch: the same entries in English.
    await c.get("/console/lang/en", params={"next": "/console/manager/audit"})
    english = entries((await c.get("/console/manager/audit")).text)
    assert "Karim Benali took the conversation of Nadia Haddad (L-10231)" in english


async def test_refused_accesses_recorded_once_and_shown(
    runtime: Runtime,
    client_for: ClientFactory,
    convs: dict[str, int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    karim = await client_for("karim")
    token = csrf_of((await karim.get("/console")).text)
    # Another residence's conversation: the page, then a reply with a phone number in it.
    assert (await karim.get(f"/console/c/{convs['jean']}")).status_code == 403
    secret = "rappelez-moi au 06 12 34 56 01"
    r = await karim.post(
        f"/console/c/{convs['jean']}/reply", data={"csrf": token, "text": secret, "nonce": "n1"}
    )
    assert r.status_code == 403
    # A manager page.
    assert (await karim.get("/console/manager/audit?q=0612345601")).status_code == 403
    rows = await refusals(runtime)
    assert [(a.actor, a.target_type, a.detail["reason"]) for a in rows] == [
        ("karim", "conversation", "residence"),
        ("karim", "conversation", "residence"),
        ("karim", "page", "role"),
    ]
    assert rows[0].target_id == str(convs["jean"])
    assert rows[2].detail["path"] == "/console/manager/audit"  # no query string
    for a in rows:
        assert set(a.detail) == {"method", "path", "reason"}
    # The server's log (not the test client's own request lines).
    logged = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith(("handoff", "bot", "uvicorn"))
    )
    assert "0612345601" not in logged and "06 12 34 56 01" not in logged and secret not in logged
    assert logged.count("403 ") == 3

    c = await client_for("claire")
    html = entries((await c.get("/console/manager/audit", params={"action": "forbidden"})).text)
    assert (
        "Karim Benali a tenté d&#39;ouvrir la conversation de Jean Dupont (L-10232), "
        "hors de ses résidences : refusé" in html
    )
    assert (
        "Karim Benali a tenté d&#39;ouvrir une page de pilotage (/console/manager/audit) : refusé"
        in html
    )
    assert html.count('class="action-forbidden refused"') == 3
    assert "s&#39;est connecté" not in html  # the filter keeps refusals only
    page = (await c.get("/console/manager/audit")).text
    assert '<option value="forbidden" selected>' not in page
    assert '<option value="forbidden">Accès refusé</option>' in page


async def test_filters_by_person_and_action_and_pages(
    runtime: Runtime, client_for: ClientFactory, convs: dict[str, int]
) -> None:
    karim, sophie = await staff(runtime, "karim"), await staff(runtime, "sophie")
    await actions.take(runtime, karim, convs["nadia"])
    await actions.take(runtime, sophie, convs["jean"])
    async with runtime.db.transaction() as s:
        for _ in range(60):
            await audit(
                s,
                "read",
                staff_id=sophie.id,
                actor="sophie",
                target_type="conversation",
                target_id=convs["jean"],
            )
    c = await client_for("claire")
    only_karim = entries((await c.get("/console/manager/audit", params={"staff": karim.id})).text)
    assert "Karim Benali a pris" in only_karim and "Sophie Lefebvre" not in only_karim
    takes = entries((await c.get("/console/manager/audit", params={"action": "take"})).text)
    assert "Karim Benali a pris" in takes and "Sophie Lefebvre a pris" in takes
    assert " a lu " not in takes and "connecté" not in takes
    both = (
        await c.get("/console/manager/audit", params={"staff": sophie.id, "action": "read"})
    ).text
    assert "61 entrée(s)" not in both and "60 entrée(s)" in both
    assert entries(both).count("<li") == 50
    assert 'href="?staff=' in both and "page=2" in both
    second = (
        await c.get(
            "/console/manager/audit", params={"staff": sophie.id, "action": "read", "page": 2}
        )
    ).text
    assert entries(second).count("<li") == 10
    # The selects show the filters in use, in words.
    assert f'<option value="{sophie.id}" selected>Sophie Lefebvre (gardien)</option>' in both
    assert '<option value="read" selected>Lecture d&#39;une conversation</option>' in both


async def test_gdpr_erasure_reaches_the_sentences(
    runtime: Runtime, client_for: ClientFactory, convs: dict[str, int]
) -> None:
    karim = await staff(runtime, "karim")
    await actions.take(runtime, karim, convs["nadia"])
    await actions.close(runtime, karim, convs["nadia"], "Vu avec Mme Haddad au 06 12 34 56 00")
    await erase_tenant(runtime.db, "L-10231")
    c = await client_for("claire")
    html = entries((await c.get("/console/manager/audit")).text)
    assert "Haddad" not in html and "(L-10231)" not in html and "06 12 34 56 00" not in html
    assert f"Karim Benali a pris la conversation n° {convs['nadia']}" in html
    assert "[effacé]" in html
    async with runtime.db.session() as s:
        n = (await s.execute(select(func.count(AuditLog.id)))).scalar_one()
    assert n >= 3  # the entries stay
