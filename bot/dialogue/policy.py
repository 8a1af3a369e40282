"""The dialogue policy: from what the NLU read and the conversation so far, what the bot does.

`decide` is a pure function of a `Turn` (plus the texts and the FAQ index): no I/O. The
conversation's state lives in `Turn.state` and comes back in `Decision.state`; the pipeline
stores it, so a restart in the middle of an intake resumes where it was. State keys:

- `topic`, `slots`, `asked`: the need being collected, what is known, the last question;
- `pending`: other needs of the same message, taken up once the current one is done;
- `failures`: misunderstandings in a row; `awaiting`/`pending_text`: an unknown sender.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import bot.dialogue.confirmation as confirmation
import bot.dialogue.reading as reading
from bot.dialogue.faq import DEFAULT_THRESHOLD, SUGGEST_THRESHOLD, Faq, FaqEntry, render
from bot.dialogue.schedule import is_open, next_collection, next_opening
from bot.dialogue.texts import Texts
from bot.dialogue.types import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    PRIORITY_VULNERABLE,
    PRIORITY_VULNERABLE_ESSENTIAL,
    Decision,
    HandoffSpec,
    RequestSpec,
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
        return self.texts.get(key, self.lang, **params)

    def say(self, key: str, **params: Any) -> None:
        self.d.replies.append(self.t(key, **params))

    def ask(self, asked: str, key: str, **params: Any) -> None:
        self.state["asked"] = asked
        self.question = self.t(key, **params)

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
        moment = next_opening(hours, now) if hours and not is_open(hours, now) else None
        if moment is None:
            self.say(key, **params)
        else:
            when = reading.format_moment(moment, now, self.lang)
            self.say(f"{key}_closed", when=when, **params)

    def team_away(self) -> bool:
        hours = self.hours()
        return bool(hours) and not is_open(hours, self.turn.now)

    def hand_off(self, spec: HandoffSpec) -> None:
        current = self.d.handoff
        if current is None or spec.priority > current.priority:
            self.d.handoff = spec

    def new_request(self, kind: str, summary: str, details: dict[str, Any], **kw: Any) -> str:
        n = len(self.d.requests)
        token = "{reference}" if n == 0 else f"{{reference_{n + 1}}}"
        self.d.requests.append(RequestSpec(kind, summary[:200], details, token=token, **kw))
        return token

    def clear_topic(self) -> None:
        for key in ("topic", "slots", "asked"):
            self.state.pop(key, None)

    # -- the turn --------------------------------------------------------------------------

    def run(self) -> Decision:
        turn, p = self.turn, self.turn.parse
        text = turn.text.strip()
        if not text and not turn.has_media:
            self.say("empty")
            return self.finish()
        # Safety first: instructions go out before anything else, at any hour.
        if p.intent == "emergency":
            self.emergency(turn.text)
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
        if self.tenant is None and self.state.get("awaiting") == "identity":
            ident = reading.find_identity(text, self.turn.phone_region)
            if ident:
                self.d.identify = ident
                return self.d
            if p.intent not in ("question", "greet", "thanks", "goodbye", "human_request"):
                tries = int(self.state.get("identity_tries", 0)) + 1
                self.state["identity_tries"] = tries
                if tries >= MAX_FAILURES:
                    self.say("identity_handoff")
                    self.hand_off(HandoffSpec(p.intent, "unknown_sender", PRIORITY_NORMAL))
                    self.state.pop("awaiting", None)
                else:
                    self.say("unknown_sender")
                return self.finish()
        if not text:  # a photo alone
            if self.state.get("topic"):
                self.state.setdefault("slots", {})["photo"] = True
                if asked in ("photo", "photo_wait"):
                    self.state.pop("asked", None)
                self.advance()
            else:
                self.say("media_only")
            return self.finish()
        if p.intent == "human_request":
            self.human()
            return self.finish()
        if self.state.get("topic"):
            self.continue_intake()
        elif asked in ("offer_human", "faq_check") and p.intent in ("affirm", "deny"):
            self.answer_yes_no(asked, p.intent == "affirm")
        else:
            self.state.pop("asked", None)
            self.start_message()
        return self.finish()

    def finish(self) -> Decision:
        # Other needs of the same message, one after the other, once nothing is being asked.
        while not self.state.get("topic") and self.state.get("pending"):
            nxt = self.state["pending"].pop(0)
            entities = tuple(Entity(t, v) for t, v in nxt.get("entities", []))
            self.start(nxt["intent"], nxt["text"], entities, lead=True)
        if not self.state.get("pending"):
            self.state.pop("pending", None)
        if self.question:
            self.d.replies.append(self.question)
        if self.turn.foreign:
            self.d.replies.append(self.texts.get("foreign_note", "en"))
        return self.d

    # -- starting needs --------------------------------------------------------------------

    def start_message(self) -> None:
        p = self.turn.parse
        main = _main_intent(p)
        self.d.intent = main
        extras = [i for i in p.extra_intents if i != main and i in _TOPIC_INTENTS]
        if "emergency" in extras:
            self.emergency(self.turn.text)
            return
        if not extras:
            self.start(main, self.turn.text, p.entities)
            return
        parts = reading.split_needs(self.turn.text, [main, *extras])
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
        if self.tenant is None and intent in (
            "repair",
            "nuisance",
            "bulky_waste",
            "status_request",
        ):
            self.say("unknown_sender")
            self.state["awaiting"] = "identity"
            self.state["pending_text"] = text[:500]
            return
        if intent == "out_of_scope":
            self.not_understood(text)
            return
        self.state["failures"] = 0
        if intent == "greet":
            self.say("greet", name=_name(self.tenant), landlord=self.landlord_name())
        elif intent == "thanks":
            self.say("thanks")
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
            self.begin_intake("repair", text, entities)
        elif intent == "nuisance":
            self.begin_intake("nuisance", text, entities)
        elif intent == "emergency":
            self.emergency(text)
        elif intent == "human_request":
            self.human()
        else:
            self.not_understood(text or p.text)

    def landlord_name(self) -> str:
        return str(self.turn.landlord.get("name") or self.t("landlord_default"))

    # -- emergencies, people, misunderstandings ---------------------------------------------

    def emergency(self, text: str) -> None:
        kind = reading.emergency_kind(text)
        lift = self.residence.lift_company if self.residence else {}
        gas = self.turn.landlord.get("gas_emergency", "0 800 47 33 33")
        self.d.replies.insert(
            0,
            self.t(
                f"emergency_{kind}",
                lift_company=lift.get("name", ""),
                lift_phone=lift.get("phone", "112"),
                gas_phone=gas,
            ),
        )
        self.d.intent = "emergency"
        self.new_request("emergency", text, {"kind": kind, "text": text[:1000]})
        self.hand_off(HandoffSpec("emergency", f"emergency:{kind}", PRIORITY_EMERGENCY, True))
        # A person takes over now: whatever was being collected goes with the conversation.
        self.clear_topic()
        self.state.pop("pending", None)
        self.state["failures"] = 0

    def human(self) -> None:
        if self.state.get("topic"):
            # Keep what was collected: the person sees it in the request.
            self.complete(announce=False)
        self.say_handoff("human")
        self.hand_off(HandoffSpec("human_request", "asked_for_human", self.priority()))
        self.clear_topic()
        self.state.pop("pending", None)
        self.state["failures"] = 0

    def not_understood(self, text: str) -> None:
        # The classifier may miss a question worded oddly: a close FAQ match still answers.
        if self.faq is not None:
            match = self.faq.match(text, threshold=FAQ_CONFIDENT)
            if match is not None:
                self.state["failures"] = 0
                self.d.intent = "question"
                self.give_answer(match.entry)
                return
        failures = int(self.state.get("failures", 0)) + 1
        self.state["failures"] = failures
        if failures >= MAX_FAILURES:
            self.say_handoff("handoff_after_failures")
            self.hand_off(HandoffSpec("out_of_scope", "not_understood", self.priority()))
            self.state["failures"] = 0
        else:
            self.say("ask_again")

    def answer_yes_no(self, asked: str, yes: bool) -> None:
        self.state.pop("asked", None)
        wants_person = yes if asked == "offer_human" else not yes
        if wants_person:
            self.say_handoff("question_handoff" if asked == "faq_check" else "human")
            self.hand_off(
                HandoffSpec("question", f"{asked}:{'yes' if yes else 'no'}", self.priority())
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
        if self.residence is None:
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
        agency = self.residence.agency
        params.update(
            agency=agency.get("name", ""),
            agency_address=agency.get("address", ""),
            agency_phone=agency.get("phone", ""),
            agency_email=agency.get("email", ""),
            agency_hours=self.agency_hours(agency),
            caretaker=self.caretaker(),
            caretaker_hours=(self.residence.caretaker_hours.get("text") or {}).get(self.lang, ""),
            residence=self.residence.name,
        )
        return params

    def question_answer(self, text: str, *, lead: bool = False) -> None:
        match = self.faq.match(text, threshold=FAQ_SUGGEST) if self.faq else None
        if match is None:
            self.say_handoff("question_handoff")
            self.hand_off(HandoffSpec("question", "question_unanswered", self.priority()))
            return
        self.give_answer(match.entry, sure=match.score >= FAQ_CONFIDENT)

    def give_answer(self, entry: FaqEntry, *, sure: bool = True) -> None:
        self.d.replies.append(render(entry, self.lang, self.faq_params()))
        self.state["faq"] = entry.id
        if entry.offer_human:
            self.state["asked"] = "offer_human"
        elif not sure:
            self.ask("faq_check", "faq_check")
        if self.tenant is None:
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

    def bulky_info(self, *, lead: bool = False) -> None:
        bw = self.residence.bulky_waste if self.residence else {}
        if not bw or self.residence is None:
            self.say("bulky_generic")
            return
        nxt = next_collection(bw.get("rule", {}), self.turn.now.date(), bw.get("exceptions") or ())
        self.say(
            "bulky_info",
            residence=self.residence.name,
            when=(bw.get("text") or {}).get(self.lang, ""),
            next_date=reading.format_date(nxt, self.lang) if nxt else "?",
            place=(bw.get("place") or {}).get(self.lang, ""),
            not_collected=(bw.get("not_collected") or {}).get(self.lang, ""),
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

    def begin_intake(self, topic: str, text: str, entities: tuple[Entity, ...]) -> None:
        slots: dict[str, Any] = {"text": text[:1000], "notes": []}
        values = {e.type: e.value for e in reversed(entities)}  # the first of each type wins
        if topic == "repair":
            obj = _first(entities, "object")
            place = _first(entities, "place")
            if obj == "ascenseur" and place == "ascenseur":
                place = "ascenseur"
            elif place == "ascenseur" and obj and obj != "ascenseur":
                # "la lumière de l'ascenseur": the lift is where, the light is what.
                pass
            if obj is None and place == "ascenseur":
                obj = "ascenseur"
            if place is None:
                place = (
                    reading.OBJECT_PLACE.get(obj or "")
                    or reading.place_from_text(text)
                    or reading.possessive_place(text, obj)
                )
            slots.update(object=obj, place=place, since=values.get("date"))
            if obj or not reading.is_vague(text):
                slots["what"] = text[:300]
        elif topic == "nuisance":
            slots.update(
                when=values.get("date") or reading.time_cue(text),
                where=values.get("apartment") or values.get("floor") or values.get("place"),
                floor=values.get("floor"),
                apartment=values.get("apartment"),
            )
        elif topic == "bulky_report":
            slots.update(place=values.get("place") or reading.place_from_text(text))
        if self.turn.has_media:
            slots["photo"] = True
        self.state["topic"] = topic
        self.state["slots"] = slots
        self.state.pop("asked", None)
        if topic == "nuisance":
            self.say("nuisance_ack")
        self.advance()

    def continue_intake(self) -> None:
        p = self.turn.parse
        text = self.turn.text.strip()
        topic = self.state["topic"]
        asked = self.state.get("asked")
        slots = self.state.setdefault("slots", {})
        answers = _answers(asked, p, self.turn.has_media)
        switching = (
            p.intent in _TOPIC_INTENTS
            and p.intent != _intent_of(topic)
            and p.confidence >= SWITCH_CONFIDENCE
            and not answers
        )
        if switching:
            self.state.setdefault("pending", []).append(
                {
                    "intent": p.intent,
                    "text": text[:500],
                    "entities": [[e.type, e.value] for e in p.entities],
                }
            )
            self.say("topic_later")
            self.reask()
            return
        if p.intent == "goodbye" and not answers:
            self.complete()
            return
        if p.intent in ("greet", "thanks") and not answers:
            self.reask()
            return
        slots.setdefault("notes", []).append(text[:500])
        self.fill(asked, p, text)
        if self.state.get("asked") == "photo_wait" and asked == "photo":
            self.question = self.t("repair_photo_wait")
            return
        self.advance()

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
            slots["since"] = p.entity("date") or text[:100]
        elif asked == "photo":
            if self.turn.has_media:
                slots["photo"] = True
            elif p.intent == "affirm" and len(text.split()) <= 4:
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

    def reask(self) -> None:
        asked = self.state.get("asked")
        if asked:
            self.state.pop("asked")
        self.advance()

    def advance(self) -> None:
        """Ask the next missing piece of the current intake, or complete it."""
        topic = self.state.get("topic")
        slots = self.state.get("slots", {})
        if topic == "repair":
            if not slots.get("what"):
                self.ask("what", "repair_ask_what")
                return
            if not slots.get("place"):
                self.ask("where", "repair_ask_where")
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
            if not slots.get("since"):
                self.ask("since", "repair_ask_since")
                return
            if "photo" not in slots:
                self.ask("photo", "repair_ask_photo")
                return
        elif topic == "nuisance":
            if not slots.get("details") and not (slots.get("when") and slots.get("where")):
                if slots.get("when"):
                    self.ask("details", "nuisance_ask_where")
                elif slots.get("where"):
                    self.ask("details", "nuisance_ask_when")
                else:
                    self.ask("details", "nuisance_ask_when_where")
                return
        elif topic == "bulky_report" and not slots.get("place"):
            self.ask("bulky_where", "bulky_ask_where")
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
                    "vulnerable_essential",
                    PRIORITY_VULNERABLE_ESSENTIAL,
                    oncall=bool(closed),
                )
            )
            return
        if announce:
            self.say_handoff("repair_created", reference=token, caretaker=self.caretaker())
        self.hand_off(HandoffSpec("repair", "repair_request", self.priority()))

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
        if announce:
            self.say_handoff("nuisance_created", reference=token)
        self.hand_off(HandoffSpec("nuisance", "nuisance_report", self.priority()))

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
        self.hand_off(HandoffSpec("bulky_waste", "items_left", self.priority()))


# "Bonjour, je suis locataire au 12 et j'ai une fuite" reads as a greeting first: a long
# polite message whose runner-up is a need is about that need.
_SOCIAL = ("greet", "thanks", "goodbye", "affirm", "deny")
_SOCIAL_RUNNER_UP = 0.15


def _main_intent(p: Parse) -> str:
    if p.intent not in _SOCIAL or len(p.text.split()) < 5:
        return p.intent
    for intent, score in p.ranking:
        if (
            intent in ("repair", "nuisance", "bulky_waste", "question")
            and score >= _SOCIAL_RUNNER_UP
        ):
            return intent
    return p.intent


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
