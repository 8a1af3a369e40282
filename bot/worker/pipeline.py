"""The worker's pipeline: one stored inbound message → tenant → NLU → dialogue → replies/handoff.

Processing is idempotent: the message is marked processed in the same transaction that stores
its replies, so a message delivered twice by the bus (a worker crashed before acknowledging)
produces its replies once.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from bot import dialogue as dlg
from bot.core.phones import DEFAULT_REGION
from bot.dialogue.content import Content
from bot.dialogue.faq import Faq, load_faq
from bot.dialogue.texts import Texts
from bot.messaging.bus import Bus
from bot.messaging.webhooks import handoff_json
from bot.storage.db import Database
from bot.storage.models import (
    Conversation,
    ConversationState,
    Handoff,
    Incident,
    Message,
    OptOut,
    Outbox,
    Request,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.store import next_request_reference, outbound_message, outbox_row
from bot.worker.lifecycle import Actor, Change, Lifecycle, RequestStatus, TransitionRefused
from nlu.types import Parse

if TYPE_CHECKING:
    from bot.messaging.outbox import OutboxDispatcher
    from nlu.engine import Engine

log = logging.getLogger(__name__)

SMS_CHANNELS = ("sms", "whatsapp")
_STOP = re.compile(r"^\s*(stop|stop sms|arret|arrêt|unsubscribe)\s*[.!]?\s*$", re.IGNORECASE)
# Letters of no French or English word (Polish, Turkish, Romanian...): the detector may still
# have said "fr" for lack of stop words in that language.
# (No IGNORECASE: the dotless ı would then match every i.)
_FOREIGN_LETTERS = re.compile("[ąćęłńśźżğşţőűøåßĄĆĘŁŃŚŹŻĞŞŢŐŰØÅ]")
REQUESTS_SHOWN = 20  # a tenant's latest requests the dialogue sees (status questions)
NAME_TTL = 60.0  # seconds a caretaker's display name is kept in memory
_START = re.compile(r"^\s*(start|unstop|reprise)\s*[.!]?\s*$", re.IGNORECASE)


@dataclass(slots=True)
class Reply:
    text: str
    key: str  # the outbox idempotency key: one reply per (message, position), ever
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Prefetched:
    """What a batch's turns read, fetched once for the whole batch (one query each instead of
    one per message). A turn that changes something drops the entry, and the next turn that
    needs it reads it again; what is not here is read as usual."""

    tenants: dict[tuple[str, str], Tenant] = field(default_factory=dict)  # (channel, address)
    unknown: set[tuple[str, str]] = field(default_factory=set)  # looked up: no tenant
    requests: dict[int, tuple[dlg.RequestView, ...]] = field(default_factory=dict)
    incidents: dict[tuple[int, str], tuple[dlg.IncidentView, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class Effects:
    """What the turn decided to say, and what to do once the transaction has committed."""

    events: list[dict[str, Any]] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    batch: Prefetched = field(default_factory=Prefetched)

    def reply(self, text: str, key: str, extra: dict[str, Any] | None = None) -> None:
        self.replies.append(Reply(text, key, dict(extra or {})))


class Pipeline:
    def __init__(
        self,
        *,
        db: Database,
        engine: Engine,
        bus: Bus,
        texts: Texts,
        faq: Faq | None = None,
        content: Content | None = None,
        phone_region: str = DEFAULT_REGION,
        landlord: dict[str, Any] | None = None,
        timezone: str = "Europe/Paris",
        clock: Callable[[], datetime] | None = None,
        on_outbox: Callable[[], None] | None = None,
        outbox: OutboxDispatcher | None = None,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.db = db
        self.engine = engine
        self.bus = bus
        self.texts = texts
        # The FAQ sits next to the texts unless given (tests give their own).
        self.faq = faq if faq is not None or texts.data_dir is None else load_faq(texts.data_dir)
        # Managers' edits of texts and FAQ answers, checked at each batch (bot.dialogue.content).
        self.content = content
        self.phone_region = phone_region
        self.landlord = landlord or {}
        self.tz = ZoneInfo(timezone)
        self.clock = clock or (lambda: datetime.now(UTC))
        self.on_outbox = on_outbox
        # When set, replies are sent by this process as soon as the turn commits.
        self.outbox = outbox
        # Requests' history, deadlines and webhooks (bot.lifecycle); absent in bare tests.
        self.lifecycle = lifecycle
        self.processed = 0
        self._names: dict[str, tuple[float, str]] = {}

    async def process(self, message_id: int) -> None:
        await self.process_many([message_id])

    async def process_many(self, message_ids: list[int]) -> None:
        """The turns of several messages (a worker's batch under load) in one transaction:
        claim them, read them, decide, store the replies; then send the replies (those of
        conversations with nothing earlier undelivered) and announce the events.

        Messages are taken in the order given, which keeps each conversation's order. All or
        nothing: a failure rolls the whole batch back, and the caller takes the messages one
        by one."""
        turns: list[tuple[Conversation, Effects]] = []
        async with self.db.transaction() as s:
            messages = await self._claim(s, message_ids)
            if not messages:
                return
            if self.content is not None:
                if self.content.stale:
                    await self.content.refresh(s)
                # Refreshed here or by the console of this process: the current one either way.
                self.texts = self.content.texts
                self.faq = self.content.current_faq()
            conversations = await self._conversations(s, {m.conversation_id for m in messages})
            batch = (
                await self._prefetch(s, list(conversations.values()))
                if len(messages) > 1
                else Prefetched()
            )
            for msg in messages:
                started = time.perf_counter()
                parse = await self.engine.parse(msg.text)
                nlu_ms = (time.perf_counter() - started) * 1000
                msg.nlu = {**parse.to_dict(), "ms": round(nlu_ms, 3)}
                msg.intent = parse.intent
                msg.confidence = parse.confidence
                conv = conversations[msg.conversation_id]
                if msg.created_at > conv.last_message_at:
                    # The gateway skips this update while a worker holds the conversation.
                    conv.last_message_at = msg.created_at
                fx = Effects(batch=batch)
                await self._handle(s, msg, conv, parse, fx)
                turns.append((conv, fx))
            claimed, deferred = await self._store_replies(s, turns)
        self.processed += len(messages)
        if self.outbox is not None and claimed:
            self.outbox.send_claimed(claimed)
        if deferred:
            if self.outbox is not None:
                self.outbox.waiting_behind(deferred)
            elif self.on_outbox:
                self.on_outbox()
        events = [e for _conv, fx in turns for e in fx.events]
        if events:
            try:
                await self.bus.publish_many(events)
            except Exception as exc:  # the console misses a live event; it reloads from the DB
                log.warning("could not publish events (%s)", type(exc).__name__)

    async def _claim(self, s: AsyncSession, message_ids: list[int]) -> list[Message]:
        # An UPDATE, not a SELECT: it takes the rows' write locks (PostgreSQL) or the database's
        # (SQLite) first, so of two workers handed the same message only one goes on; the
        # rollback of a failed batch gives the messages back.
        stmt = (
            update(Message)
            .where(self.db.one_of(Message.id, message_ids), Message.processed_at.is_(None))
            .values(processed_at=self.clock())
            .returning(Message)
            .options(raiseload(Message.attachments))
            .execution_options(synchronize_session=False)
        )
        order = {mid: i for i, mid in enumerate(message_ids)}
        return sorted((await s.execute(stmt)).scalars(), key=lambda m: order[m.id])

    async def _conversations(self, s: AsyncSession, ids: set[int]) -> dict[int, Conversation]:
        # Locked in id order, so two batches never wait on each other in a circle.
        stmt = (
            select(Conversation)
            .where(self.db.one_of(Conversation.id, ids))
            .order_by(Conversation.id)
        )
        if self.db.dialect == "postgresql":
            # NO KEY UPDATE: two workers still wait on each other, but not the gateway: storing
            # a new message (its foreign key takes KEY SHARE) goes on while a batch runs.
            stmt = stmt.with_for_update(of=Conversation, key_share=True)
        return {c.id: c for c in (await s.execute(stmt)).unique().scalars()}

    async def _prefetch(self, s: AsyncSession, convs: list[Conversation]) -> Prefetched:
        """Tenants of the batch's unidentified senders, then the requests and open incidents
        of every tenant of the batch: three queries whatever the batch's size."""
        got = Prefetched()
        by_phone = {
            (c.channel, c.address)
            for c in convs
            if c.tenant_id is None and _identified_by_phone(c.channel, c.address)
        }
        by_chat = {
            (c.channel, c.address) for c in convs if c.tenant_id is None and c.channel == "telegram"
        }
        if by_phone or by_chat:
            phones = {a for _ch, a in by_phone}
            chats = {a for _ch, a in by_chat}
            found = (
                (
                    await s.execute(
                        select(Tenant).where(
                            or_(
                                self.db.one_of(Tenant.phone, phones),
                                self.db.one_of(Tenant.telegram_chat_id, chats),
                            )
                        )
                    )
                )
                .unique()
                .scalars()
            )
            for t in found:
                for channel, address in by_phone:
                    if address == t.phone:
                        got.tenants[(channel, address)] = t
                if ("telegram", t.telegram_chat_id) in by_chat:
                    got.tenants[("telegram", str(t.telegram_chat_id))] = t
            got.unknown = (by_phone | by_chat) - set(got.tenants)
        tenants = {c.tenant for c in convs if c.tenant is not None} | set(got.tenants.values())
        if not tenants:
            return got
        for t in tenants:
            got.requests[t.id] = ()
            if t.residence_id is not None:
                got.incidents[(t.residence_id, t.building)] = ()
        rows = (
            await s.execute(
                select(Request)
                .where(self.db.one_of(Request.tenant_id, {t.id for t in tenants}))
                .order_by(Request.id.desc())
            )
        ).scalars()
        for r in rows:
            views = got.requests[r.tenant_id]  # type: ignore[index]
            if len(views) < REQUESTS_SHOWN:
                got.requests[r.tenant_id] = (*views, _request_view(r))  # type: ignore[index]
        residences = {rid for rid, _b in got.incidents}
        if residences:
            found_incidents = (
                await s.execute(
                    select(Incident).where(
                        self.db.one_of(Incident.residence_id, residences),
                        Incident.status == "open",
                    )
                )
            ).scalars()
            for i in found_incidents:
                key = (i.residence_id, i.building)
                if key in got.incidents:
                    got.incidents[key] = (*got.incidents[key], _incident_view(i))
        return got

    async def _store_replies(
        self, s: AsyncSession, turns: list[tuple[Conversation, Effects]]
    ) -> tuple[list[list[Outbox]], set[int]]:
        """Store the batch's replies (two INSERTs whatever their number). A conversation with
        nothing earlier waiting in the outbox gets its rows stored already claimed by this
        process (status `sending`, with a lease), to send right after the commit with no round
        through the dispatcher; if this process dies first, the lease runs out and the
        dispatcher sends them. Returns those rows, one list per conversation in order, and
        the conversations whose rows were left to the dispatcher."""
        replies = [(conv, r) for conv, fx in turns for r in fx.replies]
        if not replies:
            return [], set()
        messages = [outbound_message(conv, r.text) for conv, r in replies]
        s.add_all(messages)
        await s.flush()
        free = await self._free_to_send(s, replies)
        # Leases are read against the dispatcher's clock.
        due = self.outbox.clock() if self.outbox is not None else datetime.now(UTC)
        lease_until = due + self.outbox.lease if self.outbox is not None else None
        claimed: dict[int, list[Outbox]] = {}
        deferred: set[int] = set()
        for (conv, r), m in zip(replies, messages, strict=True):
            direct = conv.id in free
            row = outbox_row(
                conv,
                m,
                key=r.key,
                extra=r.extra,
                due=due,
                claimed_until=lease_until if direct else None,
            )
            s.add(row)
            if direct:
                claimed.setdefault(conv.id, []).append(row)
            else:
                deferred.add(conv.id)
        return list(claimed.values()), deferred

    async def _free_to_send(
        self, s: AsyncSession, replies: list[tuple[Conversation, Reply]]
    ) -> set[int]:
        """The conversations whose replies may leave at once: none earlier undelivered (order),
        and the number not opted out (else the dispatcher records the suppression)."""
        if self.outbox is None:
            return set()
        convs = {c.id: c for c, _r in replies if self.outbox.can_send(c.channel)}
        if not convs:
            return set()
        busy = set(
            (
                await s.execute(
                    select(Outbox.conversation_id)
                    .where(
                        self.db.one_of(Outbox.conversation_id, convs),
                        Outbox.status.in_(("pending", "sending")),
                    )
                    .distinct()
                )
            ).scalars()
        )
        # Only SMS and WhatsApp record opt-outs; a confirmation of STOP is forced through.
        unforced = {c.id for c, r in replies if not r.extra.get("force")}
        sms = [c for c in convs.values() if c.channel in SMS_CHANNELS and c.id in unforced]
        opted: set[tuple[str, str]] = set()
        if sms:
            rows = await s.execute(
                select(OptOut.channel, OptOut.address).where(
                    self.db.one_of(OptOut.address, {c.address for c in sms})
                )
            )
            opted = {(channel, address) for channel, address in rows.tuples()}
        return {
            cid
            for cid, c in convs.items()
            if cid not in busy and (c.id not in unforced or (c.channel, c.address) not in opted)
        }

    # -----------------------------------------------------------------------------------

    async def _handle(
        self, s: AsyncSession, msg: Message, conv: Conversation, parse: Parse, fx: Effects
    ) -> None:
        if conv.channel in SMS_CHANNELS and await self._opt_out_keywords(s, msg, conv, fx):
            return
        tenant = await self._identify(s, conv, fx.batch)
        linked_by_contact = False
        if tenant is None:
            tenant = await self._link_by_shared_contact(s, msg, conv)
            linked_by_contact = tenant is not None
        residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
        event = {
            "type": "message",
            "conversation_id": conv.id,
            "message_id": msg.id,
            "residence_id": conv.residence_id,
            "direction": "in",
            "state": conv.state,
            "intent": parse.intent,
        }
        fx.events.append(event)
        if conv.state == ConversationState.CLOSED.value:
            # A tenant writing again after closing goes back to the bot first.
            conv.state = ConversationState.BOT.value
            conv.closed_at = None
            # Only the satisfaction question survives the close: the tenant may be answering it.
            asked = (conv.dialogue or {}).get("asked")
            conv.dialogue = {"asked": asked} if asked == "satisfaction" else {}
        lang, foreign = self._language(parse, tenant, conv)
        conv.language = lang
        if conv.state == ConversationState.ASSIGNED.value:
            # A person holds the conversation: the bot stays silent, except for safety
            # instructions, which never wait. (While merely queued, the bot keeps answering.)
            if parse.intent == "emergency":
                kind = dlg.emergency_kind(msg.text)
                lift = residence.lift_company if residence else {}
                text = self.texts.get(
                    f"emergency_{kind}",
                    lang,
                    lift_company=lift.get("name"),
                    lift_phone=lift.get("phone", "112"),
                    gas_phone=self.landlord.get("gas_emergency", "0 800 47 33 33"),
                )
                fx.reply(text, f"reply:{msg.id}:0")
                if conv.priority < dlg.PRIORITY_EMERGENCY:
                    conv.priority = dlg.PRIORITY_EMERGENCY
                    conv.intent = "emergency"
                    fx.events.append(
                        {
                            "type": "handoff",
                            "conversation_id": conv.id,
                            "residence_id": conv.residence_id,
                            "intent": "emergency",
                            "priority": conv.priority,
                        }
                    )
            event["state"] = conv.state
            return
        if linked_by_contact and tenant is not None:
            # They shared their own phone number: greet them and take up what they asked.
            decision = await self._after_link(s, msg, conv, tenant, lang, fx.batch)
            residence = await s.get(Residence, tenant.residence_id)
            await self._apply(s, msg, conv, decision, tenant, residence, fx)
            return
        turn = await self._turn(
            s, msg, conv, parse, tenant, residence, lang, batch=fx.batch, foreign=foreign
        )
        decision = dlg.decide(turn, self.texts, self.faq)
        if decision.identify and tenant is None:
            tenant = await self._link_by_identity(s, conv, decision.identify)
            if tenant is not None:
                residence = await s.get(Residence, tenant.residence_id)
                decision = await self._after_link(s, msg, conv, tenant, lang, fx.batch)
            else:
                decision = dlg.Decision(
                    replies=[self.texts.get("unknown_sender", lang)],
                    state={**(conv.dialogue or {}), "awaiting": "identity"},
                )
        await self._apply(s, msg, conv, decision, tenant, residence, fx)

    async def _after_link(
        self,
        s: AsyncSession,
        msg: Message,
        conv: Conversation,
        tenant: Tenant,
        lang: str,
        batch: Prefetched,
    ) -> dlg.Decision:
        """The sender was just recognised: say so, and take up the need they wrote before."""
        residence = await s.get(Residence, tenant.residence_id) if tenant.residence_id else None
        state = dict(conv.dialogue or {})
        pending = state.pop("pending_text", None)
        state.pop("awaiting", None)
        conv.dialogue = state
        lang = tenant.language or lang
        greeting = self.texts.get(
            "linked_short" if pending else "linked",
            lang,
            first_name=tenant.first_name,
            residence=residence.name if residence else "",
            building=tenant.building,
        )
        if not pending:
            return dlg.Decision(replies=[greeting], state=conv.dialogue)
        again = await self.engine.parse(pending)
        turn = await self._turn(
            s, msg, conv, again, tenant, residence, lang, batch=batch, text=pending
        )
        decision = dlg.decide(turn, self.texts, self.faq)
        decision.replies[:0] = [greeting]
        return decision

    async def _incident_for(
        self, s: AsyncSession, spec: dlg.RequestSpec, row: Request, batch: Prefetched
    ) -> int | None:
        """The incident a common-area report belongs to: the one named, an open one with the
        same key in the building (another tenant may have opened it meanwhile), or a new one."""
        if spec.incident_id is not None:
            return spec.incident_id
        if not spec.incident_key or row.residence_id is None:
            return None
        incident = (
            (
                await s.execute(
                    select(Incident).where(
                        Incident.residence_id == row.residence_id,
                        Incident.building == row.building,
                        Incident.key == spec.incident_key,
                        Incident.status == "open",
                    )
                )
            )
            .scalars()
            .first()
        )
        if incident is None:
            incident = Incident(
                residence_id=row.residence_id,
                building=row.building,
                key=spec.incident_key,
                summary=spec.summary,
                created_at=self.clock(),
            )
            s.add(incident)
            await s.flush()
            batch.incidents.pop((row.residence_id, row.building), None)
        return incident.id

    async def _apply(
        self,
        s: AsyncSession,
        msg: Message,
        conv: Conversation,
        decision: dlg.Decision,
        tenant: Tenant | None,
        residence: Residence | None,
        fx: Effects,
    ) -> None:
        conv.dialogue = decision.state
        if decision.satisfaction is not None:
            conv.satisfaction = decision.satisfaction
        references: dict[str, str] = {}
        request: Request | None = None
        for spec in decision.requests:
            row = Request(
                kind=spec.kind,
                tenant_id=tenant.id if tenant else None,
                residence_id=conv.residence_id,
                building=tenant.building if tenant else "",
                conversation_id=conv.id,
                summary=spec.summary,
                details=spec.details,
                created_at=self.clock(),
            )
            row.incident_id = await self._incident_for(s, spec, row, fx.batch)
            if row.tenant_id is not None:
                fx.batch.requests.pop(row.tenant_id, None)
            s.add(row)
            references[spec.token] = await next_request_reference(s, row)
            if self.lifecycle is not None:
                await self.lifecycle.created(s, row, Actor("tenant"))
            request = request or row
        if decision.request_update is not None and tenant is not None:
            request = await self._update_request(s, decision.request_update, tenant) or request
        extra: dict[str, Any] = {}
        if conv.tenant_id is None and (decision.state or {}).get("awaiting") == "identity":
            # Channels that can (Telegram) show a button to share the phone number.
            extra["request_contact"] = True
        for i, text in enumerate(decision.replies):
            for token, reference in references.items():
                text = text.replace(token, reference)
            if text:
                fx.reply(text, f"reply:{msg.id}:{i}", extra)
        if decision.handoff and conv.state == ConversationState.QUEUED.value:
            # Already waiting for a person: one queue item, raised if this need is more urgent.
            h = decision.handoff
            if h.priority > conv.priority:
                conv.priority = h.priority
                conv.intent = h.intent
                fx.events.append(
                    {
                        "type": "handoff",
                        "conversation_id": conv.id,
                        "residence_id": conv.residence_id,
                        "intent": h.intent,
                        "priority": h.priority,
                        "oncall": h.oncall,
                    }
                )
        elif decision.handoff:
            h = decision.handoff
            conv.state = ConversationState.QUEUED.value
            conv.intent = h.intent
            conv.priority = h.priority
            conv.queued_at = self.clock()
            handoff = Handoff(
                conversation_id=conv.id,
                residence_id=conv.residence_id,
                intent=h.intent,
                reason=h.reason,
                priority=h.priority,
                request_id=request.id if request else None,
                created_at=self.clock(),
            )
            s.add(handoff)
            await s.flush()
            if self.lifecycle is not None:
                self.lifecycle.webhooks.queue(
                    s,
                    "handoff.created",
                    handoff_json(handoff, request.reference if request else None),
                    order=f"conversation:{conv.id}",
                    now=self.clock(),
                )
            fx.events.append(
                {
                    "type": "handoff",
                    "conversation_id": conv.id,
                    "handoff_id": handoff.id,
                    "residence_id": conv.residence_id,
                    "intent": h.intent,
                    "priority": h.priority,
                    "oncall": h.oncall,
                }
            )

    async def _update_request(
        self, s: AsyncSession, update_: dlg.RequestUpdate, tenant: Tenant
    ) -> Request | None:
        """The tenant's answer to "is it fixed?": close or reopen their request."""
        row = (
            await s.execute(
                select(Request).where(
                    Request.reference == update_.reference, Request.tenant_id == tenant.id
                )
            )
        ).scalar_one_or_none()
        if row is None or self.lifecycle is None:
            return None
        change = Change(RequestStatus(update_.status), note=update_.note)
        try:
            await self.lifecycle.change(s, row, change, Actor("tenant"))
        except TransitionRefused:
            # Closed meanwhile (no answer for days, or by the team): the reply still stands.
            log.info("request %s: tenant's answer came after it moved on", row.id)
        return row

    async def _turn(
        self,
        s: AsyncSession,
        msg: Message,
        conv: Conversation,
        parse: Parse,
        tenant: Tenant | None,
        residence: Residence | None,
        lang: str,
        *,
        batch: Prefetched,
        text: str | None = None,
        foreign: bool = False,
    ) -> dlg.Turn:
        requests: tuple[dlg.RequestView, ...] = ()
        incidents: tuple[dlg.IncidentView, ...] = ()
        if tenant is not None:
            requests = await self._requests_of(s, tenant.id, batch)
            if tenant.residence_id is not None:
                incidents = await self._incidents_of(s, tenant.residence_id, tenant.building, batch)
        return dlg.Turn(
            text=msg.text if text is None else text,
            parse=parse,
            channel=conv.channel,
            now=self.clock().astimezone(self.tz),
            state=dict(conv.dialogue or {}),
            tenant=await self._tenant_view(s, tenant, residence),
            # A shared contact or location is not a photo of the problem.
            has_media=text is None
            and any((m or {}).get("kind", "photo") == "photo" for m in msg.media or []),
            requests=requests,
            incidents=incidents,
            landlord=self.landlord,
            language=lang,
            foreign=foreign,
            phone_region=self.phone_region,
        )

    async def _requests_of(
        self, s: AsyncSession, tenant_id: int, batch: Prefetched
    ) -> tuple[dlg.RequestView, ...]:
        if tenant_id in batch.requests:
            return batch.requests[tenant_id]
        rows = (
            await s.execute(
                select(Request)
                .where(Request.tenant_id == tenant_id)
                .order_by(Request.id.desc())
                .limit(REQUESTS_SHOWN)
            )
        ).scalars()
        return tuple(_request_view(r) for r in rows)

    async def _incidents_of(
        self, s: AsyncSession, residence_id: int, building: str, batch: Prefetched
    ) -> tuple[dlg.IncidentView, ...]:
        if (residence_id, building) in batch.incidents:
            return batch.incidents[(residence_id, building)]
        found = (
            await s.execute(
                select(Incident).where(
                    Incident.residence_id == residence_id,
                    Incident.building == building,
                    Incident.status == "open",
                )
            )
        ).scalars()
        return tuple(_incident_view(i) for i in found)

    async def _tenant_view(
        self, s: AsyncSession, tenant: Tenant | None, residence: Residence | None
    ) -> dlg.TenantView | None:
        if tenant is None:
            return None
        rv = None
        if residence is not None:
            login = (residence.extra or {}).get("caretaker")
            caretaker = await self._staff_name(s, login) if login else ""
            rv = dlg.ResidenceView(
                code=residence.code,
                name=residence.name,
                buildings=tuple(residence.buildings or ()),
                agency=residence.agency or {},
                caretaker_name=caretaker,
                caretaker_hours=residence.caretaker_hours or {},
                bulky_waste=residence.bulky_waste or {},
                lift_company=residence.lift_company or {},
                landlord=self.landlord,
            )
        return dlg.TenantView(
            id=tenant.id,
            reference=tenant.reference,
            first_name=tenant.first_name,
            language=tenant.language,
            vulnerable=tenant.vulnerable,
            building=tenant.building,
            apartment=tenant.apartment,
            residence=rv,
        )

    async def _staff_name(self, s: AsyncSession, login: str) -> str:
        """A caretaker's display name, kept a minute (asked for on most turns, rarely changed)."""
        now = time.monotonic()
        cached = self._names.get(login)
        if cached is not None and cached[0] > now:
            return cached[1]
        name = (
            await s.execute(select(StaffUser.display_name).where(StaffUser.login == login))
        ).scalar_one_or_none() or ""
        self._names[login] = (now + NAME_TTL, name)
        return name

    def _language(
        self, parse: Parse, tenant: Tenant | None, conv: Conversation
    ) -> tuple[str, bool]:
        """The reply language, and whether the tenant wrote in a language the bot does not speak
        (they get the French answer with a short English line)."""
        words = len(parse.text.split())
        foreign = words >= 3 and (
            parse.language not in ("fr", "en") or bool(_FOREIGN_LETTERS.search(parse.text))
        )
        if parse.language in ("fr", "en") and words >= 3 and not foreign:
            return parse.language, False
        if tenant is not None and tenant.language in ("fr", "en"):
            return tenant.language, foreign
        known = conv.language if conv.language in ("fr", "en") else "fr"
        return known, foreign

    async def _identify(
        self, s: AsyncSession, conv: Conversation, batch: Prefetched
    ) -> Tenant | None:
        if conv.tenant_id is not None:
            linked = await s.get(Tenant, conv.tenant_id)
            if linked is None or linked.departed_at is None:
                return linked
            # Gone from the landlord's last full export: whoever writes from this address now
            # is found again (or asked who they are); the old conversation stays theirs.
            conv.tenant_id = None
            conv.residence_id = None
        key = (conv.channel, conv.address)
        tenant = None
        if key in batch.tenants or key in batch.unknown:
            tenant = batch.tenants.get(key)  # looked up for the whole batch
        elif _identified_by_phone(conv.channel, conv.address):
            tenant = (
                (await s.execute(select(Tenant).where(Tenant.phone == conv.address)))
                .unique()
                .scalar_one_or_none()
            )
        elif conv.channel == "telegram":
            tenant = (
                (await s.execute(select(Tenant).where(Tenant.telegram_chat_id == conv.address)))
                .unique()
                .scalar_one_or_none()
            )
        if tenant is not None:
            self._link(conv, tenant)
        return tenant

    async def _link_by_shared_contact(
        self, s: AsyncSession, msg: Message, conv: Conversation
    ) -> Tenant | None:
        """A Telegram user who shares their own contact is found by its phone number."""
        for media in msg.media or []:
            data = media.get("data") or {}
            phone = data.get("phone")
            if media.get("kind") == "contact" and phone and data.get("own", True):
                tenant = await self._link_by_identity(s, conv, str(phone))
                if tenant is not None:
                    return tenant
        return None

    def _link(self, conv: Conversation, tenant: Tenant) -> None:
        conv.tenant_id = tenant.id
        conv.residence_id = tenant.residence_id
        conv.language = tenant.language or conv.language

    async def _link_by_identity(
        self, s: AsyncSession, conv: Conversation, identity: str
    ) -> Tenant | None:
        column = Tenant.reference if identity.startswith("L-") else Tenant.phone
        tenant = (
            (
                await s.execute(
                    select(Tenant).where(column == identity, Tenant.departed_at.is_(None))
                )
            )
            .unique()
            .scalar_one_or_none()
        )
        if tenant is not None:
            self._link(conv, tenant)
            if conv.channel == "telegram" and not tenant.telegram_chat_id:
                tenant.telegram_chat_id = conv.address
        return tenant

    async def _opt_out_keywords(
        self, s: AsyncSession, msg: Message, conv: Conversation, fx: Effects
    ) -> bool:
        """STOP/ARRET records an opt-out, START lifts it; each gets one confirmation."""
        if _STOP.match(msg.text or ""):
            exists = (
                await s.execute(
                    select(OptOut.id).where(
                        OptOut.channel == conv.channel, OptOut.address == conv.address
                    )
                )
            ).scalar_one_or_none()
            if exists is None:
                s.add(OptOut(channel=conv.channel, address=conv.address))
                fx.reply(
                    self.texts.get("opt_out_confirmed", conv.language),
                    f"reply:{msg.id}:0",
                    {"force": True},
                )
            msg.intent = "opt_out"
            return True
        if _START.match(msg.text or ""):
            await s.execute(
                delete(OptOut).where(OptOut.channel == conv.channel, OptOut.address == conv.address)
            )
            fx.reply(self.texts.get("opt_in_confirmed", conv.language), f"reply:{msg.id}:0")
            msg.intent = "opt_in"
            return True
        return False


def _request_view(r: Request) -> dlg.RequestView:
    return dlg.RequestView(r.reference or "", r.kind, r.status, r.created_at, r.summary)


def _incident_view(i: Incident) -> dlg.IncidentView:
    return dlg.IncidentView(i.id, i.key, i.building, i.created_at)


def _identified_by_phone(channel: str, address: str) -> bool:
    """Senders whose address is their phone number (the terminal is used as a phone in demos)."""
    return channel in SMS_CHANNELS or (channel == "terminal" and address.startswith("+"))
