"""Demo history: a few weeks of plausible activity over the demo residences, for the dashboard.

`relais demo load --history` writes conversations on every channel, requests of every kind
moving through their lifecycle, caretakers taking and closing them, ratings and a few
emergencies, with the week's rhythm (fewer at night and at weekends). The same seed and the
same day give the same history.

Every row it writes is marked, so that it is never mixed silently with real activity: the
conversations' addresses begin with `demo-` (and their dialogue holds `"demo": true`), the
requests' references with `DEMO-`. The dashboard shows a banner while such rows exist;
`relais demo clear` deletes them and nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.status import Role
from bot.storage.db import Database
from bot.storage.models import (
    Conversation,
    Handoff,
    Message,
    Outbox,
    Request,
    RequestEvent,
    Residence,
    StaffUser,
    Tenant,
)

ADDRESS_PREFIX = "demo-"
REFERENCE_PREFIX = "DEMO-"
DEFAULT_WEEKS = 6
DEFAULT_SEED = 19
CHANNELS = (("sms", 0.5), ("webchat", 0.3), ("telegram", 0.2))
# Tenants write less at weekends (Monday first) and at night (local hour 0..23).
WEEKDAY_FACTOR = (1.3, 1.1, 1.0, 1.0, 0.9, 0.5, 0.35)
HOUR_WEIGHTS = (
    (0.15,) * 7 + (1.0, 3.0, 3.0, 3.0, 3.0, 2.0, 2.0) + (2.5,) * 4 + (2.0, 2.0, 2.0) + (0.8,) * 3
)
# Conversations a residence sees on an ordinary weekday.
PER_DAY = 3.2
EMERGENCY = 10
DEADLINE_DAYS = {"emergency": 1, "repair": 21, "nuisance": 21, "bulky_waste": 14}
# Median days from opening to closing, per kind.
RESOLUTION_DAYS = {"emergency": 0.4, "repair": 5.0, "nuisance": 8.0, "bulky_waste": 4.0}

FAQ = (
    (
        "Quels sont les horaires de l'agence ?",
        "L'agence vous accueille du lundi au vendredi, de 9 h à 12 h et de 14 h à 17 h.",
    ),
    (
        "Comment je paie mon loyer par carte ?",
        "Vous pouvez payer par carte sur votre espace locataire, rubrique « Mon compte ».",
    ),
    (
        "Comment avoir une attestation de loyer ?",
        "Votre attestation se télécharge sur votre espace locataire, rubrique « Documents ».",
    ),
    (
        "Je veux donner mon préavis, je fais comment ?",
        "Le préavis s'envoie par lettre recommandée à votre agence ; "
        "il est d'un mois en zone tendue.",
    ),
    (
        "Le gardien est là à quelle heure ?",
        "Votre gardien est présent du lundi au vendredi, de 8 h à 12 h et de 14 h à 17 h.",
    ),
    (
        "Est-ce que je peux avoir un deuxième badge ?",
        "Un badge supplémentaire se demande à l'agence ; il coûte 15 €.",
    ),
)
COLLECTION = (
    (
        "C'est quand le ramassage des encombrants ?",
        "Le prochain passage des encombrants est le {day}. Sortez-les la veille au soir.",
    ),
    (
        "Les encombrants passent quel jour ?",
        "Les encombrants passent le {day}, devant le local poubelles.",
    ),
)
STATUS = (
    (
        "Où en est ma demande ?",
        "Votre demande est prise en charge : une intervention est prévue cette semaine.",
    ),
    ("Vous avez des nouvelles pour la réparation ?", "Votre demande est en cours de traitement."),
)
PROBLEMS = {
    "repair": (
        "Fuite sous l'évier de la cuisine",
        "Le radiateur de la chambre ne chauffe plus",
        "La porte du hall ne ferme plus",
        "Plus d'eau chaude depuis ce matin",
        "La lumière de l'escalier est en panne",
        "Volet roulant bloqué dans le salon",
        "Moisissure au plafond de la salle de bain",
        "La chasse d'eau fuit en continu",
    ),
    "nuisance": (
        "Mon voisin fait du bruit tous les soirs",
        "Des jeunes squattent le hall le soir",
        "Un chien aboie toute la journée au-dessus",
    ),
    "bulky_waste": (
        "Je voudrais faire enlever un vieux canapé",
        "Un matelas à jeter, il faut le descendre",
        "Une armoire cassée à descendre",
    ),
    "emergency": (
        "Ça sent le gaz dans l'escalier",
        "De l'eau coule du plafond sur le tableau électrique",
        "Quelqu'un est bloqué dans l'ascenseur",
    ),
}
STAFF_REPLIES = (
    "Bonjour, je m'en occupe et je passe voir ça dans la journée.",
    "Bonjour, c'est noté. Je viens constater demain matin.",
    "Bonjour, j'ai prévenu l'entreprise, elle vous appellera pour un rendez-vous.",
)
EMERGENCY_REPLIES = (
    "J'arrive tout de suite, sortez du logement si l'odeur est forte.",
    "Les secours sont prévenus, j'arrive.",
)
# Share of conversations by scenario.
SCENARIOS = (
    ("faq", 0.34),
    ("collection", 0.12),
    ("status", 0.06),
    ("repair", 0.26),
    ("nuisance", 0.07),
    ("bulky_waste", 0.09),
    ("human", 0.04),
    ("emergency", 0.02),
)


@dataclass(frozen=True, slots=True)
class HistorySummary:
    conversations: int
    messages: int
    handoffs: int
    requests: int
    ratings: int
    first_day: date
    last_day: date


@dataclass
class _Conv:
    row: dict[str, Any]
    messages: list[dict[str, Any]] = field(default_factory=list)
    handoffs: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[dict[str, Any], list[dict[str, Any]]]] = field(default_factory=list)


def demo_conversation() -> Any:
    """The SQL condition matching the conversations of the demo history."""
    return Conversation.address.like(ADDRESS_PREFIX + "%")


async def history_present(s: AsyncSession) -> bool:
    """Whether demo history is in the database (the dashboard then shows a banner)."""
    row = (await s.execute(select(Conversation.id).where(demo_conversation()).limit(1))).first()
    return row is not None


async def real_conversations(s: AsyncSession) -> int:
    """Conversations that are not demo history (tenants really wrote)."""
    n = await s.execute(select(func.count(Conversation.id)).where(~demo_conversation()))
    return int(n.scalar_one())


async def clear_history(db: Database) -> int:
    """Delete the demo history (and only it); the number of conversations deleted."""
    async with db.transaction() as s:
        return await _clear(s)


async def _clear(s: AsyncSession) -> int:
    convs = select(Conversation.id).where(demo_conversation()).scalar_subquery()
    requests = (
        select(Request.id).where(Request.reference.like(REFERENCE_PREFIX + "%")).scalar_subquery()
    )
    n = int(
        (
            await s.execute(select(func.count(Conversation.id)).where(demo_conversation()))
        ).scalar_one()
    )
    await s.execute(delete(RequestEvent).where(RequestEvent.request_id.in_(requests)))
    await s.execute(delete(Handoff).where(Handoff.conversation_id.in_(convs)))
    await s.execute(delete(Handoff).where(Handoff.request_id.in_(requests)))
    await s.execute(delete(Outbox).where(Outbox.conversation_id.in_(convs)))
    await s.execute(delete(Message).where(Message.conversation_id.in_(convs)))
    await s.execute(delete(Request).where(Request.reference.like(REFERENCE_PREFIX + "%")))
    await s.execute(delete(Conversation).where(demo_conversation()))
    return n


class _Generator:
    """Draws the history, all from one seeded `random.Random`, into plain row dicts."""

    def __init__(
        self,
        rng: random.Random,
        tz: ZoneInfo,
        tenants: Sequence[Tenant],
        residences: dict[int, Residence],
        caretakers: dict[int, list[int]],
        oncall: list[int],
        logins: dict[int, str],
    ) -> None:
        self.rng = rng
        self.tz = tz
        self.tenants = tenants
        self.residences = residences
        self.caretakers = caretakers
        self.oncall = oncall
        self.logins = logins
        self.conversations: list[_Conv] = []
        self.until = datetime.max.replace(tzinfo=UTC)
        self.n_requests = 0

    def pick(self, weighted: Sequence[tuple[str, float]]) -> str:
        names = [n for n, _ in weighted]
        return self.rng.choices(names, weights=[w for _, w in weighted])[0]

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self.tz)

    def working(self, at: datetime) -> bool:
        t = self.local(at)
        return t.weekday() < 5 and 8 <= t.hour < 18

    def next_working(self, at: datetime) -> datetime:
        t = self.local(at)
        day = t.date()
        if t.weekday() < 5 and t.hour < 8:
            start = datetime.combine(day, time(8), self.tz)
        else:
            day += timedelta(days=1)
            while day.weekday() >= 5:
                day += timedelta(days=1)
            start = datetime.combine(day, time(8), self.tz)
        return start.astimezone(UTC)

    def minutes(self, median: float, sigma: float = 0.7) -> timedelta:
        return timedelta(minutes=median * math.exp(self.rng.gauss(0, sigma)))

    def day(self, day: date, until: datetime) -> None:
        self.until = until
        for tenant_residence, tenants in self._by_residence().items():
            mean = PER_DAY * WEEKDAY_FACTOR[day.weekday()] * (0.8 + 0.1 * (tenant_residence % 4))
            n = max(0, round(self.rng.gauss(mean, math.sqrt(mean))))
            for _ in range(n):
                hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
                at = datetime.combine(
                    day, time(hour, self.rng.randrange(60), self.rng.randrange(60)), self.tz
                ).astimezone(UTC)
                if at >= until:
                    continue
                self.conversation(self.rng.choice(tenants), at, until)

    def _by_residence(self) -> dict[int, list[Tenant]]:
        out: dict[int, list[Tenant]] = {}
        for t in self.tenants:
            if t.residence_id is not None:
                out.setdefault(t.residence_id, []).append(t)
        return dict(sorted(out.items()))

    def conversation(self, tenant: Tenant, at: datetime, until: datetime) -> None:
        rng = self.rng
        channel = self.pick(CHANNELS)
        scenario = self.pick(SCENARIOS)
        number = len(self.conversations) + 1
        conv = _Conv(
            {
                "channel": channel,
                "address": f"{ADDRESS_PREFIX}{channel}-{number:05d}",
                "tenant_id": tenant.id,
                "residence_id": tenant.residence_id,
                "state": "bot",
                "language": tenant.language or "fr",
                "dialogue": {"demo": True},
                "intent": None,
                "priority": 0,
                "assigned_to": None,
                "last_caretaker_id": None,
                "satisfaction": None,
                "created_at": at,
                "updated_at": at,
                "last_message_at": at,
                "queued_at": None,
                "closed_at": None,
            }
        )
        self.conversations.append(conv)
        t = at
        if scenario in ("faq", "collection", "status"):
            pairs = {"faq": FAQ, "collection": COLLECTION, "status": STATUS}[scenario]
            intent = {"faq": "question", "collection": "bulky_waste", "status": "status_request"}[
                scenario
            ]
            question, answer = rng.choice(pairs)
            collection_day = (self.local(at).date() + timedelta(days=rng.randint(2, 9))).strftime(
                "%d/%m"
            )
            conv.row["intent"] = intent
            self.say(conv, t, "tenant", question, intent=intent)
            t += timedelta(seconds=rng.randint(2, 6))
            self.say(conv, t, "bot", answer.format(day=collection_day))
            if rng.random() < 0.4:
                t += timedelta(seconds=rng.randint(20, 120))
                self.say(conv, t, "tenant", rng.choice(("Merci !", "Merci beaucoup", "ok merci")))
                self.say(conv, t + timedelta(seconds=2), "bot", "Avec plaisir, bonne journée !")
                t += timedelta(seconds=2)
            if rng.random() < 0.12 and t + timedelta(minutes=5) < until:
                # The answer was not enough: the tenant asks for a person.
                t += timedelta(minutes=rng.randint(1, 30))
                self.say(
                    conv, t, "tenant", "Je voudrais parler à quelqu'un", intent="human_request"
                )
                self.to_person(conv, t, "question", tenant, until)
            conv.row["last_message_at"] = max(m["created_at"] for m in conv.messages)
            return
        if scenario == "human":
            self.say(
                conv, t, "tenant", "Bonjour, je veux parler au gardien", intent="human_request"
            )
            conv.row["intent"] = "human_request"
            self.to_person(conv, t, "human_request", tenant, until)
            return
        kind = scenario
        summary = rng.choice(PROBLEMS[kind])
        conv.row["intent"] = kind
        self.say(conv, t, "tenant", summary, intent=kind)
        if kind == "emergency":
            conv.row["priority"] = EMERGENCY
            t += timedelta(seconds=3)
            self.say(
                conv,
                t,
                "bot",
                "C'est une urgence : si vous êtes en danger, appelez le 18 ou le 112. "
                "J'alerte tout de suite la personne d'astreinte.",
            )
        else:
            t += timedelta(seconds=rng.randint(3, 8))
            self.say(conv, t, "bot", "Depuis quand avez-vous ce problème ?")
            t += self.minutes(1.5)
            self.say(conv, t, "tenant", rng.choice(("depuis ce matin", "depuis hier", "2 jours")))
            t += timedelta(seconds=4)
        self.n_requests += 1
        reference = f"{REFERENCE_PREFIX}{self.n_requests:06d}"
        if kind != "emergency":
            self.say(
                conv,
                t,
                "bot",
                f"C'est noté : {summary.lower()}. Votre demande {reference} est transmise au "
                "gardien.",
            )
        request = {
            "reference": reference,
            "kind": kind,
            "status": "received",
            "tenant_id": tenant.id,
            "residence_id": tenant.residence_id,
            "building": tenant.building,
            "summary": summary,
            "details": {"demo": True, "since": "depuis ce matin"},
            "created_at": t,
            "updated_at": t,
            "closed_at": None,
            "due_at": t + timedelta(days=DEADLINE_DAYS[kind]),
            "scheduled_for": None,
            "scheduled_slot": "",
            "contractor": "",
            # Already reminded to caretakers and managers (in the story): the follow-up job
            # sends no alert about a demo request.
            "reminded_level": 2,
            "reminded_at": t + timedelta(days=DEADLINE_DAYS[kind]),
        }
        events = [self.event(t, "system:bot", None, "", "received")]
        conv.requests.append((request, events))
        taker: int | None = None
        if kind == "bulky_waste":
            conv.row["last_message_at"] = t
            taker = self.caretaker_for(tenant, t)
            taken_at = t + (self.minutes(40) if self.working(t) else self.next_working(t) - t)
        else:
            taker, taken_at = self.to_person(conv, t, kind, tenant, until, request=request)
        self.lifecycle(request, events, kind, taker, taken_at, until)

    def caretaker_for(self, tenant: Tenant, at: datetime, emergency: bool = False) -> int | None:
        own = self.caretakers.get(tenant.residence_id or 0, [])
        night_emergency = emergency and not self.working(at)
        pool = (self.oncall or own) if night_emergency or not own else own
        return self.rng.choice(pool) if pool else None

    def to_person(
        self,
        conv: _Conv,
        at: datetime,
        intent: str,
        tenant: Tenant,
        until: datetime,
        request: dict[str, Any] | None = None,
    ) -> tuple[int | None, datetime]:
        """A handoff: taken, answered and closed by a caretaker (on call at night for an
        emergency); sometimes rated by the tenant."""
        rng = self.rng
        emergency = intent == "emergency"
        staff = self.caretaker_for(tenant, at, emergency)
        if emergency:
            first_reply = at + self.minutes(5, 0.5)
        elif self.working(at):
            first_reply = at + self.minutes(14, 0.8)
        else:
            first_reply = self.next_working(at) + self.minutes(35, 0.6)
        taken = first_reply - timedelta(seconds=rng.randint(10, 150))
        closed = first_reply + self.minutes(45, 0.8)
        if closed >= until:
            closed = until - timedelta(minutes=1)
            first_reply = min(first_reply, closed - timedelta(seconds=30))
            taken = min(taken, first_reply)
        conv.handoffs.append(
            {
                "residence_id": tenant.residence_id,
                "intent": intent,
                "reason": request["summary"] if request else "",
                "priority": EMERGENCY if emergency else 0,
                "request_key": request["reference"] if request else None,
                "created_at": at,
                "taken_at": taken,
                "taken_by": staff,
                "first_reply_at": first_reply,
                "closed_at": closed,
                "resolution": "",
            }
        )
        self.say(
            conv,
            first_reply,
            "staff",
            rng.choice(EMERGENCY_REPLIES if emergency else STAFF_REPLIES),
            staff=staff,
        )
        conv.row.update(
            state="closed",
            closed_at=closed,
            queued_at=at,
            last_caretaker_id=staff,
            updated_at=closed,
        )
        if rng.random() < 0.62:
            waited = (first_reply - at).total_seconds() / 60
            scores = (5, 5, 5, 4, 4, 3) if waited < 30 else (5, 4, 4, 3, 3, 2)
            if waited > 240:
                scores = (4, 3, 3, 2, 2, 1)
            score = rng.choice(scores)
            asked = closed + timedelta(seconds=2)
            answered = asked + self.minutes(3)
            if answered < until:
                self.say(conv, asked, "bot", "Êtes-vous satisfait de la réponse ? Notez de 1 à 5.")
                self.say(conv, answered, "tenant", str(score))
                conv.row["satisfaction"] = score
        conv.row["last_message_at"] = max(m["created_at"] for m in conv.messages)
        return staff, taken

    def lifecycle(
        self,
        request: dict[str, Any],
        events: list[dict[str, Any]],
        kind: str,
        staff: int | None,
        taken_at: datetime,
        until: datetime,
    ) -> None:
        """Taken, (scheduled,) done, closed — as far as `until` reached."""
        rng = self.rng
        actor = f"staff:{self.logins.get(staff or 0, '')}" if staff else "system:followup"
        created: datetime = request["created_at"]
        total = timedelta(days=RESOLUTION_DAYS[kind] * math.exp(rng.gauss(0, 0.8)))
        done_at = max(taken_at + timedelta(minutes=30), created + total)
        steps: list[tuple[datetime, str, str, int | None]] = [(taken_at, "taken", actor, staff)]
        if kind in ("repair", "nuisance") and rng.random() < 0.6:
            scheduled = taken_at + (done_at - taken_at) / 3
            steps.append((scheduled, "scheduled", actor, staff))
            request["scheduled_for"] = done_at.replace(hour=8, minute=0, second=0)
            request["scheduled_slot"] = "morning"
        steps.append((done_at, "done", actor, staff))
        closed_at = done_at + self.minutes(60 * 20, 0.9)
        if done_at < until <= closed_at:
            # Never left "done": the follow-up job would close it later, webhook and all.
            closed_at = done_at + (until - done_at) / 2
        steps.append((closed_at, "closed", "tenant", None))
        status = "received"
        for at, to, actor, staff_id in steps:
            if at >= until:
                break
            events.append(self.event(at, actor, staff_id, status, to))
            status = to
            request["updated_at"] = at
            if to == "closed":
                request["closed_at"] = at
        request["status"] = status

    def event(
        self, at: datetime, actor: str, staff_id: int | None, from_: str, to: str
    ) -> dict[str, Any]:
        return {
            "at": at,
            "actor": actor,
            "staff_id": staff_id,
            "from_status": from_,
            "to_status": to,
            "note": "",
            "data": {},
        }

    def say(
        self,
        conv: _Conv,
        at: datetime,
        author: str,
        text: str,
        *,
        intent: str | None = None,
        staff: int | None = None,
    ) -> None:
        if at >= self.until:
            return  # the history ends yesterday evening
        tenant = author == "tenant"
        conv.messages.append(
            {
                "channel": conv.row["channel"],
                "direction": "in" if tenant else "out",
                "author": author,
                "staff_id": staff,
                "text": text,
                "media": [],
                "internal": False,
                "intent": intent,
                "confidence": round(0.75 + 0.24 * self.rng.random(), 3) if intent else None,
                "nlu": {"intent": intent, "demo": True} if intent else None,
                "delivery_status": None if tenant else "delivered",
                "received_at": at if tenant else None,
                "processed_at": at if tenant else None,
                "created_at": at,
            }
        )


async def load_history(
    db: Database,
    *,
    weeks: int = DEFAULT_WEEKS,
    seed: int = DEFAULT_SEED,
    now: datetime | None = None,
    timezone: str = "Europe/Paris",
    beside_real: bool = True,
) -> HistorySummary:
    """Replace the demo history with `weeks` weeks up to yesterday evening (local time).

    Needs the demo residences, tenants and staff (`load_demo`). Bulk inserts: a few seconds.
    `beside_real=False` refuses a database where tenants really wrote (ValueError)."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    tz = ZoneInfo(timezone)
    now = now or datetime.now(UTC)
    today = now.astimezone(tz).date()
    until = datetime.combine(today, time(0), tz).astimezone(UTC)
    first_day = today - timedelta(days=7 * weeks)
    async with db.transaction() as s:
        if not beside_real and (n := await real_conversations(s)):
            raise ValueError(
                f"{n} real conversations in this database: demo history is for a demo database "
                "(--force to add it anyway; the dashboard then shows a demo banner)"
            )
        await _clear(s)
        residences = {
            r.id: r for r in (await s.execute(select(Residence).order_by(Residence.id))).scalars()
        }
        tenants = list(
            (
                await s.execute(
                    select(Tenant)
                    .where(
                        Tenant.residence_id.is_not(None),
                        Tenant.erased_at.is_(None),
                        Tenant.departed_at.is_(None),
                    )
                    .order_by(Tenant.id)
                )
            )
            .unique()
            .scalars()
        )
        if not tenants:
            raise ValueError("no tenants: load the demo residences first (relais demo load)")
        staff = list(
            (
                await s.execute(
                    select(StaffUser).where(StaffUser.active.is_(True)).order_by(StaffUser.id)
                )
            ).scalars()
        )
        caretakers: dict[int, list[int]] = {}
        for st in staff:
            if st.role == Role.CARETAKER.value:
                for r in st.residences:
                    caretakers.setdefault(r.id, []).append(st.id)
        oncall = [st.id for st in staff if st.role == Role.ONCALL.value]
        logins = {st.id: st.login for st in staff}
        rng = random.Random(seed)  # noqa: S311 - made-up data, reproducible
        gen = _Generator(rng, tz, tenants, residences, caretakers, oncall, logins)
        day = first_day
        while day < today:
            gen.day(day, until)
            day += timedelta(days=1)
        return await _insert(s, gen, first_day, today - timedelta(days=1))


