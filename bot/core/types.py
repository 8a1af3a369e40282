"""Channel-neutral message types shared by every channel and the pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nlu.types import Entity, Parse

__all__ = ["Entity", "Inbound", "Media", "Outbound", "Parse"]


@dataclass(frozen=True, slots=True)
class Media:
    """A photo or file: a URL (Twilio, web chat) or a provider file id (Telegram)."""

    kind: str = "photo"
    url: str | None = None
    file_id: str | None = None
    content_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # location, shared contact


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a tenant, as a channel parsed it from its provider's request."""

    channel: str
    address: str  # E.164 phone, Telegram chat id, web session id
    text: str
    provider_id: str | None = None
    media: tuple[Media, ...] = ()
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    raw: dict[str, Any] | None = None
    # Channel-level facts that are not text: e.g. {"contact_phone": "+33..."} from Telegram.
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Outbound:
    """One message to deliver to a tenant (or a staff member) on a channel."""

    outbox_id: int
    channel: str
    address: str
    text: str
    idempotency_key: str
    conversation_id: int | None = None
    message_id: int | None = None
    media: tuple[Media, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider said when it accepted a message."""

    provider_id: str | None = None
    segments: int | None = None
    status: str = "sent"
