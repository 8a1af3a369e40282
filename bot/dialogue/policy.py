"""The dialogue policy: from what the NLU read and the conversation so far, what the bot does.

`decide` is a pure function of a `Turn` (plus the texts and the FAQ index): no I/O. The
conversation's state lives in `Turn.state` and comes back in `Decision.state`; the pipeline
stores it, so a restart in the middle of an intake resumes where it was. State keys:

- `topic`, `slots`, `asked`: the need being collected, what is known, the last question;
- `pending`: other needs of the same message, taken up once the current one is done;
- `failures`: misunderstandings in a row; `awaiting`/`pending_text`: an unknown sender;
- `questions`/`asked_before`: questions asked in this intake (at most two, never twice);
- `emergency`: the danger raised ({kind, over}), so follow-ups are read in context;
- `said`: the texts already sent (never the same sentence twice).

`on_silence` is the same policy for a tenant who stopped answering (the periodic due-job);
`due_at` says when that job should look at the conversation.
"""

from __future__ import annotations

import copy
import itertools
import re
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import bot.dialogue.confirmation as confirmation
import bot.dialogue.reading as reading
from bot.dialogue.faq import DEFAULT_THRESHOLD, SUGGEST_THRESHOLD, Faq, FaqEntry, render
from bot.dialogue.schedule import (
    holiday_name,
    is_open,
    next_collection,
    next_opening,
    residence_region,
)
from bot.dialogue.texts import Texts, good_day, hello
from bot.dialogue.types import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    PRIORITY_VULNERABLE,
    PRIORITY_VULNERABLE_ESSENTIAL,
    AlertSpec,
    Decision,
    HandoffSpec,
    RequestSpec,
    RequestUpdate,
    RequestView,
    ResidenceView,
    Turn,
)
from nlu.types import Entity, Parse

# The bot gives up after this many misunderstandings in a row and hands off.
MAX_FAILURES = 2
# An agency's closure is announced with its hours this many days ahead.
CLOSURE_NOTICE_DAYS = 30
# FAQ: at or above CONFIDENT the answer is given; between SUGGEST and CONFIDENT it is given
# with an offer to pass the question on; below SUGGEST a person answers.
FAQ_CONFIDENT = DEFAULT_THRESHOLD
FAQ_SUGGEST = SUGGEST_THRESHOLD
# A message that clearly starts another topic in the middle of an intake (not an answer).
SWITCH_CONFIDENCE = 0.7

INTAKE_TOPICS = ("repair", "nuisance", "bulky_report")
# Questions before the request exists; after that, what is known is recorded as it is.
MAX_QUESTIONS = 2
# A request still open this long after it was made is the one later messages attach to.
OPEN_REQUEST_DAYS = 30
# Faults a photo does not help with (nothing to see, or everyone sees it already).
NO_PHOTO_OBJECTS = frozenset(
    {"ascenseur", "lumiere", "interphone", "chauffage", "eau_chaude", "electricite", "radiateur"}
)
# Damage a photo shows the caretaker (water, mould, pests); other faults need none.
PHOTO_OBJECTS = frozenset(
    {"fuite", "moisissure", "nuisibles", "plafond", "canalisation", "evier", "toilettes"}
)
SAID_KEPT = 40  # texts remembered per conversation, to never send one twice
INSTANT = ("question", "bulky_waste", "status_request")
_TOPIC_INTENTS = ("repair", "nuisance", "bulky_waste", "question", "emergency")


def decide(turn: Turn, texts: Texts, faq: Faq | None = None) -> Decision:
    """What to answer, open, and hand off for this turn."""
    # "Is it fixed?" is read first (bot.dialogue.confirmation); an answer that is not one is
    # read as a message of its own.
    answered = confirmation.decide_confirmation(turn, texts)
    if answered is not None:
        return answered
    return _Policy(confirmation.without_question(turn), texts, faq).run()


def preview_answer(turn: Turn, texts: Texts, entry: FaqEntry) -> str:
    """The FAQ answer `entry` as the tenant of `turn` would receive it (the console's preview
    of a manager's edit, before it is saved)."""
    policy = _Policy(turn, texts, None)
    return render(entry, policy.lang, policy.faq_params())


def preview_bulky(turn: Turn, texts: Texts) -> str:
    """The bulky-waste answer the tenant of `turn` would receive."""
    policy = _Policy(turn, texts, None)
    policy.bulky_info()
    return "\n".join(policy.d.replies)


def on_silence(turn: Turn, texts: Texts, faq: Faq | None = None) -> Decision:
    """The tenant stopped answering: what is known becomes a request, or a handoff when too
    little is known; the tenant is told the reference. `turn.text` is empty."""
    return _Policy(turn, texts, faq).silence()


def due_at(state: dict[str, Any], now: datetime, timeout: timedelta) -> datetime | None:
    """When the silence job must look at a conversation in this state: an intake under way,
    or an unknown sender's message waiting for their identity."""
    if (
        state.get("topic")
        or state.get("pending")
        or state.get("unclear")
        or (state.get("awaiting") and state.get("pending_text"))
    ):
        return now + timeout
    return None


