"""The real stack in processes, for the load bench and the fault tests.

A fresh PostgreSQL database, a private redis-server, the fake providers (bench/fakes.py), one
`relais serve --no-worker` gateway and N `relais worker` processes, all on 127.0.0.1. Also the
small helpers both need: signed Twilio and Telegram webhooks, a TCP proxy to take PostgreSQL
away, and waiting until everything stored is processed and delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get(
    "RELAIS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)

TWILIO_SID = "AC" + "b" * 32
TWILIO_TOKEN = "0123456789abcdef" * 2
TWILIO_FROM = "+33700000001"
TELEGRAM_TOKEN = "123456789:" + "T" * 35
TELEGRAM_SECRET = "bench-secret_" + "x" * 20
SMS_PATH = "/channels/sms/twilio"
TELEGRAM_PATH = "/channels/telegram"
WEBCHAT_WS = "/channels/webchat/ws"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout:.0f}s")
        time.sleep(0.1)


# -- PostgreSQL and Redis ------------------------------------------------------------------


async def _admin(sql: str, admin_url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def create_database(admin_url: str = PG_ADMIN_URL, prefix: str = "relais_bench") -> str:
    """A fresh, migrated database; returns its URL."""
    from bot.storage.db import upgrade

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE DATABASE "{name}"', admin_url)
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    await asyncio.to_thread(upgrade, url)
    return url


async def drop_database(url: str, admin_url: str = PG_ADMIN_URL) -> None:
    name = url.rsplit("/", 1)[1]
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', admin_url)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a live process has used; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu() -> float:
    """CPU seconds of every PostgreSQL process on this machine (the server and its backends)."""
    total = 0.0
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if (proc / "comm").read_text().strip() == "postgres":
                    total += process_cpu(int(proc.name))
            except OSError:
                continue
    return total


class RedisServer:
    """A private redis-server (no persistence) on a free port, which a test may restart."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not on PATH")
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--save", "", "--appendonly", "no",
             "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class TcpProxy:
    """Forwards a local port to PostgreSQL; `stop()` drops every connection and refuses new
    ones until `start()`: the database is away, as far as Relais can tell."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> TcpProxy:
        self.server = await asyncio.start_server(
            self._client, "127.0.0.1", self.port, reuse_address=True
        )
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for w in list(self.writers):
            w.transport.abort()
        self.writers.clear()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.server is None:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                w.transport.abort()
                self.writers.discard(w)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


# -- processes -------------------------------------------------------------------------------


@dataclass
class Stack:
    """Fake providers, a gateway and workers; `start()` returns once the gateway is ready."""

    database_url: str
    redis_url: str
    nlu_model_path: Path | None = None
    workers: int = 2
    # Workers below the gateway's priority: on a small machine the webhooks' answers come
    # first and the backlog waits, stored, in the bus (what production should do too).
    worker_nice: int = 0
    env: dict[str, str] = field(default_factory=dict)
    logs: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="relais-stack-")))
    gateway_port: int = field(default_factory=free_port)
    # More gateway processes, as behind a reverse proxy: each on its own port, same public URL.
    gateways: int = 1
    extra_ports: list[int] = field(default_factory=list)
    fake_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def bases(self) -> list[str]:
        return [self.base, *(f"http://127.0.0.1:{p}" for p in self.extra_ports)]

    @property
    def fake_url(self) -> str:
        return f"http://127.0.0.1:{self.fake_port}"

    def process_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAIS_")}
        env.update(
            RELAIS_DATABASE_URL=self.database_url,
            RELAIS_REDIS_URL=self.redis_url,
            RELAIS_PUBLIC_URL=self.base,
            RELAIS_SECRET_KEY="bench-" + "k" * 40,
            RELAIS_LOAD_DEMO="true",
            RELAIS_LOG_FORMAT="json",
            RELAIS_TWILIO_ACCOUNT_SID=TWILIO_SID,
            RELAIS_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
            RELAIS_TWILIO_FROM=TWILIO_FROM,
            RELAIS_TWILIO_API_BASE=self.fake_url,
            RELAIS_TELEGRAM_TOKEN=TELEGRAM_TOKEN,
            RELAIS_TELEGRAM_SECRET=TELEGRAM_SECRET,
            RELAIS_TELEGRAM_API_BASE=self.fake_url,
            RELAIS_OUTBOX_BACKOFF_SECONDS="0.2",
            PYTHONPATH=str(REPO),
        )
        if self.nlu_model_path is not None:
            env["RELAIS_NLU_MODEL_PATH"] = str(self.nlu_model_path)
        env.update(self.env)
        return env

    def _spawn(self, name: str, args: list[str], nice: int = 0) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        prefix = ["nice", "-n", str(nice)] if nice else []
        proc = subprocess.Popen(
            [*prefix, sys.executable, *args],
            cwd=REPO,
            env=self.process_env(),
            stdout=out,
            stderr=out,
        )
        self.procs[name] = proc
        return proc

    def start_fakes(self) -> None:
        proc = self._spawn("fakes", ["-m", "bench.fakes", "--port", str(self.fake_port)])
        wait_http(self.fake_url + "/_attempts", 30, proc)

    def start_gateway(self) -> None:
        procs = []
        self.extra_ports = [free_port() for _ in range(self.gateways - 1)]
        for i, port in enumerate([self.gateway_port, *self.extra_ports]):
            args = ["-m", "bot.cli.main", "serve", "--port", str(port), "--no-access-log",
                    "--no-worker", "--log-level", "warning"]  # fmt: skip
            procs.append(self._spawn("gateway" if i == 0 else f"gateway{i}", args))
        for base, proc in zip(self.bases, procs, strict=True):
            wait_http(base + "/readyz", 90, proc)

    def start_worker(self, i: int) -> subprocess.Popen[bytes]:
        args = ["-m", "bot.cli.main", "worker", "--log-level", "warning"]
        return self._spawn(f"worker{i}", args, nice=self.worker_nice)

    def start(self) -> Stack:
        self.start_fakes()
        for i in range(self.workers):
            self.start_worker(i)
        self.start_gateway()
        self.wait_workers(self.workers)
        return self

    def wait_workers(self, n: int, timeout: float = 90.0) -> None:
        """Until `n` workers are consuming (their heartbeats in Redis): a worker still starting
        when traffic comes joins mid-burst, and the partitions handed over to it go unread
        for a second or two (bench/load.py once measured that instead of the stack)."""
        import redis

        from bot.messaging.bus import workers_key

        client = redis.Redis.from_url(self.redis_url)
        deadline = time.monotonic() + timeout
        try:
            while client.zcard(workers_key()) < n:
                for name, proc in self.procs.items():
                    if name.startswith("worker") and proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fewer than {n} workers consuming after {timeout:.0f}s")
                time.sleep(0.1)
        finally:
            client.close()

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each kind of process: gateway(s), workers, fakes."""
        used: dict[str, float] = {}
        for name, proc in self.procs.items():
            kind = "gateway" if name.startswith("gateway") else name.rstrip("0123456789")
            used[kind] = used.get(kind, 0.0) + process_cpu(proc.pid)
        return used

    def log_tail(self, lines: int = 30) -> str:
        out = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)

    # -- the fake providers' side --------------------------------------------------------

    def fake(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.fake_url + path, data=data, method="POST" if data else "GET"
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def fail(
        self, api: str, status: int, *, times: int = 1, retry_after: int | None = None
    ) -> None:
        self.fake(
            "/_fail", {"api": api, "status": status, "times": times, "retry_after": retry_after}
        )

    def received(self) -> list[dict[str, Any]]:
        return list(self.fake("/_received")["records"])


# -- signed provider requests ---------------------------------------------------------------


def twilio_form(sender: str, text: str, sid: str) -> dict[str, str]:
    return {
        "ToCountry": "FR", "SmsMessageSid": sid, "NumMedia": "0", "ToCity": "",
        "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": text, "FromCountry": "FR", "To": TWILIO_FROM,
        "ToZip": "", "NumSegments": "1", "MessageSid": sid, "AccountSid": TWILIO_SID,
        "From": sender, "ApiVersion": "2010-04-01",
    }  # fmt: skip


_validator: Any = None


def twilio_request(
    base: str, sender: str, text: str, sid: str
) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of Twilio's webhook, signed with the SDK's RequestValidator."""
    global _validator
    if _validator is None:
        from twilio.request_validator import RequestValidator

        _validator = RequestValidator(TWILIO_TOKEN)
    url = base + SMS_PATH
    form = twilio_form(sender, text, sid)
    signature = _validator.compute_signature(url, form)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
        "User-Agent": "TwilioProxy/1.1",
    }
    return url, urlencode(form).encode(), headers


def telegram_request(
    base: str, chat_id: int, text: str, update_id: int
) -> tuple[str, bytes, dict[str, str]]:
    update = {
        "update_id": update_id,
        "message": {
            "message_id": update_id % 100000 + 1,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Bench", "language_code": "fr"},
            "chat": {"id": chat_id, "first_name": "Bench", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }
    headers = {
        "Content-Type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
    }
    return base + TELEGRAM_PATH, json.dumps(update).encode(), headers


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


# -- waiting for the end ------------------------------------------------------------------


async def settle(database_url: str, patience: float = 60.0) -> dict[str, int]:
    """Wait until every stored inbound message is processed and every reply is final."""
    from sqlalchemy import func, select

    from bot.storage.db import Database
    from bot.storage.models import Message, Outbox

    db = Database(database_url)
    deadline = time.monotonic() + patience
    unprocessed = pending = -1
    try:
        while True:
            with contextlib.suppress(Exception):
                async with db.session() as s:
                    unprocessed = (
                        await s.execute(
                            select(func.count(Message.id)).where(
                                Message.direction == "in", Message.processed_at.is_(None)
                            )
                        )
                    ).scalar_one()
                    pending = (
                        await s.execute(
                            select(func.count(Outbox.id)).where(
                                Outbox.status.in_(("pending", "sending"))
                            )
                        )
                    ).scalar_one()
                if not unprocessed and not pending:
                    return {"unprocessed": 0, "pending": 0}
            if time.monotonic() > deadline:
                return {"unprocessed": int(unprocessed), "pending": int(pending)}
            await asyncio.sleep(0.2)
    finally:
        await db.dispose()


class ThreadedProxy:
    """A `TcpProxy` on its own event loop thread, so it outlives any one test's loop."""

    def __init__(self, target: tuple[str, int]) -> None:
        import threading

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.proxy = TcpProxy(target)
        self.port = self.proxy.port
        self.start()

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> None:
        self._call(self.proxy.start())

    def stop(self) -> None:
        self._call(self.proxy.stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
