"""Logs: JSON or text, and no phone number or message body at INFO, even by accident."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.core.types import Inbound
from bot.ops.logs import JsonFormatter, MaskingFilter, redact, resolve_format, setup_logging
from tests.browser import serve_in_thread
from tests.conftest import make_settings
from tests.fakes import KeywordEngine, RecordingChannel
from tests.handoff.conftest import csrf_of
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
        # As typed in a search box and URL-encoded in a query string.
        ("q=%2B33612345600&page=2", "q=+*********00&page=2"),
        ("q=%2B33%206%2012%2034%2056%2000", "q=+*********00"),
        ("+33 6 12 34 56 00", "+*********00"),
        ("0033 6 12 34 56 00", "***********00"),
        ("0033612345600", "***********00"),
        ("q=06+12+34+56+00", "q=********00"),
        ("q=06%2012%2034%2056%2000", "q=********00"),
        ("q=06%2E12%2E34%2E56%2E00", "q=********00"),
        ("06-12-34-56-00", "********00"),
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


def test_a_manager_search_leaves_no_name_or_number_in_the_access_log(
    sqlite_url: str, captured: io.StringIO
) -> None:
    # A real uvicorn with its access log on, as `relais serve` runs it: the search terms are
    # in the query string of a GET, which the access log writes out.
    settings = make_settings(sqlite_url, public_url="http://127.0.0.1")
    rt = Runtime(settings, engine=KeywordEngine(), channels={"sms": RecordingChannel("sms")})
    app = create_app(settings, runtime=rt, prepare=False)
    with (
        serve_in_thread(app, rt, access_log=True) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        page = client.get("/console/login")
        r = client.post(
            "/console/login",
            data={"login": "claire", "password": "relais-demo", "csrf": csrf_of(page.text)},
        )
        assert r.status_code == 303
        for q in ("+33612345600", "06 12 34 56 00", "Nadia Haddad"):
            r = client.get("/console/manager/conversations", params={"q": q})
            assert r.status_code == 200
    # The gateway's lines (the test's own httpx client logs its requests too: not ours).
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    ours = [line for line in lines if line["logger"] != "httpx"]
    access = [
        line["message"]
        for line in ours
        if line["logger"] == "uvicorn.access"
        and "/console/manager/conversations" in line["message"]
    ]
    assert len(access) == 3 and all("conversations?q=* HTTP" in a for a in access), access
    logs = "\n".join(json.dumps(line, ensure_ascii=False) for line in ours)
    for secret in ("612345600", "2B33", "06+12", "06%2012", "Nadia", "Haddad"):
        assert secret not in logs, f"{secret!r} found in the logs:\n{logs}"
