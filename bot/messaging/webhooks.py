"""Outgoing webhook events for the landlord's systems, queued in the outbox (channel `webhook`).

An event is stored in the transaction that made it happen, as an outbox row whose text is the
JSON body and whose address is the order key (`request:<id>`, `conversation:<id>`): the
dispatcher sends the rows of one key in order and retries them with backoff
(`channels.webhook` signs and posts them). They never hold a tenant's replies back: their
rows belong to no conversation.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Conversation, Handoff, Outbox, Request

CHANNEL = "webhook"
EVENTS = ("request.created", "request.updated", "handoff.created", "conversation.closed")


class WebhookQueue:
    """Queues events when RELAIS_WEBHOOK_URL is set; does nothing otherwise."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled

    def queue(
        self, s: AsyncSession, event: str, data: dict[str, Any], *, order: str, now: datetime
    ) -> None:
        if not self.enabled:
            return
        assert event in EVENTS, event
        # The id doubles as the Standard Webhooks `webhook-id`: receivers de-duplicate on it.
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = {"type": event, "timestamp": now.isoformat(), "data": data}
        s.add(
            Outbox(
                message_id=None,
                conversation_id=None,
                channel=CHANNEL,
                address=order,
                text=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
                extra={"event": event},
                idempotency_key=msg_id,
                status="pending",
                next_attempt_at=now,
            )
        )


def request_json(
    r: Request, *, residence_code: str = "", tenant_reference: str = ""
) -> dict[str, Any]:
    """A request as the API and the webhooks show it."""
    return {
        "reference": r.reference,
        "kind": r.kind,
        "status": r.status,
        "summary": r.summary,
        "residence": residence_code or None,
        "building": r.building or None,
        "tenant": tenant_reference or None,
        "scheduled_for": r.scheduled_for.isoformat() if r.scheduled_for else None,
        "scheduled_slot": r.scheduled_slot or None,
        "contractor": r.contractor or None,
        "due_at": r.due_at.isoformat() if r.due_at else None,
        "created_at": r.created_at.isoformat() if r.created_at else None,
        "updated_at": r.updated_at.isoformat() if r.updated_at else None,
        "closed_at": r.closed_at.isoformat() if r.closed_at else None,
    }


def handoff_json(h: Handoff, reference: str | None) -> dict[str, Any]:
    return {
        "id": h.id,
        "conversation_id": h.conversation_id,
        "intent": h.intent,
        "reason": h.reason,
        "priority": h.priority,
        "request": reference,
        "created_at": h.created_at.isoformat() if h.created_at else None,
    }


def conversation_json(c: Conversation, resolution: str) -> dict[str, Any]:
    return {
        "id": c.id,
        "channel": c.channel,
        "intent": c.intent,
        "resolution": resolution,
        "closed_at": c.closed_at.isoformat() if c.closed_at else None,
    }
