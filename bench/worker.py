"""Worker cost per message: the pipeline and the outbox on PostgreSQL, against the NLU alone.

    .venv/bin/python bench/worker.py                 # 600 messages, PostgreSQL
    .venv/bin/python bench/worker.py --messages 300 --database sqlite

Stores a backlog of inbound messages (held-out NLU test texts, from known tenants by SMS, from
unknown Telegram users and web-chat visitors), then runs one worker's work on it: the pipeline
(tenant, NLU, dialogue, replies) and the outbox (delivery through a sender that answers at once,
so only Relais's own cost is measured). It prints, per message, CPU time, SQL statements and
round trips, and wall-clock throughput sequentially and with several conversations at once;
the baseline, from the same process, is the NLU parse alone on the same texts.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.stack import PG_ADMIN_URL, create_database, drop_database
from bot.app.runtime import Runtime
from bot.core.channel import Channel
from bot.core.settings import Settings
from bot.core.types import Inbound, Outbound, SendResult
from bot.messaging.batching import GroupCommit
from bot.messaging.bus import BATCH
from bot.ops.demo import load_demo
from nlu.paths import default_data_dir
from nlu.training import load_test_data


class InstantChannel(Channel):
    """Answers every send at once, as a provider with no latency would."""

    name: ClassVar[str] = "instant"

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, outbound: Outbound) -> SendResult:
        self.sent += 1
        return SendResult(provider_id=f"P{outbound.outbox_id}", segments=1)


class Counter:
    def __init__(self) -> None:
        self.statements = 0

    def __call__(self, *args: Any) -> None:
        self.statements += 1


def inbound_backlog(texts: list[str], n: int, phones: list[str], tag: str) -> list[Inbound]:
    out: list[Inbound] = []
    cycle = itertools.cycle(texts)
    for i in range(n):
        text = next(cycle)
        kind = i % 10
        if kind < 5:  # a known tenant by SMS
            channel, address = "sms", phones[i % len(phones)]
        elif kind < 9:  # an unknown Telegram user
            channel, address = "telegram", f"{tag}{700_000_000 + i}"
        else:
            channel, address = "webchat", f"bench-{tag}-{i}"
        out.append(Inbound(channel=channel, address=address, text=text, provider_id=f"{tag}-{i}"))
    return out


def passes(concurrency: int) -> list[tuple[str, int, int]]:
    """(label, calls at once (negative: grouped), messages per call): the worker takes batches
    of up to BATCH messages from each of its partitions when that many wait (a burst)."""
    return [
        ("one at a time", 1, 1),
        (f"{concurrency} at once", concurrency, 1),
        (f"{concurrency} grouped", -concurrency, 1),
        (f"batches of {BATCH}", 4, BATCH),
    ]


async def tenant_phones(rt: Runtime) -> list[str]:
    from sqlalchemy import select

    from bot.storage.models import Tenant

    async with rt.db.session() as s:
        return [p for p in (await s.execute(select(Tenant.phone))).scalars() if p]


async def run(
    database_url: str, n: int, concurrency: int, profile: str | None = None
) -> dict[str, float]:
    channel = InstantChannel()
    settings = Settings(_env_file=None, database_url=database_url)  # type: ignore[call-arg]
    rt = Runtime(settings, channels={"sms": channel, "telegram": channel, "webchat": channel})
    await load_demo(rt.db, settings.data)
    engine = await rt.load_engine()
    await rt.bus.start()
    phones = await tenant_phones(rt)
    texts = load_test_data(default_data_dir()).texts
    figures: dict[str, float] = {}
    try:
        # Baseline: the NLU alone on the same texts.
        for t in texts[:20]:
            await engine.parse(t)
        cpu = time.process_time()
        for t in itertools.islice(itertools.cycle(texts), n):
            await engine.parse(t)
        figures["nlu_cpu_ms"] = (time.process_time() - cpu) * 1000 / n

        counter = Counter()
        event.listen(rt.db.engine.sync_engine, "before_cursor_execute", counter)
        for label, conc, size in passes(concurrency):
            # Each pass writes as new Telegram and web-chat senders; tenants write again.
            backlog = inbound_backlog(texts, n, phones, tag=f"{conc}x{size}")
            ids = [(await rt.ingest(b)).message_id for b in backlog]
            counter.statements = 0
            sem = asyncio.Semaphore(abs(conc))
            # Negative: as `relais worker` runs, calls that come while a batch runs go together.
            handle = GroupCommit(rt.pipeline.process_many) if conc < 0 else rt.pipeline.process_many

            async def one(
                batch: list[int], sem: asyncio.Semaphore = sem, handle: Any = handle
            ) -> None:
                async with sem:
                    await handle(batch)

            profiler = cProfile.Profile() if profile and size > 1 else None
            wall, usage = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
            if profiler:
                profiler.enable()
            await asyncio.gather(*(one(ids[i : i + size]) for i in range(0, len(ids), size)))
            await rt.outbox.drain(120)
            while await rt.outbox.dispatch_due():
                pass
            if profiler:
                profiler.disable()
                profiler.dump_stats(str(profile))
            wall, after = time.perf_counter() - wall, resource.getrusage(resource.RUSAGE_SELF)
            figures[f"{label}: msg/s"] = n / wall
            figures[f"{label}: cpu_ms"] = (
                (after.ru_utime - usage.ru_utime + after.ru_stime - usage.ru_stime) * 1000 / n
            )
            figures[f"{label}: sys_ms"] = (after.ru_stime - usage.ru_stime) * 1000 / n
            figures[f"{label}: statements"] = counter.statements / n
        figures["sent"] = channel.sent
    finally:
        await rt.stop()
    return figures


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--messages", type=int, default=600)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    ap.add_argument("--profile", metavar="FILE", help="cProfile the batched pass into FILE")
    args = ap.parse_args()
    if args.database == "postgres":
        url = await create_database(args.pg_admin_url, prefix="relais_bench_worker")
        try:
            figures = await run(url, args.messages, args.concurrency, args.profile)
        finally:
            await drop_database(url, args.pg_admin_url)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            from bot.storage.db import upgrade

            url = f"sqlite+aiosqlite:///{tmp}/bench.sqlite3"
            await asyncio.to_thread(upgrade, url)
            figures = await run(url, args.messages, args.concurrency, args.profile)
    nlu = figures.pop("nlu_cpu_ms")
    print(f"{args.messages} messages on {args.database}, one worker process")
    print(f"  NLU parse alone (baseline)   {nlu:7.2f} ms CPU per message")
    for label, _conc, _size in passes(args.concurrency):
        cpu = figures[f"{label}: cpu_ms"]
        print(
            f"  worker, {label:<15} {cpu:7.2f} ms CPU per message"
            f" ({cpu / nlu:5.1f}x the NLU; system {figures[f'{label}: sys_ms']:.2f}),"
            f" {figures[f'{label}: statements']:5.1f} SQL statements,"
            f" {figures[f'{label}: msg/s']:6.1f} msg/s"
        )
    print(f"  replies delivered            {figures['sent']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
