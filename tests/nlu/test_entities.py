"""Entity table: places, objects, floors, apartments, dates and request references."""

from __future__ import annotations

import pytest

from nlu.entities import extract_entities


def found(text: str) -> set[tuple[str, str]]:
    return {(e.type, e.value) for e in extract_entities(text)}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ya une fuite ds la sdb", {("object", "fuite"), ("place", "salle_de_bain")}),
        ("fuite sous l'évier de la cuisine", {("object", "evier"), ("place", "cuisine")}),
        (
            "plus de lumière dans la cage d'escalier",
            {("object", "lumiere"), ("place", "cage_escalier")},
        ),
        ("l'ascenseur est en panne", {("place", "ascenseur"), ("object", "ascenseur")}),
        (
            "rats dans la cave et le parking",
            {("object", "nuisibles"), ("place", "cave"), ("place", "parking")},
        ),
        ("le volet de la chambre", {("object", "volet"), ("place", "chambre")}),
        ("le radiateur du salon", {("object", "radiateur"), ("place", "salon")}),
        ("pas d'eau chaude", {("object", "eau_chaude")}),
        ("l'interphone du hall", {("object", "interphone"), ("place", "hall")}),
        ("mould in the bathroom", {("object", "moisissure"), ("place", "salle_de_bain")}),
        ("matelas devant le local poubelles", {("place", "local_poubelles")}),
        ("the lift", {("place", "ascenseur"), ("object", "ascenseur")}),
    ],
)
def test_places_and_objects(text: str, expected: set[tuple[str, str]]) -> None:
    assert expected <= found(text)


@pytest.mark.parametrize(
    ("text", "type_", "value"),
    [
        ("je suis au 3ème étage", "floor", "3"),
        ("au 1er étage", "floor", "1"),
        ("rez-de-chaussée", "floor", "0"),
        ("on the 4th floor", "floor", "4"),
        ("appt 42", "apartment", "42"),
        ("appartement n°12B", "apartment", "12B"),
        ("flat 7", "apartment", "7"),
        ("depuis hier", "date", "depuis hier"),
        ("depuis hier soir", "date", "depuis hier soir"),
        ("depuis 3 jours", "date", "depuis 3 jours"),
        ("ça fait deux semaines", "date", "ca fait deux semaines"),
        ("ce matin", "date", "ce matin"),
        ("since yesterday", "date", "since yesterday"),
        ("ma demande R-2026-000123", "reference", "R-2026-000123"),
        ("ref r 2026 000123", "reference", "R-2026-000123"),
        ("r-2026-123", "reference", "R-2026-000123"),
    ],
)
def test_floor_apartment_date_reference(text: str, type_: str, value: str) -> None:
    assert (type_, value) in found(text)


def test_offsets_index_the_original_text() -> None:
    text = "Fuite dans la Salle de Bain depuis HIER"
    for e in extract_entities(text):
        assert text[e.start : e.end] == e.text


def test_no_entities_in_unrelated_text() -> None:
    assert extract_entities("bonjour, merci beaucoup") == ()