class _Policy:
    def __init__(self, turn: Turn, texts: Texts, faq: Faq | None) -> None:
        self.turn = turn
        self.texts = texts
        self.faq = faq
        self.lang = turn.language if turn.language in ("fr", "en") else "fr"
        # A deep copy: the turn's state is never changed, even in its nested lists.
        self.state: dict[str, Any] = copy.deepcopy(dict(turn.state))
        self.d = Decision(state=self.state, intent=turn.parse.intent)
        self.question: str | None = None  # asked last, after every other reply
        self.tenant = turn.tenant
        self.residence = self.tenant.residence if self.tenant else None

    # -- helpers ---------------------------------------------------------------------------

    def t(self, key: str, **params: Any) -> str:
        # "Bonjour" or "Bonsoir", "Bonne journée" or "Bonne soirée": by the landlord's clock.
        params.setdefault("hello", hello(self.turn.now, self.lang))
        params.setdefault("good_day", good_day(self.turn.now, self.lang))
        return self.texts.get(key, self.lang, **params)

    def say(self, key: str, **params: Any) -> None:
        self.d.replies.append(self.fresh(key, **params))

    def fresh(self, key: str, **params: Any) -> str:
        """The text of `key`, or its `_again` variant when it was already sent here."""
        said = self.state.setdefault("said", [])
        if key in said and f"{key}_again" in self.texts.entries:
            key = f"{key}_again"
        if key not in said:
            said.append(key)
            del said[:-SAID_KEPT]
        return self.t(key, **params)

    def ask(self, asked: str, key: str, **params: Any) -> None:
        self.state["asked"] = asked
        self.question = self.fresh(key, **params)

    def label(self, group: str, key: str | None) -> str:
        return self.texts.label(group, key, self.lang) if key else ""

    def caretaker(self) -> str:
        if self.residence and self.residence.caretaker_name:
            return self.residence.caretaker_name
        return self.t("team_name")

    def priority(self) -> int:
        return PRIORITY_VULNERABLE if self.tenant and self.tenant.vulnerable else PRIORITY_NORMAL

    def hours(self) -> dict[str, Any]:
        if self.residence is None:
            return {}
        hours = self.residence.caretaker_hours.get("hours") or self.residence.agency.get("hours")
        return dict(hours or {})

    def say_handoff(self, key: str, **params: Any) -> None:
        """A text that promises a person: when the team is away, its variant says when."""
        hours = self.hours()
        now = self.turn.now
        region = residence_region(self.residence)
        closed = hours and not is_open(hours, now, region)
        moment = next_opening(hours, now, region) if closed else None
        if moment is None:
            self.say(key, **params)
        else:
            when = reading.format_moment(moment, now, self.lang)
            self.say(f"{key}_closed", when=when, **params)

    def team_away(self) -> bool:
        hours = self.hours()
        region = residence_region(self.residence)
        return bool(hours) and not is_open(hours, self.turn.now, region)

    def hand_off(self, spec: HandoffSpec) -> None:
        pending = str(self.state.get("pending_text") or "")
        if self.tenant is None and pending and pending[:40] not in spec.reason:
            # What an unidentified sender wrote first goes with any handoff: nothing lost.
            spec = replace(spec, reason=f"{spec.reason} — message en attente : « {pending[:300]} »")
        current = self.d.handoff
        if current is None or spec.priority > current.priority:
            self.d.handoff = spec

    def new_request(self, kind: str, summary: str, details: dict[str, Any], **kw: Any) -> str:
        n = len(self.d.requests)
        token = "{reference}" if n == 0 else f"{{reference_{n + 1}}}"
        self.d.requests.append(RequestSpec(kind, summary[:200], details, token=token, **kw))
        return token

    def clear_topic(self) -> None:
        for key in ("topic", "slots", "asked", "questions", "asked_before", "reasked"):
            self.state.pop(key, None)

    # -- the turn --------------------------------------------------------------------------

    def run(self) -> Decision:
        turn, p = self.turn, self.turn.parse
        text = turn.text.strip()
        if turn.conversation_state == "assigned":
            # A person holds the conversation: the bot stays silent, except for safety.
            self.safety_only()
            return self.finish()
        if not text and not turn.has_media:
            self.say("empty")
            return self.finish()
        if turn.foreign_language:
            # French or English words inside still get the safety check.
            kind = reading.hazard(text)
            if kind is not None:
                self.emergency(kind)
            self.foreign()
            return self.finish()
        # Safety first, on every turn (answers to questions included), at any hour.
        if self.safety():
            return self.finish()
        asked = self.state.get("asked")
        if asked == "satisfaction":
            self.state.pop("asked")
            rating = reading.find_rating(text)
            if rating is not None:
                self.d.satisfaction = rating
                self.d.intent = "satisfaction"
                self.say("satisfaction_thanks" if rating >= 3 else "satisfaction_sorry")
                return self.finish()
        if self.tenant is None and self.state.get("awaiting") in ("identity", "code"):
            if self.identity_reply(text, p):
                return self.finish()
        elif self.tenant is None and reading.find_identity(text, self.turn.phone_region):
            # The tenant number given with the need: no question, the need is kept.
            self.state["pending_text"] = text[:500]
            self.state["awaiting"] = "identity"
            self.d.identify = reading.find_identity(text, self.turn.phone_region)
            return self.finish()
        if not text:  # a photo alone
            self.photo_alone()
            return self.finish()
        if reading.is_afraid(text):
            self.say("fear_ack")
        upset = reading.is_angry(text) or (
            reading.says_repeat(text) and p.intent in ("repair", "nuisance", "out_of_scope")
        )
        if (
            p.intent == "human_request"
            or reading.wants_person(text)
            or (upset and self.tenant is not None)
        ):
            self.human(angry=upset)
            return self.finish()
        if self.state.get("topic"):
            self.continue_intake()
        elif asked in ("offer_human", "faq_check") and p.intent in ("affirm", "deny"):
            self.answer_yes_no(asked, p.intent == "affirm")
        elif self.after_request():
            pass
        else:
            self.state.pop("asked", None)
            self.start_message()
        return self.finish()

    def silence(self) -> Decision:
        """The due-job's turn: record what an intake collected, or hand an unknown sender's
        message to the agency's queue."""
        topic = self.state.get("topic")
        if topic or self.state.get("pending"):
            slots = self.state.get("slots", {})
            if not topic:
                self.state.pop("asked", None)
            elif topic == "repair" and not (slots.get("what") or slots.get("object")):
                self.clear_topic()
                self.say_handoff("intake_timeout_handoff")
                self.hand_off(
                    HandoffSpec(
                        "repair", self.reason_words("Signalement incomplet", slots), self.priority()
                    )
                )
            else:
                self.complete(announce=False)
            # Other needs of the same message are recorded too: nothing said is dropped.
            self.record_pending()
            if self.d.requests:
                refs = ", ".join(r.token for r in self.d.requests)
                self.say("intake_timeout", reference=refs)
        elif self.state.get("unclear"):
            unclear = str(self.state.pop("unclear"))
            self.state["failures"] = 0
            self.say_handoff("intake_timeout_handoff")
            self.hand_off(
                HandoffSpec(
                    "out_of_scope",
                    f"Message non compris, sans suite : « {unclear[:300]} » — {self.where_words()}",
                    self.priority(),
                )
            )
        elif self.state.get("awaiting") and self.state.get("pending_text"):
            pending = str(self.state.pop("pending_text"))
            self.state.pop("awaiting", None)
            self.say("identity_timeout")
            self.hand_off(
                HandoffSpec(
                    "out_of_scope",
                    f"Expéditeur non identifié ({self.sender_label()}), "
                    f"sans réponse : « {pending[:300]} »",
                    PRIORITY_NORMAL,
                )
            )
        return self.finish()

    def finish(self) -> Decision:
        # Other needs of the same message, one after the other, once nothing is being asked.
        while (
            not self.state.get("topic")
            and self.state.get("pending")
            and self.state.get("asked") not in ("safety", "emergency_address")
        ):
            nxt = self.state["pending"].pop(0)
            entities = tuple(Entity(t, v) for t, v in nxt.get("entities", []))
            self.start(nxt["intent"], nxt["text"], entities, lead=True)
        if not self.state.get("pending"):
            self.state.pop("pending", None)
        if self.question:
            self.d.replies.append(self.question)
        if self.turn.foreign and not self.turn.foreign_language and self.d.replies:
            self.d.replies.append(self.fresh("foreign_note"))
        # Never the same sentence twice in one turn.
        seen: set[str] = set()
        self.d.replies = [r for r in self.d.replies if not (r in seen or seen.add(r))]  # type: ignore[func-returns-value]
        return self.d

    # -- starting needs --------------------------------------------------------------------

    def start_message(self, exclude: tuple[str, ...] = ()) -> None:
        p = self.turn.parse
        main = _main_intent(p)
        self.d.intent = main
        extras = [
            i
            for i in p.extra_intents
            if i != main and i in _TOPIC_INTENTS and i != "emergency" and i not in exclude
        ]
        if main in ("bulky_waste", "status_request") and "question" in extras:
            extras.remove("question")  # "c'est quand les encombrants ?" is that question
        if (
            main in ("bulky_waste", "question")
            and p.entity("object")
            and "repair" not in extras
            and reading.fault_words(self.turn.text)
        ):
            # "the boiler cuts out and a mattress was dumped", "my shutter is stuck, and a
            # rent certificate please": a repair besides the main need.
            extras.append("repair")
        if not extras:
            problems = _problems(p) if main == "repair" else [(self.turn.text, p.entities)]
            (first_text, first_entities), *others = problems
            self.start(main, first_text, first_entities)
            for other_text, other_entities in others:
                self.state.setdefault("pending", []).append(
                    {
                        "intent": "repair",
                        "text": other_text[:500],
                        "entities": [[e.type, e.value] for e in other_entities],
                    }
                )
            return
        parts = reading.split_needs(self.turn.text, [main, *extras])
        # A need told as history or denied ("c'était le grille-pain du voisin") is no need.
        extras = [
            i
            for i in extras
            if parts[i][0] == self.turn.text or not reading.denied_or_past(parts[i][0])
        ]
        if not extras:
            self.start(main, self.turn.text, p.entities)
            return
        instant = [i for i in extras if i in INSTANT]
        later = [i for i in extras if i not in INSTANT]
        self.start(main, parts[main][0], _entities_in(p, parts[main]))
        for intent in instant:
            self.start(intent, parts[intent][0], _entities_in(p, parts[intent]), lead=True)
        pending = self.state.setdefault("pending", [])
        for intent in later:
            part = parts[intent]
            entities = [[e.type, e.value] for e in _entities_in(p, part)]
            pending.append({"intent": intent, "text": part[0][:500], "entities": entities})

    def start(
        self, intent: str, text: str, entities: tuple[Entity, ...], *, lead: bool = False
    ) -> None:
        """Take up one need. `lead`: a second need of the same message, announced as such."""
        p = self.turn.parse
        if self.tenant is None and intent == "bulky_waste" and not reading.is_dumped_report(text):
            named = self.named_residence(text)
            if named is not None:
                self.bulky_info(residence=named)
                return
        if self.tenant is None and intent in (
            "repair",
            "nuisance",
            "bulky_waste",
            "status_request",
        ):
            if reading.thanks_for_past(text):
                self.say("thanks")
                return
            if self.state.get("identity_tries", 0) >= MAX_FAILURES:
                # Identification already failed: the message goes to the queue, no loop.
                self.say_handoff("identity_handoff")
                self.hand_off(
                    HandoffSpec(
                        intent,
                        f"Expéditeur non identifié ({self.sender_label()}) : « {text[:300]} »",
                        PRIORITY_NORMAL,
                    )
                )
                return
            self.say("unknown_sender")
            self.state["awaiting"] = "identity"
            previous = self.state.get("pending_text")
            self.state["pending_text"] = (f"{previous} / {text}" if previous else text)[:500]
            return
        if intent == "repair" and reading.thanks_for_past(text):
            self.say("thanks")
            return
        if intent == "out_of_scope":
            self.not_understood(text)
            return
        self.state["failures"] = 0
        if intent == "greet":
            self.say("greet", name=_name(self.tenant), landlord=self.landlord_name())
        elif intent == "thanks":
            self.say("thanks")
            if self.state.get("emergency") and not self.state["emergency"].get("over"):
                pass
        elif intent == "goodbye":
            self.say("goodbye", name=_name(self.tenant))
        elif intent == "affirm":
            self.say("affirm_nothing")
        elif intent == "deny":
            self.say("deny_nothing")
        elif intent == "status_request":
            self.status(entities)
        elif intent == "question":
            self.question_answer(text, lead=lead)
        elif intent == "bulky_waste":
            if reading.is_dumped_report(text):
                self.begin_intake("bulky_report", text, entities)
            else:
                self.bulky_info(lead=lead)
        elif intent == "repair":
            match = (
                self.faq.match(text, threshold=FAQ_CONFIDENT)
                if self.faq is not None and "?" in text and not p.entity("object")
                else None
            )
            if match is not None:  # "et la caution on la récupère quand ?" is a question
                self.d.intent = "question"
                self.give_answer(match.entry)
            else:
                self.begin_intake("repair", text, entities)
        elif intent == "nuisance":
            self.begin_intake("nuisance", text, entities)
        elif intent == "emergency":
            # The NLU's emergency that the safety check found denied, past or equipment: what
            # the tenant reports is a repair (a detector, an extinguisher, a door).
            if reading.is_all_clear(text):
                self.say("emergency_over")
            else:
                self.begin_intake("repair", text, entities)
        elif intent == "human_request":
            self.human()
        else:
            self.not_understood(text or p.text)

    def landlord_name(self) -> str:
        return str(self.turn.landlord.get("name") or self.t("landlord_default"))

    # -- emergencies, people, misunderstandings ---------------------------------------------

    def danger(self) -> str | None:
        """The danger of this turn, if any: the NLU's hazard entity when it gives one, else
        the dialogue's own reading; a danger denied, told as history or cleared is none."""
        p, text = self.turn.parse, self.turn.text
        own = reading.hazard(text)
        if own is not None:
            return own
        if reading.denied_or_past(text):
            return None
        hazard = p.entity("hazard")
        # The NLU names a hazard for every emergency; when no rule fired (the classifier alone,
        # a confidence under the rules' 0.99) that name is a guess, weighed like one below.
        if hazard and (p.intent != "emergency" or p.confidence >= RULED_EMERGENCY):
            return hazard
        if p.intent == "emergency" or "emergency" in p.extra_intents:
            kind = _HAZARD_OF_KIND.get(reading.emergency_kind(text), "danger")
            if hazard and hazard != "danger":
                kind = hazard
            unsure = kind == "flooding" or (kind == "danger" and p.confidence < 0.8)
            if unsure and not self.state.get("safety_checked"):
                return None  # a danger of uncertain size: the safety question decides
            return kind
        return None

    def safety_only(self) -> None:
        """While a person holds the conversation: safety texts and alerts, nothing else."""
        if self.turn.text.strip():
            self.safety()

    def safety(self) -> bool:
        """Check the turn for a danger, or follow an emergency under way. True: handled."""
        text = self.turn.text
        active = self.state.get("emergency") or {}
        asked = self.state.get("asked")
        if asked == "emergency_address" and self.tenant is None and not reading.hazard(text):
            follow = reading.follow_up(text)
            if follow is None and not reading.asks_instead_of_answering(text):
                self.state.pop("asked", None)
                self.emergency_address(text)
                return True
            if active and not active.get("over"):
                # News or a question instead of the address: answered as news for on-call,
                # and the address asked for again while the danger lasts.
                self.emergency_follow_up(follow or "noted", active)
                if follow == "over":
                    self.state.pop("asked", None)
                else:
                    self.say("emergency_address_again")
                return True
            self.state.pop("asked", None)
        kind = self.danger()
        if active and not active.get("over"):
            follow = reading.follow_up(text)
            if follow is not None and (kind is None or kind == active.get("kind")):
                self.emergency_follow_up(follow, active)
                return True
            if kind is not None and kind == active.get("kind"):
                self.say("emergency_still")
                return True
            if kind is None and self.turn.parse.intent not in (
                "repair",
                "nuisance",
                "question",
                "bulky_waste",
                "status_request",
                "human_request",
            ):
                # Anything else while the danger lasts is news for on-call, not a new need.
                self.emergency_follow_up("noted", active)
                return True
        if kind is not None:
            self.emergency(kind)
            return True
        if active and reading.is_all_clear(text):
            # Already over, or told again: thanks, nothing raised.
            self.say("emergency_over")
            return True
        if asked == "safety":
            self.state.pop("asked", None)
            answer = reading.yes_no(text)
            feared = str(self.state.pop("risk", "flooding"))
            if answer is True:
                water = feared in ("flooding", "water_electric")
                self.emergency("water_electric" if water else feared)
                return True
            self.state["safety_checked"] = True
            # No danger: the need waiting in `pending` is taken up now; a longer answer is
            # read on as a message of its own.
            return answer is False or len(text.split()) <= 3
        risk = self.turn.parse.entity("risk") or reading.risk(text)
        if (
            risk is None
            and self.turn.parse.intent == "emergency"
            and not reading.denied_or_past(text)
        ):
            # The classifier's emergency that nothing else confirms: water, or unclear.
            guess = self.turn.parse.entity("hazard")
            risk = guess if guess and guess != "danger" else None
            risk = risk or _HAZARD_OF_KIND.get(reading.emergency_kind(text), "danger")
        if risk and not self.state.get("safety_checked") and self.turn.conversation_state == "bot":
            self.state["risk"] = risk
            self.d.intent = self.turn.parse.intent
            water = risk in ("flooding", "water_electric")
            own = self.own_open_request()
            worse = own is not None and reading.is_worse(text)
            if worse and own is not None:
                # "Ça s'aggrave": the open request gets it (and its caretaker is alerted)
                # before the safety question, not a new request once it is answered.
                self.note_worse(own, text)
            self.ask("safety", "safety_question" if water else "safety_question_danger")
            if worse:
                return True
            # The need itself is taken up once the safety question is answered.
            intent = self.turn.parse.intent
            self.state.setdefault("pending", []).append(
                {
                    "intent": "repair" if intent == "emergency" else intent,
                    "text": text[:500],
                    "entities": [[e.type, e.value] for e in self.turn.parse.entities],
                }
            )
            return True
        return False

    def emergency(self, kind: str) -> None:
        """Safety text first, an urgent handoff, on-call alerted now, whatever the state."""
        text = self.turn.text
        key = reading.hazard_from_kind(kind)
        lift = self.residence.lift_company if self.residence else {}
        gas = self.turn.landlord.get("gas_emergency", "0 800 47 33 33")
        params = {
            "lift_company": lift.get("name", ""),
            "lift_phone": lift.get("phone", "112"),
            "gas_phone": gas,
        }
        lines = [self.t(f"emergency_{key}", **params)]
        if kind == "trapped_lift" and reading.vulnerable_person(text):
            lines.append(self.t("emergency_person_at_risk"))
        self.d.replies[:0] = lines
        self.d.urgent.extend(lines)
        self.d.intent = "emergency"
        earlier = self.state.get("slots", {}).get("text") if self.state.get("topic") else None
        details: dict[str, Any] = {"hazard": kind, "kind": key, "text": text[:1000]}
        if earlier:
            details["earlier"] = earlier  # what was being collected goes with the emergency
        label = self.label("hazards", kind) or kind
        where = self.where_words()
        self.new_request("emergency", f"{label} · {text[:150]}", details)
        reason = f"URGENCE {label} : « {text[:200]} »" + (f" — {where}" if where else "")
        self.hand_off(
            HandoffSpec(
                "emergency",
                reason,
                PRIORITY_EMERGENCY,
                True,
                language=self.turn.foreign_language,
            )
        )
        self.d.alerts.append(AlertSpec("oncall", f"URGENCE {label}"))
        self.clear_topic()
        self.state.pop("pending", None)
        self.state["failures"] = 0
        self.state["emergency"] = {"kind": kind, "over": False}
        if self.tenant is None:
            # On-call must find the place: asked right after the safety text.
            self.ask("emergency_address", "emergency_address")

    def emergency_follow_up(self, follow: str, active: dict[str, Any]) -> None:
        self.d.intent = "emergency"
        note = {
            "called": "secours appelés",
            "arrived": "secours sur place",
            "over": "fin d'alerte",
            "safe": "à l'abri",
            "noted": "message",
        }
        ref = self.open_reference("emergency")
        if ref:
            self.d.updates.append(RequestUpdate(ref, f"{note[follow]} : {self.turn.text[:300]}"))
        if follow == "over":
            self.state["emergency"] = {**active, "over": True}
            self.say("emergency_over")
        else:
            self.say(f"emergency_{follow}")

    def emergency_address(self, text: str) -> None:
        """An unknown sender's answer to "where are you?" goes to the request and on-call."""
        self.d.intent = "emergency"
        ref = self.open_reference("emergency")
        if ref:
            self.d.updates.append(
                RequestUpdate(ref, f"adresse : {text[:300]}", fields={"address": text[:300]})
            )
        self.d.alerts.append(AlertSpec("oncall", "adresse de l'urgence"))
        self.say("emergency_address_thanks")

    def open_reference(self, kind: str | None = None) -> str | None:
        r = self.turn.open_request
        if (
            r is not None
            and (kind is None or r.kind == kind)
            and r.reference
            and (self.state.get("request") == r.reference or kind == "emergency")
        ):
            return r.reference
        for r in self.turn.requests:
            if r.status != "closed" and (kind is None or r.kind == kind) and r.reference:
                return r.reference
        return None

    def sender_label(self) -> str:
        """How staff can reach an unidentified sender: the phone number where the address is
        one; otherwise only the channel (a web-chat token is a credential, never shown)."""
        address = self.turn.address
        if self.turn.channel in ("sms", "whatsapp") or address.startswith("+"):
            return f"{self.turn.channel} {address}"
        return self.turn.channel

    def where_words(self) -> str:
        if self.tenant is None:
            return f"non identifié ({self.sender_label()})"
        res = self.residence.name if self.residence else ""
        apt = f", logement {self.tenant.apartment}" if self.tenant.apartment else ""
        return f"{res} bât. {self.tenant.building}{apt}".strip()

    def reason_words(self, head: str, slots: dict[str, Any]) -> str:
        """What the person must know, in words: the problem, where, since when."""
        what = slots.get("what") or slots.get("text") or ""
        parts = [f"{head} : « {str(what)[:200]} »"]
        if slots.get("place") and slots.get("place") != "?":
            parts.append(f"lieu : {self.label('places', slots['place'])}")
        elif slots.get("where"):
            parts.append(f"lieu : {slots['where']}")
        if slots.get("since"):
            parts.append(f"depuis : {slots['since']}")
        if slots.get("when"):
            parts.append(f"quand : {slots['when']}")
        notes = [n for n in slots.get("notes", []) if n and n != what]
        if notes:
            parts.append("précisions : " + " / ".join(str(n)[:120] for n in notes[-3:]))
        where = self.where_words()
        if where:
            parts.append(where)
        return " — ".join(parts)[:1000]

    def foreign(self) -> None:
        """A language the bot does not write: a fixed line in it, and a person."""
        lang = self.turn.foreign_language
        first = not self.state.get("foreign_acked")
        self.state["foreign_acked"] = True
        self.d.replies.append(self.texts.other("foreign_ack" if first else "foreign_more", lang))
        self.d.language = lang
        if self.turn.conversation_state == "bot" or first:
            self.hand_off(
                HandoffSpec(
                    "out_of_scope",
                    f"Message en langue « {lang} » : « {self.turn.text[:300]} »"
                    + (f" — {self.where_words()}" if self.where_words() else ""),
                    self.priority(),
                    language=lang,
                )
            )

    def identity_reply(self, text: str, p: Parse) -> bool:
        """An unknown sender's answer while we wait for who they are. True: handled."""
        code = reading.find_code(text)
        if code and (self.state.get("awaiting") == "code" or self.turn.needs_proof):
            self.d.identify = f"code:{code}"
            return True
        ident = reading.find_identity(text, self.turn.phone_region)
        if ident:
            self.d.identify = ident
            return True
        if p.intent in ("greet", "thanks", "goodbye", "human_request") or (
            p.intent in ("question", "bulky_waste") and ("?" in text or p.confidence >= 0.6)
        ):
            return False
        tries = int(self.state.get("identity_tries", 0)) + 1
        self.state["identity_tries"] = tries
        if tries >= MAX_FAILURES:
            pending = str(self.state.pop("pending_text", "") or "")
            said = (pending + " / " + text if pending else text)[:400]
            self.say("identity_handoff")
            self.hand_off(
                HandoffSpec(
                    p.intent if p.intent in _TOPIC_INTENTS else "out_of_scope",
                    f"Expéditeur non identifié ({self.sender_label()}) : « {said} »",
                    PRIORITY_NORMAL,
                )
            )
            self.state.pop("awaiting", None)
        else:
            self.say("unknown_sender")
        return True

    def photo_alone(self) -> None:
        if self.state.get("topic"):
            self.state.setdefault("slots", {})["photo"] = True
            if self.state.get("asked") in ("photo", "photo_wait"):
                self.state.pop("asked", None)
            self.advance()
            return
        ref = self.open_reference()
        if ref:
            self.d.updates.append(RequestUpdate(ref, "photo ajoutée", photo=True))
            self.say("photo_added", reference=ref)
            return
        self.say("media_only")

    def record_pending(self) -> dict[str, Any]:
        """Record the needs waiting in `pending` (behind a safety question or another need)
        as they stand, no questions; the first one's slots, for a handoff's reason."""
        first: dict[str, Any] = {}
        for nxt in self.state.pop("pending", []):
            intent = nxt.get("intent")
            if intent in ("repair", "nuisance") or (
                intent == "bulky_waste" and reading.is_dumped_report(nxt.get("text", ""))
            ):
                entities = tuple(Entity(t, v) for t, v in nxt.get("entities", []))
                topic = "bulky_report" if intent == "bulky_waste" else intent
                self.begin_intake(topic, nxt.get("text", ""), entities, ask=False)
                first = first or dict(self.state.get("slots", {}))
                self.complete(announce=False)
        return first

    def own_open_request(self) -> RequestView | None:
        """The request this conversation opened, still open and recent, or None."""
        r = self.turn.open_request
        if r is None or r.status == "closed" or not r.reference:
            return None
        if self.state.get("request") != r.reference:
            return None  # made before a person closed the conversation: a new round
        if (self.turn.now - r.created_at) > timedelta(days=OPEN_REQUEST_DAYS):
            return None
        return r

    def note_worse(self, r: RequestView, text: str) -> None:
        """A worsening added to the open request, and its caretaker alerted."""
        self.d.updates.append(RequestUpdate(r.reference, f"s'aggrave : {text.strip()[:300]}"))
        self.d.alerts.append(AlertSpec("caretaker", "signalement aggravé"))
        self.say("request_worse", reference=r.reference, caretaker=self.caretaker())

    def after_request(self) -> bool:
        """A message about the request this conversation just opened: attach it to that
        request (details, worse, still not fixed, the same problem again, thanks)."""
        r = self.own_open_request()
        if r is None:
            return False
        p, text = self.turn.parse, self.turn.text.strip()
        if p.intent in ("thanks", "goodbye") or reading.thanks_for_past(text):
            self.d.intent = "thanks"
            self.say("thanks" if p.intent != "goodbye" else "goodbye", name=_name(self.tenant))
            return True
        topical = p.intent in _TOPIC_INTENTS and p.confidence >= 0.5
        same = self.same_problem(r, p)
        if reading.is_worse(text) and (same or not topical):
            self.note_worse(r, text)
            return True
        if reading.is_still_broken(text) and (same or not topical):
            self.d.updates.append(RequestUpdate(r.reference, f"toujours pas réglé : {text[:300]}"))
            self.say_handoff("request_still", reference=r.reference)
            self.hand_off(
                HandoffSpec(
                    r.kind,
                    f"Relance sur {r.reference} ({r.summary[:120]}) : « {text[:200]} » — "
                    f"{self.where_words()}",
                    max(self.priority(), PRIORITY_VULNERABLE),
                )
            )
            return True
        if r.kind == "emergency":
            return False
        if reading.asks_status(text):
            # "Où en est ma demande ? et aussi le digicode ne marche plus": both answered.
            self.status(p.entities)
            rest = reading.after_status(text)
            if rest and len(rest.split()) >= 3:
                self.begin_intake(
                    "repair", rest, tuple(e for e in p.entities if e.start >= len(text) - len(rest))
                )
            return True
        if p.intent in ("affirm", "deny") and len(text.split()) <= 5:
            self.say("affirm_nothing" if p.intent == "affirm" else "deny_nothing")
            return True
        if (
            p.intent in ("question", "bulky_waste", "status_request", "human_request")
            and ("?" in text or p.confidence >= 0.6)
            and not (same and p.intent == r.kind)
        ):
            return False
        if topical and not same:
            return False  # another problem: a request of its own
        # A detail of the request just made (access, times, who lives there, the same
        # problem told again): added to it, and a vulnerability raises it.
        self.d.updates.append(RequestUpdate(r.reference, text[:500]))
        self.say("request_detail", reference=r.reference)
        if reading.vulnerable_situation(text):
            self.hand_off(
                HandoffSpec(
                    r.kind,
                    f"Situation fragile signalée sur {r.reference} : « {text[:200]} » — "
                    f"{self.where_words()}",
                    PRIORITY_VULNERABLE,
                )
            )
        return True

    def same_problem(self, r: RequestView, p: Parse) -> bool:
        """Whether the message speaks of the request's problem (no other object named)."""
        if reading.another_thing(p.text):
            return False
        if r.kind == "bulky_waste" and p.intent == "bulky_waste" and not reading.asks_when(p.text):
            return True  # more items on the same pile
        sure = p.confidence >= 0.5
        if sure and r.kind == "repair" and p.intent not in ("repair", "out_of_scope"):
            return False
        if sure and r.kind == "nuisance" and p.intent not in ("nuisance", "out_of_scope"):
            return False
        obj = p.entity("object")
        known = (r.details or {}).get("object")
        if obj is not None and known is None:
            # The request named no known object: the same if its words name this one.
            label = reading.fold(self.label("objects", obj))
            return label in reading.fold(str((r.details or {}).get("text") or r.summary))
        return obj is None or obj == known

    def human(self, *, angry: bool = False) -> None:
        text = self.turn.text
        p = self.turn.parse
        if self.state.get("topic"):
            asked = self.state.get("asked")
            self.state["slots"].setdefault("notes", []).append(text[:500])
            if asked and self.fits(asked, p, text):
                self.fill(asked, p, text)  # an angry answer is still an answer
        slots = dict(self.state.get("slots", {})) if self.state.get("topic") else {}
        if self.state.get("topic"):
            # Keep what was collected: the person sees it in the request.
            self.complete(announce=False)
        elif (angry and self.turn.parse.intent in ("repair", "nuisance")) or (
            angry and reading.says_repeat(text) and self.turn.parse.entity("object")
        ):
            # An angry report is still a report: recorded at once, no questions.
            topic = "nuisance" if self.turn.parse.intent == "nuisance" else "repair"
            self.begin_intake(topic, text, self.turn.parse.entities, ask=False)
            slots = dict(self.state.get("slots", {}))
            self.complete(announce=False)
        elif self.state.get("pending"):
            # A need held behind the safety question: recorded, not lost with the anger.
            slots = self.record_pending()
        history = self.repeat_history()
        if angry:
            if history:
                refs = ", ".join(r.reference for r in history[:4])
                self.say(
                    "angry_repeat",
                    nth=reading.ordinal(len(history) + 1, self.lang),
                    references=refs,
                )
            else:
                self.say("angry_sorry")
        self.say_handoff("human" if not angry else "angry_handoff")
        head = "Locataire mécontent" if angry else "Demande à parler à une personne"
        if history:
            refs = ", ".join(r.reference for r in history[:4])
            head += f" ({len(history) + 1}e signalement : {refs})"
        reason = self.reason_words(head, slots or {"text": text})
        self.hand_off(
            HandoffSpec(
                "human_request",
                reason,
                max(self.priority(), PRIORITY_VULNERABLE if angry else PRIORITY_NORMAL),
            )
        )
        self.clear_topic()
        self.state.pop("pending", None)
        self.state["failures"] = 0

    def history_of(self, kind: str, obj: str | None) -> list[RequestView]:
        """This tenant's earlier requests for the same problem (kind, and object if known),
        within the last year."""
        found = []
        for r in self.turn.requests:
            if r.kind != kind or not r.reference:
                continue
            if (self.turn.now - r.created_at) > timedelta(days=365):
                continue
            robj = (r.details or {}).get("object")
            if kind == "repair" and (obj is None or robj != obj):
                continue
            found.append(r)
        return found

    def repeat_history(self) -> list[RequestView]:
        """Earlier requests of this tenant about the same problem as this message."""
        p = self.turn.parse
        obj = p.entity("object")
        kind = p.intent if p.intent in ("repair", "nuisance") else None
        if obj is None and kind is None:
            return []
        current = {r.token for r in self.d.requests}
        found = []
        for r in self.turn.requests:
            if r.reference in current or r.kind == "emergency":
                continue
            robj = (r.details or {}).get("object")
            if (obj is not None and robj == obj) or (
                obj is None and kind is not None and r.kind == kind
            ):
                found.append(r)
        return found

    def not_understood(self, text: str) -> None:
        p = self.turn.parse
        if (
            self.tenant is not None
            and len(text.split()) >= 6
            and (p.entity("place") in reading.COMMON_PLACES or p.entity("object"))
        ):
            # A description of something somewhere: a report, even if the words are new.
            self.begin_intake("repair", text, p.entities)
            return
        earlier = self.state.get("unclear")
        self._not_understood(text)
        if self.state.get("failures"):
            self.state["unclear"] = (f"{earlier} / {text}" if earlier else text)[:500]

    def _not_understood(self, text: str) -> None:
        # The classifier may miss a question worded oddly: a close FAQ match still answers.
        if self.faq is not None:
            match = self.faq.match(text, threshold=FAQ_CONFIDENT)
            if match is not None:
                self.state["failures"] = 0
                self.state.pop("unclear", None)
                self.d.intent = "question"
                self.give_answer(match.entry)
                return
        failures = int(self.state.get("failures", 0)) + 1
        self.state["failures"] = failures
        if failures >= MAX_FAILURES:
            earlier = str(self.state.pop("unclear", "") or "")
            said = f"{earlier} / {text}" if earlier and earlier != text else text
            self.say_handoff("handoff_after_failures")
            self.hand_off(
                HandoffSpec(
                    "out_of_scope",
                    f"Message non compris : « {said[:400]} » — {self.where_words()}",
                    self.priority(),
                )
            )
            self.state["failures"] = 0
        else:
            self.say("ask_again")

    def answer_yes_no(self, asked: str, yes: bool) -> None:
        self.state.pop("asked", None)
        wants_person = yes if asked == "offer_human" else not yes
        if wants_person:
            self.say_handoff("question_handoff" if asked == "faq_check" else "human")
            faq = self.state.get("faq") or ""
            self.hand_off(
                HandoffSpec(
                    "question",
                    f"Question (réponse automatique « {faq} » insuffisante) — {self.where_words()}",
                    self.priority(),
                )
            )
        else:
            self.say("deny_nothing" if asked == "offer_human" else "faq_glad")

    # -- questions, bulky waste, status --------------------------------------------------------

    def faq_params(self) -> dict[str, Any]:
        landlord = self.turn.landlord
        params: dict[str, Any] = {
            "landlord": self.landlord_name(),
            "website": landlord.get("website", ""),
        }
        residence = self.residence or self.named_residence(self.turn.text, agencies=True)
        if residence is None:
            params.update(
                agency=self.t("faq_agency_unknown"),
                agency_address=self.t("faq_agency_unknown"),
                agency_phone=self.t("faq_phone_unknown"),
                agency_email=self.t("faq_agency_unknown"),
                agency_hours=self.t("faq_hours_unknown"),
                caretaker=self.t("team_name"),
                caretaker_hours=self.t("faq_hours_unknown"),
                residence="",
            )
            return params
        agency = residence.agency
        params.update(
            agency=agency.get("name", ""),
            agency_address=agency.get("address", ""),
            agency_phone=agency.get("phone", ""),
            agency_email=agency.get("email", ""),
            agency_hours=self.agency_hours(agency),
            caretaker=residence.caretaker_name or self.caretaker(),
            caretaker_hours=(residence.caretaker_hours.get("text") or {}).get(self.lang, ""),
            residence=residence.name,
        )
        return params

    def question_answer(self, text: str, *, lead: bool = False) -> None:
        match = self.faq.match(text, threshold=FAQ_SUGGEST) if self.faq else None
        if match is None:
            self.say_handoff("question_handoff")
            self.hand_off(
                HandoffSpec(
                    "question",
                    f"Question sans réponse sûre : « {text[:300]} » — {self.where_words()}",
                    self.priority(),
                )
            )
            return
        self.give_answer(match.entry, sure=match.score >= FAQ_CONFIDENT)

    def give_answer(self, entry: FaqEntry, *, sure: bool = True) -> None:
        self.d.replies.append(render(entry, self.lang, self.faq_params()))
        self.state["faq"] = entry.id
        if entry.id in ("agency", "caretaker"):
            self.holiday_notice(entry.id)
        if entry.offer_human:
            self.state["asked"] = "offer_human"
        elif not sure:
            self.ask("faq_check", "faq_check")
        named = self.named_residence(self.turn.text, agencies=True)
        if self.tenant is None and named is None:
            self.say("faq_unknown_sender")

    def agency_hours(self, agency: dict[str, Any]) -> str:
        """The agency's usual hours, and its closures of the coming weeks."""
        text = str((agency.get("hours_text") or {}).get(self.lang, ""))
        today = self.turn.now.date()
        closures = []
        for c in (agency.get("hours") or {}).get("closed") or []:
            try:
                start = date.fromisoformat(str(c["from"]))
                end = date.fromisoformat(str(c.get("to") or c["from"]))
            except (KeyError, ValueError, TypeError):
                continue
            if end >= today and (start - today).days <= CLOSURE_NOTICE_DAYS:
                closures.append(
                    self.t(
                        "agency_closed_day" if start == end else "agency_closed_days",
                        start=reading.format_date(start, self.lang),
                        end=reading.format_date(end, self.lang),
                    )
                )
        return ", ".join([text, *closures]) if text else ", ".join(closures)

    def holiday_notice(self, which: str) -> None:
        """A question about an opening on a day that is a public holiday: say it is closed,
        and when it opens next."""
        residence = self.residence or self.named_residence(self.turn.text, agencies=True)
        if residence is None:
            return
        day = reading.day_asked(self.turn.text, self.turn.now.date())
        region = residence_region(residence)
        name = holiday_name(day, region) if day else None
        if day is None or name is None:
            return
        if which == "caretaker":
            hours = residence.caretaker_hours.get("hours") or {}
        else:
            hours = residence.agency.get("hours") or {}
        start = datetime.combine(day, datetime.min.time(), tzinfo=self.turn.now.tzinfo)
        reopens = next_opening(hours, start, region) if hours else None
        self.say(
            "holiday_closed",
            day=reading.format_date(day, self.lang),
            holiday=name,
            reopens=reading.format_moment(reopens, self.turn.now, self.lang) if reopens else "",
        )

    def named_residence(self, text: str, *, agencies: bool = False) -> ResidenceView | None:
        """A residence the text names (or, with `agencies`, whose agency or town it names)."""
        residences = list(self.turn.residences)
        i = reading.mentioned(text, [r.name for r in residences])
        if i is None and agencies:
            names = [str(r.agency.get("name", "")) for r in residences]
            i = reading.mentioned(text, names, any_word=True)
        return residences[i] if i is not None else None

    def bulky_info(self, *, lead: bool = False, residence: ResidenceView | None = None) -> None:
        residence = residence or self.named_residence(self.turn.text) or self.residence
        bw = residence.bulky_waste if residence else {}
        if not bw or residence is None:
            self.say("bulky_generic")
            return
        rule = bw.get("rule", {})
        region = residence_region(residence)
        exceptions = bw.get("exceptions") or ()
        nxt = next_collection(rule, self.turn.now.date(), exceptions, region=region)
        planned = next_collection(
            rule, self.turn.now.date(), exceptions, region=region, holidays=False
        )
        self.say(
            "bulky_info",
            residence=residence.name,
            when=(bw.get("text") or {}).get(self.lang, ""),
            next_date=reading.format_date(nxt, self.lang) if nxt else "?",
            place=(bw.get("place") or {}).get(self.lang, ""),
            not_collected=(bw.get("not_collected") or {}).get(self.lang, ""),
        )
        if planned is not None and nxt != planned:
            moved = bool(nxt) and (rule.get("on_holiday") or "moved") == "moved"
            self.say(
                "bulky_holiday_moved" if moved else "bulky_holiday_skipped",
                holiday=holiday_name(planned, region) or "",
                planned=reading.format_date(planned, self.lang),
                next_date=reading.format_date(nxt, self.lang) if nxt else "?",
            )

    def status(self, entities: tuple[Entity, ...]) -> None:
        quoted = next((e.value for e in entities if e.type == "reference"), None)
        requests = self.turn.requests
        if quoted:
            requests = tuple(r for r in requests if r.reference == quoted)
            if not requests:
                self.say("status_unknown_reference", reference=quoted)
                self.state["asked"] = "offer_human"
                return
        else:
            requests = tuple(r for r in requests if r.status != "closed")
        if not requests:
            self.say("status_none")
            return
        lines = [
            self.t(
                "status_line",
                reference=r.reference,
                kind=self.label("kinds", r.kind),
                status=self.label("request_status", r.status),
                date=reading.format_date(r.created_at.date(), self.lang),
                summary=r.summary[:60],
            )
            for r in requests[:3]
        ]
        self.d.replies.append("\n".join(lines))

    # -- intakes: repair, nuisance, bulky items left in a common area --------------------------

    def begin_intake(
        self, topic: str, text: str, entities: tuple[Entity, ...], *, ask: bool = True
    ) -> None:
        slots: dict[str, Any] = {"text": text[:1000], "notes": []}
        values = {e.type: e.value for e in reversed(entities)}  # the first of each type wins
        if topic == "repair":
            obj = _first(entities, "object")
            place = _first(entities, "place")
            if obj is None and place == "ascenseur":
                obj = "ascenseur"
            if place is None:
                place = (
                    next(
                        (
                            reading.OBJECT_PLACE[e.value]
                            for e in entities
                            if e.type == "object" and e.value in reading.OBJECT_PLACE
                        ),
                        None,
                    )
                    or reading.place_from_text(text)
                    or reading.possessive_place(text, obj)
                )
            slots.update(
                object=obj, place=place, since=values.get("date") or reading.since_phrase(text)
            )
            if obj or not reading.is_vague(text):
                slots["what"] = text[:300]
        elif topic == "nuisance":
            slots.update(
                when=values.get("date") or reading.time_cue(text),
                where=values.get("apartment")
                or values.get("floor")
                or values.get("place")
                or reading.where_cue(text),
                floor=values.get("floor"),
                apartment=values.get("apartment"),
            )
        elif topic == "bulky_report":
            slots.update(place=values.get("place") or reading.place_from_text(text))
        if self.turn.has_media:
            slots["photo"] = True
        if topic == "repair" and ask:
            history = self.history_of("repair", slots.get("object"))
            if history:
                refs = ", ".join(r.reference for r in history[:4])
                nth = reading.ordinal(len(history) + 1, self.lang)
                self.say("repeat_ack", nth=nth, references=refs)
                slots["repeat_acked"] = True
        self.state["topic"] = topic
        self.state["slots"] = slots
        self.state["questions"] = 0
        self.state["asked_before"] = []
        self.state.pop("asked", None)
        if not ask:
            return
        if topic == "nuisance":
            self.say("nuisance_ack")
        self.advance()

    def continue_intake(self) -> None:
        """Read the reply against the question asked; when it does not fit, read it again as
        a message of its own (a new problem, a question, a detail)."""
        p = self.turn.parse
        text = self.turn.text.strip()
        topic = self.state["topic"]
        asked = self.state.get("asked")
        slots = self.state.setdefault("slots", {})
        fits = self.fits(asked, p, text)
        if not fits:
            if p.intent in ("greet", "thanks") and len(text.split()) <= 4:
                self.reask(again=True)
                return
            if p.intent == "goodbye":
                self.complete()
                return
            if (
                p.intent == "deny" or reading.yes_no(text) is False or reading.dont_know(text)
            ) and (len(text.split()) <= 4):
                # "non" to a question that is not yes/no: nothing more to say on it.
                if asked:
                    self.skip(asked)
                self.state.pop("asked", None)
                self.advance()
                return
            if self.new_problem(topic, p, text):
                # Another problem: the current one is recorded as it is, the new one taken up.
                slots.setdefault("notes", []).append(text[:500])
                if asked == "details" and reading.time_cue(text):
                    slots["when"] = slots.get("when") or reading.time_cue(text)
                self.complete()
                self.d.intent = p.intent
                self.start_message(exclude=(_intent_of(topic),))
                return
            if p.intent in ("question", "bulky_waste", "status_request") and (
                p.confidence >= 0.5 or "?" in text
            ):
                if p.intent == "bulky_waste" and reading.is_dumped_report(text):
                    self.state.setdefault("pending", []).append(
                        {"intent": p.intent, "text": text[:500], "entities": []}
                    )
                    self.say("topic_later")
                else:
                    self.start(p.intent, text, p.entities, lead=True)
                self.reask(again=True)
                return
            # A detail, not the answer: kept, and the question asked once more at most.
            slots.setdefault("notes", []).append(text[:500])
            self.absorb(p, text)
            self.say("detail_noted")
            self.reask(again=True)
            return
        slots.setdefault("notes", []).append(text[:500])
        if (
            topic != "bulky_report"
            and "bulky_waste" in (p.intent, *p.extra_intents)
            and reading.is_dumped_report(text)
        ):
            # "vers 22h. et il laisse ses sacs sur le palier": the answer, and a second report
            # taken up after this one.
            self.state.setdefault("pending", []).append(
                {"intent": "bulky_waste", "text": text[:500], "entities": []}
            )
        self.fill(asked, p, text)
        if self.state.get("asked") == "photo_wait" and asked == "photo":
            self.question = self.fresh("repair_photo_wait")
            return
        self.advance()

    def fits(self, asked: str | None, p: Parse, text: str) -> bool:
        """Whether the reply answers the question asked (a time, a place, yes/no, a photo)."""
        if asked is None:
            return True
        if asked in ("photo", "photo_wait"):
            return (
                self.turn.has_media
                or reading.yes_no(text) is not None
                or reading.no_photo(text)
                or (p.intent in ("affirm", "deny") and len(text.split()) <= 6)
            )
        if asked == "since":
            return bool(
                p.entity("date") or reading.time_expression(text) or reading.dont_know(text)
            ) and not self.new_object(p)
        if asked == "where":
            return bool(
                p.entity("place")
                or p.entity("floor")
                or p.entity("apartment")
                or reading.place_from_text(text)
                or reading.room_word(text)
            )
        if asked == "what":
            return p.intent not in ("question", "bulky_waste", "nuisance", "human_request")
        if asked == "details":
            return p.intent not in ("repair", "question", "bulky_waste") or p.confidence < 0.6
        if asked == "bulky_where":
            return bool(
                p.entity("place") or reading.place_from_text(text) or reading.room_word(text)
            )
        return True

    def new_object(self, p: Parse) -> bool:
        slots = self.state.get("slots", {})
        obj = p.entity("object")
        return bool(
            obj and slots.get("object") and obj != slots.get("object") and p.intent == "repair"
        )

    def new_problem(self, topic: str, p: Parse, text: str) -> bool:
        if p.intent == "repair" and topic == "repair":
            return self.new_object(p) and p.confidence >= 0.5
        if p.intent in ("repair", "nuisance") and p.intent != _intent_of(topic):
            return p.confidence >= 0.5 and not reading.is_vague(text)
        return bool(
            p.intent == "bulky_waste" and topic != "bulky_report" and reading.is_dumped_report(text)
        )

    def absorb(self, p: Parse, text: str) -> None:
        """What a detail says of the slots (a place, a time) is kept even off-question."""
        slots = self.state["slots"]
        if not slots.get("place") and p.entity("place"):
            slots["place"] = p.entity("place")
        if not slots.get("since") and p.entity("date"):
            slots["since"] = p.entity("date")
        if not slots.get("object") and p.entity("object"):
            slots["object"] = p.entity("object")

    def fill(self, asked: str | None, p: Parse, text: str) -> None:
        slots = self.state["slots"]
        self.state.pop("asked", None)
        if asked == "what":
            slots["what"] = text[:300]
            obj = p.entity("object")
            if obj:
                slots["object"] = obj
                if not slots.get("place"):
                    slots["place"] = reading.OBJECT_PLACE.get(obj)
            if not slots.get("place"):
                slots["place"] = p.entity("place") or reading.place_from_text(text)
        elif asked == "where":
            slots["place"] = p.entity("place") or reading.place_from_text(text) or "?"
            slots["where"] = text[:200]
            if not slots.get("object") and p.entity("object"):
                slots["object"] = p.entity("object")
        elif asked == "since":
            if reading.dont_know(text) and not p.entity("date"):
                slots["since_unknown"] = True
                slots["since"] = slots.get("since") or ""
            else:
                slots["since"] = p.entity("date") or text[:100]
        elif asked == "photo":
            if self.turn.has_media:
                slots["photo"] = True
            elif reading.no_photo(text):
                slots["photo"] = False
            elif (p.intent == "affirm" or reading.yes_no(text)) and len(text.split()) <= 4:
                self.state["asked"] = "photo_wait"
            else:
                slots["photo"] = False
        elif asked == "photo_wait":
            slots["photo"] = bool(self.turn.has_media)
        elif asked == "details":
            slots["details"] = text[:500]
            slots["when"] = slots.get("when") or p.entity("date") or reading.time_cue(text)
            slots["where"] = (
                slots.get("where")
                or p.entity("apartment")
                or p.entity("floor")
                or p.entity("place")
            )
        elif asked == "bulky_where":
            slots["place"] = p.entity("place") or text[:200]
        if self.turn.has_media:
            slots["photo"] = True

    def reask(self, *, again: bool = False) -> None:
        """Ask the pending question once more (at most), else go on without it."""
        asked = self.state.pop("asked", None)
        if again and asked:
            repeats = self.state.setdefault("reasked", [])
            if asked in repeats:
                self.skip(asked)
            else:
                repeats.append(asked)
                self.state.setdefault("asked_before", [])
                if asked in self.state["asked_before"]:
                    self.state["asked_before"].remove(asked)
        self.advance()

    def skip(self, asked: str) -> None:
        """A question that got no answer twice: go on without it."""
        slots = self.state.setdefault("slots", {})
        if asked == "since":
            slots["since"] = slots.get("since") or ""
            slots["since_unknown"] = True
        elif asked in ("photo", "photo_wait"):
            slots["photo"] = False
        elif asked == "where":
            slots["place"] = slots.get("place") or "?"
        elif asked == "what":
            slots["what"] = slots.get("what") or slots.get("text")
        elif asked == "details":
            slots["details"] = slots.get("details") or " / ".join(slots.get("notes", []))

    def may_ask(self, asked: str) -> bool:
        """At most two questions before the request exists, and never the same twice."""
        before = self.state.setdefault("asked_before", [])
        return asked not in before and int(self.state.get("questions", 0)) < MAX_QUESTIONS

    def ask_intake(self, asked: str, key: str) -> bool:
        if not self.may_ask(asked):
            return False
        self.state["asked_before"].append(asked)
        self.state["questions"] = int(self.state.get("questions", 0)) + 1
        self.ask(asked, key)
        return True

    def advance(self) -> None:
        """Ask the next missing piece the caretaker needs, or complete the intake."""
        topic = self.state.get("topic")
        slots = self.state.get("slots", {})
        if topic == "repair":
            if not slots.get("what") and self.ask_intake("what", "repair_ask_what"):
                return
            if not slots.get("place") and self.ask_intake("where", "repair_ask_where"):
                return
            key = reading.incident_key(slots.get("place"), slots.get("object"))
            known = next(
                (
                    i
                    for i in self.turn.incidents
                    if key
                    and i.key == key
                    and (not self.tenant or i.building == self.tenant.building)
                ),
                None,
            )
            if known is not None:
                self.complete(incident_id=known.id)
                return
            if (
                not slots.get("since")
                and not slots.get("since_unknown")
                and self.ask_intake("since", "repair_ask_since")
            ):
                return
            if (
                "photo" not in slots
                and int(self.state.get("questions", 0)) >= 1  # never the only question
                and slots.get("object") in PHOTO_OBJECTS
                and self.ask_intake("photo", "repair_ask_photo")
            ):
                return
        elif topic == "nuisance":
            if not slots.get("details") and not (slots.get("when") and slots.get("where")):
                key = (
                    "nuisance_ask_where"
                    if slots.get("when")
                    else "nuisance_ask_when"
                    if slots.get("where")
                    else "nuisance_ask_when_where"
                )
                if self.ask_intake("details", key):
                    return
        elif (
            topic == "bulky_report"
            and not slots.get("place")
            and self.ask_intake("bulky_where", "bulky_ask_where")
        ):
            return
        self.complete()

    def complete(self, *, incident_id: int | None = None, announce: bool = True) -> None:
        topic = self.state.get("topic")
        slots = dict(self.state.get("slots", {}))
        self.clear_topic()
        if topic == "repair":
            self.complete_repair(slots, incident_id, announce)
        elif topic == "nuisance":
            self.complete_nuisance(slots, announce)
        elif topic == "bulky_report":
            self.complete_bulky(slots, announce)

    def complete_repair(
        self, slots: dict[str, Any], incident_id: int | None, announce: bool
    ) -> None:
        obj, place = slots.get("object"), slots.get("place")
        what = self.label("objects", obj) or (slots.get("what") or slots.get("text") or "")[:60]
        where = self.label("places", place) if place and place != "?" else slots.get("where", "")
        summary = " · ".join(
            x
            for x in (what, where, slots.get("since") or "", "photo" if slots.get("photo") else "")
            if x
        )
        area = reading.area_of(place)
        key = reading.incident_key(place, obj)
        details = {
            "what": slots.get("what") or slots.get("text"),
            "object": obj,
            "place": place,
            "area": area,
            "since": slots.get("since"),
            "photo": bool(slots.get("photo")),
            "notes": slots.get("notes", []),
            "text": slots.get("text"),
        }
        essential = bool(self.tenant and self.tenant.vulnerable) and (
            obj in reading.ESSENTIAL_OBJECTS or place == "ascenseur"
        )
        history = self.history_of("repair", obj)
        priority = self.priority()
        if history and announce and not slots.get("repeat_acked"):
            refs = ", ".join(r.reference for r in history[:4])
            self.say(
                "repeat_ack", nth=reading.ordinal(len(history) + 1, self.lang), references=refs
            )
        if history:
            priority = max(priority, PRIORITY_VULNERABLE)
        head = "Réparation"
        if history:
            refs = ", ".join(r.reference for r in history[:4])
            head += f" ({len(history) + 1}e signalement : {refs})"
        reason = self.reason_words(head, slots)
        if incident_id is not None:
            token = self.new_request("repair", summary, details, incident_id=incident_id)
            if announce:
                building = self.tenant.building if self.tenant else ""
                self.say("incident_joined", what=what, building=building, reference=token)
            if not essential:
                return
        else:
            token = self.new_request(
                "repair", summary, details, incident_key=key if area == "common" else None
            )
        closed = self.team_away()
        if essential:
            if announce:
                self.say(
                    "repair_vulnerable_oncall" if closed else "repair_vulnerable", reference=token
                )
            self.hand_off(
                HandoffSpec(
                    "repair",
                    "Locataire fragile sans équipement essentiel — " + reason,
                    PRIORITY_VULNERABLE_ESSENTIAL,
                    oncall=bool(closed),
                )
            )
            if closed:
                self.d.alerts.append(AlertSpec("oncall", "locataire fragile sans équipement"))
            return
        if announce:
            self.say_handoff("repair_created", reference=token, caretaker=self.caretaker())
        self.hand_off(HandoffSpec("repair", reason, priority))

    def complete_nuisance(self, slots: dict[str, Any], announce: bool) -> None:
        details = {
            "when": slots.get("when"),
            "where": slots.get("where"),
            "details": slots.get("details"),
            "notes": slots.get("notes", []),
            "text": slots.get("text"),
            # The reporter's name is for staff only: never shown to the neighbour.
            "confidential": True,
        }
        summary = (slots.get("text") or "")[:120]
        token = self.new_request("nuisance", summary, details)
        history = self.history_of("nuisance", None)
        priority = self.priority()
        if history and announce:
            refs = ", ".join(r.reference for r in history[:4])
            self.say(
                "repeat_ack", nth=reading.ordinal(len(history) + 1, self.lang), references=refs
            )
            priority = max(priority, PRIORITY_VULNERABLE)
        if announce:
            self.say_handoff("nuisance_created", reference=token)
        self.hand_off(
            HandoffSpec("nuisance", self.reason_words("Trouble de voisinage", slots), priority)
        )

    def complete_bulky(self, slots: dict[str, Any], announce: bool) -> None:
        place = slots.get("place")
        where = self.label("places", place) or str(place or "")
        details = {
            "place": place,
            "photo": bool(slots.get("photo")),
            "notes": slots.get("notes", []),
            "text": slots.get("text"),
        }
        token = self.new_request(
            "bulky_waste", f"{self.label('kinds', 'bulky_waste')} · {where}", details
        )
        if announce:
            self.say("bulky_report_created", reference=token, caretaker=self.caretaker())
        self.hand_off(
            HandoffSpec(
                "bulky_waste", self.reason_words("Encombrants déposés", slots), self.priority()
            )
        )


