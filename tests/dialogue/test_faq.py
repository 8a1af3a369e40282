"""FAQ retrieval: the right answer for tenants' own wording, a handoff when none fits."""

from __future__ import annotations

import pytest

from bot.dialogue import FAQ_CONFIDENT, FAQ_SUGGEST
from bot.dialogue.faq import METHODS, Faq, load_faq, read_entries, render
from tests.conftest import DATA_DIR
from tests.paths import REPO_ROOT

EVAL = REPO_ROOT / "tests/dialogue/data/faq_eval.tsv"


def rows(split: str) -> list[tuple[str, str]]:
    out = []
    for line in EVAL.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, text, part = line.split("\t")
            if part == split:
                out.append((label, text))
    return out


def test_every_entry_has_examples_and_both_languages() -> None:
    entries = read_entries(DATA_DIR.file("faq.yml"))
    assert len({e.id for e in entries}) == len(entries) >= 10
    for e in entries:
        assert len(e.examples) >= 5 and e.answer.get("fr") and e.answer.get("en"), e.id


@pytest.mark.parametrize(("split", "top1", "right"), [("dev", 0.9, 0.8), ("test", 0.7, 0.6)])
def test_retrieval_quality_on_labelled_questions(split: str, top1: float, right: float) -> None:
    """Floors under the figures of bench/faq_retrieval.py, so a change that hurts shows."""
    faq = load_faq(DATA_DIR)
    data = rows(split)
    covered = [(label, text) for label, text in data if label != "none"]
    hits = sum(faq.rank(text)[0].entry.id == label for label, text in covered)
    assert hits / len(covered) >= top1
    good = wrong = 0
    for label, text in data:
        m = faq.match(text, threshold=FAQ_SUGGEST)
        got = m.entry.id if m else "none"
        good += got == label
        wrong += got not in (label, "none")
    assert good / len(data) >= right


@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_an_obvious_question(method: str) -> None:
    faq = Faq(read_entries(DATA_DIR.file("faq.yml")), method=method)
    assert faq.rank("attestation de loyer svp")[0].entry.id == "rent_certificate"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kel est le num du gardien", "caretaker"),
        ("cmt je paye le loyer par cb", "rent_payment"),
        ("I need proof of address for the bank", "rent_certificate"),
        ("jveux resilier mon bail je demenage", "end_of_lease"),
    ],
)
def test_sms_spelling_and_english_are_matched(text: str, expected: str) -> None:
    m = load_faq(DATA_DIR).match(text, threshold=FAQ_SUGGEST)
    assert m is not None and m.entry.id == expected


def test_off_topic_questions_are_not_answered_confidently() -> None:
    faq = load_faq(DATA_DIR)
    for text in ("qui a gagné le match hier soir ?", "c'est quand la fête des voisins ?"):
        assert faq.match(text, threshold=FAQ_CONFIDENT) is None


def test_answers_are_personalised() -> None:
    entry = next(e for e in read_entries(DATA_DIR.file("faq.yml")) if e.id == "caretaker")
    text = render(entry, "fr", {"caretaker": "Karim Benali", "caretaker_hours": "8h-12h"})
    assert "Karim Benali" in text and "8h-12h" in text and "{" not in text
