"""Alerts to staff phones outside a tenant's thread: how to reach someone, and flood reports.

A flood (the web chat's limits tripping, or many reports grouped into one alert) is told to
the on-call team and the managers once an hour per kind, whatever the number of processes:
the outbox's idempotency key (`flood:<hour>:<staff>`) makes a second row impossible. One
report an hour in all, whatever its cause: a flood trips several limits at once.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import OutboxStatus
from bot.storage.models import Outbox, Role, StaffUser
from bot.storage.store import audit

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

FLOOD_TEXTS = {
    "webchat": {
        "fr": "Relais : afflux anormal sur le chat web, de nouvelles conversations sont "
        "refusées (limites atteintes). Les locataires gardent la consigne d'urgence. {url}",
        "en": "Relais: unusual flood on the web chat, new conversations are being refused "
        "(limits reached). Tenants still get the emergency advice. {url}",
    },
    "alerts": {
        "fr": "Relais : afflux anormal de signalements ({what}). Les alertes sont regroupées ; "
        "voir la file. {url}",
        "en": "Relais: unusual flood of reports ({what}). Alerts are being grouped; see the "
        "queue. {url}",
    },
}


# The audit action recording a staff alert that could not even be queued (nobody to reach);
# an alert the provider refused stays in the outbox as `failed`. The console shows both.
ALERT_FAILED = "alert_failed"


def failed_alert_events(extra: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The console's live events for a staff alert that failed for good: one per
    conversation it was about (ids only, as every console event)."""
    extra = extra or {}
    if not extra.get("staff_alert"):
        return []
    ids = extra.get("conversations") or [extra.get("conversation_id")]
    return [{"type": ALERT_FAILED, "conversation_id": i} for i in ids if isinstance(i, int)]


def contact_of(rt: Runtime, staff: StaffUser) -> tuple[str, str] | None:
    """(channel, address) to reach a staff member: Telegram when both sides have it, else SMS."""
    if staff.telegram_chat_id and "telegram" in rt.channels:
        return "telegram", staff.telegram_chat_id
    if staff.phone:
        return "sms", staff.phone
    return None


async def queue_flood_report(
    s: AsyncSession, rt: Runtime, kind: str, *, what: str = "", now: datetime | None = None
) -> int:
    """Queue a flood report (`kind`: what tripped) to on-call and managers, in the caller's
    transaction, unless this hour's is already queued; returns the alerts queued."""
    now = now or rt.clock()
    hour = now.strftime("%Y%m%d%H")
    people = (
        await s.execute(
            select(StaffUser)
            .where(
                StaffUser.role.in_((Role.ONCALL.value, Role.MANAGER.value)),
                StaffUser.active.is_(True),
            )
            .order_by(StaffUser.id)
        )
    ).scalars()
    queued = 0
    for person in people:
        contact = contact_of(rt, person)
        key = f"flood:{hour}:{person.id}"
        if contact is None or await s.scalar(
            select(Outbox.id).where(Outbox.idempotency_key == key)
        ):
            continue
        lang = person.language if person.language in ("fr", "en") else "fr"
        url = f"{rt.settings.public_url.rstrip('/')}/console"
        s.add(
            Outbox(
                message_id=None,
                conversation_id=None,
                channel=contact[0],
                address=contact[1],
                text=FLOOD_TEXTS[kind][lang].format(url=url, what=what),
                extra={"staff_alert": "flood", "flood": kind},
                idempotency_key=key,
                status=OutboxStatus.PENDING,
                next_attempt_at=now,
            )
        )
        queued += 1
    if queued:
        await audit(s, "flood", actor="relais", target_type="alerts", target_id=kind)
        log.warning("flood of %s: reported to %s on-call/manager phone(s)", kind, queued)
    return queued


async def report_flood(rt: Runtime, kind: str, *, what: str = "") -> int:
    """`queue_flood_report` in its own transaction; never raises (a report is best effort)."""
    try:
        async with rt.db.transaction() as s:
            queued = await queue_flood_report(s, rt, kind, what=what)
    except IntegrityError:
        return 0  # another process queued this hour's report at the same moment
    except Exception as exc:
        log.warning("flood report not queued (%s)", type(exc).__name__)
        return 0
    if queued:
        rt.outbox.wake()
    return queued
