"""Training data loading, the artifact (atomic, versioned) and the freshness check."""

from __future__ import annotations

import os
import pickle
import shutil
from pathlib import Path

import pytest

from bot.core.datadir import DataDir
from nlu.embedded import EmbeddedEngine
from nlu.training import (
    ARTIFACT_VERSION,
    ArtifactError,
    ensure_model,
    is_stale,
    load_model,
    load_training_file,
    strip_annotations,
    training_files,
)

SMALL = """version: "3.1"
nlu:
- intent: repair
  examples: |
    - ya une fuite ds la [sdb](place)
    - le [chauffage]{"entity": "object", "value": "chauffage"} ne marche pas
    - fuite sous l'évier
    - radiateur froid
    - plus d'eau chaude
    - l'ascenseur est en panne
- intent: greet
  examples: |
    - bonjour
    - salut
    - hello
    - bonsoir
    - coucou
- synonym: salle_de_bain
  examples: |
    - sdb
- lookup: place
  examples: |
    - cuisine
- regex: reference
  examples: |
    - R-\\d{4}-\\d{6}
"""


@pytest.fixture
def small_data(tmp_path: Path) -> DataDir:
    data = tmp_path / "data"
    data.mkdir()
    (data / "nlu.yml").write_text(SMALL, encoding="utf-8")
    return DataDir(data)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("la [cuisine](place)", "la cuisine"),
        ('le [sdb]{"entity": "place", "value": "salle_de_bain"} fuit', "le sdb fuit"),
        ("pas d'annotation", "pas d'annotation"),
    ],
)
def test_strip_annotations(raw: str, clean: str) -> None:
    assert strip_annotations(raw) == clean


def test_load_rasa_yaml(small_data: DataDir) -> None:
    data = load_training_file(small_data.file("nlu.yml"))
    assert ("ya une fuite ds la sdb", "repair") in data.examples
    assert ("le chauffage ne marche pas", "repair") in data.examples
    assert data.labels.count("greet") == 5
    assert data.synonyms == {"salle_de_bain": ["sdb"]}
    assert data.lookups == {"place": ["cuisine"]}
    assert data.regexes == {"reference": [r"R-\d{4}-\d{6}"]}


def test_repository_data_meets_the_volumes(data_dir: Path) -> None:
    from nlu.language import detect_language
    from nlu.normalize import normalize
    from nlu.training import load_test_data, load_training_data
    from nlu.types import TOPIC_INTENTS

    data = load_training_data(data_dir)
    for topic in TOPIC_INTENTS:
        texts = [t for t, i in data.examples if i == topic]
        english = [t for t in texts if detect_language(normalize(t), t) == "en"]
        assert len(texts) - len(english) >= 80, topic
        assert len(english) >= 25, topic
    assert len(load_test_data(data_dir).examples) >= 150
    assert data_dir.file("nlu_test.yml") not in training_files(data_dir)


def test_ensure_model_trains_when_missing_then_not_when_fresh(
    small_data: DataDir, tmp_path: Path
) -> None:
    model_path = tmp_path / "var" / "model.pkl"
    assert ensure_model(small_data, model_path) is True
    assert model_path.exists()
    assert ensure_model(small_data, model_path) is False
    engine = EmbeddedEngine.load(model_path)
    assert engine.parse_sync("bonjour").intent == "greet"
    assert not list(model_path.parent.glob("*.tmp"))  # written via a temp file and a rename


def test_ensure_model_retrains_when_data_is_newer(small_data: DataDir, tmp_path: Path) -> None:
    model_path = tmp_path / "model.pkl"
    ensure_model(small_data, model_path)
    past = model_path.stat().st_mtime - 100
    os.utime(model_path, (past, past))
    assert is_stale(small_data, model_path)
    assert ensure_model(small_data, model_path) is True
    assert not is_stale(small_data, model_path)


def test_new_training_file_makes_the_model_stale(small_data: DataDir, tmp_path: Path) -> None:
    model_path = tmp_path / "model.pkl"
    ensure_model(small_data, model_path)
    extra = small_data.own / "nlu_more.yml"
    shutil.copy(small_data.file("nlu.yml"), extra)
    future = model_path.stat().st_mtime + 100
    os.utime(extra, (future, future))
    assert ensure_model(small_data, model_path) is True


@pytest.mark.parametrize(
    "payload",
    [{"version": "relais-nlu-0/sklearn-0.1", "model": None}, ["not", "a", "model"]],
)
def test_foreign_artifact_is_retrained_not_a_crash(
    small_data: DataDir, tmp_path: Path, payload: object
) -> None:
    model_path = tmp_path / "model.pkl"
    model_path.write_bytes(pickle.dumps(payload))
    with pytest.raises(ArtifactError):
        load_model(model_path)
    assert ensure_model(small_data, model_path) is True
    assert load_model(model_path).version == ARTIFACT_VERSION


def test_damaged_artifact_is_retrained(small_data: DataDir, tmp_path: Path) -> None:
    model_path = tmp_path / "model.pkl"
    model_path.write_bytes(b"\x80\x05garbage")
    assert ensure_model(small_data, model_path) is True


def test_missing_artifact_error_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="relais nlu train"):
        load_model(tmp_path / "nope.pkl")


def test_no_training_data_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nlu"):
        ensure_model(tmp_path, tmp_path / "model.pkl")


def test_training_data_has_no_duplicate_or_conflicting_example(data_dir: Path) -> None:
    from collections import Counter

    from nlu.training import load_training_data

    counts = Counter(t.strip().lower() for t in load_training_data(data_dir).texts)
    assert [t for t, n in counts.items() if n > 1] == []
