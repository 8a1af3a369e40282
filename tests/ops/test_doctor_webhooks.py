"""`relais doctor` on the webhook settings: missing halves, a secret that is not
`whsec_<base64>`, a receiver without HTTPS."""

from __future__ import annotations

import pytest

from bot.ops.doctor import check_settings
from tests.conftest import make_settings
from tests.handoff.receiver import SECRET


@pytest.mark.parametrize(
    ("url", "secret", "status", "words"),
    [
        (None, None, "ok", "not configured"),
        ("https://gmao.example/hooks", None, "fail", "RELAIS_WEBHOOK_SECRET is missing"),
        (None, SECRET, "fail", "RELAIS_WEBHOOK_URL is missing"),
        ("https://gmao.example/hooks", "not base64 !", "fail", "whsec_<base64>"),
        ("http://gmao.example/hooks", SECRET, "warn", "not HTTPS"),
        ("http://127.0.0.1:9000/hooks", SECRET, "ok", "events go to"),
        ("https://gmao.example/hooks", SECRET, "ok", "events go to https://gmao.example/hooks"),
    ],
)
def test_webhook_settings(url: str | None, secret: str | None, status: str, words: str) -> None:
    settings = make_settings("sqlite+aiosqlite:///:memory:", webhook_url=url, webhook_secret=secret)
    [check] = [c for c in check_settings(settings) if c.name == "webhooks"]
    assert check.status == status and words in check.message
