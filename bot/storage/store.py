"""Storage operations shared by the ingest, the pipeline and the console."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import DeliveryStatus, OutboxStatus
from bot.core.types import Inbound
from bot.storage.models import (
    Attachment,
    AuditLog,
    Author,
    Conversation,
    ConversationState,
    Direction,
    Message,
    Outbox,
    Request,
)

log = logging.getLogger(__name__)

# Web chat text is typed by hand; a larger body is cut rather than refused so nothing is lost.
MAX_TEXT = 20_000


def _on_postgres(session: AsyncSession) -> bool:
    return session.bind is not None and session.bind.dialect.name == "postgresql"


def _insert(session: AsyncSession, model: Any) -> Any:
    return (postgresql.insert if _on_postgres(session) else sqlite.insert)(model)


def clean_text(text: str | None) -> str:
    if not text:
        return ""
    # Lone surrogates (from broken UTF-8 decoded with surrogateescape) cannot be stored.
    text = text.encode("utf-8", "replace").decode("utf-8", "replace").replace("\x00", "")
    return text[:MAX_TEXT]


# A one-time identity code a tenant typed back, as the thread keeps it: the code proves who
# they are to the bot, and no one reading the conversation afterwards needs it.
CODE_MASK = "••••••"


def mask_code(value: Any, code: str) -> Any:
    """`value` (a text, or a provider's raw payload: dicts and lists of them) with every
    occurrence of `code` replaced by CODE_MASK."""
    if not code:
        return value
    if isinstance(value, str):
        return value.replace(code, CODE_MASK)
    if isinstance(value, dict):
        return {k: mask_code(v, code) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_code(v, code) for v in value]
    return value


@dataclass(frozen=True, slots=True)
class Recorded:
    message_id: int
    conversation_id: int
    created: bool  # False: a retried delivery of a message already stored


async def _conversation_id(session: AsyncSession, channel: str, address: str) -> int:
    """The conversation's id, created if new, without loading (or locking) the row.

    Ingest-path speed (bench/load.py): on PostgreSQL one round trip (insert-or-nothing and
    select in one statement) instead of an insert and a select of the full ORM object, which
    joins tenant and residence. No row lock here: the conversation is locked last, by the
    update at the end of `record_inbound`, as the pipeline expects (locking it first deadlocks
    against a worker that holds the message and waits for the conversation)."""
    now = datetime.now(UTC)
    insert = (
        _insert(session, Conversation)
        .values(
            channel=channel,
            address=address,
            state=ConversationState.BOT.value,
            dialogue={},
            created_at=now,
            updated_at=now,
            last_message_at=now,
            language="fr",
            priority=0,
        )
        .on_conflict_do_nothing(index_elements=["channel", "address"])
        .returning(Conversation.id)
    )
    existing = select(Conversation.id).where(
        Conversation.channel == channel, Conversation.address == address
    )
    conv_id: int | None
    if _on_postgres(session):
        created = insert.cte("created")
        stmt = select(created.c.id).union_all(existing)
        conv_id = (await session.execute(stmt)).scalars().first()
    else:
        conv_id = (await session.execute(insert)).scalar_one_or_none()
    if conv_id is None:
        # Created by a concurrent request after this statement's snapshot: it is there now.
        conv_id = (await session.execute(existing)).scalar_one()
    return int(conv_id)


async def record_inbound(session: AsyncSession, inbound: Inbound) -> Recorded:
    """Store an inbound message once: a second delivery of the same provider id stores nothing."""
    conv_id = await _conversation_id(session, inbound.channel, inbound.address)
    now = datetime.now(UTC)
    values: dict[str, Any] = dict(
        conversation_id=conv_id,
        channel=inbound.channel,
        direction=Direction.IN.value,
        author=Author.TENANT.value,
        text=clean_text(inbound.text),
        media=[_media_dict(m) for m in inbound.media],
        provider_id=inbound.provider_id,
        received_at=inbound.received_at,
        created_at=now,
        internal=False,
        raw=inbound.raw,
    )
    if inbound.provider_id is not None:
        stmt = (
            _insert(session, Message)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["channel", "provider_id"])
            .returning(Message.id)
        )
        new_id = (await session.execute(stmt)).scalar_one_or_none()
        if new_id is None:
            existing = (
                await session.execute(
                    select(Message.id).where(
                        Message.channel == inbound.channel,
                        Message.provider_id == inbound.provider_id,
                    )
                )
            ).scalar_one()
            return Recorded(existing, conv_id, created=False)
    else:
        new_id = (
            await session.execute(_insert(session, Message).values(**values).returning(Message.id))
        ).scalar_one()
    for m in inbound.media:
        session.add(
            Attachment(
                message_id=new_id,
                kind=m.kind,
                url=m.url,
                file_id=m.file_id,
                content_type=m.content_type,
                data=dict(m.data),
            )
        )
    # Not waiting for a worker that holds the conversation (a batch, see pipeline): it sets
    # last_message_at itself when it takes the message.
    touch = update(Conversation).values(last_message_at=now)
    if _on_postgres(session):
        free = (
            select(Conversation.id)
            .where(Conversation.id == conv_id)
            .with_for_update(key_share=True, skip_locked=True)
        )
        touch = touch.where(Conversation.id.in_(free.scalar_subquery()))
    else:
        touch = touch.where(Conversation.id == conv_id)
    await session.execute(touch)
    return Recorded(new_id, conv_id, created=True)


# The common case on PostgreSQL (a text message with a provider id) in one statement, run
# outside an explicit transaction: one round trip instead of six (BEGIN, conversation, message,
# conversation update, COMMIT). Ingest-path speed, measured by bench/load.py. The order of the
# row locks is the one of `record_inbound`: message first, conversation last.
_RECORD_PG = text(
    """
WITH c_ins AS (
    INSERT INTO conversations
        (channel, address, state, language, dialogue, priority,
         created_at, updated_at, last_message_at)
    VALUES (:channel, :address, 'bot', 'fr', CAST('{}' AS json), 0, :now, :now, :now)
    ON CONFLICT (channel, address) DO NOTHING
    RETURNING id
), c AS (
    SELECT id FROM c_ins
    UNION ALL
    SELECT id FROM conversations WHERE channel = :channel AND address = :address
    LIMIT 1
), m AS (
    INSERT INTO messages
        (conversation_id, channel, direction, author, text, media, internal,
         provider_id, received_at, created_at, raw)
    SELECT c.id, :channel, 'in', 'tenant', :text, CAST('[]' AS json), false,
           :provider_id, :received_at, :now, CAST(:raw AS json)
    FROM c
    ON CONFLICT (channel, provider_id) DO NOTHING
    RETURNING id, conversation_id
), u AS (
    UPDATE conversations SET last_message_at = :now
    WHERE id IN (SELECT id FROM conversations WHERE id IN (SELECT conversation_id FROM m)
                 FOR NO KEY UPDATE SKIP LOCKED)
)
SELECT (SELECT id FROM c) AS conversation_id, (SELECT id FROM m) AS message_id
"""
)


def fast_recordable(inbound: Inbound) -> bool:
    return inbound.provider_id is not None and not inbound.media


# The statement as asyncpg takes it ($1...), and its parameters' order: the webhook runs it on
# the pooled connection's driver, past SQLAlchemy's execution layers (a fifth of the gateway's
# CPU for this one statement, under bench/load.py).
_RECORD_PG_COMPILED = _RECORD_PG.compile(dialect=asyncpg_dialect())
_RECORD_PG_SQL = _RECORD_PG_COMPILED.string
_RECORD_PG_ORDER = tuple(_RECORD_PG_COMPILED.positiontup or ())
_EXISTING_PG_SQL = "SELECT id FROM messages WHERE channel = $1 AND provider_id = $2"


async def record_inbound_pg(driver: asyncpg.Connection, inbound: Inbound) -> Recorded | None:
    """`record_inbound` for a text message on PostgreSQL, in autocommit, on an asyncpg
    connection; None when it could not tell (a conversation created concurrently): the caller
    uses `record_inbound`."""
    assert inbound.provider_id is not None and not inbound.media
    values = {
        "channel": inbound.channel,
        "address": inbound.address,
        "now": datetime.now(UTC),
        "text": clean_text(inbound.text),
        "provider_id": inbound.provider_id,
        "received_at": inbound.received_at,
        "raw": json.dumps(inbound.raw) if inbound.raw is not None else None,
    }
    conv_id, message_id = await driver.fetchrow(
        _RECORD_PG_SQL, *(values[k] for k in _RECORD_PG_ORDER)
    )
    if conv_id is None:
        return None
    if message_id is not None:
        return Recorded(int(message_id), int(conv_id), created=True)
    existing = await driver.fetchval(_EXISTING_PG_SQL, inbound.channel, inbound.provider_id)
    return Recorded(int(existing), int(conv_id), created=False)


def _media_dict(m: Any) -> dict[str, Any]:
    return {
        "kind": m.kind,
        "url": m.url,
        "file_id": m.file_id,
        "content_type": m.content_type,
        "data": dict(m.data),
    }


def outbound_message(
    conv: Conversation,
    text: str,
    *,
    author: str = Author.BOT.value,
    staff_id: int | None = None,
    media: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> Message:
    """An outgoing message of `conv`, queued for delivery (not yet added to a session)."""
    return Message(
        conversation_id=conv.id,
        channel=conv.channel,
        direction=Direction.OUT.value,
        author=author,
        staff_id=staff_id,
        text=text,
        media=media or [],
        delivery_status=DeliveryStatus.QUEUED,
        created_at=now or datetime.now(UTC),
    )


def outbox_row(
    conv: Conversation,
    msg: Message,
    *,
    key: str,
    extra: dict[str, Any] | None = None,
    due: datetime | None = None,
    claimed_until: datetime | None = None,
) -> Outbox:
    """The outbox row delivering `msg` (flushed: it needs its id). With `claimed_until`, the
    row is stored already claimed by the caller (status `sending`, one attempt, that lease),
    who sends it itself right after the commit."""
    extra = dict(extra or {})
    if conv.channel == "webchat":
        # What the widget shows beside the text, so that sending needs no read of the message.
        extra["shown"] = {"author": msg.author, "created_at": msg.created_at.isoformat()}
    return Outbox(
        message_id=msg.id,
        conversation_id=conv.id,
        channel=conv.channel,
        address=conv.address,
        text=msg.text,
        media=list(msg.media or []),
        extra=extra,
        idempotency_key=key,
        status=OutboxStatus.SENDING if claimed_until else OutboxStatus.PENDING,
        attempts=1 if claimed_until else 0,
        lease_until=claimed_until,
        next_attempt_at=due or datetime.now(UTC),
    )


async def add_outbound(
    session: AsyncSession,
    conv: Conversation,
    text: str,
    *,
    author: str = Author.BOT.value,
    key: str,
    staff_id: int | None = None,
    extra: dict[str, Any] | None = None,
    media: list[dict[str, Any]] | None = None,
) -> tuple[Message, Outbox]:
    """Store an outgoing message and its outbox row in the caller's transaction."""
    msg = outbound_message(conv, text, author=author, staff_id=staff_id, media=media)
    session.add(msg)
    await session.flush()
    row = outbox_row(conv, msg, key=key, extra=extra)
    session.add(row)
    await session.flush()
    return msg, row


async def next_request_reference(session: AsyncSession, request: Request) -> str:
    """`R-<year>-<id, six digits>`: unique because the id is, readable on the phone."""
    await session.flush()
    year = (request.created_at or datetime.now(UTC)).year
    request.reference = f"R-{year}-{request.id:06d}"
    return request.reference


async def audit(
    session: AsyncSession,
    action: str,
    *,
    staff_id: int | None = None,
    actor: str = "",
    target_type: str = "",
    target_id: str | int = "",
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AuditLog(
            staff_id=staff_id,
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id),
            detail=detail or {},
        )
    )
