"""The managers' NLU review over HTTP, on conversations run through the real pipeline: the
emergency layer's false alarms and misses are listed with what the bot decided and what came
of it, identification and rating answers are not, and "Ce n'était pas une urgence" / "C'était
une urgence" reach the Rasa YAML export under the right intent (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
import yaml
from sqlalchemy import select

from bot.app.runtime import Runtime
from bot.ops.gdpr import erase_tenant
from bot.storage.models import AuditLog, Conversation, Handoff, Message, StaffUser
from handoff import actions
from handoff.review import not_nlu_answer, says_not_urgent, says_urgent
from tests.handoff.conftest import ClientFactory, csrf_of
from tests.worker.test_pipeline import send, settled

NADIA = "+33612345600"  # Résidence Les Fleurs (Karim Benali)
JEAN = "+33612345601"  # Résidence du Canal
STRANGER = "+33699887766"  # not a tenant on file
GAS = "ça sent le gaz dans la cuisine"
NOISE = "le chauffe-eau fait un bruit bizarre"
GAS_LATER = "maintenant ça sent le gaz partout"


async def staff(rt: Runtime, login: str) -> StaffUser:
    async with rt.db.session() as s:
        return (await s.execute(select(StaffUser).where(StaffUser.login == login))).scalar_one()


async def conversation_of(rt: Runtime, address: str) -> int:
    async with rt.db.session() as s:
        return (
            await s.execute(select(Conversation.id).where(Conversation.address == address))
        ).scalar_one()


async def message(rt: Runtime, text: str) -> Message:
    async with rt.db.session() as s:
        return (await s.execute(select(Message).where(Message.text == text))).scalar_one()


def item_of(html: str, mid: int) -> str:
    """The review card of one message, or "" when it is not listed."""
    start = html.find(f'id="m{mid}"')
    if start < 0:
        return ""
    return html[start : html.find("</li>", start)]


@pytest.fixture
async def story(runtime: Runtime) -> dict[str, int]:
    """Nadia's gas alarm that Karim closes as not an emergency, then her rating; Jean's noise
    followed by gas (a miss); a stranger who answers the identification question."""
    await send(runtime, GAS, address=NADIA)
    await settled(runtime)
    nadia = await conversation_of(runtime, NADIA)
    karim = await staff(runtime, "karim")
    await actions.take(runtime, karim, nadia)
    await actions.close(runtime, karim, nadia, "Pas une urgence : odeur de peinture chez le voisin")
    await settled(runtime)
    await send(runtime, "4", address=NADIA)
    await settled(runtime)
    await send(runtime, "merci", address=NADIA)
    await send(runtime, NOISE, address=JEAN)
    await settled(runtime)
    await send(runtime, GAS_LATER, address=JEAN)
    await send(runtime, "j'ai une fuite sous l'évier", address=STRANGER)
    await settled(runtime)
    await send(runtime, "Martin Paul 12 rue des Lilas", address=STRANGER)
    await settled(runtime)
    return {"nadia": nadia, "jean": await conversation_of(runtime, JEAN)}


async def test_false_alarm_and_miss_listed_with_the_decision_and_outcome(
    runtime: Runtime, client_for: ClientFactory, story: dict[str, int]
) -> None:
    gas = await message(runtime, GAS)
    async with runtime.db.session() as s:
        (h,) = (
            await s.execute(select(Handoff).where(Handoff.conversation_id == story["nadia"]))
        ).scalars()
    assert gas.intent == "emergency" and h.intent == "emergency"  # the bot raised it
    c = await client_for("claire")
    false_alarms = (await c.get("/console/manager/nlu", params={"kind": "false_alarm"})).text
    card = item_of(false_alarms, gas.id)
    assert "Fausse alerte" in card and GAS.replace("ç", "ç") in card
    assert "Décision du robot" in card and "urgence" in card and "danger : gaz" in card
    assert "alerte d&#39;urgence envoyée" in card
    assert "clôturé par Karim Benali : « Pas une urgence : odeur de peinture" in card
    assert "Nadia Haddad (L-10231)" in card
    assert "Ce n&#39;était pas une urgence" in card
    # Listed to review too; not an English word in the French card.
    assert item_of((await c.get("/console/manager/nlu")).text, gas.id)
    for word in ("emergency", "false_alarm", "handoff", "intent"):
        assert f">{word}<" not in card

    noise, later = await message(runtime, NOISE), await message(runtime, GAS_LATER)
    missed = (await c.get("/console/manager/nlu", params={"kind": "missed"})).text
    card = item_of(missed, noise.id)
    assert "Urgence manquée" in card and "pas une urgence" in card
    assert f"Plus tard dans la conversation : « {GAS_LATER} »" in card.replace("&#39;", "'")
    assert "C&#39;était une urgence" in card
    assert not item_of(missed, later.id)  # the later message was read as the emergency it was


async def test_identification_and_rating_answers_are_not_listed(
    runtime: Runtime, client_for: ClientFactory, story: dict[str, int]
) -> None:
    rating, thanks = await message(runtime, "4"), await message(runtime, "merci")
    name = await message(runtime, "Martin Paul 12 rue des Lilas")
    assert rating.nlu and rating.nlu["answering"] == "satisfaction"
    assert name.nlu and name.nlu["answering"] == "identity"
    assert name.intent == "out_of_scope"  # unsure, yet not the classifier's decision
    c = await client_for("claire")
    for kind in ("all", "todo", "unsure"):
        html = (await c.get("/console/manager/nlu", params={"kind": kind})).text
        for m in (rating, thanks, name):
            assert not item_of(html, m.id), (kind, m.text)
    # A conversation answered by the bot alone is not a mistake either: only the tagged ones.
    gas = await message(runtime, GAS)
    assert item_of((await c.get("/console/manager/nlu", params={"kind": "all"})).text, gas.id)


def test_answer_shapes_without_the_question_kept() -> None:
    """Messages stored before the worker kept the question: recognised by their shape."""
    for text in ("482913", " 4 ", "5/5", "4 étoiles", "L-10231", "ref: L-10231"):
        assert not_nlu_answer(None, text), text
    for text in ("ça sent le gaz", "4 radiateurs en panne", "j'ai une fuite", "merci"):
        assert not not_nlu_answer(None, text), text
    assert not_nlu_answer({"answering": "code"}, "mon code est 48 29 13")
    assert not not_nlu_answer({"answering": "where"}, "dans la cuisine")
    assert says_not_urgent("Pas une urgence, simple odeur")
    assert says_not_urgent("FAUSSE ALERTE")
    assert not says_not_urgent("Urgence réelle, GRDF prévenu")
    assert says_urgent("c'était une vraie urgence") and not says_urgent("pas urgent")


async def test_not_an_emergency_reaches_the_export_under_the_right_intent(
    runtime: Runtime, client_for: ClientFactory, story: dict[str, int]
) -> None:
    gas = await message(runtime, GAS)
    c = await client_for("claire")
    page = await c.get("/console/manager/nlu", params={"kind": "false_alarm"})
    token = csrf_of(page.text)
    r = await c.post(
        f"/console/manager/nlu/{gas.id}/emergency",
        data={
            "csrf": token,
            "verdict": "no",
            "intent": "nuisance",
            "next": "/console/manager/nlu?kind=false_alarm",
        },
    )
    assert r.status_code == 303
    assert r.headers["location"] == f"/console/manager/nlu?kind=false_alarm#m{gas.id}"
    async with runtime.db.session() as s:
        fresh = await s.get(Message, gas.id)
        assert fresh is not None and (fresh.intent, fresh.corrected_intent) == (
            "emergency",
            "nuisance",
        )
        entry = (await s.execute(select(AuditLog).where(AuditLog.action == "relabel"))).scalar_one()
    assert entry.detail["verdict"] == "not_emergency" and entry.detail["corrected"] == "nuisance"
    # Reviewed: out of "to review", still listed as a (corrected) false alarm.
    assert not item_of((await c.get("/console/manager/nlu")).text, gas.id)
    card = item_of((await c.get("/console/manager/nlu?kind=labelled")).text, gas.id)
    assert "Corrigé : " in card and "Ce n&#39;était pas une urgence" not in card

    # "C'était une urgence" on the miss.
    noise = await message(runtime, NOISE)
    r = await c.post(
        f"/console/manager/nlu/{noise.id}/emergency", data={"csrf": token, "verdict": "yes"}
    )
    assert r.status_code == 303

    doc = yaml.safe_load((await c.get("/console/manager/nlu.yml")).text)
    blocks = {b["intent"]: b["examples"].splitlines() for b in doc["nlu"]}
    assert f"- {GAS}" in blocks["nuisance"]
    assert f"- {GAS}" not in blocks["emergency"]
    assert f"- {NOISE}" in blocks["emergency"]
    audit = (await c.get("/console/manager/audit", params={"action": "relabel"})).text
    assert (
        "Claire Dubois a indiqué qu&#39;un message de la conversation de Nadia Haddad (L-10231) "
        "n&#39;était pas une urgence (" in audit
    )
    assert "a indiqué qu&#39;un message de la conversation de Jean Dupont (L-10232) était une" in (
        audit
    )


async def test_not_an_emergency_without_an_intent_and_bad_requests(
    runtime: Runtime, client_for: ClientFactory, story: dict[str, int]
) -> None:
    gas, noise = await message(runtime, GAS), await message(runtime, NOISE)
    c = await client_for("claire")
    token = csrf_of((await c.get("/console/manager/nlu")).text)
    url = f"/console/manager/nlu/{gas.id}/emergency"
    assert (await c.post(url, data={"csrf": token, "verdict": "maybe"})).status_code == 400
    bad = {"csrf": token, "verdict": "no", "intent": "emergency"}
    assert (await c.post(url, data=bad)).status_code == 400
    assert (await c.post(url, data={"verdict": "no"})).status_code == 403  # no CSRF token
    # "Not an emergency" only on an emergency decision.
    wrong = await c.post(
        f"/console/manager/nlu/{noise.id}/emergency", data={"csrf": token, "verdict": "no"}
    )
    assert wrong.status_code == 400
    karim = await client_for("karim")
    karim_token = csrf_of((await karim.get("/console")).text)
    refused = await karim.post(url, data={"csrf": karim_token, "verdict": "no"})
    assert refused.status_code == 403
    # Without an intent: the NLU's best reading other than emergency (out of scope here).
    assert (await c.post(url, data={"csrf": token, "verdict": "no"})).status_code == 303
    async with runtime.db.session() as s:
        fresh = await s.get(Message, gas.id)
        assert fresh is not None and fresh.corrected_intent not in (None, "emergency")


async def test_staff_flagging_an_emergency_the_bot_did_not_raise_is_a_miss(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    await send(runtime, "je veux parler à un conseiller, vite", address=JEAN)
    await settled(runtime)
    jean = await conversation_of(runtime, JEAN)
    sophie = await staff(runtime, "sophie")
    await actions.take(runtime, sophie, jean)
    await actions.close(runtime, sophie, jean, "C'était une urgence : odeur de gaz, GRDF appelé")
    asked = await message(runtime, "je veux parler à un conseiller, vite")
    c = await client_for("claire")
    card = item_of((await c.get("/console/manager/nlu?kind=missed")).text, asked.id)
    assert "Urgence manquée" in card and "transmis à une personne" in card
    assert "clôturé par Sophie Lefebvre : « C&#39;était une urgence : odeur de gaz" in card
    # Closed as an ordinary need: not a miss.
    await send(runtime, "je veux parler à une personne", address=NADIA)
    await settled(runtime)
    nadia = await conversation_of(runtime, NADIA)
    karim = await staff(runtime, "karim")
    await actions.take(runtime, karim, nadia)
    await actions.close(runtime, karim, nadia, "Rappel fait, rendez-vous pris")
    other = await message(runtime, "je veux parler à une personne")
    assert not item_of((await c.get("/console/manager/nlu?kind=all")).text, other.id)


async def test_erased_messages_leave_the_review_and_the_export(
    runtime: Runtime, client_for: ClientFactory, story: dict[str, int]
) -> None:
    gas = await message(runtime, GAS)
    c = await client_for("claire")
    token = csrf_of((await c.get("/console/manager/nlu")).text)
    data = {"csrf": token, "verdict": "no", "intent": "repair"}
    await c.post(f"/console/manager/nlu/{gas.id}/emergency", data=data)
    assert f"- {GAS}" in (await c.get("/console/manager/nlu.yml")).text
    await erase_tenant(runtime.db, "L-10231")
    export = (await c.get("/console/manager/nlu.yml")).text
    assert GAS not in export and "[effacé]" not in export
    listed = (await c.get("/console/manager/nlu", params={"kind": "all"})).text
    assert not item_of(listed, gas.id) and "[effacé]" not in listed
