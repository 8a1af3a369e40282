"""Logs: JSON or text, and no phone number or message body at INFO, even by accident."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.ops.logs import JsonFormatter, MaskingFilter, redact, resolve_format, setup_logging
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.worker.test_pipeline import settled

PHONE = "+33612345600"
BODY = "il y a une fuite dans la salle de bain depuis hier soir"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("from +33612345600 ok", "from +*********00 ok"),
        ("appelez le 06 12 34 56 78", "appelez le ********78"),
        ("06.12.34.56.78", "********78"),
        ("telegram chat 123456789", "telegram chat *******89"),
        ("message 4521 at 2026-11-28 12:00:01", "message 4521 at 2026-11-28 12:00:01"),
        ("outbox 12 retry in 2.0s", "outbox 12 retry in 2.0s"),
        (
            "POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1/sendMessage",
            "POST https://api.telegram.org/bot<telegram token>/sendMessage",
        ),
    ],
)
def test_redact(text: str, masked: str) -> None:
    assert redact(text) == masked


def test_sql_parameters_are_hidden() -> None:
    err = (
        "(sqlite3.IntegrityError) UNIQUE constraint failed\n"
        "[SQL: INSERT INTO messages (text, address) VALUES (?, ?)]\n"
        f"[parameters: ('{BODY}', '{PHONE}')]\n"
        "(Background on this error at: https://sqlalche.me/e/20/gkpj)"
    )
    out = redact(err)
    assert BODY not in out and PHONE not in out and "[SQL: INSERT" in out


def test_resolve_format() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format(None, Tty()) == "text"
    assert resolve_format(None, io.StringIO()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    setup_logging("INFO", "json", out)
    try:
        yield out
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])


def test_json_lines_with_extra_fields_masked(captured: io.StringIO) -> None:
    log = logging.getLogger("relais.test")
    log.info("sent to %s", PHONE, extra={"address": PHONE, "conversation_id": 4})
    try:
        raise ValueError(f"provider refused {PHONE}")
    except ValueError:
        log.exception("delivery failed")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert lines[0]["level"] == "INFO" and lines[0]["logger"] == "relais.test"
    assert lines[0]["conversation_id"] == 4
    assert PHONE not in captured.getvalue()
    assert "+*********00" in lines[0]["message"] and "ValueError" in lines[1]["exception"]


def test_debug_is_left_alone() -> None:
    rec = logging.makeLogRecord({"msg": "to %s", "args": (PHONE,), "levelno": logging.DEBUG})
    assert MaskingFilter().filter(rec) and rec.getMessage() == f"to {PHONE}"
    assert PHONE in JsonFormatter().format(rec)


async def test_a_conversation_leaves_no_phone_or_body_in_the_logs(
    database_url: str, captured: io.StringIO
) -> None:
    # A sender that fails once (the outbox logs the retry and the provider's error) and an
    # unknown sender, who is asked who they are: the paths that log the most.
    sms = RecordingChannel("sms", fail_transient=1)
    rt = Runtime(
        make_settings(database_url, rate_limit_messages=2),
        engine=KeywordEngine(),
        channels={"sms": sms},
    )
    await rt.start(Roles(consume=True, outbox=True, recover=True, retention=False))
    try:
        await rt.ingest(Inbound("sms", PHONE, "Bonjour", provider_id="L1"))
        await rt.ingest(Inbound("sms", PHONE, BODY, provider_id="L2"))
        await rt.ingest(Inbound("sms", PHONE, BODY + " encore", provider_id="L3"))  # limited
        await rt.ingest(Inbound("sms", "+33799999999", BODY, provider_id="L4"))
        await rt.ingest(Inbound("sms", PHONE, "Bonjour", provider_id="L1"))  # duplicate
        await settled(rt)
    finally:
        await rt.stop()
    logs = captured.getvalue()
    assert logs, "the run logged something"
    for secret in (PHONE, "+33799999999", "612345600", "fuite", "Nadia"):
        assert secret not in logs, f"{secret!r} found in the logs:\n{logs}"
