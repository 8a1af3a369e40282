"""Table tests of the dialogue's pure functions over the turn and the conversation state:
safety on every turn, follow-ups, replies read against the question, requests that later
messages attach to, silence, languages, tone (issue 14)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from bot.dialogue import (
    PRIORITY_EMERGENCY,
    Decision,
    RequestView,
    Turn,
    decide,
    due_at,
    on_silence,
    reading,
)
from bot.dialogue.schedule import holiday_name, next_collection, region_of
from tests.dialogue.test_dialogue import FAQ, FATOU, NADIA, TEXTS, TUESDAY_10AM, turn


def run(t: Turn) -> Decision:
    return decide(t, TEXTS, FAQ)


def chain(*steps: tuple[Any, ...], **kw: Any) -> list[Decision]:
    state: dict[str, Any] = {}
    out = []
    for text, intent, *entities in steps:
        d = run(turn(text, intent, *entities, state=state, **kw))
        state = d.state
        out.append(d)
    return out


# -- reading: a danger now, or not ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hazard"),
    [
        ("ça sent le gaz dans la cuisine", "gas"),
        ("il n'y a pas d'odeur de gaz", None),
        ("la semaine dernière il y avait une odeur de gaz", None),
        ("ça sent le gaz depuis hier soir", "gas"),
        ("le chauffage marche plus et en plus ca sent le gaz", "gas"),
        ("le détecteur de fumée bipe, la pile est faible", None),
        ("il y a de la fumée qui sort sous la porte du voisin", "smoke"),
        ("mon voisin me menace avec un couteau", "threat"),
        ("je suis bloquée dans l'ascenseur", "trapped_lift"),
        ("l'ascenseur est bloqué au 4e", None),
        ("ma fille de 2 ans s'est enfermée dans la salle de bain", "trapped"),
        ("plus de courant et le concentrateur d'oxygène de ma mère est arrêté", "life_support"),
        ("la dame du 604 est par terre dans son entrée", "danger"),
        ("notre cave a été inondée en janvier, maintenant il y a de la moisissure", None),
        ("l'eau coule du plafond et arrive sur les prises", "water_electric"),
        ("le détecteur de monoxyde sonne et on a mal à la tête", "carbon_monoxide"),
        ("le gaz c'est bon, GRDF est passé", None),
    ],
)
def test_danger_now(text: str, hazard: str | None) -> None:
    assert reading.hazard(text) == hazard


@pytest.mark.parametrize(
    ("text", "follow"),
    [
        ("j'ai appelé les pompiers", "called"),
        ("les pompiers sont arrivés", "arrived"),
        ("c bon il a ouvert c'était une casserole oubliée", "over"),
        ("ok jsuis dehors avec les petits", "safe"),
        ("c'est la 3eme fois que je signale la porte", None),
    ],
)
def test_follow_ups(text: str, follow: str | None) -> None:
    assert reading.follow_up(text) == follow


# -- safety on every turn -------------------------------------------------------------------


def test_an_answer_that_is_an_emergency_gets_the_safety_text_and_on_call() -> None:
    first, second = chain(
        (
            "le radiateur de la chambre est froid",
            "repair",
            ("object", "radiateur"),
            ("place", "chambre"),
        ),
        ("ça sent le gaz maintenant", "repair"),
    )
    assert first.state["asked"] == "since"
    assert second.replies[0].startswith("URGENT") and "0 800 47 33 33" in second.replies[0]
    assert [a.to for a in second.alerts] == ["oncall"]
    assert second.handoff is not None and second.handoff.priority == PRIORITY_EMERGENCY
    # What was being collected goes with the emergency, not lost.
    assert second.requests[0].details["earlier"] == "le radiateur de la chambre est froid"


def test_a_threat_is_police_and_never_the_lift_text() -> None:
    d = run(turn("mon voisin me menace avec un couteau devant l'ascenseur", "nuisance"))
    assert "17" in d.replies[0] and "ascenseur est sûr" not in d.replies[0]
    assert d.alerts and d.handoff is not None and d.handoff.priority == PRIORITY_EMERGENCY


def test_follow_ups_are_acknowledged_and_the_all_clear_raises_nothing() -> None:
    steps = chain(
        ("y a de la fumée qui sort de sous la porte du voisin !!", "emergency"),
        ("j'ai appelé les pompiers", "out_of_scope"),
        ("c bon c'était une casserole oubliée", "out_of_scope"),
        ("le gaz c'est bon GRDF est passé", "emergency"),
    )
    assert steps[0].alerts and steps[0].replies[0].startswith("URGENT")
    assert "bien fait" in steps[1].replies[0] and not steps[1].alerts
    assert "Tant mieux" in steps[2].replies[0] and steps[2].state["emergency"]["over"]
    assert not steps[3].alerts and not steps[3].requests and steps[3].handoff is None
    assert all("pas bien compris" not in r for d in steps for r in d.replies)


def test_an_emergency_while_a_person_holds_the_conversation() -> None:
    quiet = run(turn("merci je patiente", "thanks", conversation_state="assigned"))
    assert quiet.replies == [] and quiet.handoff is None
    d = run(turn("ça sent le gaz dans l'entrée", "emergency", conversation_state="assigned"))
    assert d.replies[0].startswith("URGENT") and [a.to for a in d.alerts] == ["oncall"]


def test_an_unknown_sender_in_an_emergency_is_asked_the_address() -> None:
    first, second = chain(
        ("au secours ça sent le gaz", "emergency"),
        ("12 rue des Lilas, 3e", "out_of_scope"),
        tenant=None,
    )
    assert first.replies[0].startswith("URGENT") and "adresse" in first.replies[-1]
    assert second.alerts and "adresse" in second.replies[0]


def test_a_possible_danger_asks_one_safety_question() -> None:
    first, second = chain(
        ("de l'eau coule du plafond de la salle de bain", "repair", ("risk", "flooding")),
        ("oui près de la prise", "affirm"),
    )
    assert "prises électriques" in first.replies[-1] and not first.alerts
    assert second.replies[0].startswith("URGENT") and second.alerts


# -- replies read against the question --------------------------------------------------------


def test_a_detail_instead_of_the_date_is_kept_and_the_question_asked_once_more() -> None:
    a, b, c = chain(
        ("la VMC de la cuisine marche plus", "repair", ("object", "vmc"), ("place", "cuisine")),
        ("j'ai nettoyé la grille ça change rien", "out_of_scope"),
        ("la semaine dernière", "out_of_scope", ("date", "la semaine derniere")),
    )
    assert a.state["asked"] == "since" and b.state["asked"] == "since"
    assert "je le note" in b.replies[0] and b.replies[-1] != a.replies[-1]  # never twice
    req = c.requests[0]
    assert req.details["since"] == "la semaine derniere"
    assert "j'ai nettoyé la grille ça change rien" in req.details["notes"]


def test_a_new_problem_given_as_an_answer_is_a_second_request() -> None:
    a, b = chain(
        (
            "la barrière du parking reste bloquée",
            "repair",
            ("object", "porte"),
            ("place", "parking"),
        ),
        (
            "et la fenêtre de ma chambre ne ferme plus",
            "repair",
            ("object", "fenetre"),
            ("place", "chambre"),
        ),
    )
    assert a.state["asked"] == "since"
    assert len(b.requests) == 1 and b.requests[0].details["object"] == "porte"
    assert b.state["topic"] == "repair" and b.state["slots"]["object"] == "fenetre"


def test_a_person_asked_for_in_answer_to_a_question() -> None:
    _a, b = chain(
        ("fuite sous l'évier", "repair", ("object", "fuite"), ("place", "cuisine")),
        ("je veux parler au responsable", "human_request"),
    )
    assert b.requests and b.handoff is not None and "photo" not in " ".join(b.replies)


# -- after the request ----------------------------------------------------------------------


def open_request(**kw: Any) -> RequestView:
    base = dict(
        reference="R-2026-000007",
        kind="repair",
        status="open",
        created_at=TUESDAY_10AM - timedelta(hours=1),
        summary="fuite · cuisine",
        details={"object": "fuite", "text": "fuite sous l'évier"},
        conversation_id=1,
    )
    return RequestView(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "intent", "reply", "alert"),
    [
        ("ça s'aggrave, ça coule sur le parquet", "out_of_scope", "R-2026-000007", "caretaker"),
        ("c'est toujours pas réparé", "out_of_scope", "R-2026-000007", None),
        ("je suis là tous les jours après 17h, code 4512", "out_of_scope", "R-2026-000007", None),
        ("merci beaucoup !", "thanks", "plaisir", None),
    ],
)
def test_messages_after_a_request_attach_to_it(
    text: str, intent: str, reply: str, alert: str | None
) -> None:
    r = open_request()
    d = run(turn(text, intent, state={"request": r.reference}, open_request=r, requests=(r,)))
    assert not d.requests and reply in " ".join(d.replies)
    assert [a.to for a in d.alerts] == ([alert] if alert else [])
    assert "Depuis quand" not in " ".join(d.replies)


def test_a_thank_you_for_a_past_repair_is_not_a_new_repair() -> None:
    d = run(turn("merci pour la réparation de la fuite", "repair", ("object", "fuite")))
    assert not d.requests and "topic" not in d.state


def test_a_repeat_report_is_acknowledged_with_the_count_and_references() -> None:
    earlier = (
        open_request(reference="R-2026-000003", status="closed", details={"object": "porte"}),
        open_request(reference="R-2026-000001", status="closed", details={"object": "porte"}),
    )
    d = run(
        turn(
            "la porte du hall ferme plus",
            "repair",
            ("object", "porte"),
            ("place", "hall"),
            requests=earlier,
        )
    )
    said = " ".join(d.replies)
    assert "troisième fois" in said and "R-2026-000003" in said and "R-2026-000001" in said


def test_anger_gets_an_apology_and_a_person() -> None:
    d = run(
        turn(
            "ça fait un mois, c'est inadmissible, vous faites rien !!!",
            "repair",
            ("object", "chauffage"),
        )
    )
    assert "désolé" in d.replies[0] and d.handoff is not None and d.requests


# -- silence --------------------------------------------------------------------------------


def test_silence_turns_the_intake_into_a_request_and_says_the_reference() -> None:
    first = run(
        turn(
            "le robinet de la douche goutte",
            "repair",
            ("object", "robinet"),
            ("place", "salle_de_bain"),
        )
    )
    assert due_at(first.state, TUESDAY_10AM, timedelta(minutes=30)) == TUESDAY_10AM + timedelta(
        minutes=30
    )
    d = on_silence(turn("", "silence", state=first.state), TEXTS, FAQ)
    assert d.requests and "{reference}" in d.replies[0] and "Sans nouvelles" in d.replies[0]
    assert due_at(d.state, TUESDAY_10AM, timedelta(minutes=30)) is None


def test_silence_with_too_little_known_reaches_a_person() -> None:
    first = run(turn("j'ai un problème", "repair"))
    d = on_silence(turn("", "silence", state=first.state), TEXTS, FAQ)
    assert not d.requests and d.handoff is not None and "incomplet" in d.handoff.reason


# -- languages, unknown senders, holidays ---------------------------------------------------


@pytest.mark.parametrize(
    ("lang", "text", "start"),
    [
        ("tr", "Merhaba, mutfaktaki musluk sürekli damlıyor", "Merhaba"),
        ("ar", "مرحبا عندي تسرب ماء في المطبخ", "مرحبًا"),
        ("pt", "Olá, tenho uma fuga de água na cozinha", "Olá"),
        ("ro", "Bună ziua, nu avem apă caldă", "Bună ziua"),
        ("zh", "你好，我家厨房漏水", "您好"),
    ],
)
def test_other_languages_get_a_line_in_theirs_and_a_person(
    lang: str, text: str, start: str
) -> None:
    d = run(turn(text, "out_of_scope", foreign_language=lang))
    assert d.replies[0].startswith(start) and d.handoff is not None
    assert d.handoff.language == lang and d.language == lang


def test_french_danger_words_inside_another_language_are_caught() -> None:
    d = run(turn("Merhaba, gaz kokusu var, ça sent le gaz", "out_of_scope", foreign_language="tr"))
    assert d.replies[0].startswith("URGENT") and d.alerts


def test_an_unknown_sender_is_tried_twice_then_the_message_goes_to_the_queue() -> None:
    steps = chain(
        ("mon chauffage est en panne", "repair", ("object", "chauffage")),
        ("je sais pas", "out_of_scope"),
        ("j'ai pas mon papier", "out_of_scope"),
        tenant=None,
    )
    assert steps[-1].handoff is not None and "chauffage" in steps[-1].handoff.reason
    assert "awaiting" not in steps[-1].state


def test_holidays_by_region() -> None:
    assert region_of("57000 Metz") == "57" and region_of("67000 Strasbourg") == "6AE"
    assert region_of("97400 Saint-Denis") == "974" and region_of("59000 Lille") == ""
    good_friday = datetime(2026, 4, 3).date()
    assert holiday_name(good_friday, "57") and holiday_name(good_friday, "") is None
    # Les Fleurs' second Tuesday of July 2026 is 14 July: moved, or skipped to August.
    rule = {"kind": "monthly", "nth": [2], "weekday": 1}
    today = datetime(2026, 7, 9).date()
    assert next_collection(rule, today) == datetime(2026, 7, 15).date()
    skipped = next_collection({**rule, "on_holiday": "skipped"}, today)
    assert skipped == datetime(2026, 8, 11).date()


def test_a_public_unknown_question_about_a_named_residence() -> None:
    canal = FATOU.residence  # any residence view works for the lookup
    assert canal is not None
    d = run(
        turn(
            "c'est quand les encombrants à la Tour Horizon ?",
            "bulky_waste",
            tenant=None,
            residences=(canal,),
        )
    )
    assert "Tour Horizon" in d.replies[0] and "numéro de locataire" not in d.replies[0]


def test_never_the_same_sentence_twice() -> None:
    steps = chain(("merci", "thanks"), ("merci", "thanks"), tenant=NADIA)
    assert steps[0].replies != steps[1].replies
