"""Status values stored in the database and sent in events, named once.

StrEnums: each member equals its string (`OutboxStatus.PENDING == "pending"`), so rows, JSON
and code that still spells the string agree with code that names the member.
"""

from __future__ import annotations

import enum


class ConversationState(enum.StrEnum):
    BOT = "bot"
    QUEUED = "queued"
    ASSIGNED = "assigned"
    CLOSED = "closed"


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"


class Author(enum.StrEnum):
    TENANT = "tenant"
    BOT = "bot"
    STAFF = "staff"
    SYSTEM = "system"


class Role(enum.StrEnum):
    CARETAKER = "caretaker"
    ONCALL = "oncall"
    MANAGER = "manager"


class OutboxStatus(enum.StrEnum):
    """A reply waiting in the outbox, then what became of it."""

    PENDING = "pending"  # due at `next_attempt_at`
    SENDING = "sending"  # claimed by a dispatcher (with a lease)
    SENT = "sent"  # the provider accepted it
    FAILED = "failed"  # refused for good, or out of attempts
    SUPPRESSED = "suppressed"  # never to be sent (the tenant opted out, or was erased)


# Rows still to be delivered (what `relais chat` and erasure wait for or stop).
OUTBOX_WAITING = (OutboxStatus.PENDING, OutboxStatus.SENDING)


class DeliveryStatus(enum.StrEnum):
    """A message's delivery as the provider reports it (Twilio's names), in order of progress."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    READ = "read"
    SUPPRESSED = "suppressed"


class CaseStatus(enum.StrEnum):
    """A tenant's request or a building incident."""

    OPEN = "open"
    CLOSED = "closed"
