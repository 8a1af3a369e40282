"""`relais doctor`: checks the settings, the database, Redis, the providers' credentials and
the webhook URL, and says in plain words what is wrong."""

from __future__ import annotations

import asyncio
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import redis.asyncio as redis
from alembic.script import ScriptDirectory
from pydantic import ValidationError
from sqlalchemy import text

from bot.core.settings import Settings
from bot.storage.db import Database, alembic_config

Status = Literal["ok", "warn", "fail"]

TWILIO_SID = re.compile(r"AC[0-9a-f]{32}")
TWILIO_TOKEN = re.compile(r"[0-9a-f]{32}")
TELEGRAM_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]{35}")
# Telegram accepts 1-256 characters A-Z, a-z, 0-9, _ and - as a webhook secret_token.
TELEGRAM_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")
E164 = re.compile(r"\+[1-9]\d{6,14}")
DEV_SECRET = "dev-only-change-me"  # noqa: S105 - the default we warn about, not a secret


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    message: str


def check_settings(s: Settings) -> list[Check]:
    out: list[Check] = []
    out += _twilio(s)
    out += _telegram(s)
    out += _public_url(s)
    production = not s.is_sqlite
    secret = s.secret_key.get_secret_value()
    if secret == DEV_SECRET:
        out.append(
            Check(
                "secret key",
                "fail" if production else "warn",
                "RELAIS_SECRET_KEY is the development default: anyone could forge console "
                "sessions. Set a long random value.",
            )
        )
    elif len(secret) < 32:
        out.append(Check("secret key", "warn", "RELAIS_SECRET_KEY is short; use 32+ characters."))
    else:
        out.append(Check("secret key", "ok", "set"))
    out.append(
        Check("retention", "ok", f"conversations are erased after {s.retention_months} months")
    )
    return out


def _twilio(s: Settings) -> list[Check]:
    given = [s.twilio_account_sid, s.twilio_auth_token, s.twilio_from]
    if not any(given):
        return [Check("twilio", "ok", "not configured (no SMS channel)")]
    problems = []
    sid = s.twilio_account_sid or ""
    if not TWILIO_SID.fullmatch(sid):
        problems.append(
            "RELAIS_TWILIO_ACCOUNT_SID should be 'AC' followed by 32 lower-case hex characters"
            + ("" if sid else " (it is missing)")
        )
    token = s.twilio_auth_token.get_secret_value() if s.twilio_auth_token else ""
    if not TWILIO_TOKEN.fullmatch(token):
        problems.append(
            "RELAIS_TWILIO_AUTH_TOKEN should be 32 lower-case hex characters"
            + ("" if token else " (it is missing)")
        )
    sender = s.twilio_from or ""
    if not (E164.fullmatch(sender) or sender.startswith("MG")):
        problems.append(
            "RELAIS_TWILIO_FROM should be the sending number in E.164 (+33...) "
            "or a Messaging Service SID (MG...)"
        )
    if problems:
        return [Check("twilio", "fail", p) for p in problems]
    return [Check("twilio", "ok", f"account {sid[:6]}…, credentials well formed")]


def _telegram(s: Settings) -> list[Check]:
    token = s.telegram_token.get_secret_value() if s.telegram_token else ""
    secret = s.telegram_secret.get_secret_value() if s.telegram_secret else ""
    if not token and not secret:
        return [Check("telegram", "ok", "not configured (no Telegram channel)")]
    out: list[Check] = []
    if not TELEGRAM_TOKEN.fullmatch(token):
        out.append(
            Check(
                "telegram",
                "fail",
                "RELAIS_TELEGRAM_TOKEN should look like '123456789:' followed by 35 letters, "
                "digits, '_' or '-' (as BotFather gives it)" + ("" if token else "; it is missing"),
            )
        )
    if not secret:
        out.append(
            Check(
                "telegram",
                "fail",
                "RELAIS_TELEGRAM_SECRET is missing: without it anyone can post fake updates "
                "to the Telegram webhook.",
            )
        )
    elif not TELEGRAM_SECRET.fullmatch(secret):
        out.append(
            Check(
                "telegram",
                "fail",
                "RELAIS_TELEGRAM_SECRET may only hold letters, digits, '_' and '-' "
                "(1 to 256 characters): Telegram refuses other secrets.",
            )
        )
    return out or [Check("telegram", "ok", f"bot {token.split(':')[0]}, secret set")]


