"""The managers' NLU review: what the bot decided on tenant messages and got wrong.

Listed: messages the classifier was unsure of (or did not understand), the emergency layer's
false alarms (an emergency read or raised, then relabelled, or closed by a caretaker as not an
emergency) and its misses (a message read as something else, relabelled as an emergency, or
followed within a day by an emergency in the same conversation: the hazard was reported
later). Not listed: replies to an identification or a rating question (a tenant reference, a
name, an address, the 6-digit code, "4", "merci"), which the dialogue reads without the
classifier; the worker keeps the question a message answered with its NLU result
(`nlu["answering"]`, bot.worker.pipeline), and older messages are recognised by their shape.

The corrections are the messages' `corrected_intent`, which the Rasa YAML export reads
(`handoff.reports.corrected_examples`): a message marked "not an emergency" leaves the emergency
examples for the intent chosen.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import Author, Direction
from bot.dialogue import reading
from bot.ops.gdpr import ERASED_TEXT
from bot.storage.fold import fold
from bot.storage.models import Conversation, Handoff, Message, StaffUser, Tenant
from handoff.reports import LOW_CONFIDENCE, Period
from nlu.types import HAZARDS, INTENTS

KINDS = ("todo", "false_alarm", "missed", "emergency", "unsure", "labelled", "all")
EMERGENCY = "emergency"
# Questions whose answer the dialogue reads itself: identification (a reference, a name, the
# code sent by SMS, the address on-call needs) and the rating after a closed conversation.
NOT_NLU_ANSWERS = frozenset({"identity", "code", "emergency_address", "satisfaction"})
# Older messages, stored before the worker kept the question: the shapes of those answers.
_CODE = re.compile(r"^\s*\d{6}\s*$")
_RATING = re.compile(r"^\s*[1-5]\s*(/\s*5|sur\s*5|[ée]toiles?|stars?)?\s*[.!]?\s*$", re.I)
_REFERENCE = re.compile(r"^\s*(ref\w*\.?\s*:?\s*)?[A-Z]{1,3}-?\d{4,8}\s*$", re.I)
# A caretaker's closing note saying the alarm was false, or that a need was in fact urgent.
_NOT_URGENT = re.compile(
    r"pas (une |d')?urgen|pas urgent|non urgent|rien d'urgent|fausse alerte|fausse alarme"
    r"|not (an )?emergency|false alarm"
)
_URGENT = re.compile(r"urgen|danger|emergency")
# A hazard reported this long after a message counts as missed on that message.
MISS_WINDOW = timedelta(hours=24)
SCAN = 3000  # the newest tenant messages of the period looked at


@dataclass(slots=True)
class ReviewItem:
    id: int
    conversation_id: int
    created_at: datetime
    channel: str
    text: str
    intent: str
    confidence: float | None
    corrected_intent: str | None
    ranking: list[tuple[str, float]]
    hazard: str | None = None
    raised: bool = False  # the bot raised an emergency (alert and safety text)
    outcome: str = "bot"  # bot | handoff | emergency | safety_question | closed
    closed_by: str = ""
    resolution: str = ""
    tenant: str = ""
    tags: set[str] = field(default_factory=set)
    later: str = ""  # the later message that reported the hazard (a miss)

    @property
    def emergency(self) -> bool:
        return self.intent == EMERGENCY


def best_other(nlu: dict[str, Any] | None) -> str:
    """The intent a "not an emergency" correction takes when the manager chose none: the
    NLU's best reading other than emergency (a leak read as a flood is most often a repair)."""
    for intent, _ in _ranking(nlu):
        if intent in INTENTS and intent != EMERGENCY:
            return intent
    return "repair" if _hazard(nlu) in ("flooding", "water_electric") else "out_of_scope"


def not_nlu_answer(nlu: dict[str, Any] | None, text: str) -> bool:
    """A reply to an identification or rating question: not a classifier decision."""
    if (nlu or {}).get("answering") in NOT_NLU_ANSWERS:
        return True
    return bool(_CODE.match(text) or _RATING.match(text) or _REFERENCE.match(text))


def says_not_urgent(resolution: str) -> bool:
    return bool(_NOT_URGENT.search(fold(resolution)))


def says_urgent(resolution: str) -> bool:
    folded = fold(resolution)
    return bool(_URGENT.search(folded)) and not _NOT_URGENT.search(folded)


def _ranking(nlu: dict[str, Any] | None) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for item in (nlu or {}).get("ranking") or []:
        if isinstance(item, list | tuple) and len(item) == 2:
            out.append((str(item[0]), float(item[1])))
        elif isinstance(item, dict) and "intent" in item:
            out.append((str(item["intent"]), float(item.get("confidence", 0))))
    return out


def _hazard(nlu: dict[str, Any] | None, text: str = "") -> str | None:
    """The danger named: the NLU's hazard (or risk) entity, else the dialogue's own reading
    of the text (`bot.dialogue.reading.hazard`, which decides the safety text too)."""
    for e in (nlu or {}).get("entities") or []:
        if isinstance(e, dict) and e.get("type") in ("hazard", "risk"):
            value = str(e.get("value", ""))
            if value in HAZARDS:
                return value
    return reading.hazard(text) if text else None


def _tenant_name(tenant: Tenant | None) -> str:
    if tenant is None or tenant.erased_at is not None:
        return ""
    name = f"{tenant.first_name} {tenant.last_name}".strip()
    return f"{name} ({tenant.reference})" if name else tenant.reference


