"""Load bench: the real stack (gateway + workers on PostgreSQL and Redis, fake providers) under
signed webhooks on the three channels at a target rate, with retried duplicates.

    .venv/bin/python bench/load.py                 # 300 msg/s for 20 s, 2 workers
    .venv/bin/python bench/load.py --rate 100 --seconds 10
    .venv/bin/python bench/load.py --warmup 0      # from a cold stack: the first second's cost

It prints the webhook answer and webhook-to-reply latencies, the counts (sent, stored, replied,
doubled, lost) and, from the same run, the throughput of a bare ASGI endpoint served by uvicorn
the same way, as the ceiling the gateway is compared with.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import aiohttp

from bench.stack import (
    PG_ADMIN_URL,
    REPO,
    WEBCHAT_WS,
    RedisServer,
    Stack,
    create_database,
    drop_database,
    free_port,
    new_sid,
    postgres_cpu,
    process_cpu,
    settle,
    telegram_request,
    twilio_request,
    wait_http,
)

TEXTS = [
    "Bonjour, j'ai une fuite d'eau sous l'évier depuis ce matin",
    "le chauffage marche pa depuis 3 jours",
    "ya du bruit chez le voisin du dessus toute la nuit",
    "je voudrais une attestation de loyer svp",
    "comment je fais pour jeter un vieux canapé ?",
    "l'ascenseur est en panne au bâtiment B",
    "Hello, the light in the hallway is broken",
    "merci beaucoup",
    "bonjour",
    "où en est ma demande ?",
]


@dataclass
class Sent:
    channel: str
    address: str
    sent_at: float
    answered_ms: float | None = None
    status: int | None = None
    reply_at: float | None = None
    duplicate_status: int | None = None


@dataclass
class Run:
    sent: list[Sent] = field(default_factory=list)
    duplicates: int = 0
    duplicate_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


async def post(
    http: aiohttp.ClientSession, req: tuple[str, bytes, dict[str, str]]
) -> tuple[int, float]:
    url, body, headers = req
    started = time.perf_counter()
    async with http.post(url, data=body, headers=headers) as resp:
        await resp.read()
        return resp.status, (time.perf_counter() - started) * 1000


KEEP_ALIVE_S = 3.0  # uvicorn closes a connection idle for 5 s


class Poster:
    """HTTP/1.1 POSTs over kept-alive connections, the request's bytes built before the clock
    starts: the load generator shares the machine with what it measures, and aiohttp's client
    cost it about half a millisecond of CPU per webhook. One request at a time per connection,
    as many connections as requests in flight (a webhook never waits for a free one)."""

    def __init__(self) -> None:
        self.idle: dict[
            tuple[str, int], list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]]
        ]
        self.idle = defaultdict(list)

    @staticmethod
    def encode(req: tuple[str, bytes, dict[str, str]]) -> tuple[tuple[str, int], bytes]:
        url, body, headers = req
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        head = [f"POST {parts.path} HTTP/1.1", f"Host: {host}:{port}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        return (host, port), ("\r\n".join(head) + "\r\n\r\n").encode() + body

    async def post(self, where: tuple[str, int], data: bytes) -> tuple[int, float]:
        started = time.perf_counter()
        pool = self.idle[where]
        while pool:
            reader, writer, since = pool.pop()
            if time.monotonic() - since < KEEP_ALIVE_S:
                try:
                    return await self._exchange(where, reader, writer, data, started)
                except (OSError, asyncio.IncompleteReadError) as exc:
                    # The server closed it as we reused it (an HTTP client tries again on a
                    # new connection when nothing came back).
                    if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                        raise
            writer.close()
        reader, writer = await asyncio.open_connection(*where)
        return await self._exchange(where, reader, writer, data, started)

    async def _exchange(
        self,
        where: tuple[str, int],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        data: bytes,
        started: float,
    ) -> tuple[int, float]:
        try:
            async with asyncio.timeout(30):
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                status = int(lines[0].split()[1])
                fields = dict(line.split(":", 1) for line in lines[1:] if ":" in line)
                length = {k.strip().lower(): v.strip() for k, v in fields.items()}
                await reader.readexactly(int(length.get("content-length", "0")))
        except BaseException:
            writer.close()
            raise
        if length.get("connection", "").lower() == "close":
            writer.close()
        else:
            self.idle[where].append((reader, writer, time.monotonic()))
        return status, (time.perf_counter() - started) * 1000

    def close(self) -> None:
        for pool in self.idle.values():
            for _reader, writer, _since in pool:
                writer.close()


async def provider_call(
    run: Run, http: Poster, item: Sent, req: tuple[tuple[str, int], bytes], duplicate: bool
) -> None:
    """Like Twilio and Telegram: a failed or refused delivery is tried again, a few times."""
    for attempt in range(4):
        try:
            status, ms = await http.post(*req)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            run.errors[type(exc).__name__] += 1
            status, ms = 0, None
        if item.answered_ms is None or attempt == 0:
            item.status, item.answered_ms = status, ms
        if status == 200:
            item.status = 200
            break
        run.errors[f"retried after {status or 'no answer'}"] += 1
        await asyncio.sleep(1 + attempt)
    if duplicate and item.status == 200:
        # A provider retrying a delivery it thinks failed: same payload, a moment later.
        await asyncio.sleep(random.uniform(0.05, 0.5))
        try:
            item.duplicate_status, dup_ms = await http.post(*req)
            run.duplicate_ms.append(dup_ms)
        except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError) as exc:
            run.errors["duplicate " + type(exc).__name__] += 1


async def webchat_call(
    run: Run, http: aiohttp.ClientSession, base: str, item: Sent, text: str, duplicate: bool
) -> None:
    try:
        async with http.ws_connect(base.replace("http", "ws") + WEBCHAT_WS) as ws:
            await ws.send_json({"type": "hello"})
            while True:
                msg = await ws.receive_json(timeout=10)
                if msg.get("type") == "welcome":
                    item.address = msg["session"]
                if msg.get("type") == "history":
                    break
            client_id = uuid.uuid4().hex[:16]
            item.sent_at = time.time()
            started = time.perf_counter()
            await ws.send_json({"type": "message", "id": client_id, "text": text})
            acks = 0
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                msg = await ws.receive_json(timeout=max(deadline - time.monotonic(), 0.1))
                if msg.get("type") == "ack" and msg.get("id") == client_id:
                    acks += 1
                    if acks == 1:
                        item.answered_ms = (time.perf_counter() - started) * 1000
                        item.status = 200 if msg.get("message_id") else 503
                        if duplicate:
                            await ws.send_json({"type": "message", "id": client_id, "text": text})
                    else:
                        item.duplicate_status = 200 if msg.get("message_id") else 503
                elif msg.get("type") == "error":
                    run.errors["webchat error: " + str(msg.get("reason"))] += 1
                elif msg.get("type") == "message" and msg["message"].get("author") != "tenant":
                    item.reply_at = time.time()
                if item.reply_at and (acks >= 2 or not duplicate):
                    return
    except (aiohttp.ClientError, TimeoutError, KeyError, ValueError, TypeError) as exc:
        # TypeError: the socket was closed under us (aiohttp's WSMessageTypeError).
        run.errors["webchat " + type(exc).__name__] += 1


async def drive(
    bases: list[str], rate: float, seconds: float, dup_share: float, web_share: float, tag: str
) -> Run:
    """Open loop: message i leaves at t0 + i/rate whatever the answers before it."""
    run = Run()
    total = int(rate * seconds)
    # Every request signed and encoded before the clock starts.
    plan: list[tuple[Sent, str, Any, bool]] = []
    for i in range(total):
        text = TEXTS[i % len(TEXTS)]
        # Round robin over the gateways, as a reverse proxy would; providers sign the public
        # URL (the first gateway's, here), whichever process answers.
        public, base = bases[0], bases[i % len(bases)]
        duplicate = random.random() < dup_share
        r = random.random()
        if r < web_share:
            plan.append((Sent("webchat", "", 0.0), base, text, duplicate))
        elif r < web_share + (1 - web_share) / 2:
            item = Sent("sms", f"+3369{tag}{i:06d}", 0.0)
            req = to(base, twilio_request(public, item.address, text, new_sid()))
            plan.append((item, base, Poster.encode(req), duplicate))
        else:
            chat = int(f"7{tag}{i:06d}")
            update_id = int(f"1{tag}{i:07d}")
            req = to(base, telegram_request(public, chat, text, update_id))
            plan.append((Sent("telegram", str(chat), 0.0), base, Poster.encode(req), duplicate))
    # Web chat sockets (open until their reply comes) on a client session with no connection
    # limit: a message must never wait for a free client connection, or the bench would
    # measure itself.
    timeout = aiohttp.ClientTimeout(total=30)
    tasks: set[asyncio.Task[None]] = set()
    http = Poster()
    # No cycle collection in the load generator while it sends: a full collection of its heap
    # (the plan, the answers) paused it 16-168 ms, and every answer in flight meanwhile was
    # counted late, as if the gateway had stalled. Refcounting still frees what it drops.
    gc.collect()
    gc.disable()
    try:
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=timeout
        ) as ws:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            for i, (item, base, what, duplicate) in enumerate(plan):
                delay = t0 + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                run.duplicates += duplicate
                item.sent_at = time.time()
                if item.channel == "webchat":
                    coro: Any = webchat_call(run, ws, base, item, what, duplicate)
                else:
                    coro = provider_call(run, http, item, what, duplicate)
                run.sent.append(item)
                task = asyncio.create_task(coro)
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(tasks, timeout=90)
    finally:
        gc.enable()
        http.close()
    return run


def to(base: str, req: tuple[str, bytes, dict[str, str]]) -> tuple[str, bytes, dict[str, str]]:
    url, body, headers = req
    path = url.split("/channels/", 1)[1]
    return f"{base}/channels/{path}", body, headers


async def saturate(url: str, make: Any, seconds: float, concurrency: int) -> float:
    """Closed loop: `concurrency` clients posting back to back; requests per second."""
    done = 0
    stop = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:

        async def client() -> None:
            nonlocal done
            while time.perf_counter() < stop:
                status, _ = await post(http, make())
                done += status == 200

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


async def count_db(database_url: str, tag: str) -> dict[str, Any]:
    """Inbound messages stored and replies sent, per address, for this run's addresses."""
    from sqlalchemy import func, select

    from bot.storage.db import Database
    from bot.storage.models import Conversation, Message, Outbox

    db = Database(database_url)
    try:
        async with db.session() as s:
            inbound = dict(
                (
                    await s.execute(
                        select(Conversation.address, func.count(Message.id))
                        .join(Message, Message.conversation_id == Conversation.id)
                        .where(Message.direction == "in")
                        .group_by(Conversation.address)
                    )
                ).all()
            )
            sent = dict(
                (
                    await s.execute(
                        select(Outbox.address, func.count(Outbox.id))
                        .where(Outbox.status == "sent")
                        .group_by(Outbox.address)
                    )
                ).all()
            )
            nlu_ms = [
                float(v)
                for v in (
                    await s.execute(
                        select(Message.nlu["ms"].as_float()).where(
                            Message.direction == "in", Message.nlu.is_not(None)
                        )
                    )
                ).scalars()
                if v is not None
            ]
            statuses = dict(
                (
                    await s.execute(
                        select(Outbox.status, func.count(Outbox.id)).group_by(Outbox.status)
                    )
                ).all()
            )
    finally:
        await db.dispose()
    return {"inbound": inbound, "sent": sent, "outbox": statuses, "nlu_ms": nlu_ms}


