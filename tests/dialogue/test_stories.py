"""The conversation suite: every story of tests/stories/*.yml, one test each, played through
the same code as `relais chat --trace` with the real embedded NLU (held-out contacts in
tests/stories/heldout/ are not run here: bench/dialogue_trial.py measures them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nlu.engine import build_engine
from tests.conftest import DATA_DIR
from tests.story_runner import Harness, Story, load_stories

STORIES = load_stories()


@pytest.fixture(scope="module")
def harness_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stories")


@pytest.fixture
async def harness(nlu_model_path: Path, harness_dir: Path) -> AsyncIterator[Harness]:
    engine = build_engine(kind="embedded", model_path=nlu_model_path, data_dir=DATA_DIR)
    h = Harness(engine, harness_dir)
    h._ready = (harness_dir / "template.sqlite3").exists()
    yield h


def test_the_suite_has_a_hundred_stories_with_unique_names() -> None:
    names = [s.name for s in STORIES]
    assert len(names) >= 100 and len(set(names)) == len(names)


@pytest.mark.parametrize("story", STORIES, ids=[f"{s.kind}:{s.name}" for s in STORIES])
async def test_story(story: Story, harness: Harness) -> None:
    result = await harness.run(story, STORIES.index(story))
    assert result.passed, "\n".join(result.failures)
