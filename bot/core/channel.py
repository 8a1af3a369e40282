"""The shape every channel has: verify and parse a provider's request, send an `Outbound`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar
from urllib.parse import parse_qs

from bot.core.errors import Malformed
from bot.core.types import Inbound, Outbound, SendResult


@dataclass(frozen=True)
class WebhookRequest:
    """A provider's HTTP request, detached from the web framework so channels test without it."""

    method: str
    url: str  # as the provider called it: the public URL, not the one behind the proxy
    headers: dict[str, str]  # lower-case names
    body: bytes
    query: dict[str, str] = field(default_factory=dict)

    @cached_property
    def form(self) -> dict[str, str]:
        try:
            pairs = parse_qs(
                self.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
            )
        except UnicodeDecodeError as exc:
            raise Malformed("form body is not UTF-8") from exc
        return {k: v[-1] for k, v in pairs.items()}

    @cached_property
    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise Malformed("body is not valid JSON") from exc


class Channel:
    """Outbound half of a channel: deliver a message to the provider."""

    name: ClassVar[str] = ""
    # Other channel names this sender delivers for (Twilio sends SMS and WhatsApp alike).
    aliases: ClassVar[tuple[str, ...]] = ()

    async def send(self, outbound: Outbound) -> SendResult:
        raise NotImplementedError

    async def aclose(self) -> None:
        return None

    def prepare_text(self, text: str) -> str:
        """Adapt a reply to the channel before it is stored (e.g. GSM-7 for SMS)."""
        return text


class WebhookChannel(Channel):
    """A channel whose provider calls us over HTTP (Twilio, Telegram)."""

    path: ClassVar[str] = ""
    max_body: ClassVar[int] = 64 * 1024

    async def verify(self, request: WebhookRequest) -> None:
        """Raise `BadSignature` (or `BadSecret`) unless the request comes from the provider."""
        raise NotImplementedError

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        """Turn a verified request into inbound messages; raise `Malformed` or `Unsupported`."""
        raise NotImplementedError

    def acknowledge(self) -> tuple[int, str, str]:
        """(status, media type, body) the provider expects once the messages are stored."""
        return 200, "application/json", '{"ok":true}'
