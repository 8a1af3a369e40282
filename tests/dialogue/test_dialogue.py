"""The dialogue policy as a pure function: turns in, decisions out, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.dialogue import (
    PRIORITY_EMERGENCY,
    PRIORITY_NORMAL,
    PRIORITY_VULNERABLE,
    PRIORITY_VULNERABLE_ESSENTIAL,
    Decision,
    IncidentView,
    RequestView,
    ResidenceView,
    TenantView,
    Turn,
    decide,
    find_rating,
)
from bot.dialogue.faq import load_faq
from bot.dialogue.texts import Texts
from nlu.types import Entity, Parse
from tests.conftest import DATA_DIR

TEXTS = Texts.load(DATA_DIR)
FAQ = load_faq(DATA_DIR)
PARIS = ZoneInfo("Europe/Paris")
TUESDAY_10AM = datetime(2026, 3, 3, 10, 0, tzinfo=PARIS)
SATURDAY_NIGHT = datetime(2026, 3, 7, 23, 30, tzinfo=PARIS)
LANDLORD = {
    "name": "Habitat Nord Solidaire",
    "website": "https://hns.example",
    "gas_emergency": "0 800 47 33 33",
}


def _residences() -> dict[str, ResidenceView]:
    doc = yaml.safe_load((DATA_DIR.file("residences.yml")).read_text(encoding="utf-8"))
    staff = yaml.safe_load((DATA_DIR.file("staff.yml")).read_text(encoding="utf-8"))
    names = {s["login"]: s["name"] for s in staff["staff"]}
    out = {}
    for r in doc["residences"]:
        out[r["code"]] = ResidenceView(
            code=r["code"],
            name=r["name"],
            buildings=tuple(str(b) for b in r["buildings"]),
            agency=doc["agencies"][r["agency"]],
            caretaker_name=names[r["caretaker"]],
            caretaker_hours=r["caretaker_hours"],
            bulky_waste=r["bulky_waste"],
            lift_company=r["lift_company"],
        )
    return out


RES = _residences()
NADIA = TenantView(1, "L-10231", "Nadia", "fr", False, "A", "001", RES["FLEURS"])
FATOU = TenantView(3, "L-10233", "Fatou", "fr", False, "T", "603", RES["HORIZON"])
MONIQUE = TenantView(11, "L-10241", "Monique", "fr", True, "T", "003", RES["HORIZON"])
EMILY = TenantView(15, "L-10245", "Emily", "en", False, "T", "1203", RES["HORIZON"])


def parse(
    text: str,
    intent: str,
    *entities: tuple[str, str],
    lang: str = "fr",
    extra: tuple[str, ...] = (),
    confidence: float = 0.9,
) -> Parse:
    ents = []
    low = text.lower()
    for type_, value in entities:
        start = max(low.find(value.split("_")[0][:4]), 0)
        ents.append(Entity(type_, value, value, start, start + len(value)))
    return Parse(text, intent, confidence, lang, tuple(ents), ((intent, confidence),), extra)


def turn(
    text: str,
    intent: str,
    *entities: tuple[str, str],
    tenant: TenantView | None = NADIA,
    state: dict[str, Any] | None = None,
    now: datetime = TUESDAY_10AM,
    lang: str | None = None,
    media: bool = False,
    extra: tuple[str, ...] = (),
    **kw: Any,
) -> Turn:
    language = lang or (tenant.language if tenant else "fr")
    return Turn(
        text=text,
        parse=parse(text, intent, *entities, lang=language, extra=extra),
        channel="sms",
        now=now,
        state=state or {},
        tenant=tenant,
        has_media=media,
        landlord=LANDLORD,
        language=language,
        **kw,
    )


def run(t: Turn) -> Decision:
    return decide(t, TEXTS, FAQ)


def conversation(tenant: TenantView, *steps: tuple[Any, ...], **kw: Any) -> list[Decision]:
    """Several turns, each fed the state the previous one returned (as the database would)."""
    state: dict[str, Any] = {}
    out = []
    for text, intent, *entities in steps:
        d = run(turn(text, intent, *entities, tenant=tenant, state=state, **kw))
        state = d.state
        out.append(d)
    return out


# -- small talk, people, misunderstandings ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("bonjour", "greet", "Bonjour Nadia"),
        ("merci beaucoup", "thanks", "Avec plaisir"),
        ("bonne soirée", "goodbye", "Bonne journée Nadia"),
        ("oui", "affirm", "D'accord"),
        ("non", "deny", "Entendu"),
    ],
)
def test_small_talk_gets_a_short_natural_reply(text: str, intent: str, expected: str) -> None:
    d = run(turn(text, intent))
    assert d.replies[0].startswith(expected) and d.handoff is None and not d.requests


def test_english_tenant_is_answered_in_english() -> None:
    d = run(turn("hello", "greet", tenant=EMILY))
    assert d.replies == [TEXTS.get("greet", "en", name=" Emily", landlord="Habitat Nord Solidaire")]


def test_other_language_gets_french_with_a_short_english_line() -> None:
    d = run(turn("hola buenos días", "greet", foreign=True))
    assert d.replies[0].startswith("Bonjour") and "English" in d.replies[-1]


def test_human_request_hands_off_at_once_during_opening_hours() -> None:
    d = run(turn("je veux parler à quelqu'un", "human_request"))
    assert d.handoff is not None and "parler à une personne" in d.handoff.reason
    assert "dès que possible" in d.replies[0]


def test_out_of_hours_the_tenant_is_told_when_a_person_answers() -> None:
    d = run(turn("je veux parler à quelqu'un", "human_request", now=SATURDAY_NIGHT))
    assert d.handoff is not None
    # FLEURS' caretaker starts again on Monday at 8:00.
    assert "lundi 9 mars à 8h00" in d.replies[0]


def test_two_misunderstandings_in_a_row_hand_off() -> None:
    first, second = conversation(NADIA, ("blblbl", "out_of_scope"), ("zzzz qsdf", "out_of_scope"))
    assert first.handoff is None and "pas bien compris" in first.replies[0]
    assert second.handoff is not None and "non compris" in second.handoff.reason


# -- emergencies --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "tenant", "expected"),
    [
        ("ça sent le gaz dans la cuisine", NADIA, "0 800 47 33 33"),
        ("il y a le feu dans le local poubelles", NADIA, "18 ou le 112"),
        ("ma fille est bloquée dans l'ascenseur", FATOU, "03 20 55 55 01"),
        ("my son is stuck in the lift", EMILY, "03 20 55 55 01"),
    ],
)
def test_emergency_instructions_come_first_then_an_urgent_handoff(
    text: str, tenant: TenantView, expected: str
) -> None:
    d = run(turn(text, "emergency", tenant=tenant, now=SATURDAY_NIGHT))
    assert expected in d.replies[0]
    assert d.handoff is not None and d.handoff.priority == PRIORITY_EMERGENCY and d.handoff.oncall
    assert d.requests[0].kind == "emergency"


def test_an_emergency_in_the_middle_of_an_intake_wins() -> None:
    _, d = conversation(
        NADIA,
        ("j'ai une fuite dans la cuisine", "repair", ("object", "fuite"), ("place", "cuisine")),
        ("ça sent le gaz maintenant", "emergency"),
    )
    assert "0 800 47 33 33" in d.replies[0] and "topic" not in d.state


# -- repairs ------------------------------------------------------------------------------------


def test_repair_asks_only_what_the_first_message_did_not_say() -> None:
    # What, where and since are all in the message: the request exists at once (a photo is
    # never the only question asked).
    a, c = conversation(
        NADIA,
        (
            "fuite dans la salle de bain depuis hier",
            "repair",
            ("object", "fuite"),
            ("place", "salle_de_bain"),
            ("date", "depuis hier"),
        ),
        ("merci", "thanks"),
    )
    req = a.requests[0]
    assert req.kind == "repair" and req.details["place"] == "salle_de_bain"
    assert req.details["since"] == "depuis hier" and req.details["photo"] is False
    assert "{reference}" in a.replies[0] and "Karim Benali" in a.replies[0]
    assert a.handoff is not None and a.handoff.intent == "repair" and "topic" not in a.state
    assert "salle de bain" in a.handoff.reason and "depuis hier" in a.handoff.reason
    assert c.replies[0].startswith("Avec plaisir")


def test_a_vague_repair_gets_at_most_two_questions() -> None:
    steps = conversation(
        NADIA,
        ("j'ai un problème", "repair"),
        ("la porte du placard est cassée", "repair", ("object", "porte")),
        ("dans la chambre", "out_of_scope", ("place", "chambre")),
    )
    asked = [d.state.get("asked") for d in steps]
    assert asked == ["what", "where", None]
    last = steps[-1]
    assert len(last.requests) == 1 and last.handoff is not None
    details = last.requests[0].details
    assert details["object"] == "porte" and details["place"] == "chambre"
    assert details["area"] == "dwelling"


def test_a_photo_answers_the_photo_question() -> None:
    first, second = conversation(
        NADIA,
        ("fuite sous l'évier", "repair", ("object", "fuite"), ("place", "cuisine")),
        ("depuis ce matin", "out_of_scope", ("date", "ce matin")),
    )
    assert first.state["asked"] == "since" and second.state["asked"] == "photo"
    d = run(turn("", "out_of_scope", state=second.state, media=True))
    assert d.requests and d.requests[0].details["photo"] is True


def test_yes_to_the_photo_question_waits_for_the_photo() -> None:
    _first, second = conversation(
        NADIA,
        ("fuite sous l'évier", "repair", ("object", "fuite"), ("place", "cuisine")),
        ("depuis ce matin", "out_of_scope", ("date", "ce matin")),
    )
    yes = run(turn("oui", "affirm", state=second.state))
    assert not yes.requests and yes.state["asked"] == "photo_wait"
    photo = run(turn("", "out_of_scope", state=yes.state, media=True))
    assert photo.requests[0].details["photo"] is True


def test_state_is_all_there_is_a_restart_resumes_the_intake() -> None:
    first = run(turn("le chauffage ne marche plus", "repair", ("object", "chauffage")))
    assert first.state["asked"] == "since"
    # A new process reads the same JSON back: nothing else is needed.
    stored = yaml.safe_load(yaml.safe_dump(first.state))
    d = run(turn("depuis 2 jours", "out_of_scope", ("date", "depuis 2 jours"), state=stored))
    assert d.requests and d.requests[0].details["since"] == "depuis 2 jours"


def test_a_common_area_fault_already_reported_joins_the_incident() -> None:
    incident = IncidentView(7, "ascenseur", "T", TUESDAY_10AM)
    d = run(
        turn(
            "l'ascenseur est encore en panne",
            "repair",
            ("place", "ascenseur"),
            ("object", "ascenseur"),
            tenant=FATOU,
            incidents=(incident,),
        )
    )
    assert d.requests[0].incident_id == 7 and d.handoff is None
    assert "déjà signalé" in d.replies[0] and "{reference}" in d.replies[0]


def test_a_new_common_area_fault_opens_an_incident() -> None:
    steps = conversation(
        FATOU,
        ("l'ascenseur est en panne", "repair", ("place", "ascenseur"), ("object", "ascenseur")),
        ("depuis ce matin", "out_of_scope", ("date", "ce matin")),
    )
    # No photo of a lift: the request exists once "since" is answered.
    req = steps[-1].requests[0]
    assert req.incident_key == "ascenseur" and req.incident_id is None


def test_hall_light_is_a_building_incident_but_a_kitchen_light_is_not() -> None:
    hall = IncidentView(3, "hall:lumiere", "A", TUESDAY_10AM)
    d = run(
        turn(
            "plus de lumière dans le hall",
            "repair",
            ("object", "lumiere"),
            ("place", "hall"),
            incidents=(hall,),
        )
    )
    assert d.requests and d.requests[0].incident_id == 3
    d = run(
        turn(
            "plus de lumière dans la cuisine",
            "repair",
            ("object", "lumiere"),
            ("place", "cuisine"),
            incidents=(hall,),
        )
    )
    assert not d.requests and d.state["asked"] == "since"


def test_vulnerable_tenant_without_heating_goes_to_a_person_at_once() -> None:
    steps = conversation(
        MONIQUE,
        (
            "plus de chauffage depuis hier",
            "repair",
            ("object", "chauffage"),
            ("date", "depuis hier"),
        ),
    )
    h = steps[0].handoff
    assert h is not None and h.priority == PRIORITY_VULNERABLE_ESSENTIAL and not h.oncall
    assert "Vu votre situation" in steps[0].replies[0]


def test_vulnerable_tenant_at_night_gets_the_on_call_team() -> None:
    steps = conversation(
        MONIQUE,
        (
            "plus d'eau chaude depuis ce soir",
            "repair",
            ("object", "eau_chaude"),
            ("date", "ce soir"),
        ),
        now=SATURDAY_NIGHT,
    )
    h = steps[0].handoff
    assert h is not None and h.oncall and "astreinte" in steps[0].replies[0]
    assert [a.to for a in steps[0].alerts] == ["oncall"]


def test_vulnerable_tenant_other_handoffs_are_prioritised() -> None:
    d = run(turn("je veux parler à quelqu'un", "human_request", tenant=MONIQUE))
    assert d.handoff is not None and d.handoff.priority == PRIORITY_VULNERABLE
    d = run(turn("je veux parler à quelqu'un", "human_request"))
    assert d.handoff is not None and d.handoff.priority == PRIORITY_NORMAL


def test_a_question_in_the_middle_of_an_intake_is_answered_and_the_intake_goes_on() -> None:
    steps = conversation(
        NADIA,
        ("fuite dans la cuisine", "repair", ("object", "fuite"), ("place", "cuisine")),
        ("au fait quand passent les encombrants ?", "bulky_waste"),
        ("depuis hier", "out_of_scope", ("date", "depuis hier")),
    )
    assert "prochain passage le mardi 10 mars" in steps[1].replies[0]
    assert steps[1].state["asked"] == "since" and not steps[1].requests
    # Two questions asked (since, then since again): the request exists, no photo asked.
    assert steps[-1].requests and steps[-1].requests[0].details["since"] == "depuis hier"


# -- several needs in one message ------------------------------------------------------------


def test_two_needs_in_one_message_are_both_handled() -> None:
    d = run(
        turn(
            "j'ai une fuite dans la cuisine et aussi quand passent les encombrants",
            "repair",
            ("object", "fuite"),
            ("place", "cuisine"),
            extra=("bulky_waste",),
        )
    )
    assert "mardi 10 mars" in d.replies[0]
    assert d.replies[-1] == TEXTS.get("repair_ask_since") and d.state["topic"] == "repair"


def test_two_intakes_in_one_message_one_after_the_other() -> None:
    steps = conversation(
        NADIA,
        (
            "mon voisin fait du bruit toute la nuit et aussi j'ai une fuite dans la cuisine",
            "nuisance",
            ("place", "cuisine"),
            ("object", "fuite"),
        ),
        ("tous les soirs après minuit, au 3e", "out_of_scope", ("floor", "3")),
        ("depuis hier", "out_of_scope", ("date", "depuis hier")),
        ("non", "deny"),
        extra=("repair",),
    )
    assert (
        steps[0].state["topic"] == "nuisance" and steps[0].state["pending"][0]["intent"] == "repair"
    )
    assert [r.kind for r in steps[1].requests] == ["nuisance"]
    assert steps[1].state["topic"] == "repair"
    assert [r.kind for r in steps[-1].requests] == ["repair"]


# -- nuisance ---------------------------------------------------------------------------------


def test_nuisance_is_acknowledged_asked_when_and_where_then_handed_off() -> None:
    a, b = conversation(
        NADIA,
        ("mon voisin met la musique à fond", "nuisance"),
        ("tous les soirs vers 23h, appartement 204", "out_of_scope", ("apartment", "204")),
    )
    assert "pas facile" in a.replies[0] and "quels moments" in a.replies[1]
    req = b.requests[0]
    assert req.kind == "nuisance" and req.details["confidential"] is True
    assert req.details["where"] == "204" and "jamais donné" in b.replies[0]
    assert b.handoff is not None and b.handoff.intent == "nuisance"


# -- bulky waste --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tenant", "expected"),
    [
        (NADIA, "prochain passage le mardi 10 mars"),  # second Tuesday
        (FATOU, "prochain passage le lundi 16 mars"),  # first and third Monday
        (EMILY, "next collection on Monday 16 March"),
    ],
)
def test_bulky_waste_gives_the_residence_rule_and_the_next_date(
    tenant: TenantView, expected: str
) -> None:
    d = run(turn("quand passent les encombrants ?", "bulky_waste", tenant=tenant))
    assert expected in d.replies[0] and d.handoff is None


def test_items_dumped_in_a_common_area_become_a_request() -> None:
    a, b = conversation(
        NADIA,
        ("quelqu'un a laissé un vieux canapé", "bulky_waste"),
        ("dans le hall du bâtiment A", "out_of_scope", ("place", "hall")),
    )
    assert a.state["asked"] == "bulky_where"
    assert b.requests[0].kind == "bulky_waste" and b.requests[0].details["place"] == "hall"
    assert b.handoff is not None


# -- questions ----------------------------------------------------------------------------------


def test_question_is_answered_with_the_tenant_residence_data() -> None:
    d = run(turn("c'est quoi le numéro du gardien", "question"))
    assert "Karim Benali" in d.replies[0] and d.handoff is None
    d = run(turn("what are the agency opening hours", "question", tenant=EMILY))
    assert "Agence Roubaix-Tourcoing" in d.replies[0] and "Mon to Wed" in d.replies[0]


def test_unknown_question_is_passed_on() -> None:
    d = run(turn("est-ce que je peux faire un barbecue sur le balcon", "question"))
    assert d.handoff is not None and "barbecue" in d.handoff.reason


def test_payment_difficulty_offers_a_person_and_yes_hands_off() -> None:
    a, b = conversation(
        NADIA, ("je n'arrive plus à payer mon loyer", "question"), ("oui", "affirm")
    )
    assert "Voulez-vous" in a.replies[0] and a.state["asked"] == "offer_human"
    assert b.handoff is not None


def test_unknown_sender_gets_general_answers_and_is_asked_who_they_are() -> None:
    d = run(turn("horaires de l'agence ?", "question", tenant=None))
    assert d.handoff is None and "numéro de locataire" in d.replies[-1]
    d = run(turn("mon chauffage est en panne", "repair", tenant=None))
    assert d.state["awaiting"] == "identity" and d.state["pending_text"]
    d = run(turn("c'est L-10231", "out_of_scope", tenant=None, state=d.state))
    assert d.identify == "L-10231"


# -- status, satisfaction ---------------------------------------------------------------------


def test_status_quotes_the_reference_asked_for() -> None:
    reqs = (
        RequestView("R-2026-000124", "nuisance", "open", TUESDAY_10AM, "bruit"),
        RequestView("R-2026-000123", "repair", "in_progress", TUESDAY_10AM, "fuite · cuisine"),
    )
    d = run(
        turn(
            "où en est R-2026-000123 ?",
            "status_request",
            ("reference", "R-2026-000123"),
            requests=reqs,
        )
    )
    assert d.replies == [
        "R-2026-000123 (réparation, fuite · cuisine) : en cours de traitement, "
        "ouverte le mardi 3 mars."
    ]
    d = run(turn("où en est ma demande", "status_request", requests=reqs))
    assert "R-2026-000124" in d.replies[0] and "R-2026-000123" in d.replies[0]
    d = run(
        turn(
            "où en est R-2026-000999",
            "status_request",
            ("reference", "R-2026-000999"),
            requests=reqs,
        )
    )
    assert "Je ne trouve pas" in d.replies[0] and d.state["asked"] == "offer_human"


@pytest.mark.parametrize(
    ("text", "rating"),
    [
        ("5", 5),
        ("4/5", 4),
        ("je mets 3", 3),
        ("⭐⭐", 2),
        ("1 sur 5", 1),
        ("merci", None),
        ("9", None),
    ],
)
def test_ratings_are_read(text: str, rating: int | None) -> None:
    assert find_rating(text) == rating


def test_satisfaction_answer_is_stored_other_messages_go_on() -> None:
    d = run(turn("4", "out_of_scope", state={"asked": "satisfaction"}))
    assert d.satisfaction == 4 and d.replies[0].startswith("Merci pour votre note")
    d = run(turn("bonjour", "greet", state={"asked": "satisfaction"}))
    assert d.satisfaction is None and d.replies[0].startswith("Bonjour")


def test_a_long_polite_message_with_a_need_is_about_the_need() -> None:
    p = Parse(
        "bonjour je suis locataire au 12 et j'ai une fuite",
        "greet",
        0.58,
        "fr",
        (Entity("object", "fuite"),),
        (("greet", 0.58), ("repair", 0.2)),
    )
    d = run(
        Turn(
            text=p.text,
            parse=p,
            channel="sms",
            now=TUESDAY_10AM,
            state={},
            tenant=NADIA,
            landlord=LANDLORD,
        )
    )
    assert d.intent == "repair" and d.state["topic"] == "repair"


def test_nuisance_times_and_own_things_are_read_from_the_text() -> None:
    d = run(
        turn(
            "du bruit dans l'escalier tous les soirs jusqu'à 2h",
            "nuisance",
            ("place", "cage_escalier"),
        )
    )
    assert d.requests and d.requests[0].details["when"] == "tous les soirs"
    d = run(turn("la porte de mon placard est cassée", "repair", ("object", "porte")))
    assert d.state["slots"]["place"] == "logement" and d.state["asked"] == "since"
