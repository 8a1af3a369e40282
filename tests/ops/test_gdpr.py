"""Personal data: export everything on a tenant, erase it keeping counts, purge past retention."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.app.runtime import Runtime
from bot.core.types import Inbound, Media
from bot.ops.gdpr import ERASED_TEXT, erase_tenant, export_tenant, months_before, purge
from bot.storage.models import AuditLog, Conversation, Message, Outbox, Request, Tenant
from tests.worker.test_pipeline import settled

KNOWN = "+33612345600"  # Nadia Haddad, L-10231
OTHER = "+33612345601"  # Jean Dupont, L-10232


async def converse(rt: Runtime) -> None:
    await rt.ingest(Inbound("sms", KNOWN, "Bonjour", provider_id="G1"))
    await rt.ingest(
        Inbound(
            "sms",
            KNOWN,
            "fuite sous l'évier, appelez-moi au 0612345600",
            provider_id="G2",
            media=(Media(url="https://api.twilio.com/media/ME1", content_type="image/jpeg"),),
            raw={"From": KNOWN, "Body": "fuite"},
        )
    )
    await rt.ingest(Inbound("sms", OTHER, "Bonjour", provider_id="G3"))
    await settled(rt)
    # A request as the dialogue opens one (its questions are the dialogue's own tests).
    async with rt.db.transaction() as s:
        conv = (
            (await s.execute(select(Conversation).where(Conversation.address == KNOWN)))
            .unique()
            .scalar_one()
        )
        s.add(
            Request(
                kind="repair",
                tenant_id=conv.tenant_id,
                conversation_id=conv.id,
                summary="fuite · évier",
                details={"text": "fuite sous l'évier"},
            )
        )


async def test_export_holds_everything_and_is_audited(runtime: Runtime) -> None:
    await converse(runtime)
    data = await export_tenant(runtime.db, "L-10231")
    json.dumps(data)  # JSON-ready
    assert data["tenant"]["first_name"] == "Nadia" and data["tenant"]["phone"] == KNOWN
    assert [c["address"] for c in data["conversations"]] == [KNOWN]
    texts = [m["text"] for m in data["messages"]]
    assert "Bonjour" in texts and any("fuite" in t for t in texts)
    assert any(m["direction"] == "out" for m in data["messages"])
    assert any(m["attachments"] for m in data["messages"])
    assert not any(
        m["text"] == "Bonjour" and m["conversation_id"] != data["conversations"][0]["id"]
        for m in data["messages"]
    )
    assert data["requests"] and data["requests"][0]["kind"] == "repair"
    async with runtime.db.session() as s:
        entry = (await s.execute(select(AuditLog))).scalars().one()
    assert (entry.action, entry.actor, entry.target_id) == ("gdpr_export", "cli", "L-10231")


async def test_erase_keeps_counts_and_drops_personal_data(runtime: Runtime) -> None:
    await converse(runtime)
    async with runtime.db.session() as s:
        before = (await s.execute(select(func.count(Message.id)))).scalar_one()
        intents = sorted(
            str(i)
            for i in (
                await s.execute(select(Message.intent).where(Message.intent.is_not(None)))
            ).scalars()
        )
    done = await erase_tenant(runtime.db, "L-10231")
    assert done.conversations == 1 and done.messages >= 4 and done.requests == 1
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count(Message.id)))).scalar_one() == before
        assert (
            sorted(
                str(i)
                for i in (
                    await s.execute(select(Message.intent).where(Message.intent.is_not(None)))
                ).scalars()
            )
            == intents
        ), "intents stay for statistics"
        tenant = (
            (await s.execute(select(Tenant).where(Tenant.reference == "L-10231")))
            .unique()
            .scalar_one()
        )
        assert tenant.erased_at is not None
        assert (tenant.first_name, tenant.last_name, tenant.phone, tenant.telegram_chat_id) == (
            "",
            "",
            None,
            None,
        )
        conv = (
            (await s.execute(select(Conversation).where(Conversation.tenant_id == tenant.id)))
            .unique()
            .scalar_one()
        )
        assert conv.address.startswith("erased:") and conv.dialogue == {}
        for m in (
            await s.execute(select(Message).where(Message.conversation_id == conv.id))
        ).scalars():
            assert m.text in (ERASED_TEXT, "") and m.media == [] and m.raw is None
            assert m.created_at is not None
            assert "text" not in (m.nlu or {}) and "entities" not in (m.nlu or {})
            for a in m.attachments:
                assert a.url is None and a.file_id is None
        req = (await s.execute(select(Request))).scalars().one()
        assert req.summary == ERASED_TEXT and req.details == {} and req.kind == "repair"
        for o in (
            await s.execute(select(Outbox).where(Outbox.conversation_id == conv.id))
        ).scalars():
            assert KNOWN not in o.address and o.text == ""
        # The other tenant is untouched.
        other = (
            (await s.execute(select(Conversation).where(Conversation.address == OTHER)))
            .unique()
            .scalar_one()
        )
        assert (
            await s.execute(
                select(Message.text).where(
                    Message.conversation_id == other.id, Message.direction == "in"
                )
            )
        ).scalar_one() == "Bonjour"
        actions = [a.action for a in (await s.execute(select(AuditLog))).scalars()]
        assert actions == ["gdpr_erase"]
    export = await export_tenant(runtime.db, "L-10231")
    assert KNOWN not in json.dumps(export) and "Nadia" not in json.dumps(export)


async def test_purge_erases_old_conversations_only(runtime: Runtime) -> None:
    await converse(runtime)
    async with runtime.db.transaction() as s:
        old = (
            (await s.execute(select(Conversation).where(Conversation.address == OTHER)))
            .unique()
            .scalar_one()
        )
        old.last_message_at = datetime.now(UTC) - timedelta(days=24 * 31 + 5)
    done = await purge(runtime.db, 24)
    assert done.conversations == 1
    assert (await purge(runtime.db, 24)).conversations == 0, "idempotent"
    async with runtime.db.session() as s:
        rows = (
            (await s.execute(select(Conversation.address).order_by(Conversation.id)))
            .scalars()
            .all()
        )
        assert rows[0] == KNOWN and rows[1].startswith("erased:")
        audits = [(a.action, a.actor) for a in (await s.execute(select(AuditLog))).scalars()]
        assert audits == [("gdpr_purge", "cli")]


def test_months_before() -> None:
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 24) == datetime(2024, 1, 15, tzinfo=UTC)
    assert months_before(datetime(2026, 1, 15, tzinfo=UTC), 13) == datetime(
        2024, 12, 15, tzinfo=UTC
    )
