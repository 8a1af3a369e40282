"""The spine end to end on SQLite and PostgreSQL: ingest → bus → pipeline → outbox → sender."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.core.types import Inbound, Media
from bot.storage.models import Conversation, Handoff, Message, Outbox, Request, Tenant
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel

KNOWN = "+33612345600"  # Nadia Haddad, Résidence Les Fleurs, building A


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def send(
    rt: Runtime,
    text: str,
    *,
    address: str = KNOWN,
    pid: str | None = None,
    channel: str = "sms",
    media: tuple[Media, ...] = (),
) -> int:
    rec = await rt.ingest(
        Inbound(channel=channel, address=address, text=text, provider_id=pid, media=media)
    )
    return rec.message_id


async def settled(rt: Runtime, timeout: float = 10.0) -> None:
    """Every inbound message processed and every outbox row in a final state."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with rt.db.session() as s:
            unprocessed = (
                await s.execute(
                    select(func.count(Message.id)).where(
                        Message.direction == "in", Message.processed_at.is_(None)
                    )
                )
            ).scalar_one()
            pending = (
                await s.execute(
                    select(func.count(Outbox.id)).where(Outbox.status.in_(("pending", "sending")))
                )
            ).scalar_one()
        if not unprocessed and not pending:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{unprocessed} unprocessed, {pending} undelivered")
        await asyncio.sleep(0.02)


