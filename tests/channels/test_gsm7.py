"""GSM-7 folding and SMS segment counts, as tables."""

from __future__ import annotations

import pytest

from channels import gsm7


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Réparation prévue à 14 h, où ça ?", "Réparation prévue à 14 h, où ca ?"),
        ("Fenêtre, chaîne, île, hôtel, dû", "Fenetre, chaine, ile, hotel, du"),
        ("Noël, maïs, cœur, Œuvre", "Noel, mais, coeur, OEuvre"),
        ("l’agence « Nord » — ouverte…", 'l\'agence "Nord" - ouverte...'),
        ("Merci ! 👍🏽 À bientôt 😀", "Merci ! A bientot"),
        ("Prix\u00a0: 10\u202f€", "Prix : 10 €"),
        ("Ça marche, Élise", "Ça marche, Élise"),  # Ç and É are GSM-7
        ("déjà vu, très, où, Ñandú, straße", "déjà vu, très, où, Ñandu, straße"),
        ("مرحبا، الماء يتسرب", "مرحبا، الماء يتسرب"),  # no meaningful fold: sent as UCS-2
        ("Привет ê", "Привет ê"),
        ("line one\nline two", "line one\nline two"),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert gsm7.fold(text) == folded


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extension characters count twice: 160 septets
        ("€" * 81, 2),
        ("a" * 152 + "€" + "a" * 10, 2),  # the escape pair is not split across parts
        ("é" * 160, 1),  # é is in the basic set
        ("ê" * 70, 1),  # UCS-2
        ("ê" * 71, 2),
        ("ê" * 134, 2),
        ("ê" * 135, 3),
        ("😀" * 35, 1),  # a surrogate pair is two UTF-16 units
        ("😀" * 36, 2),
    ],
)
def test_segments(text: str, segments: int) -> None:
    assert gsm7.segments(text) == segments


def test_folding_a_french_reply_saves_segments() -> None:
    reply = (
        "Merci, c’est noté : votre demande R-2026-000123 est enregistrée. "
        "Le gardien passera dans la journée ; si l’eau coule fort, coupez la vanne 🙏"
    )
    assert gsm7.segments(reply) == 3  # UCS-2 because of ’ and the emoji
    assert gsm7.segments(gsm7.fold(reply)) == 1
    assert gsm7.is_gsm7(gsm7.fold(reply))