def _is_local(host: str) -> bool:
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_unspecified


def _public_url(s: Settings) -> list[Check]:
    parts = urlsplit(s.public_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            Check(
                "public url",
                "fail",
                f"RELAIS_PUBLIC_URL '{s.public_url}' is not an http(s) URL such as "
                "https://relais.example.org",
            )
        ]
    providers = bool(s.twilio_account_sid or s.telegram_token)
    if not providers:
        return [Check("public url", "ok", f"{s.public_url} (no provider calls it yet)")]
    out = []
    if _is_local(parts.hostname):
        out.append(
            Check(
                "public url",
                "fail",
                f"RELAIS_PUBLIC_URL is {s.public_url}, which Twilio and Telegram cannot reach; "
                "set it to the address the reverse proxy serves, e.g. https://relais.example.org",
            )
        )
    if parts.scheme != "https":
        out.append(
            Check(
                "public url",
                "fail",
                "RELAIS_PUBLIC_URL must be https in production: Telegram only calls https "
                "webhooks, and Twilio signatures cover the exact URL it calls.",
            )
        )
    return out or [Check("public url", "ok", f"{s.public_url}")]


async def check_database(s: Settings) -> list[Check]:
    where = s.database_url.split("@")[-1]
    head = ScriptDirectory.from_config(alembic_config(s.database_url)).get_current_head()
    db = Database(s.database_url)
    try:
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        async with db.engine.connect() as conn:
            try:
                current = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one_or_none()
            except Exception:  # no alembic_version table: never migrated
                current = None
    except Exception as exc:
        return [
            Check(
                "database",
                "fail",
                f"cannot reach {where} ({type(exc).__name__}); is the server running and "
                "RELAIS_DATABASE_URL right?",
            )
        ]
    finally:
        await db.dispose()
    if current is None:
        return [
            Check("database", "fail", f"{where} is reachable but empty: run `relais db upgrade`")
        ]
    if current != head:
        return [
            Check(
                "database",
                "fail",
                f"{where} is at migration {current}, the code expects {head}: "
                "run `relais db upgrade`",
            )
        ]
    return [Check("database", "ok", f"{where} reachable, migrated to head ({head})")]


async def check_redis(s: Settings) -> list[Check]:
    if not s.redis_url:
        note = "not configured: in-process bus, so one `relais serve` process and no workers"
        return [Check("redis", "warn" if not s.is_sqlite else "ok", note)]
    client = redis.from_url(s.redis_url, socket_connect_timeout=2, socket_timeout=2)
    where = s.redis_url.split("@")[-1]
    try:
        await client.ping()
    except Exception as exc:
        return [
            Check("redis", "fail", f"cannot reach {where} ({type(exc).__name__}); is it running?")
        ]
    finally:
        await client.aclose()
    return [Check("redis", "ok", f"{where} reachable")]


async def run_checks(s: Settings) -> list[Check]:
    out = check_settings(s)
    db, rd = await asyncio.gather(check_database(s), check_redis(s))
    return [*db, *rd, *out]


def load_settings() -> tuple[Settings | None, list[Check]]:
    try:
        return Settings(), []
    except ValidationError as exc:
        return None, [
            Check(
                "settings",
                "fail",
                f"RELAIS_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}",
            )
            for e in exc.errors()
        ]


def report(checks: list[Check]) -> tuple[str, int]:
    marks = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}
    lines = [f"{marks[c.status]}  {c.name}: {c.message}" for c in checks]
    failed = sum(c.status == "fail" for c in checks)
    lines.append(
        f"{failed} problem(s) to fix before going live." if failed else "Everything looks right."
    )
    return "\n".join(lines), 1 if failed else 0
