"""The audit log in words: "Karim Benali a pris la conversation de Nadia Haddad (L-10231)".

Entries are stored as they are (`bot.storage.store.audit`: who, action, target, detail); the
sentences are written when the page is shown, with the names the console already shows a
manager (staff display names, a tenant's name and reference). A tenant erased under the GDPR
has no name left, so their conversations read "la conversation n° 12"; the free texts kept in
details (a closing note, a search) are the ones `bot.ops.gdpr` replaces by "[effacé]".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.texts import place
from bot.storage.models import Conversation, Message, StaffUser, Tenant
from handoff.auth import FORBIDDEN
from handoff.i18n import MESSAGES, translate
from handoff.reports import AuditRow

QUOTED = 160  # characters of a free text (a closing note, a search) shown in a sentence


@dataclass(frozen=True, slots=True)
class AuditLine:
    id: int
    at: datetime
    staff_id: int | None
    who: str
    action: str
    sentence: str
    link: str = ""  # the conversation the entry is about, for a manager to open
    quote: str = ""  # a free text of the entry (closing note, search words), shown quoted
    refused: bool = False


def action_label(lang: str, action: str) -> str:
    key = f"audit.action.{action}"
    return translate(lang, key) if key in MESSAGES else action


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTED else text[: QUOTED - 1] + "…"


async def _names(s: AsyncSession, rows: list[AuditRow]) -> tuple[dict[str, str], dict[int, str]]:
    """Staff names by login, and tenants' "Name (reference)" by conversation id."""
    staff: dict[str, str] = {}
    for sid, login, name in await s.execute(
        select(StaffUser.id, StaffUser.login, StaffUser.display_name)
    ):
        staff[login] = staff[f"id:{sid}"] = name or login  # by login, and by id for alerts
    conv_ids: set[int] = set()
    message_ids: set[int] = set()
    for r in rows:
        if r.target_type == "conversation" and r.target_id.isdigit():
            conv_ids.add(int(r.target_id))
        if r.target_type == "message" and r.target_id.isdigit():
            message_ids.add(int(r.target_id))
        cid = r.detail.get("conversation_id")
        if isinstance(cid, int):
            conv_ids.add(cid)
    if message_ids:
        for (cid,) in await s.execute(
            select(Message.conversation_id).where(Message.id.in_(sorted(message_ids)))
        ):
            conv_ids.add(cid)
    tenants: dict[int, str] = {}
    if conv_ids:
        for cid, first, last, reference, erased in await s.execute(
            select(
                Conversation.id,
                Tenant.first_name,
                Tenant.last_name,
                Tenant.reference,
                Tenant.erased_at,
            )
            .join(Tenant, Tenant.id == Conversation.tenant_id)
            .where(Conversation.id.in_(sorted(conv_ids)))
        ):
            name = f"{first} {last}".strip()
            if erased is None and name:
                tenants[cid] = f"{name} ({reference})"
    return staff, tenants


async def audit_lines(s: AsyncSession, rows: list[AuditRow], lang: str) -> list[AuditLine]:
    staff, tenants = await _names(s, rows)
    return [_line(r, lang, staff, tenants) for r in rows]


def _conversation(lang: str, cid: int | None, tenants: dict[int, str]) -> str:
    if cid is None:
        return translate(lang, "audit.a_conversation")
    name = tenants.get(cid)
    if name:
        return translate(lang, "audit.conv_of", name=name, of_name=place(name, "de"))
    return translate(lang, "audit.conv_n", n=cid)


def _line(r: AuditRow, lang: str, staff: dict[str, str], tenants: dict[int, str]) -> AuditLine:
    who = r.staff_name or staff.get(r.actor) or r.actor or translate(lang, "mgr.audit.system")
    if r.actor == "relais":
        who = translate(lang, "app.name")  # the bot and its background jobs
    d = r.detail
    cid: int | None = None
    if r.target_type == "conversation" and r.target_id.isdigit():
        cid = int(r.target_id)
    elif isinstance(d.get("conversation_id"), int):
        cid = d["conversation_id"]
    conv = _conversation(lang, cid, tenants)
    values: dict[str, Any] = {"who": who, "conv": conv, "target": r.target_id}
    quote = ""
    key = f"audit.say.{r.action}"
    if r.action in ("close", "give_back"):
        quote = str(d.get("resolution") or "")
        if r.action == "give_back" or quote == "returned_to_bot":
            key, quote = "audit.say.give_back", ""
    elif r.action == "transfer":
        values["to"] = staff.get(str(d.get("to", "")), str(d.get("to", "")))
    elif r.action == "search":
        quote = str(d.get("text") or "")
        if not quote:
            key = "audit.say.search_filters"
    elif r.action == "export":
        key = "audit.say.export_nlu" if r.target_type == "nlu" else "audit.say.export"
        values["n"] = d.get("examples", d.get("rows", 0))
    elif r.action == "relabel":
        values["n"] = r.target_id
        corrected, predicted = d.get("corrected"), d.get("predicted")
        values["intent"] = _intent(lang, corrected)
        values["read"] = _intent(lang, predicted)
        if d.get("verdict") == "not_emergency":
            key = "audit.say.not_emergency"
        elif d.get("verdict") == "emergency":
            key = "audit.say.was_emergency"
        elif not corrected:
            key = "audit.say.relabel_undo"
    elif r.action == "login_failed" and d.get("locked"):
        key = "audit.say.login_locked"
    elif r.action == FORBIDDEN:
        reason = str(d.get("reason") or "other")
        key = f"audit.say.forbidden_{reason}"
        values["path"] = str(d.get("path") or r.target_id)
    elif r.action == "alert":
        values["n"] = d.get("alerts", 0)
    elif r.action == "alert_failed":
        values["to"] = staff.get(f"id:{d.get('staff_id')}") or translate(
            lang, f"role.{d.get('to')}"
        )
    elif r.action == "escalate":
        values["n"] = len(d.get("to") or [])
    elif r.action == "edit_facts":
        key = "audit.say.reset_facts" if d.get("reset") else "audit.say.edit_facts"
    if key not in MESSAGES:
        key = "audit.say.other"
        values["action"] = action_label(lang, r.action)
        values["target"] = f"{r.target_type} {r.target_id}".strip()
    return AuditLine(
        r.id,
        r.at,
        r.staff_id,
        who,
        r.action,
        translate(lang, key, **values),
        link=f"/console/manager/conversations/{cid}" if cid is not None else "",
        quote=_shorten(quote),
        refused=r.action == FORBIDDEN,
    )


def _intent(lang: str, intent: object) -> str:
    if not isinstance(intent, str) or not intent:
        return "—"
    key = f"intent.{intent}"
    return translate(lang, key) if key in MESSAGES else intent