# `nlu.rules.decide` gives an emergency a rule found at least this confidence.
RULED_EMERGENCY = 0.99

_HAZARD_OF_KIND = {
    "gas": "gas",
    "fire": "fire",
    "trapped": "trapped_lift",
    "electric": "sparks",
    "water": "flooding",
    "generic": "danger",
}

# "Bonjour, je suis locataire au 12 et j'ai une fuite" reads as a greeting first: a long
# polite message whose runner-up is a need is about that need.
_SOCIAL = ("greet", "thanks", "goodbye", "affirm", "deny")
_SOCIAL_RUNNER_UP = 0.15


def _main_intent(p: Parse) -> str:
    if p.intent == "emergency" and reading.denied_or_past(p.text):
        # A danger told as history or denied (safety() raised nothing): what else the message
        # says ("GRDF est passé, mais la trappe est restée ouverte") is the need: a repair
        # (what a danger leaves behind is the building's), or the question it asks.
        scores = dict(p.ranking)
        asks = "?" in p.text and scores.get("question", 0.0) > scores.get("repair", 0.0)
        return "question" if asks else "repair"
    if p.intent == "question" and reading.bulky_words(p.text) and reading.asks_when(p.text):
        return "bulky_waste"  # "les monstres c'est quand ?": the tenants' word for it
    if p.intent not in _SOCIAL or len(p.text.split()) < 5:
        return p.intent
    for intent, score in p.ranking:
        if (
            intent in ("repair", "nuisance", "bulky_waste", "question")
            and score >= _SOCIAL_RUNNER_UP
        ):
            return intent
    return p.intent


