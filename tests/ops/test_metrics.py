"""Prometheus metrics at /metrics: counters of this process and figures from the database."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.ops.metrics import Scraper
from bot.storage.models import Conversation, Handoff, Outbox
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled


def value(text: str, name: str, labels: str = "") -> float:
    pattern = re.escape(name) + (r"\{" + re.escape(labels) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    assert m, f"{name}{{{labels}}} not in\n{text}"
    return float(m.group(1))


async def test_metrics_from_the_database_and_counters(database_url: str) -> None:
    sms = RecordingChannel("sms", fail_transient=1)
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={"sms": sms})
    scraper = Scraper(rt.db, now=datetime.now(UTC) - timedelta(seconds=5))
    app = create_app(
        rt.settings, runtime=rt, roles=Roles(recover=False, retention=False), prepare=False
    )
    async with app.router.lifespan_context(app):
        await rt.ingest(Inbound("sms", "+33612345600", "Bonjour", provider_id="M1"))
        await rt.ingest(Inbound("sms", "+33612345600", "Bonjour", provider_id="M1"))
        await rt.ingest(Inbound("sms", "+33612345601", "fuite", provider_id="M2"))
        await settled(rt)
        async with rt.db.transaction() as s:
            conv = (await s.execute(select(Conversation).limit(1))).unique().scalar_one()
            s.add(
                Handoff(
                    conversation_id=conv.id,
                    intent="repair",
                    created_at=datetime.now(UTC) - timedelta(minutes=3),
                )
            )
            s.add(
                Handoff(
                    conversation_id=conv.id,
                    intent="repair",
                    created_at=datetime.now(UTC) - timedelta(minutes=10),
                    taken_at=datetime.now(UTC),
                )
            )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relais") as client:
            resp = await client.get("/metrics")
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
        text = resp.text
        own = await scraper.snapshot()
    assert value(text, "relais_messages_total", 'channel="sms",direction="in"') == 2
    assert value(text, "relais_messages_total", 'channel="sms",direction="out"') >= 2
    assert value(text, "relais_queue_length") == 0
    assert value(text, "relais_outbox_rows", 'status="sent"') >= 2
    assert value(text, "relais_outbox_retries_total") >= 1
    assert value(text, "relais_outbox_failures_total") == 0
    assert value(text, "relais_handoffs_waiting") >= 1
    assert value(text, "relais_handoff_oldest_wait_seconds") >= 170
    assert value(text, "relais_ingest_total", 'channel="sms",outcome="duplicate"') >= 1
    assert value(text, "relais_ingest_seconds_count") >= 3
    assert value(text, "relais_nlu_seconds_count") >= 2
    assert value(text, "relais_handoff_wait_seconds_count") >= 1
    assert own.unprocessed == 0


async def test_queue_length_counts_unprocessed(database_url: str) -> None:
    rt = Runtime(make_settings(database_url), engine=KeywordEngine(), channels={})
    await rt.start(Roles(consume=False, outbox=False, recover=False, retention=False))
    try:
        for i in range(3):
            await rt.ingest(Inbound("sms", f"+3361234560{i}", "Bonjour", provider_id=f"Q{i}"))
        async with rt.db.transaction() as s:
            await s.execute(update(Outbox).values(status="failed"))
        snap = await Scraper(rt.db).snapshot()
        assert snap.unprocessed == 3
    finally:
        await rt.stop()
