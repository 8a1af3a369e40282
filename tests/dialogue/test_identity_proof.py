"""Identification proof (issue 16, item 5): a web-chat or Telegram sender who types a tenant
number is linked only after typing back the one-time code sent by SMS to the tenant's phone
on file. Before that, nothing personal is said. Played through `relais chat --trace`'s code."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app.chat import MovableClock, TraceSession
from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.messaging.bus import InProcessBus
from bot.ops.gdpr import erase_tenant
from bot.storage.models import Conversation, IdentityCode, Outbox
from nlu.engine import build_engine
from tests.conftest import DATA_DIR
from tests.story_runner import Harness

SAMIRA_PHONE = "+33612345612"  # L-10243, Résidence Les Fleurs, bâtiment A


@pytest.fixture
async def webchat(nlu_model_path: Path, tmp_path: Path) -> AsyncIterator[TraceSession]:
    engine = build_engine(kind="embedded", model_path=nlu_model_path, data_dir=DATA_DIR)
    harness = Harness(engine, tmp_path)
    await harness.prepare()
    clock = MovableClock(datetime.fromisoformat("2026-03-03T10:00:00+01:00"))
    rt = Runtime(
        harness.settings(harness.template),
        engine=engine,
        bus=InProcessBus(partitions=1),
        clock=clock,
    )
    attach_handoff(rt)
    await rt.start(
        Roles(consume=False, outbox=False, recover=False, retention=False, escalate=False)
    )
    rt.pipeline.clock = clock
    session = TraceSession(rt, "webchat-session-1", channel="webchat", clock=clock)
    await session.start()
    try:
        yield session
    finally:
        await rt.stop()


async def sms_codes(session: TraceSession) -> list[str]:
    async with session.rt.db.session() as s:
        rows = (
            await s.execute(
                select(Outbox).where(Outbox.address == SAMIRA_PHONE).order_by(Outbox.id)
            )
        ).scalars()
        return [m.group(1) for r in rows if (m := re.search(r"\b(\d{6})\b", r.text))]


async def linked(session: TraceSession) -> int | None:
    async with session.rt.db.session() as s:
        conv = await s.get(Conversation, session.conversation_id)
        assert conv is not None
        return conv.tenant_id


async def test_a_tenant_number_alone_links_nothing_and_says_nothing_personal(
    webchat: TraceSession,
) -> None:
    first = await webchat.line("bonjour mon radiateur ne chauffe plus")
    assert "numéro de locataire" in first["replies"][0]
    typed = await webchat.line("L-10243")
    said = "\n".join(typed["replies"])
    assert "Samira" not in said and "Fleurs" not in said and "bâtiment" not in said
    assert "code" in said and said.endswith("Tapez-le ici.") and "12" in said
    assert await linked(webchat) is None
    [code] = await sms_codes(webchat)
    # Only the hash is kept.
    async with webchat.rt.db.session() as s:
        row = (await s.execute(select(IdentityCode))).scalar_one()
    assert code not in row.code_hash


async def test_the_right_code_links_the_session_and_takes_up_the_need(
    webchat: TraceSession,
) -> None:
    await webchat.line("bonjour mon radiateur ne chauffe plus")
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    wrong = "000000" if code != "000000" else "111111"
    miss = await webchat.line(wrong)
    assert "ne correspond pas" in miss["replies"][0] and await linked(webchat) is None
    hit = await webchat.line(code)
    assert "Samira" in hit["replies"][0] and await linked(webchat) is not None
    assert hit["replies"][-1] == "Depuis quand ?"  # the radiator, taken up


async def test_three_wrong_codes_spend_the_code(webchat: TraceSession) -> None:
    await webchat.line("mon radiateur ne chauffe plus")
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        await webchat.line(wrong)
    late = await webchat.line(code)
    assert "plus valable" in late["replies"][0] and await linked(webchat) is None


async def test_an_expired_code_links_nothing(webchat: TraceSession) -> None:
    await webchat.line("mon radiateur ne chauffe plus")
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    webchat.clock.advance(timedelta(minutes=11))
    late = await webchat.line(code)
    assert "plus valable" in late["replies"][0] and await linked(webchat) is None


async def test_codes_are_rate_limited_then_a_person_takes_the_message(
    webchat: TraceSession,
) -> None:
    await webchat.line("mon radiateur ne chauffe plus")
    for _ in range(3):
        await webchat.line("L-10243")
        await webchat.line("999999" if (await sms_codes(webchat))[-1] != "999999" else "888888")
        await webchat.line("999999" if (await sms_codes(webchat))[-1] != "999999" else "888888")
        await webchat.line("999999" if (await sms_codes(webchat))[-1] != "999999" else "888888")
    assert len(await sms_codes(webchat)) == 3
    fourth = await webchat.line("L-10243")
    assert len(await sms_codes(webchat)) == 3  # no fourth SMS within the hour
    assert "Trop de codes" in fourth["replies"][0]
    assert fourth["handoff"] is not None and await linked(webchat) is None


async def test_public_questions_need_no_identification(webchat: TraceSession) -> None:
    out = await webchat.line("c quand les encombrants a la residence du canal ?")
    assert "Résidence du Canal" in out["replies"][0] and "jeudi" in out["replies"][0]
    assert await linked(webchat) is None


async def test_a_web_chat_token_never_reaches_staff_in_a_handoff_reason(
    webchat: TraceSession,
) -> None:
    await webchat.line("mon radiateur ne chauffe plus")
    await webchat.line("je sais pas mon numero")
    out = await webchat.line("j'ai pas mon papier")
    assert out["handoff"] is not None and "radiateur" in out["handoff"]["reason"]
    assert "webchat-session-1" not in out["handoff"]["reason"]


async def test_erasing_the_tenant_removes_codes_and_the_code_sms(webchat: TraceSession) -> None:
    await webchat.line("mon radiateur ne chauffe plus")
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    assert code
    await erase_tenant(webchat.rt.db, "L-10243")
    async with webchat.rt.db.session() as s:
        assert (await s.execute(select(IdentityCode))).first() is None
    assert await sms_codes(webchat) == []


async def test_typed_codes_are_kept_masked_in_the_thread(webchat: TraceSession) -> None:
    """Issue 19: the caretaker's thread (and the managers' transcripts, and exports) read
    "••••••" where the tenant typed the code, right or wrong; the bot's own texts stay."""
    from bot.storage.models import Message
    from bot.storage.store import CODE_MASK

    await webchat.line("bonjour mon radiateur ne chauffe plus")
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    wrong = "000000" if code != "000000" else "111111"
    await webchat.line(f"le code est {wrong}")
    await webchat.line(code)
    assert await linked(webchat) is not None
    async with webchat.rt.db.session() as s:
        rows = list(
            (
                await s.execute(
                    select(Message)
                    .where(Message.conversation_id == webchat.conversation_id)
                    .order_by(Message.id)
                )
            ).scalars()
        )
    typed = [m.text for m in rows if m.author == "tenant"]
    assert typed == [
        "bonjour mon radiateur ne chauffe plus",
        "L-10243",
        f"le code est {CODE_MASK}",
        CODE_MASK,
    ]
    for m in rows:
        for kept in (m.text, m.raw, m.nlu):
            assert code not in str(kept or "") and wrong not in str(kept or ""), m.id


async def test_proving_identity_while_waiting_for_a_person_keeps_the_handoff(
    webchat: TraceSession,
) -> None:
    """Asked for a person first, then proved who she is: the bot does not read her first
    message again (it went with the handoff) and says who will answer, not "I did not
    understand"."""
    asked = await webchat.line("Bonjour, je veux parler à un conseiller, mon évier fuit")
    assert asked["handoff"]["status"] == "queued"
    await webchat.line("L-10243")
    [code] = await sms_codes(webchat)
    hit = await webchat.line(code)
    said = "\n".join(hit["replies"])
    assert hit["replies"][0].startswith("Merci Samira")
    assert "vous répond ici" in said
    assert "compris" not in said and "Depuis quand" not in said
    assert hit["handoff"]["status"] == "queued"
    assert await linked(webchat) is not None
