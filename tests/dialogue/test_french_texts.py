"""Tenant texts in correct French: the article a place's name takes ("à la Résidence Les
Fleurs", "à l'agence Lille Centre", "au Parc") and greetings that fit the hour."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.dialogue.faq import render
from bot.dialogue.texts import good_day, hello, place, with_places
from tests.dialogue.test_dialogue import (
    EMILY,
    FAQ,
    NADIA,
    PARIS,
    RES,
    TEXTS,
    run,
    turn,
)


@pytest.mark.parametrize(
    ("name", "at", "of", "the"),
    [
        # feminine noun first: la, elided before a vowel (and lower case for "agence")
        ("Résidence Les Fleurs", "à la Résidence Les Fleurs", "de la Résidence Les Fleurs",
         "la Résidence Les Fleurs"),
        ("Tour Horizon", "à la Tour Horizon", "de la Tour Horizon", "la Tour Horizon"),
        ("Agence Lille Centre", "à l'agence Lille Centre", "de l'agence Lille Centre",
         "l'agence Lille Centre"),
        # masculine noun first: au / du, elided before a vowel; an aspirated h is not
        ("Foyer Saint-Jean", "au Foyer Saint-Jean", "du Foyer Saint-Jean", "le Foyer Saint-Jean"),
        ("Immeuble Voltaire", "à l'Immeuble Voltaire", "de l'Immeuble Voltaire",
         "l'Immeuble Voltaire"),
        ("Hameau des Prés", "au Hameau des Prés", "du Hameau des Prés", "le Hameau des Prés"),
        # the article is in the name
        ("Le Parc", "au Parc", "du Parc", "le Parc"),
        ("Les Tilleuls", "aux Tilleuls", "des Tilleuls", "les Tilleuls"),
        ("La Source", "à la Source", "de la Source", "la Source"),
        ("L'Oasis", "à l'Oasis", "de l'Oasis", "l'Oasis"),
        # a proper name: no article; "de" elided before a vowel or a mute h
        ("Habitat Nord Solidaire", "à Habitat Nord Solidaire", "d'Habitat Nord Solidaire",
         "Habitat Nord Solidaire"),
        ("Karim Benali", "à Karim Benali", "de Karim Benali", "Karim Benali"),
        ("Anne Morel", "à Anne Morel", "d'Anne Morel", "Anne Morel"),
        # already determined: left as it is
        ("votre agence", "à votre agence", "de votre agence", "votre agence"),
        ("", "", "", ""),
    ],
)  # fmt: skip
def test_a_place_takes_its_article(name: str, at: str, of: str, the: str) -> None:
    assert (place(name, "à"), place(name, "de"), place(name)) == (at, of, the)


def test_english_texts_keep_the_name_as_written() -> None:
    params = with_places({"residence": "Le Parc"}, "en")
    assert params["residence"] == "Le Parc"
    assert TEXTS.get("bulky_info", "en", residence="Le Parc").startswith("Bulky waste at Le Parc:")


def test_texts_and_answers_insert_the_article() -> None:
    assert TEXTS.get("bulky_info", "fr", residence="Le Parc").startswith("Encombrants au Parc :")
    assert TEXTS.get("bulky_info", "fr", residence="Résidence Les Fleurs").startswith(
        "Encombrants à la Résidence Les Fleurs :"
    )
    entry = next(e for e in FAQ.entries if e.id == "rent_certificate")
    fleurs = RES["FLEURS"]
    text = render(entry, "fr", {"agency": fleurs.agency["name"], "agency_phone": "03"})
    assert "demandez-la à l'agence Lille Centre (03)" in text
    assert "à Agence" not in text


def test_the_bots_answers_read_as_french() -> None:
    """Through the dialogue: no "à Agence …", "de Habitat …" or "à Le Parc" reaches a tenant."""
    said = [
        run(turn("je voudrais une quittance", "question")).replies[-1],
        run(turn("bonjour", "greet")).replies[0],
        run(turn("les encombrants c'est quand ?", "bulky_waste")).replies[0],
    ]
    joined = " ".join(said)
    assert "à l'agence Lille Centre" in said[0], said[0]
    assert "l'assistant d'Habitat Nord Solidaire" in said[1]
    assert "Encombrants à la Résidence Les Fleurs" in said[2], said[2]
    for wrong in ("à Agence", "de Agence", "de Habitat", "à Le ", "à Résidence", "à Tour"):
        assert wrong not in joined


@pytest.mark.parametrize(
    ("hour", "minute", "greeting", "leave"),
    [
        (8, 0, "Bonjour", "Bonne journée"),
        (17, 59, "Bonjour", "Bonne journée"),
        (18, 0, "Bonsoir", "Bonne soirée"),
        (23, 30, "Bonsoir", "Bonne soirée"),
        (2, 0, "Bonsoir", "Bonne soirée"),
        (5, 0, "Bonjour", "Bonne journée"),
    ],
)
def test_greetings_fit_the_hour(hour: int, minute: int, greeting: str, leave: str) -> None:
    now = datetime(2026, 3, 3, hour, minute, tzinfo=PARIS)
    (hi,) = run(turn("bonjour", "greet", now=now)).replies[:1]
    assert hi.startswith(f"{greeting} Nadia !"), hi
    bye = run(turn("au revoir", "goodbye", now=now)).replies[0]
    assert bye.startswith(f"{leave} Nadia"), bye
    assert (hello(now), good_day(now)) == (greeting, leave)


def test_english_greets_with_hello_at_any_hour() -> None:
    evening = datetime(2026, 3, 3, 20, 0, tzinfo=PARIS)
    hi = run(turn("hello", "greet", tenant=EMILY, now=evening)).replies[0]
    assert hi.startswith("Hello Emily!"), hi


def test_a_text_without_the_hour_still_greets() -> None:
    assert TEXTS.get("greet", "fr", name=" Nadia", landlord="Habitat Nord Solidaire").startswith(
        "Bonjour Nadia ! Je suis l'assistant d'Habitat Nord Solidaire."
    )
    assert NADIA.first_name == "Nadia"


def test_the_shipped_answers_stay_editable() -> None:
    """Every placeholder of the shipped FAQ answers ({at_agency}...) is one the facts page
    accepts, or a manager could not save an answer unchanged."""
    import string

    from handoff.facts_pages import FAQ_PLACEHOLDERS

    used = {
        name
        for entry in FAQ.entries
        for text in entry.answer.values()
        for _lit, name, _spec, _conv in string.Formatter().parse(text)
        if name
    }
    assert {"at_agency", "the_agency", "of_caretaker"} <= used
    assert used <= FAQ_PLACEHOLDERS