async def test_greeting_gets_a_personal_reply(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    await send(runtime, "Bonjour", pid="SM1")
    await settled(runtime)
    assert len(recording.sent) == 1
    assert recording.sent[0].address == KNOWN
    assert "Nadia" in recording.sent[0].text
    async with runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        tenant = await s.get(Tenant, conv.tenant_id)
        assert tenant is not None and tenant.first_name == "Nadia"
        msgs = (await s.execute(select(Message).order_by(Message.id))).scalars().all()
        assert [(m.direction, m.author) for m in msgs] == [("in", "tenant"), ("out", "bot")]
        assert msgs[0].intent == "greet" and msgs[0].nlu is not None
        assert msgs[1].delivery_status == "sent" and msgs[1].provider_id == "out:sms-1"


async def test_a_retried_webhook_is_stored_once_and_answered_once(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    first = await send(runtime, "Bonjour", pid="SM-dup")
    again = await send(runtime, "Bonjour", pid="SM-dup")
    assert first == again
    await settled(runtime)
    await asyncio.sleep(0.1)
    assert len(recording.sent) == 1
    async with runtime.db.session() as s:
        n = await s.execute(select(func.count(Message.id)).where(Message.direction == "in"))
        assert n.scalar_one() == 1


async def test_repair_opens_a_request_with_a_reference_and_queues_it(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    events: list[dict] = []
    subscribed = asyncio.Event()

    async def listen() -> None:
        async with runtime.bus.subscribe() as q:
            subscribed.set()
            while True:
                events.append(await q.get())

    listener = asyncio.create_task(listen())
    await asyncio.wait_for(subscribed.wait(), timeout=5)
    # The bot asks what the first message did not say (where, since when) first: two
    # questions at most before the request exists.
    await send(runtime, "j'ai une fuite sous l'évier", pid="SM2")
    await settled(runtime)
    for i, answer in enumerate(["dans la cuisine", "depuis hier"]):
        assert not any(e["type"] == "handoff" for e in events)
        await send(runtime, answer, pid=f"SM2-{i}")
        await settled(runtime)
    await until(lambda: any(e["type"] == "handoff" for e in events))
    listener.cancel()
    async with runtime.db.session() as s:
        req = (await s.execute(select(Request))).scalar_one()
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        handoff = (await s.execute(select(Handoff))).scalar_one()
    assert req.reference and req.reference.startswith("R-") and len(req.reference) == 13
    assert any(req.reference in o.text for o in recording.sent[-2:])
    assert req.details["since"] == "depuis hier" and req.details["photo"] is False
    assert conv.state == "queued" and conv.intent == "repair"
    assert handoff.residence_id == conv.residence_id and handoff.request_id == req.id
    handoff_event = next(e for e in events if e["type"] == "handoff")
    assert handoff_event["residence_id"] == conv.residence_id


async def test_emergency_instructions_go_out_first(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    await send(runtime, "ça sent le gaz dans la cuisine", pid="SM3")
    await settled(runtime)
    assert "0 800 47 33 33" in recording.sent[0].text
    async with runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
    assert conv.state == "queued" and conv.priority >= 10


async def test_while_assigned_the_bot_stays_silent_but_never_on_safety(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    attach_handoff(runtime)  # the dialogue's alerts go through the console's notify path
    await send(runtime, "je veux parler à un humain", pid="a")
    await settled(runtime)
    assert len(recording.sent) == 1
    await send(runtime, "merci", pid="a2")
    await settled(runtime)
    assert len(recording.sent) == 2  # queued, nobody holds it yet: the bot still answers
    async with runtime.db.transaction() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        conv.state = "assigned"
    await send(runtime, "bonjour ?", pid="b")
    await settled(runtime)
    assert len(recording.sent) == 2  # silent: a person holds the conversation
    await send(runtime, "il y a le feu !", pid="c")
    await settled(runtime)
    told = [o for o in recording.sent if not (o.extra or {}).get("staff_alert")]
    assert len(told) == 3 and "18" in told[2].text
    # On-call is alerted at once, though a person holds the conversation.
    alerts = [o for o in recording.sent if (o.extra or {}).get("staff_alert")]
    assert [a.extra["to"] for a in alerts] == ["oncall"]
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count(Handoff.id)))).scalar_one() == 1


async def test_unknown_sender_is_asked_who_they_are_then_linked(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    stranger = "+33699999999"
    await send(runtime, "mon chauffage est en panne", address=stranger, pid="u1")
    await settled(runtime)
    assert "numéro de locataire" in recording.sent[-1].text
    await send(runtime, "c'est L-10231", address=stranger, pid="u2")
    await settled(runtime)
    # Linked, and the need they wrote first is taken up without asking again.
    assert "Nadia" in recording.sent[-1].text or "Nadia" in recording.sent[-2].text
    for i, answer in enumerate(["chez moi", "depuis ce matin", "non"]):
        await send(runtime, answer, address=stranger, pid=f"u3-{i}")
        await settled(runtime)
    async with runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        req = (await s.execute(select(Request))).scalar_one()
    assert conv.tenant_id is not None and req.tenant_id == conv.tenant_id
    assert req.kind == "repair"


async def test_bad_input_is_stored_and_answered(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    bodies = ["", "   ", "😀😀", "x" * 100_000, "caf\udce9 \x00 fin"]
    for i, body in enumerate(bodies):
        await send(runtime, body, pid=f"bad{i}", address=f"+3360000000{i}")
    await send(
        runtime,
        "",
        pid="media",
        address="+33600000009",
        media=(Media(url="https://example.test/p.jpg", content_type="image/jpeg"),),
    )
    await settled(runtime)
    assert len(recording.sent) == len(bodies) + 1
    assert all(o.text for o in recording.sent)
    async with runtime.db.session() as s:
        stored = (await s.execute(select(Message).where(Message.direction == "in"))).scalars()
        lengths = sorted(len(m.text) for m in stored)
    assert lengths[-1] == 20_000  # cut, not refused


async def test_closed_conversation_goes_back_to_the_bot(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    await send(runtime, "je veux un conseiller", pid="h1")
    await settled(runtime)
    async with runtime.db.transaction() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        conv.state = "closed"
    await send(runtime, "bonjour", pid="h2")
    await settled(runtime)
    assert len(recording.sent) == 2
    async with runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
    assert conv.state == "bot"


async def test_a_crash_after_storing_loses_nothing(database_url: str) -> None:
    """Messages stored by a process that died before processing them are taken up on restart,
    and replies it queued but never delivered are delivered."""
    channel = RecordingChannel("sms")
    settings = make_settings(database_url)
    crashed = Runtime(settings, engine=KeywordEngine(), channels={"sms": channel})
    # Stored but never consumed: no worker runs in this process.
    await crashed.start(Roles(consume=False, outbox=False, recover=False))
    for i in range(5):
        await crashed.ingest(
            Inbound(channel="sms", address=KNOWN, text="bonjour", provider_id=f"c{i}")
        )
    await crashed.stop()
    assert channel.sent == []

    restarted = Runtime(settings, engine=KeywordEngine(), channels={"sms": channel})
    await restarted.start(Roles(consume=True, outbox=True, recover=True))
    try:
        await settled(restarted)
    finally:
        await restarted.stop()
    assert len(channel.sent) == 5
    keys = {o.idempotency_key for o in channel.sent}
    assert len(keys) == 5


async def test_processing_twice_replies_once(database_url: str) -> None:
    """The bus may deliver a message twice (a worker died before acknowledging it)."""
    channel = RecordingChannel("sms")
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": channel})
    await rt.start(Roles(consume=False, outbox=True, recover=False))
    try:
        rec = await rt.ingest(Inbound(channel="sms", address=KNOWN, text="merci", provider_id="t"))
        await asyncio.gather(*(rt.pipeline.process(rec.message_id) for _ in range(3)))
        await settled(rt)
    finally:
        await rt.stop()
    assert len(channel.sent) == 1


async def test_transient_send_failures_are_retried_then_marked_failed(database_url: str) -> None:
    flaky = RecordingChannel("sms", fail_transient=2)
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": flaky})
    await rt.start(Roles())
    try:
        await rt.ingest(Inbound(channel="sms", address=KNOWN, text="merci", provider_id="f1"))
        await settled(rt)
    finally:
        await rt.stop()
    assert len(flaky.sent) == 1 and flaky.attempts == 3

    dead = RecordingChannel("sms", fail_permanent=True)
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": dead})
    await rt.start(Roles())
    try:
        await rt.ingest(Inbound(channel="sms", address=KNOWN, text="merci", provider_id="f2"))
        await settled(rt)
        async with rt.db.session() as s:
            row = (await s.execute(select(Outbox).order_by(Outbox.id.desc()))).scalars().first()
            msg = await s.get(Message, row.message_id)
    finally:
        await rt.stop()
    assert row.status == "failed" and row.last_error
    assert msg.delivery_status == "failed"


async def test_sms_stop_and_start(runtime: Runtime, recording: RecordingChannel) -> None:
    await send(runtime, "STOP", pid="s1")
    await settled(runtime)
    assert len(recording.sent) == 1 and "START" in recording.sent[0].text
    await send(runtime, "STOP", pid="s1b")
    await send(runtime, "bonjour", pid="s2")
    await settled(runtime)
    assert len(recording.sent) == 1  # nothing more goes to an opted-out number
    await send(runtime, "START", pid="s3")
    await settled(runtime)
    assert len(recording.sent) == 2


async def test_replies_leave_as_the_turn_commits_without_the_dispatcher(
    runtime: Runtime, recording: RecordingChannel
) -> None:
    """The worker stores a turn's replies already claimed and sends them itself: the
    dispatcher never has to claim them (one round of queries less per reply)."""
    claimed: list[int] = []
    claim = runtime.outbox._claim

    async def watched() -> list[Outbox]:
        rows = await claim()
        claimed.extend(r.id for r in rows)
        return rows

    runtime.outbox._claim = watched  # type: ignore[method-assign]
    await send(runtime, "Bonjour", pid="D1")
    await settled(runtime)
    await send(runtime, "merci", pid="D2")
    await settled(runtime)
    assert recording.sent[0].text.startswith(("Bonjour", "Bonsoir"))  # by the hour
    assert len(recording.sent) == 2 and claimed == []
    async with runtime.db.session() as s:
        rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
    assert [(r.status, r.attempts, r.lease_until) for r in rows] == [("sent", 1, None)] * 2


async def test_a_reply_waits_behind_an_undelivered_one_of_its_conversation(
    database_url: str,
) -> None:
    """An earlier reply being retried holds the next turn's replies back: the tenant reads
    them in the order the bot wrote them."""
    flaky = RecordingChannel("sms", fail_transient=1)
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": flaky})
    await rt.start(Roles(consume=False, outbox=True, recover=False))
    try:
        first = await send(rt, "bonjour", pid="O1")
        await rt.pipeline.process(first)
        await rt.outbox.drain()
        async with rt.db.session() as s:
            row = (await s.execute(select(Outbox))).scalars().one()
            assert row.status == "pending" and row.last_error  # failed once, to be retried
        second = await send(rt, "merci", pid="O2")
        await rt.pipeline.process(second)
        async with rt.db.session() as s:
            rows = (await s.execute(select(Outbox).order_by(Outbox.id))).scalars().all()
            assert rows[1].status == "pending" and rows[1].attempts == 0  # left in the queue
        await settled(rt)
    finally:
        await rt.stop()
    assert flaky.sent[0].text.split()[0] in ("Bonjour", "Bonsoir")  # by the hour
    assert len(flaky.sent) == 2
    assert [o.idempotency_key for o in flaky.sent] == [f"reply:{first}:0", f"reply:{second}:0"]


async def test_replies_of_a_worker_that_died_after_its_commit_are_sent_once(
    database_url: str,
) -> None:
    """Stored claimed, never sent (the process died right after the commit): once the lease
    has run out, the dispatcher of another process sends them, once."""
    now = [datetime.now(UTC)]
    channel = RecordingChannel("sms")
    settings = make_settings(database_url)
    dying = Runtime(settings, engine=KeywordEngine(), channels={"sms": channel})
    await dying.start(Roles(consume=False, outbox=True, recover=False))
    dying.outbox.send_claimed = lambda rows: None  # type: ignore[method-assign]
    try:
        await dying.pipeline.process(await send(dying, "bonjour", pid="K1"))
    finally:
        await dying.stop()
    assert channel.sent == []

    other = Runtime(
        settings, engine=KeywordEngine(), channels={"sms": channel}, clock=lambda: now[0]
    )
    await other.start(Roles(consume=False, outbox=False, recover=False))
    try:
        assert await other.outbox.dispatch_due() == 0  # still under its lease
        now[0] += other.outbox.lease + timedelta(seconds=1)
        assert await other.outbox.dispatch_due() == 1
        assert await other.outbox.dispatch_due() == 0
    finally:
        await other.stop()
    assert len(channel.sent) == 1


class FlakyEngine(KeywordEngine):
    """Fails once on a given text: the batch holding it rolls back and is taken one by one."""

    def __init__(self, fail_on: str) -> None:
        super().__init__()
        self.fail_on = fail_on

    async def parse(self, text: str):  # type: ignore[no-untyped-def]
        if text == self.fail_on:
            self.fail_on = ""
            raise RuntimeError("NLU server restarting")
        return await super().parse(text)


async def test_a_burst_is_processed_in_batches_once_and_in_order(database_url: str) -> None:
    """Messages waiting together are taken in one transaction; a batch whose turn fails is
    rolled back whole and taken again message by message: every message answered once, each
    tenant's replies in the order they wrote."""
    channel = RecordingChannel("sms")
    engine = FlakyEngine(fail_on="merci 3")
    rt = Runtime(make_settings(database_url), engine=engine, channels={"sms": channel})
    tenants = [f"+336123456{i:02d}" for i in range(6)]
    batches: list[int] = []
    many = rt.pipeline.process_many

    async def watched(ids: list[int]) -> None:
        batches.append(len(ids))
        await many(ids)

    rt.pipeline.process_many = watched  # type: ignore[method-assign]
    # Stored before any worker runs: a backlog, as after a burst.
    for i in range(5):
        for phone in tenants:
            await send(rt, f"merci {i}" if phone == tenants[0] else "bonjour", address=phone)
    await rt.start(Roles(consume=True, outbox=True, recover=True))
    try:
        await settled(rt, timeout=30)
    finally:
        await rt.stop()
    assert max(batches) > 1 and engine.fail_on == ""  # batches, one of which failed
    assert len(channel.sent) == 30
    assert len({o.idempotency_key for o in channel.sent}) == 30
    first = [o.idempotency_key for o in channel.sent if o.address == tenants[0]]
    assert first == sorted(first, key=lambda k: int(k.split(":")[1]))


async def test_a_webhook_does_not_wait_for_a_worker_holding_its_conversation(
    database_url: str,
) -> None:
    """While a worker's batch holds a conversation (PostgreSQL row lock), a new message of that
    conversation is stored at once, by the one-statement path and by the general one (a
    photo); the worker then sets the conversation's last_message_at the gateway skipped."""
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks: PostgreSQL only (SQLite has one writer at a time)")
    channel = RecordingChannel("sms")
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": channel})
    try:
        first = await send(rt, "bonjour", pid="SM-lock-1")
        async with rt.db.session() as s:
            conv_id = (await s.get(Message, first)).conversation_id  # type: ignore[union-attr]
        async with rt.db.transaction() as s:
            await rt.pipeline._conversations(s, {conv_id})  # the lock a batch takes
            text_id = await asyncio.wait_for(send(rt, "fuite", pid="SM-lock-2"), 5)
            photo = Media(kind="photo", url="https://api.twilio.com/photo.jpg")
            photo_id = await asyncio.wait_for(send(rt, "voici", pid="SM-lock-3", media=(photo,)), 5)
        await rt.pipeline.process_many([first, text_id, photo_id])
        async with rt.db.session() as s:
            conv = await s.get(Conversation, conv_id)
            last = await s.get(Message, photo_id)
            assert conv is not None and last is not None
            assert conv.last_message_at >= last.created_at
    finally:
        await rt.stop()
