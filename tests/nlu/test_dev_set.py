"""The development set data/nlu_dev.yml: never trained on, broad enough, and the targets on it."""

from __future__ import annotations

from collections import Counter

import yaml
from sklearn.metrics import f1_score

from bot.core.datadir import DataDir
from nlu.cli import emergency_scores
from nlu.embedded import EmbeddedEngine
from nlu.normalize import normalize
from nlu.training import DEV_FILE, load_dev_data, load_training_data, training_files
from nlu.types import INTENTS


def test_dev_set_is_never_trained_on(data_dir: DataDir) -> None:
    assert data_dir.file(DEV_FILE) not in training_files(data_dir)
    trained = {normalize(t) for t in load_training_data(data_dir).texts}
    overlap = [t for t in load_dev_data(data_dir).texts if normalize(t) in trained]
    assert overlap == []


def test_dev_set_has_no_duplicate(data_dir: DataDir) -> None:
    counts = Counter(normalize(t) for t in load_dev_data(data_dir).texts)
    assert [t for t, n in counts.items() if n > 1] == []


def test_dev_set_is_broad(data_dir: DataDir) -> None:
    dev = load_dev_data(data_dir)
    counts = Counter(dev.labels)
    assert len(dev.examples) >= 300
    assert set(counts) == set(INTENTS)
    assert counts["emergency"] >= 40
    # Look-alikes sit in blocks marked `metadata: {look_alike: true}` (Rasa's own metadata key).
    doc = yaml.safe_load(data_dir.file(DEV_FILE).read_text(encoding="utf-8"))
    look_alikes = [
        line
        for item in doc["nlu"]
        if (item.get("metadata") or {}).get("look_alike")
        for line in item["examples"].splitlines()
        if line.strip()
    ]
    assert all(item["intent"] != "emergency" for item in doc["nlu"] if item.get("metadata"))
    assert len(look_alikes) >= 40


def test_targets_on_the_dev_set(engine: EmbeddedEngine, data_dir: DataDir) -> None:
    """Issue 15's targets: every emergency found, few false alarms, macro-F1 at least 0.90."""
    dev = load_dev_data(data_dir)
    predicted = [engine.parse_sync(t).intent for t in dev.texts]
    found, there, called = emergency_scores(dev.labels, predicted)
    missed = [
        t
        for t, gold, p in zip(dev.texts, dev.labels, predicted, strict=True)
        if gold == "emergency" and p != "emergency"
    ]
    assert missed == []
    assert found == there
    assert found / called >= 0.9
    macro = f1_score(dev.labels, predicted, labels=sorted(set(dev.labels)), average="macro")
    assert macro >= 0.90
