"""Shared NLU fixtures: one model trained per test session from the repository's data."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.embedded import EmbeddedEngine
from nlu.paths import default_data_dir
from nlu.training import Model, train


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return default_data_dir()


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    path = tmp_path_factory.mktemp("nlu") / "model.pkl"
    train(data_dir, path)
    return path


@pytest.fixture(scope="session")
def model(model_path: Path) -> Model:
    from nlu.training import load_model

    return load_model(model_path)


@pytest.fixture(scope="session")
def engine(model: Model) -> EmbeddedEngine:
    return EmbeddedEngine(model)
