"""Prometheus metrics: counters kept by this process, and figures read from the database.

Figures about the whole service (messages, queue length, handoffs, outbox) are read from the
database when `/metrics` is scraped, so they are the same whichever gateway process answers:
scrape one of them, or aggregate them with `max`, not `sum`. Counters of this process (ingest
outcomes and latency) are per process, to be summed as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from bot.storage.db import Database
from bot.storage.models import Handoff, Message, Outbox

__all__ = ["CONTENT_TYPE_LATEST", "INGESTED", "INGEST_SECONDS", "Scraper"]

REGISTRY = CollectorRegistry(auto_describe=True)

INGESTED = Counter(
    "relais_ingest",
    "Inbound messages handed to the ingest, by outcome (stored, duplicate, limited, unavailable).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
INGEST_SECONDS = Histogram(
    "relais_ingest_seconds",
    "Time to store and enqueue one inbound message (the part of the webhook answer we own).",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
NLU_SECONDS = Histogram(
    "relais_nlu_seconds",
    "NLU parse time of processed messages (from Message.nlu['ms']), since this process started.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)
HANDOFF_WAIT_SECONDS = Histogram(
    "relais_handoff_wait_seconds",
    "Time from a handoff to a person taking it, for handoffs taken since this process started.",
    buckets=(30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400),
    registry=REGISTRY,
)

# At most this many rows are read per scrape for the histograms; the rest waits for the next.
BATCH = 10_000


@dataclass
class Snapshot:
    messages: dict[tuple[str, str], int] = field(default_factory=dict)  # (channel, direction)
    unprocessed: int = 0
    outbox: dict[str, int] = field(default_factory=dict)  # by status
    outbox_retries: int = 0
    handoffs_waiting: int = 0
    oldest_wait_seconds: float = 0.0


class _SnapshotCollector(Collector):
    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> list[Metric]:
        snap = self.snap
        messages = CounterMetricFamily(
            "relais_messages",
            "Messages stored, by channel and direction (in: from tenants, out: replies).",
            labels=["channel", "direction"],
        )
        for (channel, direction), n in sorted(snap.messages.items()):
            messages.add_metric([channel, direction], n)
        queue = GaugeMetricFamily(
            "relais_queue_length", "Inbound messages stored and not yet processed by a worker."
        )
        queue.add_metric([], snap.unprocessed)
        outbox = GaugeMetricFamily(
            "relais_outbox_rows", "Outbox rows by status.", labels=["status"]
        )
        for status in ("pending", "sending", "sent", "failed", "suppressed"):
            outbox.add_metric([status], snap.outbox.get(status, 0))
        retries = CounterMetricFamily(
            "relais_outbox_retries", "Delivery attempts beyond the first, over all outbox rows."
        )
        retries.add_metric([], snap.outbox_retries)
        failures = CounterMetricFamily(
            "relais_outbox_failures", "Outbox rows given up on after the last attempt."
        )
        failures.add_metric([], snap.outbox.get("failed", 0))
        waiting = GaugeMetricFamily(
            "relais_handoffs_waiting", "Handoffs in the human queue that nobody has taken yet."
        )
        waiting.add_metric([], snap.handoffs_waiting)
        oldest = GaugeMetricFamily(
            "relais_handoff_oldest_wait_seconds", "How long the oldest untaken handoff has waited."
        )
        oldest.add_metric([], snap.oldest_wait_seconds)
        return [messages, queue, outbox, retries, failures, waiting, oldest]


class Scraper:
    """Reads the database at scrape time; feeds the histograms from what was new since."""

    def __init__(self, db: Database, *, now: datetime | None = None) -> None:
        self.db = db
        started = now or datetime.now(UTC)
        self._nlu_since = started
        self._taken_since = started

    async def snapshot(self, now: datetime | None = None) -> Snapshot:
        now = now or datetime.now(UTC)
        snap = Snapshot()
        async with self.db.session() as s:
            for channel, direction, n in await s.execute(
                select(Message.channel, Message.direction, func.count(Message.id)).group_by(
                    Message.channel, Message.direction
                )
            ):
                snap.messages[(str(channel), str(direction))] = int(n)
            snap.unprocessed = int(
                (
                    await s.execute(
                        select(func.count(Message.id)).where(
                            Message.direction == "in", Message.processed_at.is_(None)
                        )
                    )
                ).scalar_one()
            )
            for status, n, attempts in await s.execute(
                select(Outbox.status, func.count(Outbox.id), func.sum(Outbox.attempts)).group_by(
                    Outbox.status
                )
            ):
                snap.outbox[str(status)] = int(n)
                # Rows still pending or sending have not finished their current attempt.
                done = int(attempts or 0) - (int(n) if status in ("sent", "failed") else 0)
                snap.outbox_retries += max(done, 0)
            waiting, oldest = (
                await s.execute(
                    select(func.count(Handoff.id), func.min(Handoff.created_at)).where(
                        Handoff.taken_at.is_(None), Handoff.closed_at.is_(None)
                    )
                )
            ).one()
            snap.handoffs_waiting = int(waiting)
            if oldest is not None:
                if oldest.tzinfo is None:
                    oldest = oldest.replace(tzinfo=UTC)
                snap.oldest_wait_seconds = max((now - oldest).total_seconds(), 0.0)
            await self._observe_nlu(s)
            await self._observe_handoffs(s)
        return snap

    async def _observe_nlu(self, s: Any) -> None:
        rows = (
            await s.execute(
                select(Message.processed_at, Message.nlu["ms"].as_float())
                .where(Message.direction == "in", Message.processed_at > self._nlu_since)
                .order_by(Message.processed_at)
                .limit(BATCH)
            )
        ).all()
        for _processed_at, ms in rows:
            if ms is not None:
                NLU_SECONDS.observe(float(ms) / 1000)
        if rows:
            self._nlu_since = rows[-1][0]

    async def _observe_handoffs(self, s: Any) -> None:
        rows = (
            await s.execute(
                select(Handoff.taken_at, Handoff.created_at)
                .where(Handoff.taken_at > self._taken_since)
                .order_by(Handoff.taken_at)
                .limit(BATCH)
            )
        ).all()
        for taken_at, created_at in rows:
            HANDOFF_WAIT_SECONDS.observe(max((taken_at - created_at).total_seconds(), 0.0))
        if rows:
            self._taken_since = rows[-1][0]

    async def render(self) -> bytes:
        """The text exposition of this process's counters and the database's figures."""
        snap = await self.snapshot()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_SnapshotCollector(snap))
        return generate_latest(REGISTRY) + generate_latest(registry)
