"""`build_engine`: the embedded engine trains itself when needed; unknown kinds are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.engine import Engine, build_engine


async def test_build_embedded(model_path: Path, data_dir: Path) -> None:
    engine = build_engine(kind="embedded", model_path=model_path, data_dir=data_dir)
    assert isinstance(engine, Engine)
    assert (await engine.parse("kan passe les encombrant")).intent == "bulky_waste"
    await engine.aclose()


async def test_build_embedded_with_threshold(model_path: Path, data_dir: Path) -> None:
    engine = build_engine(kind="embedded", model_path=model_path, data_dir=data_dir, threshold=1.01)
    assert (await engine.parse("mon radiateur ne chauffe pas")).intent == "out_of_scope"


def test_build_rasa_is_lazy_and_needs_a_url(model_path: Path, data_dir: Path) -> None:
    with pytest.raises(ValueError, match="RELAIS_RASA_URL"):
        build_engine(kind="rasa", model_path=model_path, data_dir=data_dir)


def test_unknown_kind(model_path: Path, data_dir: Path) -> None:
    with pytest.raises(ValueError, match="embedded"):
        build_engine(kind="spacy", model_path=model_path, data_dir=data_dir)
