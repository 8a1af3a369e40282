"""Figures of the conversation suite by kind: `python bench/stories.py [-v] [-k word]`.

Plays every story of tests/stories/*.yml through the same code as `relais chat --trace`
(tests/story_runner.py) and prints, per kind, the stories that pass; -v prints each failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu.engine import build_engine
from nlu.training import ensure_model
from tests.story_runner import DATA_DIR, Harness, load_stories

MODEL = Path("var/nlu/model.pkl")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("-k", default="", help="only stories whose kind or name contains this")
    parser.add_argument("--trace", action="store_true", help="print each failing story's trace")
    args = parser.parse_args()
    ensure_model(DATA_DIR, MODEL)
    engine = build_engine(kind="embedded", model_path=MODEL, data_dir=DATA_DIR)
    harness = Harness(engine)
    stories = [s for s in load_stories() if args.k in s.kind or args.k in s.name]
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for i, story in enumerate(stories):
        result = await harness.run(story, i)
        total[story.kind] += 1
        passed[story.kind] += result.passed
        if args.verbose and not result.passed:
            print(f"FAIL {story.kind}: {story.name}")
            for failure in result.failures:
                print(f"    {failure}")
            if args.trace:
                for trace in result.traces:
                    print("      " + json.dumps(trace, ensure_ascii=False, default=str)[:600])
    print(f"{'kind':<15} {'passed':>7} {'total':>6}")
    for kind in sorted(total):
        print(f"{kind:<15} {passed[kind]:>7} {total[kind]:>6}")
    print(f"{'all':<15} {sum(passed.values()):>7} {sum(total.values()):>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
