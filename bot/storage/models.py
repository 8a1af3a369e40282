"""The database schema: SQLAlchemy 2 ORM models for every table Relais keeps."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# The status values live in bot.core.status; named here too, where the columns holding them are.
from bot.core.status import Author as Author
from bot.core.status import CaseStatus, OutboxStatus, RequestStatus
from bot.core.status import ConversationState as ConversationState
from bot.core.status import Direction as Direction
from bot.core.status import Role as Role


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Residence(Base):
    __tablename__ = "residences"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address: Mapped[str] = mapped_column(String(300), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    buildings: Mapped[list[Any]] = mapped_column(default=list)
    agency: Mapped[dict[str, Any]] = mapped_column(default=dict)  # name, address, phone, hours
    caretaker_hours: Mapped[dict[str, Any]] = mapped_column(default=dict)
    bulky_waste: Mapped[dict[str, Any]] = mapped_column(default=dict)
    lift_company: Mapped[dict[str, Any]] = mapped_column(default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    first_name: Mapped[str] = mapped_column(String(100), default="")
    last_name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    email: Mapped[str | None] = mapped_column(String(200), default=None)
    residence_id: Mapped[int | None] = mapped_column(ForeignKey("residences.id"), default=None)
    building: Mapped[str] = mapped_column(String(32), default="")
    floor: Mapped[str] = mapped_column(String(16), default="")
    apartment: Mapped[str] = mapped_column(String(16), default="")
    language: Mapped[str] = mapped_column(String(8), default="fr")
    vulnerable: Mapped[bool] = mapped_column(Boolean, default=False)
    vulnerability: Mapped[str] = mapped_column(String(200), default="")
    erased_at: Mapped[datetime | None] = mapped_column(default=None)
    # Absent from the landlord's last full export (`relais import tenants --full`): no longer
    # recognised by phone or Telegram; their conversations stay until the retention purge.
    departed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    residence: Mapped[Residence | None] = relationship(lazy="joined")

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


staff_residences = Table(
    "staff_residences",
    Base.metadata,
    Column("staff_id", ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True),
    Column("residence_id", ForeignKey("residences.id", ondelete="CASCADE"), primary_key=True),
)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16), default=Role.CARETAKER.value)
    password_hash: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str | None] = mapped_column(String(32), default=None)
    telegram_chat_id: Mapped[str | None] = mapped_column(String(64), default=None)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    residences: Mapped[list[Residence]] = relationship(secondary=staff_residences, lazy="selectin")


class Conversation(Base):
    """One tenant address on one channel; reopened (back to the bot) when they write again."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), default=None)
    residence_id: Mapped[int | None] = mapped_column(ForeignKey("residences.id"), default=None)
    state: Mapped[str] = mapped_column(String(16), default=ConversationState.BOT.value, index=True)
    language: Mapped[str] = mapped_column(String(8), default="fr")
    # Dialogue state: intent being handled, filled slots, last question, pending needs.
    dialogue: Mapped[dict[str, Any]] = mapped_column(default=dict)
    intent: Mapped[str | None] = mapped_column(String(32), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    assigned_to: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    last_caretaker_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_users.id"), default=None
    )
    satisfaction: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # When the dialogue's pending work falls due (an unanswered intake becomes a request).
    due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)

    tenant: Mapped[Tenant | None] = relationship(lazy="joined")


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("channel", "provider_id"),
        Index("ix_messages_conversation_created", "conversation_id", "id"),
        Index("ix_messages_unprocessed", "direction", "processed_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(4))
    author: Mapped[str] = mapped_column(String(16))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    text: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[Any]] = mapped_column(default=list)
    internal: Mapped[bool] = mapped_column(Boolean, default=False)  # a staff note, never sent
    provider_id: Mapped[str | None] = mapped_column(String(128), default=None)
    nlu: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    intent: Mapped[str | None] = mapped_column(String(32), default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    corrected_intent: Mapped[str | None] = mapped_column(String(32), default=None)
    delivery_status: Mapped[str | None] = mapped_column(String(24), default=None)
    segments: Mapped[int | None] = mapped_column(Integer, default=None)
    received_at: Mapped[datetime | None] = mapped_column(default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    raw: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)

    attachments: Mapped[list[Attachment]] = relationship(
        lazy="selectin", order_by="Attachment.id", cascade="all, delete-orphan"
    )


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16), default="photo")
    url: Mapped[str | None] = mapped_column(Text, default=None)
    file_id: Mapped[str | None] = mapped_column(String(256), default=None)
    content_type: Mapped[str | None] = mapped_column(String(100), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # location, contact...

    @property
    def coordinates(self) -> tuple[float, float] | None:
        """A location's (latitude, longitude), as every channel stores it (`lat`, `lon`);
        None when it is not a location or its numbers are missing (erased)."""
        try:
            lat, lon = float(self.data["lat"]), float(self.data["lon"])
        except (KeyError, TypeError, ValueError):
            return None
        if not (math.isfinite(lat) and math.isfinite(lon)):
            return None
        return lat, lon


class Incident(Base):
    """One building problem (a lift, a hall light) reported by several tenants."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(primary_key=True)
    residence_id: Mapped[int] = mapped_column(ForeignKey("residences.id"))
    building: Mapped[str] = mapped_column(String(32), default="")
    key: Mapped[str] = mapped_column(String(64))  # e.g. "ascenseur" or "hall:lumiere"
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value, index=True)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)


class Request(Base):
    """A ticket (repair, nuisance, bulky waste, emergency) with a reference a tenant can quote."""

    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(32), unique=True, default=None)
    kind: Mapped[str] = mapped_column(String(16))
    # One of bot.core.status.RequestStatus; its history is in request_events.
    status: Mapped[str] = mapped_column(
        String(24), default=RequestStatus.RECEIVED.value, index=True
    )
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id"), default=None)
    residence_id: Mapped[int | None] = mapped_column(ForeignKey("residences.id"), default=None)
    building: Mapped[str] = mapped_column(String(32), default="")
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), default=None
    )
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None)
    summary: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the last events set, kept on the row for lists and filters.
    scheduled_for: Mapped[datetime | None] = mapped_column(default=None)
    scheduled_slot: Mapped[str] = mapped_column(String(16), default="")
    contractor: Mapped[str] = mapped_column(String(200), default="")
    due_at: Mapped[datetime | None] = mapped_column(default=None, index=True)
    reminded_level: Mapped[int] = mapped_column(Integer, default=0)
    reminded_at: Mapped[datetime | None] = mapped_column(default=None)


class RequestEvent(Base):
    """One step of a request's life: who, when, what was said, from which state to which."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(80), default="")  # "staff:karim", "api:gmao"...
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    from_status: Mapped[str] = mapped_column(String(24), default="")
    to_status: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # date, slot, contractor, photo


class ApiKey(Base):
    """A bearer token of the landlord's systems; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Broadcast(Base):
    """One announcement to every tenant of a residence or building (water cut, lift, works)."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    residence_id: Mapped[int] = mapped_column(ForeignKey("residences.id"))
    building: Mapped[str] = mapped_column(String(32), default="")
    text: Mapped[str] = mapped_column(Text)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), default=None)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Handoff(Base):
    """One passage of a conversation to the human queue, from queued to closed."""

    __tablename__ = "handoffs"

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"), index=True)
    residence_id: Mapped[int | None] = mapped_column(ForeignKey("residences.id"), default=None)
    intent: Mapped[str] = mapped_column(String(32))
    # In words: what the person must know (the problem, where, since when).
    reason: Mapped[str] = mapped_column(Text, default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    taken_at: Mapped[datetime | None] = mapped_column(default=None)
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    first_reply_at: Mapped[datetime | None] = mapped_column(default=None)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    resolution: Mapped[str] = mapped_column(Text, default="")


class IdentityCode(Base):
    """A one-time code sent by SMS to the tenant's phone on file, to prove a web-chat or
    Telegram sender is that tenant. Only its hash is kept."""

    __tablename__ = "identity_codes"
    __table_args__ = (
        Index("ix_identity_codes_tenant", "tenant_id", "created_at"),
        Index("ix_identity_codes_conversation", "conversation_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id"))
    code_hash: Mapped[str] = mapped_column(String(128))
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class Outbox(Base):
    """A message waiting to be delivered by its channel's sender, retried with backoff."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        # "Is an earlier reply of this conversation still undelivered?", asked for every row.
        Index("ix_outbox_conversation_status", "conversation_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
    conversation_id: Mapped[int | None] = mapped_column(
        ForeignKey("conversations.id"), default=None
    )
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text, default="")
    media: Mapped[list[Any]] = mapped_column(default=list)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # buttons, quick replies
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=OutboxStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    provider_id: Mapped[str | None] = mapped_column(String(128), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)


class OptOut(Base):
    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("channel", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    address: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    actor: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(32))
    target_type: Mapped[str] = mapped_column(String(32), default="")
    target_id: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ContentOverride(Base):
    """A manager's version of a tenant-facing text or FAQ entry, over the shipped YAML seed.

    `value` None: back to the seed (the row stays so that its `updated_at` tells every process
    the content changed)."""

    __tablename__ = "content_overrides"
    __table_args__ = (UniqueConstraint("kind", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # "text" or "faq"
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class StaffSession(Base):
    """A signed-in console session; the cookie holds only its random id."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff_users.id", ondelete="CASCADE"))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class LoginThrottle(Base):
    """Failed sign-ins counted per account name and per client address (handoff.auth).

    Counted before the password is checked, in one UPDATE ... RETURNING, so parallel attempts
    cannot all slip under the limit; known and unknown account names are counted alike.
    """

    __tablename__ = "login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "account:x", "ip:y"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)

    @staticmethod
    def account_key(login: str) -> str:
        # Case-folded: "Karim" and "karim" share one counter.
        return "account:" + login.strip().casefold()[:150]

    @staticmethod
    def client_key(client: str) -> str:
        return "ip:" + client[:100]
