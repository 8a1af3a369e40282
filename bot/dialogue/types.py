"""What the dialogue policy reads (`Turn` and its views) and what it decides (`Decision`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nlu.types import Parse

# Queue order: the console shows the highest first.
PRIORITY_NORMAL = 0
PRIORITY_VULNERABLE = 5
# A vulnerable tenant without heating, hot water, lift or electricity.
PRIORITY_VULNERABLE_ESSENTIAL = 8
PRIORITY_EMERGENCY = 10


@dataclass(frozen=True, slots=True)
class ResidenceView:
    code: str
    name: str
    buildings: tuple[str, ...] = ()
    agency: dict[str, Any] = field(default_factory=dict)
    caretaker_name: str = ""
    caretaker_hours: dict[str, Any] = field(default_factory=dict)
    bulky_waste: dict[str, Any] = field(default_factory=dict)
    lift_company: dict[str, Any] = field(default_factory=dict)
    landlord: dict[str, Any] = field(default_factory=dict)
    region: str = ""  # public-holiday region (Moselle, Alsace, overseas; "" for mainland)


@dataclass(frozen=True, slots=True)
class TenantView:
    id: int
    reference: str
    first_name: str
    language: str = "fr"
    vulnerable: bool = False
    building: str = ""
    apartment: str = ""
    residence: ResidenceView | None = None


@dataclass(frozen=True, slots=True)
class RequestView:
    reference: str
    kind: str
    status: str
    created_at: datetime
    summary: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    conversation_id: int | None = None


@dataclass(frozen=True, slots=True)
class IncidentView:
    """An open problem of the tenant's building (e.g. key "ascenseur" or "hall:lumiere")."""

    id: int
    key: str
    building: str
    created_at: datetime
    reports: int = 1


@dataclass(frozen=True, slots=True)
class Turn:
    text: str
    parse: Parse
    channel: str
    now: datetime  # local time of the landlord
    state: dict[str, Any]  # the conversation's stored dialogue state
    tenant: TenantView | None
    has_media: bool = False
    # The tenant's recent requests, newest first, open or not (status answers quote them).
    requests: tuple[RequestView, ...] = ()
    incidents: tuple[IncidentView, ...] = ()  # open incidents of the tenant's building
    landlord: dict[str, Any] = field(default_factory=dict)
    language: str = "fr"
    # Written in a language the bot does not speak: French answer plus a short English line.
    foreign: bool = False
    phone_region: str = "FR"  # how a national number the tenant types ("06…") is read
    # The language detected when it is neither French nor English ("tr", "ar"...), else "".
    foreign_language: str = ""
    # Who holds the conversation: "bot", "queued" (waits for a person) or "assigned".
    conversation_state: str = "bot"
    priority: int = PRIORITY_NORMAL  # the conversation's current queue priority
    # The request this conversation opened last, while it is not closed.
    open_request: RequestView | None = None
    # Every residence: public facts (bulky-waste day, agency hours) need no identification.
    residences: tuple[ResidenceView, ...] = ()
    address: str = ""  # the sender's address on the channel (shown to staff, never logged)
    # The channel cannot prove who writes (web chat, Telegram): a link needs a code by SMS.
    needs_proof: bool = False


@dataclass(frozen=True, slots=True)
class HandoffSpec:
    intent: str
    reason: str  # in words: what the person must know (the problem, where, since when)
    priority: int = PRIORITY_NORMAL
    oncall: bool = False
    language: str = ""  # the tenant's language when it is not the reply language

    def to_dict(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "reason": self.reason,
            "priority": self.priority,
            "oncall": self.oncall,
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HandoffSpec:
        return cls(
            str(d["intent"]),
            str(d.get("reason", "")),
            int(d.get("priority", 0)),
            bool(d.get("oncall")),
        )


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """A request to open. Replies hold `token` where its reference goes (known once stored).

    `incident_id` joins an open incident; `incident_key` opens one (or joins one that another
    tenant opened meanwhile) for a common-area problem.
    """

    kind: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    token: str = "{reference}"  # noqa: S105 (a placeholder, not a secret)
    incident_key: str | None = None
    incident_id: int | None = None


@dataclass(frozen=True, slots=True)
class RequestMove:
    """A move of one of the tenant's requests (by reference) the tenant's answer asks for:
    `closed` (it is fixed) or `reopened` (it is not; `note` holds their words)."""

    reference: str
    status: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class AlertSpec:
    """A staff notification to send now: `to` is "oncall" or "caretaker"; `reason` is a short
    label for the alert (no tenant text: an SMS lands on a lock screen)."""

    to: str
    reason: str


@dataclass(frozen=True, slots=True)
class RequestUpdate:
    """Something added to an existing request: a note, a photo, a worsening, an address."""

    reference: str
    note: str
    photo: bool = False
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Decision:
    replies: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    handoff: HandoffSpec | None = None
    requests: list[RequestSpec] = field(default_factory=list)
    # A tenant reference or phone the unknown sender gave: the pipeline tries to link it.
    identify: str | None = None
    intent: str | None = None
    satisfaction: int | None = None  # the tenant's 1-5 rating after a closed handoff
    request_update: RequestMove | None = None  # the answer to "is it fixed?"
    alerts: list[AlertSpec] = field(default_factory=list)
    updates: list[RequestUpdate] = field(default_factory=list)
    # The language to show staff when the tenant writes one the bot does not ("tr"...).
    language: str | None = None
    # The safety texts among `replies` (what to do now, whom to call): channels that can
    # show them as such (the web chat) mark them.
    urgent: list[str] = field(default_factory=list)

    @property
    def request(self) -> RequestSpec | None:
        return self.requests[0] if self.requests else None
