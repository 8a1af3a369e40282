"""A staff alert that could not be sent is said in the console (issue 19): the SMS sender not
configured, the provider refusing it, nobody to reach. Recorded where it happened (the outbox
row `failed`, or the audit log when there was not even an address), told live on the event
stream, and shown to the staff of the conversation's residence and to managers."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app.runtime import Roles, Runtime
from bot.storage.models import AuditLog, Conversation, Outbox, StaffUser
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.test_console import post
from tests.worker.test_pipeline import send, settled

GAS = "ça sent le gaz"
TENANT = "+33612345604"  # Résidence Les Fleurs: Karim's
BANNER = re.compile(r'<div class="alert-failed"[^>]*>(.*?)</div>', re.S)


def banner(page: str) -> str:
    m = BANNER.search(page)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", m.group(1))).split()) if m else ""


@pytest.fixture
def senders(request: pytest.FixtureRequest) -> dict[str, Any]:
    """What the runtime can send with; a test marks `@pytest.mark.parametrize` on it."""
    return dict(getattr(request, "param", {}))


@pytest.fixture
async def runtime(database_url: str, senders: dict[str, Any]) -> AsyncIterator[Runtime]:
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels=senders)
    await rt.start(Roles(consume=True, outbox=True, recover=False))
    try:
        yield rt
    finally:
        await rt.stop()


async def emergency(rt: Runtime) -> tuple[int, list[dict[str, Any]]]:
    """A tenant reports gas: on call is alerted at once. The conversation, and the console's
    live events seen meanwhile."""
    seen: list[dict[str, Any]] = []
    async with rt.bus.subscribe() as events:
        await send(rt, GAS, address=TENANT, pid="gas")
        await settled(rt)
        for _ in range(50):
            while not events.empty():
                seen.append(events.get_nowait())
            if any(e.get("type") == "alert_failed" for e in seen):
                break
            await asyncio.sleep(0.05)
    async with rt.db.session() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.address == TENANT)))
            .unique()
            .scalar_one()
        )
    return conv.id, seen


@pytest.mark.parametrize("senders", [{"telegram": RecordingChannel("telegram")}], indirect=True)
async def test_no_sms_sender_configured_is_said_to_those_concerned(
    runtime: Runtime, client_for: Any
) -> None:
    conv, events = await emergency(runtime)
    async with runtime.db.session() as s:
        failed = [
            o
            for o in (await s.execute(select(Outbox).where(Outbox.status == "failed"))).scalars()
            if (o.extra or {}).get("staff_alert")
        ]
    assert failed and failed[0].last_error == "no sender configured for 'sms'"
    # Told live, ids only, like every console event.
    assert {"type": "alert_failed", "conversation_id": conv} in events
    said = (
        "L'alerte SMS à l'astreinte (Astreinte technique) n'a pas pu être envoyée : "
        "aucun expéditeur SMS configuré"
    )
    for login in ("astreinte", "karim", "claire"):
        page = (await (await client_for(login)).get("/console")).text
        assert said in banner(page), (login, banner(page))
        assert f'href="/console/c/{conv}"' in BANNER.search(page).group(1)
    # On the conversation itself too (the live part of the page), without a link to itself.
    page = (await (await client_for("karim")).get(f"/console/c/{conv}")).text
    assert said in banner(page)
    assert f'href="/console/c/{conv}"' not in BANNER.search(page).group(1)
    live = (await (await client_for("karim")).get(f"/console/api/c/{conv}/live")).text
    assert said in banner(live)
    # Not to the caretaker of another residence.
    sophie = (await (await client_for("sophie")).get("/console")).text
    assert banner(sophie) == ""
    # In English for whoever reads English.
    karim = await client_for("karim")
    await karim.get("/console/lang/en?next=/console")
    assert (
        "The SMS alert to on call (Astreinte technique) could not be sent: no SMS sender "
        "configured" in banner((await karim.get("/console")).text)
    )
    # Once the conversation is closed, the failure is no longer news.
    oncall = await client_for("astreinte")
    assert (await post(oncall, f"/console/c/{conv}/take")).status_code == 303
    assert banner((await oncall.get("/console")).text) != ""  # taken: still waiting on someone
    r = await post(oncall, f"/console/c/{conv}/close", resolution="gaz coupé, GRDF prévenu")
    assert r.status_code == 303
    assert banner((await oncall.get("/console")).text) == ""


@pytest.mark.parametrize(
    "senders", [{"sms": RecordingChannel("sms", fail_permanent=True)}], indirect=True
)
async def test_a_provider_refusal_is_said(runtime: Runtime, client_for: Any) -> None:
    conv, events = await emergency(runtime)
    assert {"type": "alert_failed", "conversation_id": conv} in events
    page = (await (await client_for("karim")).get("/console")).text
    assert (
        "L'alerte SMS à l'astreinte (Astreinte technique) n'a pas pu être envoyée : "
        "le fournisseur l'a refusée ou n'a pas répondu" in banner(page)
    )


@pytest.mark.parametrize("senders", [{"sms": RecordingChannel("sms")}], indirect=True)
async def test_nobody_to_reach_is_recorded_and_said(runtime: Runtime, client_for: Any) -> None:
    async with runtime.db.transaction() as s:
        await s.execute(update(StaffUser).where(StaffUser.login == "astreinte").values(phone=None))
    conv, _events = await emergency(runtime)
    async with runtime.db.session() as s:
        audits = list(
            (await s.execute(select(AuditLog).where(AuditLog.action == "alert_failed"))).scalars()
        )
    assert [a.target_id for a in audits] == [str(conv)]
    assert audits[0].detail["why"] == "no_contact"
    page = (await (await client_for("claire")).get("/console")).text
    assert (
        "L'alerte à l'astreinte (Astreinte technique) n'a pas pu être envoyée : "
        "ni téléphone ni Telegram enregistré pour cette personne" in banner(page)
    )
    # The managers' audit log says it in words, with the person's name.
    audit_page = html.unescape(
        (await (await client_for("claire")).get("/console/manager/audit")).text
    )
    assert "L'alerte à Astreinte technique pour la conversation d'Aïcha Benmoussa" in audit_page
    assert "n'a pas pu être envoyée : ni téléphone ni Telegram sur sa fiche" in audit_page
    assert "alert_failed</" not in audit_page and ">alert_failed<" not in audit_page


@pytest.mark.parametrize("senders", [{"sms": RecordingChannel("sms")}], indirect=True)
async def test_alerts_that_went_say_nothing(runtime: Runtime, client_for: Any) -> None:
    await emergency(runtime)
    page = (await (await client_for("astreinte")).get("/console")).text
    assert banner(page) == "" and "alert-failed" not in page