async def review_items(
    s: AsyncSession,
    *,
    kind: str = "todo",
    period: Period | None = None,
    threshold: float = LOW_CONFIDENCE,
) -> tuple[list[ReviewItem], bool]:
    """The review's items of one kind (see KINDS), newest first, and whether the newest SCAN
    messages of the period were not all of them (older ones were not looked at)."""
    conditions: list[Any] = [
        Message.direction == Direction.IN.value,
        Message.author == Author.TENANT.value,
        Message.intent.is_not(None),
        Message.text != ERASED_TEXT,  # erased under the GDPR: nothing left to read
    ]
    if period is not None:
        conditions.append(period.contains(Message.created_at))
    rows = list(
        (
            await s.execute(
                select(Message)
                .where(*conditions)
                .order_by(Message.created_at.desc(), Message.id.desc())
                .limit(SCAN)
            )
        ).scalars()
    )
    conv_ids = {m.conversation_id for m in rows}
    handoffs: dict[int, list[Handoff]] = defaultdict(list)
    names: dict[int, str] = {}
    tenants: dict[int, str] = {}
    if conv_ids:
        for h in (
            await s.execute(
                select(Handoff)
                .where(Handoff.conversation_id.in_(sorted(conv_ids)))
                .order_by(Handoff.created_at, Handoff.id)
            )
        ).scalars():
            handoffs[h.conversation_id].append(h)
        names = {
            sid: name or login
            for sid, name, login in await s.execute(
                select(StaffUser.id, StaffUser.display_name, StaffUser.login)
            )
        }
        for cid, tenant in (
            await s.execute(
                select(Conversation.id, Tenant)
                .join(Tenant, Tenant.id == Conversation.tenant_id)
                .where(Conversation.id.in_(sorted(conv_ids)))
            )
        ).all():
            tenants[cid] = _tenant_name(tenant)

    by_conv: dict[int, list[Message]] = defaultdict(list)
    for m in sorted(rows, key=lambda m: (m.created_at, m.id)):
        by_conv[m.conversation_id].append(m)

    items: dict[int, ReviewItem] = {}
    for cid, messages in by_conv.items():
        for i, m in enumerate(messages):
            if not_nlu_answer(m.nlu, m.text) and m.corrected_intent is None:
                continue
            nxt = messages[i + 1].created_at if i + 1 < len(messages) else None
            item = _item(m, handoffs[cid], nxt, names, threshold)
            item.tenant = tenants.get(cid, "")
            items[m.id] = item
        _misses(messages, items)
    out = [it for it in items.values() if _in_kind(it, kind)]
    out.sort(key=lambda it: (it.created_at, it.id), reverse=True)
    return out, len(rows) >= SCAN


def _item(
    m: Message,
    handoffs: list[Handoff],
    next_at: datetime | None,
    names: dict[int, str],
    threshold: float,
) -> ReviewItem:
    item = ReviewItem(
        m.id,
        m.conversation_id,
        m.created_at,
        m.channel,
        m.text,
        m.intent or "",
        m.confidence,
        m.corrected_intent,
        _ranking(m.nlu),
        hazard=_hazard(m.nlu, m.text),
    )
    # The handoff this turn opened (or raised): created after the message, before the next.
    turn = [
        h
        for h in handoffs
        if h.created_at >= m.created_at - timedelta(seconds=1)
        and (next_at is None or h.created_at < next_at)
    ]
    emergency = next((h for h in turn if h.intent == EMERGENCY), None)
    h = emergency or (turn[0] if turn else None)
    if emergency is not None:
        item.raised, item.outcome = True, "emergency"
    elif item.emergency:
        item.outcome = "safety_question"  # a classifier-only danger: one question first
    elif h is not None:
        item.outcome = "handoff"
    if h is not None and h.closed_at is not None:
        item.closed_by = names.get(h.taken_by or 0, "")
        item.resolution = h.resolution or ""
    if m.corrected_intent is not None:
        item.tags.add("labelled")
    if item.emergency:
        item.tags.add("emergency")
        relabelled = m.corrected_intent not in (None, EMERGENCY)
        if relabelled or (item.raised and says_not_urgent(item.resolution)):
            item.tags.add("false_alarm")
    else:
        if m.corrected_intent == EMERGENCY or (
            h is not None and not item.raised and says_urgent(item.resolution)
        ):
            item.tags.add("missed")
        if (m.confidence is not None and m.confidence < threshold) or m.intent == "out_of_scope":
            item.tags.add("unsure")
    return item


# What a hazard reported later may have been missed on: a need, not a greeting or a yes.
_MISSABLE = frozenset({"repair", "nuisance", "bulky_waste", "question", "out_of_scope"})


def _misses(messages: list[Message], items: dict[int, ReviewItem]) -> None:
    """A later emergency (not the answer to the safety question, which the bot asked on the
    earlier message) marks the need told before it, within MISS_WINDOW, as missed."""
    for i, m in enumerate(messages):
        later = items.get(m.id)
        if later is None or not later.emergency or "false_alarm" in later.tags:
            continue
        if (m.nlu or {}).get("answering") == "safety":
            continue
        for earlier in reversed(messages[:i]):
            if m.created_at - earlier.created_at > MISS_WINDOW:
                break
            item = items.get(earlier.id)
            if item is None or item.emergency:
                break  # the danger was read then already
            if item.intent in _MISSABLE or "unsure" in item.tags:
                if item.corrected_intent in (None, EMERGENCY):
                    item.tags.add("missed")
                    item.later = m.text
                break


def _in_kind(item: ReviewItem, kind: str) -> bool:
    tags = item.tags
    if kind == "todo":
        return item.corrected_intent is None and bool(tags & {"false_alarm", "missed", "unsure"})
    if kind == "all":
        return bool(tags)
    return kind in tags


def page_of(items: list[ReviewItem], page: int, size: int) -> list[ReviewItem]:
    return items[(page - 1) * size : page * size]


def hazard_intents() -> list[str]:
    """The intents a "not an emergency" correction may choose."""
    return [i for i in INTENTS if i != EMERGENCY]
