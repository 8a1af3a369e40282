"""The dialogue trial on held-out contacts: `python bench/dialogue_trial.py [-v]`.

Plays every contact of tests/stories/heldout/*.yml (written apart from the suite, not run by
pytest) through the same code as `relais chat --trace`, and prints the share whose final
state matches its `outcome` label:

- resolved_by_bot: every expectation of the contact holds;
- handed_to_person: the same, and the conversation ends with a handoff;
- emergency: the same, an urgent handoff, and on-call alerted on some turn.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu.engine import build_engine
from nlu.training import ensure_model
from tests.story_runner import DATA_DIR, HELDOUT_DIR, Harness, Result, load_stories

MODEL = Path("var/nlu/model.pkl")


def outcome_problems(result: Result) -> list[str]:
    """Why the contact's final state does not match its outcome label (empty: it does)."""
    problems = list(result.failures)
    last: dict[str, Any] = result.traces[-1] if result.traces else {}
    outcome = result.story.outcome or "resolved_by_bot"
    handoff = last.get("handoff")
    if outcome == "handed_to_person" and handoff is None:
        problems.append("ends without a handoff")
    if outcome == "emergency":
        if not handoff or handoff.get("priority") != "urgent":
            problems.append(f"no urgent handoff at the end: {handoff}")
        if not any(a.get("to") == "oncall" for t in result.traces for a in t.get("alerts") or []):
            problems.append("on-call never alerted")
    return problems


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    ensure_model(DATA_DIR, MODEL)
    engine = build_engine(kind="embedded", model_path=MODEL, data_dir=DATA_DIR)
    harness = Harness(engine)
    contacts = load_stories(HELDOUT_DIR)
    matched: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for i, story in enumerate(contacts):
        result = await harness.run(story, i)
        problems = outcome_problems(result)
        label = story.outcome or "resolved_by_bot"
        total[label] += 1
        matched[label] += not problems
        if args.verbose and problems:
            print(f"MISS {label}: {story.name}")
            for problem in problems:
                print(f"    {problem}")
    n, ok = sum(total.values()), sum(matched.values())
    print(f"{'outcome':<18} {'matched':>7} {'total':>6}")
    for label in sorted(total):
        print(f"{label:<18} {matched[label]:>7} {total[label]:>6}")
    print(f"{'all':<18} {ok:>7} {n:>6}  ({100 * ok / max(n, 1):.0f} %)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
