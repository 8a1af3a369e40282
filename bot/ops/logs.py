"""Logging setup: text or JSON lines, with phone numbers and SQL parameters masked.

Code never logs a message body or a phone number on purpose (STYLE.md); the filter here is the
safety net for what slips through: an address in an exception, SQL parameters in a database
error, a number in a third-party library's message. It masks at INFO and above; DEBUG records,
which only a developer turns on, are left as they are.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal

# E.164 (+33612345678), French national numbers (06 12 34 56 78, 06.12.34.56.78), and any
# other long run of digits (a phone without its +, a Telegram chat id).
_PHONE = re.compile(r"(?<![\w+])(?:\+\d[\d .-]{6,18}\d|0[1-9](?:[ .-]?\d{2}){4}|\d{9,})(?!\w)")
# A Telegram bot token (it is part of every Bot API URL a library may log).
_TELEGRAM_TOKEN = re.compile(r"\d{5,}:[A-Za-z0-9_-]{30,}")
# SQLAlchemy appends the statement's parameters (message texts, addresses) to its errors.
_SQL_PARAMS = re.compile(r"\[parameters: .*?\]\n?(?=\(Background|\Z|\n)", re.DOTALL)

# Attributes every LogRecord has; anything else was passed with `extra=` and is output in JSON.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def mask_phone(match: re.Match[str]) -> str:
    raw = match.group(0)
    digits = [c for c in raw if c.isdigit()]
    keep = "".join(digits[-2:])
    prefix = "+" if raw.startswith("+") else ""
    return f"{prefix}{'*' * max(len(digits) - 2, 1)}{keep}"


def redact(text: str) -> str:
    """The text with phone-like numbers, Telegram tokens and SQL parameters masked."""
    text = _SQL_PARAMS.sub("[parameters: hidden]\n", text)
    text = _TELEGRAM_TOKEN.sub("<telegram token>", text)
    return _PHONE.sub(mask_phone, text)


class MaskingFilter(logging.Filter):
    """Rewrites records at INFO and above so that no phone number reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return True
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                entry[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False, default=str)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def resolve_format(setting: str | None, stream: Any = None) -> Literal["json", "text"]:
    if setting in ("json", "text"):
        return setting  # type: ignore[return-value]
    stream = stream or sys.stderr
    return "text" if getattr(stream, "isatty", lambda: False)() else "json"


def setup_logging(level: str = "INFO", fmt: str | None = None, stream: Any = None) -> None:
    """Configure the root logger once for the process (uvicorn's loggers propagate to it)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    if resolve_format(fmt, stream) == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # Their own handlers would bypass the masking filter and the JSON format.
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.propagate = True
