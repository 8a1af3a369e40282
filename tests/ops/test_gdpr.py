"""Personal data: export everything on a tenant, erase it keeping counts, purge past retention."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound, Media
from bot.messaging.bus import RedisBus
from bot.ops.gdpr import ERASED_TEXT, erase_tenant, export_tenant, months_before, purge
from bot.storage.models import AuditLog, Conversation, Message, Outbox, Request, StaffUser, Tenant
from bot.storage.store import audit
from handoff.actions import close, take
from tests import services
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
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


async def _staff(rt: Runtime, login: str) -> StaffUser:
    async with rt.db.session() as s:
        return (await s.execute(select(StaffUser).where(StaffUser.login == login))).scalar_one()


async def _audit_texts(rt: Runtime) -> list[tuple[str, str]]:
    async with rt.db.session() as s:
        rows = (await s.execute(select(AuditLog).order_by(AuditLog.id))).scalars()
        return [
            (a.action, str(a.detail.get("resolution", a.detail.get("text", ""))))
            for a in rows
            if a.action in ("close", "search")
        ]


async def test_erase_and_purge_reach_the_audit_log(runtime: Runtime) -> None:
    # Karim closes Nadia's conversation with a note naming her; Claire (manager) searched
    # the transcripts for her name and number, and for another tenant.
    await runtime.ingest(Inbound("sms", KNOWN, "je veux parler à une personne", provider_id="A1"))
    await settled(runtime)
    async with runtime.db.session() as s:
        conv_id = (
            await s.execute(select(Conversation.id).where(Conversation.address == KNOWN))
        ).scalar_one()
    karim, claire = await _staff(runtime, "karim"), await _staff(runtime, "claire")
    await take(runtime, karim, conv_id)
    await close(runtime, karim, conv_id, "Fuite réparée chez Mme Haddad, rappeler au 0612345600")
    async with runtime.db.transaction() as s:
        # As the manager's search page records a search (handoff.manager).
        for text in ("haddad", "06.12.34.56.00", "%2B33612345600", "Dupont"):
            await audit(
                s,
                "search",
                staff_id=claire.id,
                actor="claire",
                target_type="transcripts",
                detail={"text": text, "channel": "sms"},
            )
    assert (await _audit_texts(runtime))[0][1].startswith("Fuite réparée")
    await erase_tenant(runtime.db, "L-10231")
    # The entries stay (who did what, when); the words about Nadia are gone, the search for
    # another tenant stays until the retention.
    assert await _audit_texts(runtime) == [
        ("close", ERASED_TEXT),
        ("search", ERASED_TEXT),
        ("search", ERASED_TEXT),
        ("search", ERASED_TEXT),
        ("search", "Dupont"),
    ]
    async with runtime.db.session() as s:
        details = [a.detail for a in (await s.execute(select(AuditLog))).scalars()]
    assert all("Haddad" not in json.dumps(d) and "612345600" not in json.dumps(d) for d in details)
    assert any(d.get("channel") == "sms" for d in details), "the rest of a detail stays"
    # Past the retention, every free text of the audit log goes; the entries stay.
    later = datetime.now(UTC) + timedelta(days=25 * 31)
    await purge(runtime.db, 24, now=later)
    assert await _audit_texts(runtime) == [("close", ERASED_TEXT)] + [("search", ERASED_TEXT)] * 4


@pytest.mark.redis
async def test_redis_streams_keep_no_address_and_purge_drops_processed_entries(
    database_url: str,
) -> None:
    services.need_redis()
    prefix = f"relais-test-{uuid.uuid4().hex[:8]}"
    settings = make_settings(database_url)
    sms = RecordingChannel("sms")

    def runtime_on(bus: RedisBus) -> Runtime:
        return Runtime(settings, engine=KeywordEngine(), channels={"sms": sms}, bus=bus)

    async def stream_dump(bus: RedisBus) -> str:
        entries = [await bus.redis.xrange(bus.stream(p)) for p in range(bus.partitions)]
        return json.dumps(entries)

    async def stream_lengths(bus: RedisBus) -> int:
        return sum([await bus.redis.xlen(bus.stream(p)) for p in range(bus.partitions)])

    first, second = RedisBus(services.REDIS_URL, prefix=prefix), None
    try:
        # A gateway that only takes webhooks: the messages wait in the streams.
        rt = runtime_on(first)
        await rt.start(Roles(consume=False, outbox=False, recover=False, retention=False))
        for i, address in enumerate((KNOWN, OTHER, "+33612345602")):
            await rt.ingest(Inbound("sms", address, "Bonjour", provider_id=f"R{i}"))
        waiting = await stream_dump(first)
        await rt.stop()
        assert waiting.count('"m"') == 3
        for secret in ("+336", "612345600", "612345601", "sms:"):
            assert secret not in waiting, f"{secret!r} in the streams: {waiting}"
        # A worker answers them: what it has processed leaves the streams.
        second = RedisBus(services.REDIS_URL, prefix=prefix, heartbeat_s=0.2)
        rt = runtime_on(second)
        await rt.start(Roles(consume=True, outbox=True, recover=False, retention=False))
        try:
            await settled(rt)
            for _ in range(50):
                if await stream_lengths(second) == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await rt.stop()
        assert await stream_lengths(second) == 0
        assert len(sms.sent) >= 3
        # Entries processed by an older version (acknowledged, never deleted) are dropped by
        # the retention purge; an entry not yet delivered to any worker stays.
        stream = second.stream(0)
        await second.redis.xadd(stream, {"m": "424242", "k": f"sms:{KNOWN}"})
        read = await second.redis.xreadgroup(RedisBus.GROUP, "old", {stream: ">"}, count=10)
        await second.redis.xack(stream, RedisBus.GROUP, *(e for _, es in read for e, _ in es))
        await second.redis.xadd(stream, {"m": "424243", "k": "0a1b"})
        await purge(rt.db, 24, bus=second)
        left = await second.redis.xrange(stream)
        assert [f["m"] for _, f in left] == ["424243"]
    finally:
        keys = [k async for k in first.redis.scan_iter(f"{prefix}:*")]
        if keys:
            await first.redis.delete(*keys)
        await first.close()
        if second is not None:
            await second.close()