_STRONG_SPLIT = re.compile(
    r"[.!?;\n]|\b(en plus|aussi|egalement|autre (chose|probleme|souci)|sinon|par ailleurs|"
    r"de plus|also|another|as well|besides)\b"
)
# "... et la chasse d'eau coule": a second subject after "et".
_AND_SPLIT = re.compile(
    r"(,\s*|\b)(et|and)( aussi| puis| en plus)? (le|la|les|l'|l |mon|ma|mes|the|my|j'|j )|"
    r",\s*(le|la|les|l'|l |mon|ma|mes|the|my)\b"
)
_RELATED = (
    frozenset({"porte", "serrure", "interphone", "boite_aux_lettres"}),
    frozenset({"fenetre", "volet"}),
    frozenset({"chauffage", "radiateur", "chaudiere", "eau_chaude"}),
    frozenset({"fuite", "evier", "robinet", "toilettes", "canalisation", "plafond"}),
    frozenset({"electricite", "lumiere"}),
)


def _problems(p: Parse) -> list[tuple[str, tuple[Entity, ...]]]:
    """The repairs of one message ("le radiateur est froid, et la chasse d'eau coule"): the
    text and entities of each, cut where the next one starts; one item for one problem."""
    objects = sorted((e for e in p.entities if e.type == "object"), key=lambda e: e.start)
    cuts: list[int] = []
    for a, b in itertools.pairwise(objects):
        if b.start <= a.end or a.value == b.value:
            continue
        if any(a.value in group and b.value in group for group in _RELATED):
            continue
        between = reading.fold(p.text[a.end : b.start])
        cut = _STRONG_SPLIT.search(between) or _AND_SPLIT.search(between)
        if cut is not None:
            cuts.append(a.end + cut.start())
    bounds = [0, *cuts, len(p.text)]
    parts = []
    for lo, hi in itertools.pairwise(bounds):
        text = p.text[lo:hi].strip(" ,.;")
        if len(text.split()) >= 2:
            parts.append((text, tuple(e for e in p.entities if lo <= e.start and e.end <= hi)))
    return parts if len(parts) >= 2 else [(p.text, p.entities)]


def _name(tenant: Any) -> str:
    return f" {tenant.first_name}" if tenant and tenant.first_name else ""


def _first(entities: tuple[Entity, ...], type_: str) -> str | None:
    return next((e.value for e in entities if e.type == type_), None)


def _entities_in(p: Parse, part: tuple[str, int]) -> tuple[Entity, ...]:
    text, offset = part
    if offset == 0 and text == p.text:
        return p.entities
    end = offset + len(text) + 2
    return tuple(e for e in p.entities if offset <= e.start and e.end <= end)


def _intent_of(topic: str) -> str:
    return "bulky_waste" if topic == "bulky_report" else topic


def _answers(asked: str | None, p: Parse, has_media: bool) -> bool:
    """Whether the message carries what the last question asked for."""
    if asked in ("photo", "photo_wait"):
        return has_media or p.intent in ("affirm", "deny")
    wanted = {
        "what": ("object",),
        "where": ("place", "floor", "apartment"),
        "since": ("date",),
        "details": ("date", "floor", "apartment", "place"),
        "bulky_where": ("place",),
    }.get(asked or "", ())
    return any(p.entity(t) for t in wanted)
