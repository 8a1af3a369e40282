"""Normalisation table: case, accents, elisions, SMS spellings, numbers."""

from __future__ import annotations

import pytest

from nlu.normalize import MAX_CHARS, fold, normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ya une fuite ds la SDB !!", "il y a une fuite dans la salle de bain"),
        ("chofage en panne", "chauffage en panne"),
        ("kan passe les encombrant", "quand passe les encombrants"),
        ("le chauffage marche pa", "le chauffage marche pas"),
        ("L’ascenseur est bloqué", "le ascenseur est bloque"),
        ("J'ai froid", "je ai froid"),
        ("qu'il vienne", "que il vienne"),
        ("Ça sent le GAZ", "ca sent le gaz"),
        ("depuis trois jours", "depuis 3 jours"),
        ("I don't know, it's broken", "i do not know it s broken"),
        ("trop de bruiiiiit", "trop de bruiit"),
        ("   ", ""),
        ("😀👍", ""),
        ("<b>fuite</b>", "b fuite b"),
    ],
)
def test_normalize(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_fold_keeps_length_so_entity_offsets_stay_valid() -> None:
    text = "Élodie, salle de bain à l’étage, œuf"
    assert len(fold(text)) == len(text)
    assert fold("Éé À") == "ee a"


def test_normalize_truncates_very_long_text() -> None:
    assert len(normalize("fuite " * 5000)) <= MAX_CHARS


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("la chaudière est en rade", "la chaudiere est en panne"),
        ("the boiler has packed up again", "the boiler has broken again"),
        ("y a de la flotte partout", "y a de la eau partout"),
        ("les gosses sont coincés", "les enfants sont coinces"),
        ("my mum's telly is busted", "my mother s tv is broken"),
    ],
)
def test_colloquial_words_and_idioms(raw: str, expected: str) -> None:
    assert normalize(raw) == expected
    assert normalize(raw, synonyms=False) != expected


def test_colloquial_words_reach_the_emergency_rules() -> None:
    """What the table is for: "les gosses" are children for the rules too."""
    from nlu.rules import emergency_rule

    text = "les gosses sont enfermés dans la cave"
    assert emergency_rule(normalize(text)) == "trapped"
    assert emergency_rule(normalize(text, synonyms=False)) is None