async def _insert(
    s: AsyncSession, gen: _Generator, first_day: date, last_day: date
) -> HistorySummary:
    convs = gen.conversations
    ids: list[int] = []
    for start in range(0, len(convs), 1000):
        chunk = [c.row for c in convs[start : start + 1000]]
        result = await s.execute(
            insert(Conversation).returning(Conversation.id, sort_by_parameter_order=True), chunk
        )
        ids.extend(result.scalars().all())
    request_rows: list[dict[str, Any]] = []
    request_events: list[list[dict[str, Any]]] = []
    for conv_id, c in zip(ids, convs, strict=True):
        for request, events in c.requests:
            request_rows.append({**request, "conversation_id": conv_id})
            request_events.append(events)
    request_ids: dict[str, int] = {}
    for start in range(0, len(request_rows), 1000):
        chunk = request_rows[start : start + 1000]
        result = await s.execute(
            insert(Request).returning(Request.id, sort_by_parameter_order=True), chunk
        )
        for row, rid in zip(chunk, result.scalars().all(), strict=True):
            request_ids[row["reference"]] = rid
    handoffs: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    for conv_id, c in zip(ids, convs, strict=True):
        for h in c.handoffs:
            key = h.pop("request_key")
            handoffs.append(
                {**h, "conversation_id": conv_id, "request_id": request_ids.get(key or "")}
            )
        messages.extend({**m, "conversation_id": conv_id} for m in c.messages)
    events = [
        {**e, "request_id": request_ids[row["reference"]]}
        for row, evs in zip(request_rows, request_events, strict=True)
        for e in evs
    ]
    for table, rows in ((Handoff, handoffs), (Message, messages), (RequestEvent, events)):
        for start in range(0, len(rows), 2000):
            await s.execute(insert(table), rows[start : start + 2000])
    return HistorySummary(
        conversations=len(convs),
        messages=len(messages),
        handoffs=len(handoffs),
        requests=len(request_rows),
        ratings=sum(1 for c in convs if c.row["satisfaction"] is not None),
        first_day=first_day,
        last_day=last_day,
    )
