"""FAQ retrieval measured on labelled tenant questions (tests/dialogue/data/faq_eval.tsv).

For each method: top-1 accuracy on questions the FAQ covers, then, across thresholds, how many
questions get the right answer, a wrong answer, or are passed to a person (the right outcome for
questions labelled `none`). A wrong answer is worse than a handoff, so the threshold is chosen
to maximise right outcomes minus twice the wrong answers.

    .venv/bin/python bench/faq_retrieval.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.dialogue.faq import METHODS, Faq, read_entries  # noqa: E402


def load_eval(split: str | None = None) -> list[tuple[str, str]]:
    """Labelled questions; `split` "dev" (from data/nlu.yml, used to tune) or "test" (the
    held-out data/nlu_test.yml questions and ten unseen off-FAQ questions)."""
    rows = []
    eval_file = ROOT / "tests/dialogue/data/faq_eval.tsv"
    for line in eval_file.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            label, text, part = line.split("\t")
            if split is None or part == split:
                rows.append((label, text))
    return rows


def main() -> None:
    print("== dev (thresholds chosen here)")
    chosen = measure(load_eval("dev"))
    print("== test (held out), at the thresholds chosen on dev")
    measure(load_eval("test"), chosen)


def measure(rows: list[tuple[str, str]], fixed: dict[str, float] | None = None) -> dict[str, float]:
    chosen: dict[str, float] = {}
    entries = read_entries(ROOT / "data/faq.yml")
    covered = [r for r in rows if r[0] != "none"]
    print(
        f"{len(rows)} questions, {len(covered)} covered by the FAQ, {len(rows) - len(covered)} not"
    )
    for method in METHODS:
        faq = Faq(entries, method=method)
        results = []
        for label, text in rows:
            top = faq.rank(text)[0]
            results.append((label, top.entry.id, top.score))
        top1 = sum(label == got for label, got, _ in results if label != "none") / len(covered)
        scores = sorted({round(s, 3) for *_, s in results})
        grid = [0.0, *scores] if method == "bm25" else [t / 100 for t in range(0, 80, 2)]
        if fixed is not None:
            grid = [fixed[method]]
        best = None
        for t in grid:
            right = wrong = handed = 0
            for label, got, score in results:
                if score >= t:
                    if got == label:
                        right += 1
                    else:
                        wrong += 1
                else:
                    handed += 1
                    right += label == "none"
            value = right - 2 * wrong
            if best is None or value > best[0]:
                best = (value, t, right, wrong, handed)
        assert best is not None
        _, t, right, wrong, handed = best
        chosen[method] = t
        print(
            f"{method:11s} top-1 {top1:6.1%} | threshold {t:5.2f}: right {right}/{len(rows)}"
            f" ({right / len(rows):.1%}), wrong answers {wrong}, handed off {handed}"
        )
    faq = Faq(entries)
    right = wrong = 0
    for label, text in rows:
        m = faq.match(text)
        got = m.entry.id if m else "none"
        right += got == label
        wrong += got not in (label, "none")
    print(
        f"shipped: {faq.method} at {faq.threshold}: "
        f"right {right}/{len(rows)}, wrong answers {wrong}"
    )
    return chosen


if __name__ == "__main__":
    main()
