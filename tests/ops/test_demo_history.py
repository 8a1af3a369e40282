"""`relais demo load --history`: weeks of plausible, reproducible, clearly marked activity.

Generated over the shipped demo residences on SQLite and PostgreSQL; then checked the way a
manager reads it (kinds, channels, lifecycles, the week's rhythm) and removed by `demo clear`
without touching real rows.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from bot.app.runtime import Runtime
from bot.ops.demo_history import (
    ADDRESS_PREFIX,
    REFERENCE_PREFIX,
    clear_history,
    history_present,
    load_history,
)
from bot.storage.db import Database
from bot.storage.models import (
    Conversation,
    Handoff,
    Message,
    Outbox,
    Request,
    RequestEvent,
    StaffUser,
    Tenant,
)
from tests.cli.test_cli import relais

NOW = datetime(2026, 3, 18, 10, 0, tzinfo=UTC)  # a Wednesday
PARIS = ZoneInfo("Europe/Paris")


async def snapshot(db: Database) -> list[tuple[object, ...]]:
    """What a reader sees of the history: every conversation, message, handoff, request."""
    async with db.session() as s:
        convs = (
            await s.execute(
                select(
                    Conversation.address,
                    Conversation.channel,
                    Conversation.state,
                    Conversation.intent,
                    Conversation.satisfaction,
                    Conversation.created_at,
                    Conversation.closed_at,
                ).order_by(Conversation.address)
            )
        ).all()
        msgs = (
            await s.execute(
                select(Conversation.address, Message.author, Message.text, Message.created_at)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .order_by(Conversation.address, Message.created_at, Message.text)
            )
        ).all()
        reqs = (
            await s.execute(
                select(
                    Request.reference, Request.kind, Request.status, Request.created_at
                ).order_by(Request.reference)
            )
        ).all()
    return [tuple(r) for r in [*convs, *msgs, *reqs]]


async def test_history_is_plausible_marked_and_reproducible(database_url: str) -> None:
    db = Database(database_url)
    try:
        # A real conversation and request, which the history must never touch.
        async with db.transaction() as s:
            real = Conversation(channel="sms", address="+33612345600", state="bot")
            s.add(real)
            await s.flush()
            s.add(Request(kind="repair", reference="R-2026-000001", conversation_id=real.id))
            assert not await history_present(s)

        # Asked to keep away from real conversations, it refuses.
        with pytest.raises(ValueError, match="1 real conversations"):
            await load_history(db, now=NOW, beside_real=False)
        started = time.monotonic()
        summary = await load_history(db, weeks=6, seed=7, now=NOW, timezone="Europe/Paris")
        elapsed = time.monotonic() - started
        assert elapsed < 20, f"{elapsed:.1f} s"
        assert summary.first_day.isoformat() == "2026-02-04"
        assert summary.last_day.isoformat() == "2026-03-17"
        # Four residences, six weeks: several hundred conversations, not a handful.
        assert 300 < summary.conversations < 1500
        assert summary.messages > 3 * summary.conversations
        assert summary.handoffs > 0 and summary.requests > 0 and summary.ratings > 0

        async with db.session() as s:
            assert await history_present(s)
            convs = (
                (
                    await s.execute(
                        select(Conversation).where(Conversation.address.like(ADDRESS_PREFIX + "%"))
                    )
                )
                .scalars()
                .all()
            )
            assert len(convs) == summary.conversations
            assert all(c.dialogue.get("demo") is True for c in convs)
            assert {c.channel for c in convs} == {"sms", "webchat", "telegram"}
            # Every conversation is in the past: yesterday evening at the latest.
            until = datetime(2026, 3, 18, tzinfo=PARIS)
            assert max(c.last_message_at for c in convs) < until
            assert min(c.created_at for c in convs) >= datetime(2026, 2, 4, tzinfo=PARIS)
            # Fewer conversations at weekends and at night than on weekdays by day.
            local = [c.created_at.astimezone(PARIS) for c in convs]
            weekday = sum(1 for t in local if t.weekday() < 5) / 5
            weekend = sum(1 for t in local if t.weekday() >= 5) / 2
            assert weekend < 0.7 * weekday
            night = sum(1 for t in local if t.hour < 7)
            day = sum(1 for t in local if 9 <= t.hour < 16)
            assert night < day / 5
            # Caretakers answered: handed-off conversations are closed, with who and when.
            handed = [c for c in convs if c.state == "closed"]
            assert handed and all(c.last_caretaker_id is not None for c in handed)
            # A few emergencies, answered within minutes.
            emergencies = [c for c in convs if c.priority >= 10]
            assert 1 <= len(emergencies) < summary.conversations / 10

            requests = (
                (
                    await s.execute(
                        select(Request).where(Request.reference.like(REFERENCE_PREFIX + "%"))
                    )
                )
                .scalars()
                .all()
            )
            assert len(requests) == summary.requests
            assert {r.kind for r in requests} == {"repair", "nuisance", "bulky_waste", "emergency"}
            statuses = Counter(r.status for r in requests)
            # Most requests are closed, some still open (the backlog has something to show).
            assert statuses["closed"] > len(requests) / 2
            assert sum(n for st, n in statuses.items() if st != "closed") >= 3
            for r in requests:
                assert r.due_at is not None and r.due_at > r.created_at
                assert (r.closed_at is None) == (r.status != "closed")
            # Each request's events follow the lifecycle, in order, from "received".
            events = (
                await s.execute(
                    select(
                        RequestEvent.request_id, RequestEvent.from_status, RequestEvent.to_status
                    )
                    .join(Request, Request.id == RequestEvent.request_id)
                    .where(Request.reference.like(REFERENCE_PREFIX + "%"))
                    .order_by(RequestEvent.request_id, RequestEvent.at)
                )
            ).all()
            by_request: dict[int, list[tuple[str, str]]] = {}
            for rid, from_, to in events:
                by_request.setdefault(rid, []).append((from_, to))
            for r in requests:
                steps = by_request[r.id]
                assert steps[0] == ("", "received")
                assert all(a[1] == b[0] for a, b in pairwise(steps))
                assert steps[-1][1] == r.status
            # Staff who took handoffs are caretakers or on call, never the manager.
            takers = set(
                (await s.execute(select(Handoff.taken_by).where(Handoff.taken_by.is_not(None))))
                .scalars()
                .all()
            )
            roles = set(
                (await s.execute(select(StaffUser.role).where(StaffUser.id.in_(takers))))
                .scalars()
                .all()
            )
            assert roles <= {"caretaker", "oncall"} and "caretaker" in roles

        first = await snapshot(db)
        # Loading again with the same seed and day replaces it with the very same history.
        again = await load_history(db, weeks=6, seed=7, now=NOW + timedelta(hours=3))
        assert again == summary
        assert await snapshot(db) == first
        other = await load_history(db, weeks=6, seed=8, now=NOW)
        assert other != summary
        shorter = await load_history(db, weeks=2, seed=7, now=NOW)
        assert shorter.conversations < summary.conversations / 2

        removed = await clear_history(db)
        assert removed == shorter.conversations
        async with db.session() as s:
            assert not await history_present(s)
            # The real conversation and request are still there; nothing demo is left.
            assert (await s.execute(select(func.count(Conversation.id)))).scalar_one() == 1
            assert (await s.execute(select(Request.reference))).scalars().all() == ["R-2026-000001"]
            assert (await s.execute(select(func.count(Handoff.id)))).scalar_one() == 0
            assert (await s.execute(select(func.count(RequestEvent.id)))).scalar_one() == 0
    finally:
        await db.dispose()


async def test_history_needs_the_demo_tenants(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    try:
        async with db.transaction() as s:
            await s.execute(delete(Tenant))
        with pytest.raises(ValueError, match="relais demo load"):
            await load_history(db, now=NOW)
    finally:
        await db.dispose()


def test_cli_demo_load_history_and_clear(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'demo.sqlite3'}"
    env = {"RELAIS_DATABASE_URL": url, "RELAIS_REDIS_URL": ""}
    loaded = relais(["demo", "load", "--history", "--weeks", "3", "--seed", "5"], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "Demo data loaded" in loaded.stdout
    m = re.search(r"Demo history .*seed 5\): (\d+) conversations, (\d+) messages", loaded.stdout)
    assert m, loaded.stdout
    conversations = int(m.group(1))
    assert conversations > 100
    assert "relais demo clear" in loaded.stdout

    async def count() -> int:
        db = Database(url)
        try:
            async with db.session() as s:
                return int(
                    (
                        await s.execute(
                            select(func.count(Conversation.id)).where(
                                Conversation.address.like(ADDRESS_PREFIX + "%")
                            )
                        )
                    ).scalar_one()
                )
        finally:
            await db.dispose()

    assert asyncio.run(count()) == conversations
    # Without --history, the demo load leaves the history as it is.
    assert relais(["demo", "load"], env).returncode == 0
    assert asyncio.run(count()) == conversations
    cleared = relais(["demo", "clear"], env)
    assert cleared.returncode == 0, cleared.stderr
    assert f"{conversations} conversations" in cleared.stdout
    assert asyncio.run(count()) == 0
    assert relais(["demo", "load", "--history", "--weeks", "0"], env).returncode != 0

    async def a_tenant_writes() -> None:
        db = Database(url)
        try:
            async with db.transaction() as s:
                s.add(Conversation(channel="sms", address="+33612345600", state="bot"))
        finally:
            await db.dispose()

    asyncio.run(a_tenant_writes())
    refused = relais(["demo", "load", "--history"], env)
    assert refused.returncode == 1 and "1 real conversations" in refused.stderr
    assert asyncio.run(count()) == 0


async def test_the_follow_up_job_leaves_demo_requests_alone(runtime: Runtime) -> None:
    """No late-request alert to real staff, no closing (and webhook) of a demo request."""
    from handoff import followup

    await load_history(runtime.db, weeks=6, seed=11, timezone=runtime.settings.timezone)
    async with runtime.db.session() as s:
        statuses = set((await s.execute(select(Request.status))).scalars())
        late = (
            await s.execute(
                select(func.count(Request.id)).where(
                    Request.due_at < datetime.now(UTC), Request.closed_at.is_(None)
                )
            )
        ).scalar_one()
    assert "done" not in statuses
    assert late > 0  # the backlog shows late requests...
    assert await followup.remind_late(runtime) == 0  # ...that alert nobody
    assert await followup.close_unanswered(runtime) == 0
    async with runtime.db.session() as s:
        assert (await s.execute(select(func.count(Outbox.id)))).scalar_one() == 0
