"""The worker's pipeline: one stored inbound message → tenant → NLU → dialogue → replies/handoff.

Processing is idempotent: the message is marked processed in the same transaction that stores
its replies, so a message delivered twice by the bus (a worker crashed before acknowledging)
produces its replies once.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from bot import dialogue as dlg
from bot.core.phones import DEFAULT_REGION
from bot.dialogue.content import Content
from bot.dialogue.faq import Faq, load_faq
from bot.dialogue.schedule import region_of
from bot.dialogue.texts import Texts
from bot.messaging.bus import Bus
from bot.messaging.webhooks import handoff_json
from bot.storage.db import Database
from bot.storage.models import (
    Conversation,
    ConversationState,
    Handoff,
    IdentityCode,
    Incident,
    Message,
    OptOut,
    Outbox,
    Request,
    Residence,
    StaffUser,
    Tenant,
)
from bot.storage.store import mask_code, next_request_reference, outbound_message, outbox_row
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
# Channels whose address proves nothing of who writes: linking needs a code sent by SMS.
PROOF_CHANNELS = ("webchat", "telegram")
REQUESTS_SHOWN = 20  # a tenant's latest requests the dialogue sees (status questions)
NAME_TTL = 60.0  # seconds a caretaker's display name is kept in memory
_START = re.compile(r"^\s*(start|unstop|reprise)\s*[.!]?\s*$", re.IGNORECASE)


# (session, conversation, to "oncall"|"caretaker", short reason, idempotency key) → alerts sent
Alerter = Callable[[AsyncSession, Conversation, str, str, str], Awaitable[int]]


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
        alerter: Alerter | None = None,
        intake_timeout: timedelta = timedelta(minutes=30),
        code_lifetime: timedelta = timedelta(minutes=10),
        code_tries: int = 3,
        codes_per_hour: int = 3,
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
        self._public: tuple[float, tuple[dlg.ResidenceView, ...]] | None = None
        # Staff alerts sent at once (an emergency): the runtime wires handoff.escalation's.
        self.alerter = alerter
        self.intake_timeout = intake_timeout
        self.code_lifetime = code_lifetime
        self.code_tries = code_tries
        self.codes_per_hour = codes_per_hour

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
                conv = conversations[msg.conversation_id]
                msg.nlu = {**parse.to_dict(), "ms": round(nlu_ms, 3), **_answering(conv)}
                msg.intent = parse.intent
                msg.confidence = parse.confidence
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
        """One turn: who writes, what the dialogue decides, then apply it."""
        if conv.channel in SMS_CHANNELS and await self._opt_out_keywords(s, msg, conv, fx):
            return
        tenant, linked_by_contact = await self._sender(s, msg, conv, fx.batch)
        event = self._message_event(msg, conv, parse, fx)
        _reopen(conv)
        lang, foreign = self._language(parse, tenant, conv)
        conv.language = lang
        residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
        if linked_by_contact and tenant is not None:
            # They shared their own phone number: greet them and take up what they asked.
            decision = await self._after_link(s, msg, conv, tenant, lang, fx.batch)
        else:
            turn = await self._turn(
                s, msg, conv, parse, tenant, residence, lang, batch=fx.batch, foreign=foreign
            )
            decision = dlg.decide(turn, self.texts, self.faq)
            if decision.intent == "emergency":
                # The dialogue's safety check read a danger the classifier did not name.
                msg.intent = "emergency"
            if decision.identify and tenant is None:
                decision = await self._identification(s, msg, conv, decision, lang, fx.batch)
                tenant = await s.get(Tenant, conv.tenant_id) if conv.tenant_id else None
        if tenant is not None and tenant.residence_id != (residence.id if residence else None):
            residence = await s.get(Residence, tenant.residence_id)
        await self._apply(s, f"reply:{msg.id}", conv, decision, tenant, fx)
        event["state"] = conv.state

    async def _sender(
        self, s: AsyncSession, msg: Message, conv: Conversation, batch: Prefetched
    ) -> tuple[Tenant | None, bool]:
        """The tenant writing, and whether they were just recognised by a shared contact."""
        tenant = await self._identify(s, conv, batch)
        if tenant is None:
            tenant = await self._link_by_shared_contact(s, msg, conv)
            return tenant, tenant is not None
        return tenant, False

    def _message_event(
        self, msg: Message, conv: Conversation, parse: Parse, fx: Effects
    ) -> dict[str, Any]:
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
        return event

    async def _identification(
        self,
        s: AsyncSession,
        msg: Message,
        conv: Conversation,
        decision: dlg.Decision,
        lang: str,
        batch: Prefetched,
    ) -> dlg.Decision:
        """An unknown sender gave a tenant number, a phone or a one-time code.

        Where the channel proves nothing of who writes (web chat, Telegram), a tenant number
        is answered with a code sent by SMS to the phone on file; only that code links the
        session. Elsewhere the number is linked as given."""
        identity = decision.identify or ""
        state = dict(decision.state or conv.dialogue or {})
        conv.dialogue = dict(state)  # what the sender wrote before is taken up once linked
        if identity.startswith("code:"):
            # The thread keeps "••••••", not the code (the console, transcripts, the NLU
            # review and its exports).
            msg.text = mask_code(msg.text, identity[5:])
            if msg.raw:
                msg.raw = mask_code(msg.raw, identity[5:])
            if msg.nlu:  # the NLU's reading keeps the text and its entities
                msg.nlu = mask_code(msg.nlu, identity[5:])
            tenant = await self._check_code(s, conv, identity[5:])
            if isinstance(tenant, str):
                state = {**state, "awaiting": "identity" if tenant == "code_expired" else "code"}
                return dlg.Decision(replies=[self.texts.get(tenant, lang)], state=state)
            return await self._after_link(s, msg, conv, tenant, lang, batch)
        found = await self._tenant_by_identity(s, identity)
        if found is None:
            tries = int(state.get("identity_tries", 0)) + 1
            state["identity_tries"] = tries
            if tries >= dlg.MAX_FAILURES:
                state.pop("awaiting", None)
                pending = str(state.pop("pending_text", "") or "")
                return dlg.Decision(
                    replies=[self.texts.get("identity_handoff", lang)],
                    state=state,
                    handoff=dlg.HandoffSpec(
                        "out_of_scope",
                        f"Expéditeur non identifié ({_sender_label(conv)}), numéro "
                        f"donné introuvable : « {pending[:300]} »",
                    ),
                )
            return dlg.Decision(
                replies=[self.texts.get("unknown_sender_again", lang)],
                state={**state, "awaiting": "identity"},
            )
        if conv.channel not in PROOF_CHANNELS:
            self._link(conv, found)
            return await self._after_link(s, msg, conv, found, lang, batch)
        return await self._send_code(s, conv, found, lang, state)

    async def _send_code(
        self, s: AsyncSession, conv: Conversation, tenant: Tenant, lang: str, state: dict[str, Any]
    ) -> dlg.Decision:
        """A one-time code by SMS to the tenant's phone on file, rate-limited per tenant and
        per session; the session learns nothing of the tenant but the phone's last digits."""
        now = self.clock()
        hour = now - timedelta(hours=1)
        recent = (
            await s.execute(
                select(func.count(IdentityCode.id)).where(
                    or_(
                        IdentityCode.tenant_id == tenant.id, IdentityCode.conversation_id == conv.id
                    ),
                    IdentityCode.created_at >= hour,
                )
            )
        ).scalar_one()
        if not tenant.phone or recent >= self.codes_per_hour:
            state.pop("awaiting", None)
            pending = str(state.pop("pending_text", "") or "")
            key = "code_no_phone" if not tenant.phone else "code_limit"
            return dlg.Decision(
                replies=[self.texts.get(key, lang)],
                state=state,
                handoff=dlg.HandoffSpec(
                    "out_of_scope",
                    f"Identification non prouvée ({conv.channel}) : « {pending[:300]} »",
                ),
            )
        code = f"{secrets.randbelow(1_000_000):06d}"
        row = IdentityCode(
            tenant_id=tenant.id,
            conversation_id=conv.id,
            code_hash=_code_hash(conv.id, code),
            created_at=now,
            expires_at=now + self.code_lifetime,
        )
        s.add(row)
        await s.flush()
        minutes = int(self.code_lifetime.total_seconds() // 60)
        s.add(
            Outbox(
                message_id=None,
                conversation_id=None,  # not part of the session's thread: it goes to the phone
                channel="sms",
                address=tenant.phone,
                text=self.texts.get(
                    "code_sms", tenant.language or lang, code=code, minutes=minutes
                ),
                extra={"identity_code": row.id},
                idempotency_key=f"identity-code:{row.id}",
                status="pending",
                next_attempt_at=datetime.now(UTC),
            )
        )
        state["awaiting"] = "code"
        return dlg.Decision(
            replies=[self.texts.get("code_sent", lang, last=tenant.phone[-2:])], state=state
        )

    async def _check_code(self, s: AsyncSession, conv: Conversation, code: str) -> Tenant | str:
        """The tenant the code proves, or the text key saying why not."""
        row = (
            (
                await s.execute(
                    select(IdentityCode)
                    .where(IdentityCode.conversation_id == conv.id, IdentityCode.used_at.is_(None))
                    .order_by(IdentityCode.id.desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        now = self.clock()
        if row is None or row.expires_at < now or row.tries >= self.code_tries:
            return "code_expired"
        if not hmac.compare_digest(row.code_hash, _code_hash(conv.id, code)):
            row.tries += 1
            return "code_expired" if row.tries >= self.code_tries else "code_wrong"
        row.used_at = now
        tenant = await s.get(Tenant, row.tenant_id)
        if tenant is None:
            return "code_expired"
        self._link(conv, tenant)
        if conv.channel == "telegram" and not tenant.telegram_chat_id:
            tenant.telegram_chat_id = conv.address
        return tenant

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
        # Already with a person (asked for one, or handed over meanwhile): what was written
        # before went with the handoff, so it is not read again; the tenant is told who answers.
        held = conv.state in (ConversationState.QUEUED, ConversationState.ASSIGNED)
        greeting = self.texts.get(
            "linked_waiting" if held else "linked_short" if pending else "linked",
            lang,
            first_name=tenant.first_name,
            residence=residence.name if residence else "",
            building=tenant.building,
        )
        if held or not pending:
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
        key: str,
        conv: Conversation,
        decision: dlg.Decision,
        tenant: Tenant | None,
        fx: Effects,
    ) -> None:
        """Apply what the dialogue decided: state, requests, replies, handoff, alerts.
        `key` prefixes the outbox idempotency keys of this turn's replies and alerts."""
        self._store_state(conv, decision)
        references, first = await self._open_requests(s, conv, decision, tenant, fx)
        if first is not None and first.reference:
            # The request later messages attach to, until a person closes the conversation.
            conv.dialogue = {**(conv.dialogue or {}), "request": first.reference}
        await self._update_requests(s, conv, decision, tenant)
        if decision.request_update is not None and tenant is not None:
            # The answer to "is it fixed?": the request closes, or reopens to its caretaker.
            first = await self._update_request(s, decision.request_update, tenant) or first
        self._say(key, conv, decision, references, fx)
        await self._hand_off(s, conv, decision, first, fx)
        await self._alert(s, key, conv, decision)

    def _store_state(self, conv: Conversation, decision: dlg.Decision) -> None:
        conv.dialogue = decision.state
        conv.due_at = dlg.due_at(decision.state or {}, self.clock(), self.intake_timeout)
        if decision.satisfaction is not None:
            conv.satisfaction = decision.satisfaction
        if decision.language:
            conv.language = decision.language  # shown to staff; replies fall back to French

    async def _open_requests(
        self,
        s: AsyncSession,
        conv: Conversation,
        decision: dlg.Decision,
        tenant: Tenant | None,
        fx: Effects,
    ) -> tuple[dict[str, str], Request | None]:
        references: dict[str, str] = {}
        first: Request | None = None
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
            first = first or row
        return references, first

    async def _update_requests(
        self, s: AsyncSession, conv: Conversation, decision: dlg.Decision, tenant: Tenant | None
    ) -> None:
        """Notes, photos and fields added to requests the dialogue named (this tenant's or
        this conversation's only)."""
        for update_ in decision.updates:
            row = (
                (await s.execute(select(Request).where(Request.reference == update_.reference)))
                .scalars()
                .first()
            )
            if row is None or not (
                row.conversation_id == conv.id
                or (tenant is not None and row.tenant_id == tenant.id)
            ):
                continue
            details = dict(row.details or {})
            notes = list(details.get("notes") or [])
            notes.append(update_.note)
            details["notes"] = notes[-50:]
            if update_.photo:
                details["photo"] = True
            details.update(update_.fields)
            row.details = details
            row.updated_at = datetime.now(UTC)

    def _say(
        self,
        key: str,
        conv: Conversation,
        decision: dlg.Decision,
        references: dict[str, str],
        fx: Effects,
    ) -> None:
        extra: dict[str, Any] = {}
        if conv.tenant_id is None and (decision.state or {}).get("awaiting") == "identity":
            # Channels that can (Telegram) show a button to share the phone number.
            extra["request_contact"] = True
        for i, text in enumerate(decision.replies):
            # A safety text goes out marked: the web chat shows it as an emergency message.
            kind = {"kind": "emergency"} if text in decision.urgent else {}
            for token, reference in references.items():
                text = text.replace(token, reference)
            if text:
                fx.reply(text, f"{key}:{i}", {**extra, **kind})

    async def _hand_off(
        self,
        s: AsyncSession,
        conv: Conversation,
        decision: dlg.Decision,
        request: Request | None,
        fx: Effects,
    ) -> None:
        h = decision.handoff
        if h is None:
            return
        waiting = conv.state in (
            ConversationState.QUEUED.value,
            ConversationState.ASSIGNED.value,
        )
        if waiting:
            # Already with a person: one queue item, raised if this need is more urgent.
            if h.priority <= conv.priority:
                return
            conv.priority = h.priority
            conv.intent = h.intent
            open_handoff = (
                (
                    await s.execute(
                        select(Handoff)
                        .where(Handoff.conversation_id == conv.id, Handoff.closed_at.is_(None))
                        .order_by(Handoff.id.desc())
                        .limit(1)
                    )
                )
                .scalars()
                .first()
            )
            if open_handoff is not None:
                open_handoff.priority = h.priority
                open_handoff.intent = h.intent
                open_handoff.reason = f"{h.reason} (avant : {open_handoff.reason})"[:2000]
                if request is not None and open_handoff.request_id is None:
                    open_handoff.request_id = request.id
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
            return
        conv.state = ConversationState.QUEUED.value
        conv.intent = h.intent
        conv.priority = h.priority
        conv.queued_at = self.clock()
        handoff = Handoff(
            conversation_id=conv.id,
            residence_id=conv.residence_id,
            intent=h.intent,
            reason=h.reason[:2000],
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

    async def _alert(
        self, s: AsyncSession, key: str, conv: Conversation, decision: dlg.Decision
    ) -> None:
        """Staff alerts the dialogue asked for, sent now (an emergency never waits for the
        escalation loop, whatever the conversation's state)."""
        if self.alerter is None:
            return
        for i, alert in enumerate(decision.alerts):
            await self.alerter(s, conv, alert.to, alert.reason, f"alert:{key}:{i}")

    async def run_due(self, limit: int = 200) -> int:
        """What fell due: intakes the tenant stopped answering become requests (or handoffs),
        and the tenant is told the reference. Called by the runtime's periodic loop and by
        `/wait` in a scripted chat. Returns the conversations handled."""
        now = self.clock()
        turns: list[tuple[Conversation, Effects]] = []
        async with self.db.transaction() as s:
            stmt = (
                select(Conversation)
                .where(
                    Conversation.due_at.is_not(None),
                    Conversation.due_at <= now,
                )
                .order_by(Conversation.due_at)
                .limit(limit)
            )
            if self.db.dialect == "postgresql":
                stmt = stmt.with_for_update(of=Conversation, skip_locked=True)
            convs = list((await s.execute(stmt)).unique().scalars())
            for conv in convs:
                conv.due_at = None
                if conv.state == ConversationState.ASSIGNED.value:
                    continue  # a person holds it: what they were told is theirs to record
                fx = Effects()
                tenant = await s.get(Tenant, conv.tenant_id) if conv.tenant_id else None
                residence = await s.get(Residence, conv.residence_id) if conv.residence_id else None
                lang = conv.language if conv.language in ("fr", "en") else "fr"
                turn = await self._silent_turn(s, conv, tenant, residence, lang, fx.batch)
                decision = dlg.on_silence(turn, self.texts, self.faq)
                stamp = int(now.timestamp())
                await self._apply(s, f"due:{conv.id}:{stamp}", conv, decision, tenant, fx)
                turns.append((conv, fx))
            claimed, deferred = await self._store_replies(s, turns)
        if self.outbox is not None and claimed:
            self.outbox.send_claimed(claimed)
        if deferred and self.outbox is None and self.on_outbox:
            self.on_outbox()
        elif deferred and self.outbox is not None:
            self.outbox.waiting_behind(deferred)
        events = [e for _conv, fx in turns for e in fx.events]
        if events:
            try:
                await self.bus.publish_many(events)
            except Exception as exc:
                log.warning("could not publish events (%s)", type(exc).__name__)
        return len(turns)

    async def _silent_turn(
        self,
        s: AsyncSession,
        conv: Conversation,
        tenant: Tenant | None,
        residence: Residence | None,
        lang: str,
        batch: Prefetched,
    ) -> dlg.Turn:
        silence = Parse(text="", intent="silence", confidence=1.0, language=lang)
        return await self._build_turn(
            s, conv, silence, tenant, residence, lang, batch=batch, text="", media=False
        )

    async def _update_request(
        self, s: AsyncSession, update_: dlg.RequestMove, tenant: Tenant
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
        # A shared contact or location is not a photo of the problem.
        media = text is None and any(
            (m or {}).get("kind", "photo") == "photo" for m in msg.media or []
        )
        return await self._build_turn(
            s,
            conv,
            parse,
            tenant,
            residence,
            lang,
            batch=batch,
            text=msg.text if text is None else text,
            media=media,
            foreign=foreign,
        )

    async def _build_turn(
        self,
        s: AsyncSession,
        conv: Conversation,
        parse: Parse,
        tenant: Tenant | None,
        residence: Residence | None,
        lang: str,
        *,
        batch: Prefetched,
        text: str,
        media: bool,
        foreign: bool = False,
    ) -> dlg.Turn:
        requests: tuple[dlg.RequestView, ...] = ()
        incidents: tuple[dlg.IncidentView, ...] = ()
        if tenant is not None:
            requests = await self._requests_of(s, tenant.id, batch)
            if tenant.residence_id is not None:
                incidents = await self._incidents_of(s, tenant.residence_id, tenant.building, batch)
            open_request = next(
                (r for r in requests if r.conversation_id == conv.id and r.status != "closed"),
                None,
            )
        else:
            open_request = await self._conversation_request(s, conv.id)
        return dlg.Turn(
            text=text,
            parse=parse,
            channel=conv.channel,
            now=self.clock().astimezone(self.tz),
            state=dict(conv.dialogue or {}),
            tenant=await self._tenant_view(s, tenant, residence),
            has_media=media,
            requests=requests,
            incidents=incidents,
            landlord=self.landlord,
            language=lang,
            foreign=foreign,
            phone_region=self.phone_region,
            foreign_language=_foreign_language(parse) if text else "",
            conversation_state=_holder(conv.state),
            priority=conv.priority,
            open_request=open_request,
            residences=await self._residences(s) if tenant is None else (),
            address=conv.address,
            needs_proof=conv.channel in PROOF_CHANNELS,
        )

    async def _conversation_request(
        self, s: AsyncSession, conversation_id: int
    ) -> dlg.RequestView | None:
        """An unknown sender's open request in this conversation (an emergency, say)."""
        row = (
            (
                await s.execute(
                    select(Request)
                    .where(Request.conversation_id == conversation_id, Request.status != "closed")
                    .order_by(Request.id.desc())
                    .limit(1)
                )
            )
            .scalars()
            .first()
        )
        return _request_view(row) if row is not None else None

    async def _residences(self, s: AsyncSession) -> tuple[dlg.ResidenceView, ...]:
        """Every residence's public facts, kept a minute (for senders not yet identified)."""
        now = time.monotonic()
        if self._public is not None and self._public[0] > now:
            return self._public[1]
        rows = (await s.execute(select(Residence).order_by(Residence.id))).scalars()
        views = tuple(self._residence_view(r, "") for r in rows)
        self._public = (now + NAME_TTL, views)
        return views

    def _residence_view(self, residence: Residence, caretaker: str) -> dlg.ResidenceView:
        extra = residence.extra or {}
        return dlg.ResidenceView(
            code=residence.code,
            name=residence.name,
            buildings=tuple(residence.buildings or ()),
            agency=residence.agency or {},
            caretaker_name=caretaker,
            caretaker_hours=residence.caretaker_hours or {},
            bulky_waste=residence.bulky_waste or {},
            lift_company=residence.lift_company or {},
            landlord=self.landlord,
            region=str(extra.get("holiday_region") or region_of(residence.city or "")),
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
            rv = self._residence_view(residence, caretaker)
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
        # A short message ("merci", "ok") goes on in the language the conversation is in.
        if conv.language in ("fr", "en"):
            return conv.language, foreign
        if tenant is not None and tenant.language in ("fr", "en"):
            return tenant.language, foreign
        return "fr", foreign

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

    async def _tenant_by_identity(self, s: AsyncSession, identity: str) -> Tenant | None:
        column = Tenant.reference if identity.startswith("L-") else Tenant.phone
        return (
            (
                await s.execute(
                    select(Tenant).where(column == identity, Tenant.departed_at.is_(None))
                )
            )
            .unique()
            .scalar_one_or_none()
        )

    async def _link_by_identity(
        self, s: AsyncSession, conv: Conversation, identity: str
    ) -> Tenant | None:
        tenant = await self._tenant_by_identity(s, identity)
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
    return dlg.RequestView(
        r.reference or "",
        r.kind,
        r.status,
        r.created_at,
        r.summary,
        dict(r.details or {}),
        r.conversation_id,
    )


def _reopen(conv: Conversation) -> None:
    """A tenant writing again after closing goes back to the bot first."""
    if conv.state != ConversationState.CLOSED.value:
        return
    conv.state = ConversationState.BOT.value
    conv.closed_at = None
    # Only the satisfaction question survives the close: the tenant may be answering it.
    asked = (conv.dialogue or {}).get("asked")
    conv.dialogue = {"asked": asked} if asked == "satisfaction" else {}


def _holder(state: str) -> str:
    """Who holds the conversation, as the dialogue reads it: bot, queued or assigned."""
    if state == ConversationState.ASSIGNED.value:
        return "assigned"
    if state == ConversationState.QUEUED.value:
        return "queued"
    return "bot"


def _foreign_language(parse: Parse) -> str:
    """The language of a message in neither French nor English, when the detector is sure
    enough (two words at least, or a script of its own)."""
    lang = parse.language
    if lang in ("fr", "en") or not lang:
        return ""
    words = len(parse.text.split())
    non_latin = any(ord(ch) > 0x024F for ch in parse.text if ch.isalpha())
    return lang if words >= 2 or non_latin else ""


def _sender_label(conv: Conversation) -> str:
    """The sender as staff may see it: a phone number, else only the channel (a web-chat
    token is a credential)."""
    if _identified_by_phone(conv.channel, conv.address) or conv.channel == "whatsapp":
        return f"{conv.channel} {conv.address}"
    return conv.channel


def _code_hash(conversation_id: int, code: str) -> str:
    """The stored form of a one-time code: tied to the session it was sent for."""
    return hashlib.sha256(f"{conversation_id}:{code}".encode()).hexdigest()


def _incident_view(i: Incident) -> dlg.IncidentView:
    return dlg.IncidentView(i.id, i.key, i.building, i.created_at)


def _identified_by_phone(channel: str, address: str) -> bool:
    """Senders whose address is their phone number (the terminal is used as a phone in demos)."""
    return channel in SMS_CHANNELS or (channel == "terminal" and address.startswith("+"))


def _answering(conv: Conversation) -> dict[str, str]:
    """The question this message may answer (the dialogue's `awaiting` or `asked` before the
    turn), kept with the NLU result: the managers' NLU review leaves out what answered an
    identification or a rating question, which the classifier did not decide."""
    state = conv.dialogue or {}
    asked = state.get("awaiting") or state.get("asked")
    return {"answering": asked} if isinstance(asked, str) and asked else {}
