"""`relais doctor`: plain words on what is wrong, non-zero exit when something is."""

from __future__ import annotations

import os
import subprocess
import sys

from pydantic import SecretStr

from bot.ops.doctor import check_database, check_redis, check_settings, report
from tests import services
from tests.conftest import make_settings
from tests.paths import REPO_ROOT

GOOD = {
    "twilio_account_sid": "AC" + "0123456789abcdef" * 2,
    "twilio_auth_token": SecretStr("0123456789abcdef" * 2),
    "twilio_from": "+33700000000",
    "telegram_token": SecretStr("123456789:" + "A" * 35),
    "telegram_secret": SecretStr("s3cret-token_x"),
    "public_url": "https://relais.example.org",
    "secret_key": SecretStr("x" * 40),
}


def fails(checks: list) -> list[str]:  # type: ignore[type-arg]
    return [c.message for c in checks if c.status == "fail"]


def test_good_production_settings_pass(sqlite_url: str) -> None:
    assert fails(check_settings(make_settings(sqlite_url, **GOOD))) == []


def test_bad_credentials_are_named(sqlite_url: str) -> None:
    bad = {
        **GOOD,
        "twilio_account_sid": "AB123",
        "twilio_auth_token": SecretStr("nothex"),
        "telegram_token": SecretStr("123:short"),
        "telegram_secret": SecretStr("has spaces!"),
    }
    msgs = fails(check_settings(make_settings(sqlite_url, **bad)))
    assert any("RELAIS_TWILIO_ACCOUNT_SID" in m for m in msgs)
    assert any("RELAIS_TWILIO_AUTH_TOKEN" in m for m in msgs)
    assert any("RELAIS_TELEGRAM_TOKEN" in m for m in msgs)
    assert any("RELAIS_TELEGRAM_SECRET" in m for m in msgs)
    assert not any("0123456789abcdef" in m for m in msgs), "secrets are never printed"


def test_public_url_must_be_reachable_https_with_providers(sqlite_url: str) -> None:
    msgs = fails(
        check_settings(make_settings(sqlite_url, **{**GOOD, "public_url": "http://127.0.0.1:8000"}))
    )
    assert any("cannot reach" in m for m in msgs) and any("https" in m for m in msgs)
    # Without providers, the local default is fine.
    assert fails(check_settings(make_settings(sqlite_url))) == []


def test_dev_secret_key_fails_on_postgres() -> None:
    s = make_settings("postgresql+asyncpg://u@db/relais")
    assert any("RELAIS_SECRET_KEY" in m for m in fails(check_settings(s)))


async def test_database_checks(sqlite_url: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ok = await check_database(make_settings(sqlite_url))
    assert ok[0].status == "ok" and "head" in ok[0].message
    empty = await check_database(make_settings(f"sqlite+aiosqlite:///{tmp_path}/empty.sqlite3"))
    assert "relais db upgrade" in empty[0].message and empty[0].status == "fail"
    away = await check_database(make_settings("postgresql+asyncpg://postgres@127.0.0.1:1/x"))
    assert away[0].status == "fail" and "cannot reach" in away[0].message


async def test_redis_checks(sqlite_url: str) -> None:
    away = await check_redis(make_settings(sqlite_url, redis_url="redis://127.0.0.1:1/0"))
    assert away[0].status == "fail"
    services.need_redis()
    ok = await check_redis(make_settings(sqlite_url, redis_url=services.REDIS_URL))
    assert ok[0].status == "ok"


def test_report_exit_code(sqlite_url: str) -> None:
    _, code = report(check_settings(make_settings(sqlite_url)))
    assert code == 0
    text, code = report(
        check_settings(make_settings(sqlite_url, **{**GOOD, "twilio_auth_token": SecretStr("x")}))
    )
    assert code == 1 and "FAIL" in text and "problem(s)" in text


def test_cli(sqlite_url: str) -> None:
    env = {**os.environ, "RELAIS_DATABASE_URL": sqlite_url, "RELAIS_TWILIO_ACCOUNT_SID": "nope"}
    env.pop("RELAIS_REDIS_URL", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import main; main()", "doctor"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "RELAIS_TWILIO_ACCOUNT_SID" in proc.stdout and "database" in proc.stdout
    env["RELAIS_RETENTION_MONTHS"] = "zero"
    proc = subprocess.run(
        [sys.executable, "-c", "from bot.cli.main import main; main()", "doctor"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1 and "RELAIS_RETENTION_MONTHS" in proc.stdout