def train_model(path: Path) -> float:
    from nlu.training import ensure_model

    started = time.perf_counter()
    ensure_model(REPO / "data", path)
    return time.perf_counter() - started


async def bare_ceiling(seconds: float, concurrency: int) -> float:
    port = free_port()
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measure
        [sys.executable, "-m", "bench.fakes", "--bare", "--port", str(port)], cwd=REPO
    )
    try:
        await asyncio.to_thread(wait_http, f"http://127.0.0.1:{port}/", 30, proc)
        url = f"http://127.0.0.1:{port}/channels/sms/twilio"
        return await saturate(
            url,
            lambda: twilio_request(f"http://127.0.0.1:{port}", "+33600000000", "x", new_sid()),
            seconds,
            concurrency,
        )
    finally:
        proc.terminate()
        proc.wait()


def cpu_snapshot(stack: Stack, redis: RedisServer) -> dict[str, float]:
    """CPU seconds used so far by each part of the run, this load generator included."""
    used = stack.cpu()
    used["postgres"] = postgres_cpu()
    used["redis"] = process_cpu(redis.proc.pid) if redis.proc else 0.0
    used["load generator"] = process_cpu(os.getpid())
    return used


def report(
    run: Run, db: dict[str, Any], received: list[dict[str, Any]], wall: float
) -> dict[str, Any]:
    first_reply: dict[str, float] = {}
    per_address: Counter[str] = Counter()
    for rec in received:
        per_address[rec["to"]] += 1
        first_reply.setdefault(rec["to"], rec["t"])
    answered = [s.answered_ms for s in run.sent if s.answered_ms is not None]
    to_reply: list[float] = []
    to_reply_at: list[float] = []
    replied = lost = stored = doubled = refused = late_webchat = 0
    by_channel: dict[str, list[float]] = defaultdict(list)
    for s in run.sent:
        if s.status != 200:
            refused += 1
        if db["inbound"].get(s.address, 0) >= 1:
            stored += 1
        reply_at = s.reply_at or first_reply.get(s.address)
        if reply_at is not None:
            replied += 1
            to_reply.append((reply_at - s.sent_at) * 1000)
            to_reply_at.append(reply_at)
            by_channel[s.channel].append((reply_at - s.sent_at) * 1000)
        elif s.channel == "webchat" and db["sent"].get(s.address, 0) >= 1:
            replied += 1  # delivered to the session; the bench's socket had given up waiting
            late_webchat += 1
        elif s.status == 200:
            lost += 1  # acknowledged, and no reply ever reached the tenant
        # Doubled: a message stored twice, or a provider getting more replies than were sent.
        if db["inbound"].get(s.address, 0) > 1 or (
            s.channel != "webchat" and per_address[s.address] > db["sent"].get(s.address, 0)
        ):
            doubled += 1
    return {
        "sent": len(run.sent),
        "duplicates_sent": run.duplicates,
        "acknowledged": len(run.sent) - refused,
        "stored": stored,
        "replied": replied,
        "duplicates_replied": doubled,
        "lost": lost,
        "webchat_reply_after_socket_closed": late_webchat,
        "throughput": len(run.sent) / wall,
        "answer_p50_ms": pct(answered, 50),
        "answer_p99_ms": pct(answered, 99),
        "duplicate_answer_p99_ms": pct(run.duplicate_ms, 99),
        "last_reply_s": round(max(to_reply_at, default=0.0) - min(s.sent_at for s in run.sent), 1)
        if run.sent
        else 0.0,
        "reply_p50_ms": pct(to_reply, 50),
        "reply_p99_ms": pct(to_reply, 99),
        "reply_p99_by_channel_ms": {k: round(pct(v, 99)) for k, v in by_channel.items()},
        "errors": dict(run.errors),
        "nlu_p50_ms": pct(db["nlu_ms"], 50),
        "nlu_p99_ms": pct(db["nlu_ms"], 99),
        "outbox": db["outbox"],
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=300.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gateways", type=int, default=1, help="relais serve processes")
    parser.add_argument("--duplicates", type=float, default=0.10, help="share retried")
    parser.add_argument("--webchat", type=float, default=0.10, help="share over web chat")
    parser.add_argument(
        "--warmup", type=float, default=1.0, help="seconds at the same rate before the run"
    )
    parser.add_argument(
        "--worker-nice", type=int, default=10, help="nice level of the workers (0: same as gateway)"
    )
    parser.add_argument(
        "--workers-after",
        action="store_true",
        help="stop the workers while sending, start them after: the ingest alone is measured",
    )
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--keep", action="store_true", help="keep the database and logs")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()

    model = REPO / "var" / "nlu" / "model.pkl"
    print(f"NLU model ready ({train_model(model):.1f}s)", flush=True)
    ceiling = await bare_ceiling(5, 32)
    print(f"Bare ASGI ceiling: {ceiling:.0f} req/s (uvicorn, 1 process, 32 clients)", flush=True)

    database_url = await create_database(args.pg_admin_url)
    redis = RedisServer().start()
    stack = Stack(
        database_url,
        redis.url,
        nlu_model_path=model,
        workers=args.workers,
        worker_nice=args.worker_nice,
        gateways=args.gateways,
    )
    try:
        started = time.perf_counter()
        await asyncio.to_thread(stack.start)
        print(
            f"Stack up in {time.perf_counter() - started:.1f}s: {args.gateways} gateway(s) + "
            f"{args.workers} "
            f"workers (nice {args.worker_nice}), database {database_url.rsplit('/', 1)[1]}, "
            f"logs in {stack.logs}",
            flush=True,
        )
        if args.warmup > 0:
            # Not counted: a stack that has served traffic before. Gentler warm-ups leave the
            # batch paths cold (statements compiled and prepared on first use, pool
            # connections opened), and the run's first second pays for it (--warmup 0 shows it).
            await drive(stack.bases, args.rate, args.warmup, args.duplicates, args.webchat, "0")
        await settle(database_url, 30)
        mark = len(stack.received())

        print(f"Sending {args.rate:.0f} msg/s for {args.seconds:.0f}s...", flush=True)
        t0 = time.perf_counter()
        cpu_before = cpu_snapshot(stack, redis)
        if args.workers_after:
            # Ingest alone: what the gateway answers when no worker competes for the CPU.
            for i in range(args.workers):
                stack.kill(f"worker{i}")
            cpu_before["worker"] = 0.0  # the workers that count are started afresh
        run = await drive(stack.bases, args.rate, args.seconds, args.duplicates, args.webchat, "1")
        if args.workers_after:
            for i in range(args.workers):
                stack.start_worker(i)
        wall = args.seconds
        left = await settle(database_url, 180)
        drained = time.perf_counter() - t0
        cpu_after = cpu_snapshot(stack, redis)
        await asyncio.sleep(0.5)
        received = stack.received()[mark:]
        db = await count_db(database_url, "1")
        figures = report(run, db, received, wall)
        figures["drained_s"] = round(drained, 1)
        figures["cpu_ms_per_message"] = {
            k: round((cpu_after[k] - cpu_before.get(k, 0.0)) * 1000 / max(len(run.sent), 1), 2)
            for k in cpu_after
        }
        used = sum(cpu_after.values()) - sum(cpu_before.values())
        figures["cpu_cores_at_rate"] = round(used / max(len(run.sent), 1) * args.rate, 2)
        figures["left_after_wait"] = left

        gateway = await saturate(
            stack.base + "/channels/sms/twilio",
            lambda: twilio_request(
                stack.base, f"+3368{random.randrange(10**7):07d}", "bonjour", new_sid()
            ),
            5,
            32,
        )
        figures["gateway_saturated_rps"] = gateway
        figures["bare_rps"] = ceiling
    finally:
        stack.stop()
        redis.stop()
        if not args.keep:
            await drop_database(database_url, args.pg_admin_url)

    f = figures
    print(
        "\n".join(
            [
                "",
                f"Run: {f['sent']} messages at {args.rate:.0f}/s target over {args.seconds:.0f}s "
                f"({f['duplicates_sent']} of them also retried as duplicates); "
                f"the last reply reached its provider {f['last_reply_s']} s after the first "
                f"message was sent; all settled in the database after {f['drained_s']} s",
                f"  throughput sent            {f['throughput']:.0f} msg/s",
                f"  webhook answered           p50 {f['answer_p50_ms']:.1f} ms   "
                f"p99 {f['answer_p99_ms']:.1f} ms  (target p99 < 50 ms)",
                f"  webhook -> reply received  p50 {f['reply_p50_ms']:.0f} ms   "
                f"p99 {f['reply_p99_ms']:.0f} ms  (target p99 < 1000 ms) "
                f"by channel p99 {f['reply_p99_by_channel_ms']}",
                f"  sent {f['sent']}  acknowledged {f['acknowledged']}  stored {f['stored']}  "
                f"replied {f['replied']}  duplicates replied {f['duplicates_replied']} (must be 0)"
                f"  lost {f['lost']} (must be 0)",
                f"  web chat replies that arrived after the bench's socket gave up: "
                f"{f['webchat_reply_after_socket_closed']}",
                f"  NLU parse p50 {f['nlu_p50_ms']:.1f} ms  p99 {f['nlu_p99_ms']:.1f} ms "
                f"(Message.nlu['ms']);  outbox {f['outbox']}",
                f"  client-side errors and provider-style retries: {f['errors'] or 'none'}",
                "  CPU per message sent, from the first message to the last reply (ms): "
                + ", ".join(f"{k} {v:.2f}" for k, v in f["cpu_ms_per_message"].items())
                + f"; total {sum(f['cpu_ms_per_message'].values()):.2f} ms: "
                f"{f['cpu_cores_at_rate']:.2f} cores at {args.rate:.0f} msg/s "
                f"(this machine has {os.cpu_count()})",
                f"Ceiling: bare ASGI endpoint {f['bare_rps']:.0f} req/s; one gateway process "
                f"saturated (SMS webhooks, 32 clients) {f['gateway_saturated_rps']:.0f} req/s = "
                f"{f['gateway_saturated_rps'] / f['bare_rps']:.0%} of the ceiling; "
                f"this run's rate = {f['throughput'] / f['bare_rps']:.0%} of it",
            ]
        )
    )
    if args.json:
        print(json.dumps(figures, default=str))
    ok = f["lost"] == 0 and f["duplicates_replied"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
