"""Personal data: export everything held on a tenant, erase it, and purge past the retention.

Erasure keeps the rows (and so the statistics: how many messages, which intents, when) and
drops what identifies or describes a person: message texts, media and raw payloads, the
tenant's name and contact details, the conversation's address, the free texts of the audit
log that concern them (a caretaker's closing note, a manager's search for their name or
number: the entry stays, its text goes). Every export, erasure and purge is written to the
audit log. With Redis, the bus's streams keep no address (see `bot.messaging.bus`) and the
purge drops the entries already processed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import OUTBOX_WAITING, OutboxStatus
from bot.messaging.bus import Bus, RedisBus
from bot.storage.db import Database
from bot.storage.models import (
    AuditLog,
    Conversation,
    Handoff,
    IdentityCode,
    Message,
    Outbox,
    Request,
    RequestEvent,
    Tenant,
)
from bot.storage.store import audit
from bot.storage.uploads import OWNER, UploadStore, key_of

log = logging.getLogger(__name__)

ERASED_TEXT = "[effacé]"
ERASED_PREFIX = "erased:"
# What stays of an NLU result once the text is gone: enough for statistics, nothing quoted.
_NLU_KEEP = ("intent", "confidence", "language", "ms", "skipped")
# Audit details holding free text: a closing note (`resolution`), a search's words (`text`).
_AUDIT_TEXTS = ("resolution", "text")


class TenantNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Erasure:
    conversations: int = 0
    messages: int = 0
    requests: int = 0

    def __add__(self, other: Erasure) -> Erasure:
        return Erasure(
            self.conversations + other.conversations,
            self.messages + other.messages,
            self.requests + other.requests,
        )

    def as_dict(self) -> dict[str, int]:
        return {
            "conversations": self.conversations,
            "messages": self.messages,
            "requests": self.requests,
        }


def months_before(when: datetime, months: int) -> datetime:
    """The same day `months` calendar months earlier (the month's last day if it is shorter)."""
    year, month = divmod(when.year * 12 + when.month - 1 - months, 12)
    month += 1
    day = when.day
    while True:
        try:
            return when.replace(year=year, month=month, day=day)
        except ValueError:
            day -= 1


async def _tenant(s: AsyncSession, reference: str) -> Tenant:
    tenant = (
        (await s.execute(select(Tenant).where(Tenant.reference == reference)))
        .unique()
        .scalar_one_or_none()
    )
    if tenant is None:
        raise TenantNotFound(f"No tenant with reference '{reference}'.")
    return tenant


async def _conversations(s: AsyncSession, tenant: Tenant) -> list[Conversation]:
    """Their linked conversations, and those from their phone or Telegram id not linked yet."""
    where = [Conversation.tenant_id == tenant.id]
    if tenant.phone:
        where.append(Conversation.address == tenant.phone)
    if tenant.telegram_chat_id:
        where.append(
            (Conversation.channel == "telegram") & (Conversation.address == tenant.telegram_chat_id)
        )
    rows = (
        (await s.execute(select(Conversation).where(or_(*where)).order_by(Conversation.id)))
        .unique()
        .scalars()
    )
    return list(rows)


def _row(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in obj.__table__.columns:
        if col.key in skip:
            continue
        value = getattr(obj, col.key)
        out[col.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def export_tenant(db: Database, reference: str, *, actor: str = "cli") -> dict[str, Any]:
    """Everything held on one tenant, as plain JSON-ready data; the export is audited."""
    async with db.transaction() as s:
        tenant = await _tenant(s, reference)
        convs = await _conversations(s, tenant)
        conv_ids = [c.id for c in convs]
        messages = (
            list(
                (
                    await s.execute(
                        select(Message)
                        .where(Message.conversation_id.in_(conv_ids))
                        .order_by(Message.id)
                    )
                ).scalars()
            )
            if conv_ids
            else []
        )
        requests = list(
            (
                await s.execute(
                    select(Request)
                    .where(
                        or_(Request.tenant_id == tenant.id, Request.conversation_id.in_(conv_ids))
                    )
                    .order_by(Request.id)
                )
            ).scalars()
        )
        handoffs = (
            list(
                (
                    await s.execute(
                        select(Handoff)
                        .where(Handoff.conversation_id.in_(conv_ids))
                        .order_by(Handoff.id)
                    )
                ).scalars()
            )
            if conv_ids
            else []
        )
        data = {
            "exported_at": datetime.now(UTC).isoformat(),
            "tenant": _row(tenant),
            "conversations": [_row(c) for c in convs],
            "messages": [
                {**_row(m), "attachments": [_row(a) for a in m.attachments]} for m in messages
            ],
            "requests": [_row(r) for r in requests],
            "handoffs": [_row(h) for h in handoffs],
        }
        await audit(
            s,
            "gdpr_export",
            actor=actor,
            target_type="tenant",
            target_id=reference,
            detail={"conversations": len(convs), "messages": len(messages)},
        )
    return data


async def erase_conversation(
    s: AsyncSession, conv: Conversation, files: list[str] | None = None
) -> Erasure:
    """Erase one conversation's content in the caller's transaction; rows and counts stay.

    The uploads it holds are added to `files` (keys, and "<owner>/" for a web-chat session's
    every upload), for the caller to delete from the store once the transaction is committed."""
    msgs = list(
        (await s.execute(select(Message).where(Message.conversation_id == conv.id))).scalars()
    )
    if files is not None:
        files += [k for m in msgs for a in m.attachments if (k := key_of(a.url))]
        owner = conv.address.removeprefix("web-")
        if conv.channel == "webchat" and OWNER.fullmatch(owner):
            files.append(owner + "/")
    for m in msgs:
        m.text = ERASED_TEXT if m.text else ""
        m.media = []
        m.raw = None
        if m.nlu:
            m.nlu = {k: v for k, v in m.nlu.items() if k in _NLU_KEEP}
        for a in m.attachments:
            a.url = None
            a.file_id = None
            a.data = {}
    reqs = list(
        (await s.execute(select(Request).where(Request.conversation_id == conv.id))).scalars()
    )
    for r in reqs:
        _erase_request(r)
    await _erase_request_events(s, [r.id for r in reqs])
    # The reason says in words what the person had to know: the tenant's words, erased too.
    await s.execute(
        update(Handoff).where(Handoff.conversation_id == conv.id).values(resolution="", reason="")
    )
    await s.execute(delete(IdentityCode).where(IdentityCode.conversation_id == conv.id))
    # Replies not yet delivered are not delivered any more: their address is gone.
    await s.execute(
        update(Outbox)
        .where(Outbox.conversation_id == conv.id, Outbox.status.in_(OUTBOX_WAITING))
        .values(status=OutboxStatus.SUPPRESSED, last_error="erased")
    )
    await s.execute(
        update(Outbox)
        .where(Outbox.conversation_id == conv.id)
        # A provider's error often quotes the number it refused.
        .values(address=f"{ERASED_PREFIX}{conv.id}", text="", media=[], extra={}, last_error=None)
    )
    await _erase_audit_texts(
        s,
        (AuditLog.target_type == "conversation") & (AuditLog.target_id == str(conv.id)),
    )
    if not conv.address.startswith(ERASED_PREFIX):
        conv.address = f"{ERASED_PREFIX}{conv.id}"
    conv.dialogue = {}
    return Erasure(conversations=1, messages=len(msgs), requests=len(reqs))


def _has_text(key: str) -> ColumnElement[bool]:
    value = AuditLog.detail[key].as_string()
    return and_(value.is_not(None), value.not_in(("", ERASED_TEXT)))


async def _erase_audit_texts(s: AsyncSession, where: ColumnElement[bool], keep: Any = None) -> int:
    """Replace the free texts of the matching audit entries by ERASED_TEXT; the entries (who
    did what, when, to which conversation) stay. With `keep`, only the texts for which
    `keep(text)` is False. The number of entries changed."""
    rows = (
        await s.execute(select(AuditLog).where(where, or_(*map(_has_text, _AUDIT_TEXTS))))
    ).scalars()
    changed = 0
    for entry in rows:
        detail = dict(entry.detail)
        for key in _AUDIT_TEXTS:
            text = detail.get(key)
            erasable = isinstance(text, str) and text and text != ERASED_TEXT
            if erasable and (keep is None or not keep(text)):
                detail[key] = ERASED_TEXT
        if detail != entry.detail:
            entry.detail = detail  # a new dict: the JSON column sees the change
            changed += 1
    return changed


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _mentions(tenant: Tenant) -> Any:
    """A test telling whether a text (a manager's search) names this tenant: their name,
    reference, e-mail, phone number (in any spelling: only its last nine digits are
    compared) or Telegram id."""
    words = [
        w.casefold()
        for w in (tenant.first_name, tenant.last_name, tenant.reference, tenant.email or "")
        if len(w.strip()) >= 2
    ]
    numbers = [
        n
        for n in (_digits(tenant.phone or "")[-9:], _digits(tenant.telegram_chat_id or ""))
        if len(n) >= 5
    ]

    def names(text: str) -> bool:
        folded, digits = text.casefold(), _digits(text)
        return any(w in folded for w in words) or any(n in digits for n in numbers)

    return names


def _erase_request(r: Request) -> None:
    r.summary = ERASED_TEXT if r.summary else ""
    r.details = {}


async def _erase_request_events(s: AsyncSession, request_ids: list[int]) -> None:
    """What was said at each step (a tenant's "still leaking", a caretaker's note) goes too."""
    if request_ids:
        await s.execute(
            update(RequestEvent)
            .where(RequestEvent.request_id.in_(request_ids), RequestEvent.note != "")
            .values(note=ERASED_TEXT)
        )


async def delete_files(uploads: UploadStore | None, files: list[str]) -> None:
    """Delete erased conversations' uploads (keys and "<owner>/" prefixes). After the commit:
    a file is never gone while its row still points at it."""
    if uploads is None or not files:
        return
    await uploads.delete([f for f in files if not f.endswith("/")])
    for prefix in {f for f in files if f.endswith("/")}:
        await uploads.delete_prefix(prefix)


async def erase_tenant(
    db: Database, reference: str, *, actor: str = "cli", uploads: UploadStore | None = None
) -> Erasure:
    """Erase a tenant's personal data, their conversations' content and uploads; audited."""
    files: list[str] = []
    async with db.transaction() as s:
        tenant = await _tenant(s, reference)
        total = Erasure()
        for conv in await _conversations(s, tenant):
            total += await erase_conversation(s, conv, files)
        reqs = list(
            (
                await s.execute(
                    select(Request).where(
                        Request.tenant_id == tenant.id, Request.summary != ERASED_TEXT
                    )
                )
            ).scalars()
        )
        for r in reqs:
            _erase_request(r)
        await _erase_request_events(s, [r.id for r in reqs])
        total += Erasure(requests=len(reqs))
        # Managers' searches for this tenant (their name, their number) lose their words.
        names = _mentions(tenant)
        await _erase_audit_texts(
            s,
            AuditLog.target_type == "transcripts",
            keep=lambda text: not names(text),
        )
        await s.execute(delete(IdentityCode).where(IdentityCode.tenant_id == tenant.id))
        if tenant.phone:
            # One-time codes went to the phone on file outside any conversation.
            await s.execute(
                update(Outbox)
                .where(Outbox.conversation_id.is_(None), Outbox.address == tenant.phone)
                .values(address=f"{ERASED_PREFIX}tenant-{tenant.id}", text="", extra={})
            )
        tenant.first_name = ""
        tenant.last_name = ""
        tenant.phone = None
        tenant.telegram_chat_id = None
        tenant.email = None
        tenant.apartment = ""
        tenant.floor = ""
        tenant.vulnerability = ""
        tenant.erased_at = datetime.now(UTC)
        await audit(
            s,
            "gdpr_erase",
            actor=actor,
            target_type="tenant",
            target_id=reference,
            detail=total.as_dict(),
        )
    await delete_files(uploads, files)
    return total


async def purge(
    db: Database,
    retention_months: int,
    *,
    actor: str = "cli",
    now: datetime | None = None,
    bus: Bus | None = None,
    uploads: UploadStore | None = None,
) -> Erasure:
    """Erase every conversation whose last message is older than the retention period and its
    uploads, the free texts of audit entries as old, and (Redis bus) the stream entries
    processed."""
    cutoff = months_before(now or datetime.now(UTC), retention_months)
    async with db.transaction() as s:
        texts = await _erase_audit_texts(s, AuditLog.at < cutoff)
    if texts:
        log.info("retention: the texts of %s audit entries erased", texts)
    if isinstance(bus, RedisBus):
        try:
            dropped = await bus.trim_processed()
        except Exception as exc:
            log.warning("retention: bus streams not trimmed (%s)", type(exc).__name__)
        else:
            if dropped:
                log.info("retention: %s processed bus entries dropped", dropped)
    total = Erasure()
    while True:
        # In batches, each its own transaction: a big first purge does not hold locks for long.
        files: list[str] = []
        async with db.transaction() as s:
            convs = list(
                (
                    await s.execute(
                        select(Conversation)
                        .where(
                            Conversation.last_message_at < cutoff,
                            ~Conversation.address.startswith(ERASED_PREFIX),
                        )
                        .order_by(Conversation.id)
                        .limit(200)
                    )
                )
                .unique()
                .scalars()
            )
            batch = Erasure()
            for conv in convs:
                batch += await erase_conversation(s, conv, files)
            if convs:
                await audit(
                    s,
                    "gdpr_purge",
                    actor=actor,
                    target_type="conversations",
                    target_id=f"before {cutoff.date().isoformat()}",
                    detail={**batch.as_dict(), "retention_months": retention_months},
                )
        await delete_files(uploads, files)
        total += batch
        if len(convs) < 200:
            break
    if total.conversations:
        log.info("retention: %s conversation(s) erased", total.conversations)
    return total
