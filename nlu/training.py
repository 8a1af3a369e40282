"""Rasa 3 YAML training data, model training, the model artifact and its freshness check."""

from __future__ import annotations

import logging
import os
import pickle
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import yaml

from bot.core.datadir import DataDir
from nlu.classifier import IntentClassifier
from nlu.normalize import normalize
from nlu.rules import decide
from nlu.types import TOPIC_INTENTS

log = logging.getLogger(__name__)

# Bump when the artifact layout or the features change: an older artifact is then retrained.
ARTIFACT_FORMAT = 4
ARTIFACT_VERSION = f"relais-nlu-{ARTIFACT_FORMAT}/sklearn-{sklearn.__version__}"
DEFAULT_CLASSIFIER = "logreg"
THRESHOLD_TOLERANCE = 0.003
TEST_FILE = "nlu_test.yml"

Progress = Callable[[str], None]

_ANNOTATION = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\})")


class ArtifactError(Exception):
    """The model artifact is missing, unreadable or made by another version."""


@dataclass
class TrainingData:
    """What a Rasa `nlu:` section holds."""

    examples: list[tuple[str, str]] = field(default_factory=list)
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    regexes: dict[str, list[str]] = field(default_factory=dict)

    @property
    def texts(self) -> list[str]:
        return [t for t, _ in self.examples]

    @property
    def labels(self) -> list[str]:
        return [i for _, i in self.examples]

    def extend(self, other: TrainingData) -> None:
        self.examples += other.examples
        for mine, theirs in (
            (self.synonyms, other.synonyms),
            (self.lookups, other.lookups),
            (self.regexes, other.regexes),
        ):
            for key, values in theirs.items():
                mine.setdefault(key, []).extend(values)


@dataclass
class Model:
    """The trained artifact: classifier, threshold and metadata."""

    classifier: IntentClassifier
    threshold: float
    version: str = ARTIFACT_VERSION
    trained_at: float = 0.0
    n_examples: int = 0
    synonyms: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def strip_annotations(text: str) -> str:
    """`la [cuisine](place)` → `la cuisine`; `[sdb]{"entity": "place"}` → `sdb`."""
    return _ANNOTATION.sub(r"\1", text)


def _examples(block: Any) -> list[str]:
    if isinstance(block, list):
        return [strip_annotations(str(x)).strip() for x in block if str(x).strip()]
    lines = []
    for line in str(block or "").splitlines():
        line = line.strip()
        if line.startswith("- "):
            line = line[2:].strip()
        elif line == "-":
            continue
        if line:
            lines.append(strip_annotations(line))
    return lines


def load_training_file(path: Path) -> TrainingData:
    """Parse one Rasa 3 YAML file's `nlu:` section."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data = TrainingData()
    for item in doc.get("nlu", []) or []:
        if not isinstance(item, dict):
            continue
        examples = _examples(item.get("examples"))
        if "intent" in item:
            data.examples += [(text, str(item["intent"])) for text in examples]
        elif "synonym" in item:
            data.synonyms.setdefault(str(item["synonym"]), []).extend(examples)
        elif "lookup" in item:
            data.lookups.setdefault(str(item["lookup"]), []).extend(examples)
        elif "regex" in item:
            data.regexes.setdefault(str(item["regex"]), []).extend(examples)
    return data


def training_files(data_dir: DataDir) -> list[Path]:
    """`nlu*.yml` of the data folder, except the held-out test file."""
    return [p for p in data_dir.glob("nlu*.yml") if p.name != TEST_FILE]


def load_training_data(data_dir: DataDir) -> TrainingData:
    files = training_files(data_dir)
    if not files:
        raise FileNotFoundError(f"No NLU training file (nlu*.yml) in {data_dir}")
    data = TrainingData()
    for path in files:
        data.extend(load_training_file(path))
    return data


def load_test_data(data_dir: DataDir) -> TrainingData:
    return load_training_file(data_dir.file(TEST_FILE))


def group_label(intent: str) -> str:
    """The evaluation's view: the five topics, and everything else as `other`."""
    return intent if intent in TOPIC_INTENTS else "other"


def grouped_macro_f1(true: Sequence[str], pred: Sequence[str]) -> float:
    from sklearn.metrics import f1_score

    t = [group_label(x) for x in true]
    p = [group_label(x) for x in pred]
    labels = sorted(set(t))
    return float(f1_score(t, p, labels=labels, average="macro", zero_division=0))


def apply_threshold(
    classes: Sequence[str], proba: np.ndarray, threshold: float, texts: Sequence[str] | None = None
) -> list[str]:
    """Intents from probabilities; with the normalised `texts`, the emergency rules apply too."""
    predicted = []
    for i, row in enumerate(proba):
        order = row.argsort()[::-1]
        ranking = [(classes[j], float(row[j])) for j in order]
        predicted.append(decide(ranking, texts[i] if texts is not None else "", threshold)[0])
    return predicted


def choose_threshold(
    classes: Sequence[str],
    proba: np.ndarray,
    labels: Sequence[str],
    texts: Sequence[str] | None = None,
) -> float:
    """Pick the confidence threshold from out-of-fold predictions.

    The score is macro-F1 over every intent (the dialogue acts on all of them, and it rewards
    sending nonsense to `out_of_scope` as well as keeping real requests). The curve is flat at low
    thresholds, so we take the highest threshold within `THRESHOLD_TOLERANCE` of the best score.
    """
    from sklearn.metrics import f1_score

    scores = []
    for t in np.arange(0.0, 0.51, 0.025):
        predicted = apply_threshold(classes, proba, float(t), texts)
        f1 = f1_score(labels, predicted, average="macro", zero_division=0)
        scores.append((float(t), float(f1)))
    best = max(f1 for _, f1 in scores)
    return round(max(t for t, f1 in scores if f1 >= best - THRESHOLD_TOLERANCE), 3)


def cross_val_proba(
    texts: Sequence[str], labels: Sequence[str], kind: str, folds: int = 5, seed: int = 0
) -> tuple[tuple[str, ...], np.ndarray]:
    """Out-of-fold probabilities of a classifier kind, for threshold choice and evaluation."""
    from sklearn.model_selection import StratifiedKFold

    classes = tuple(sorted(set(labels)))
    proba = np.zeros((len(texts), len(classes)))
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    y = np.asarray(labels)
    for train_idx, test_idx in skf.split(np.zeros(len(y)), y):
        clf = IntentClassifier(kind).fit([texts[i] for i in train_idx], y[train_idx].tolist())
        p = clf.predict_proba_many([texts[i] for i in test_idx])
        cols = [classes.index(c) for c in clf.classes]
        proba[np.ix_(test_idx, cols)] = p
    return classes, proba


def train(
    data_dir: DataDir,
    model_path: Path,
    *,
    progress: Progress | None = None,
    classifier: str = DEFAULT_CLASSIFIER,
    threshold: float | None = None,
) -> Model:
    """Train on `data_dir/nlu*.yml` and write the artifact atomically to `model_path`."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    data = load_training_data(data_dir)
    say(f"loaded {len(data.examples)} examples over {len(set(data.labels))} intents")
    texts = [normalize(t) for t in data.texts]
    labels = data.labels
    metrics: dict[str, Any] = {}
    if threshold is None:
        say("choosing the confidence threshold by 5-fold cross-validation")
        classes, proba = cross_val_proba(texts, labels, classifier)
        threshold = choose_threshold(classes, proba, labels, texts)
        metrics["cv_grouped_macro_f1"] = grouped_macro_f1(
            labels, apply_threshold(classes, proba, threshold, texts)
        )
        say(f"threshold {threshold:.3f} (cv grouped macro-F1 {metrics['cv_grouped_macro_f1']:.3f})")
    say(f"fitting {classifier} on all examples")
    clf = IntentClassifier(classifier).fit(texts, labels)
    model = Model(
        classifier=clf,
        threshold=threshold,
        trained_at=time.time(),
        n_examples=len(texts),
        synonyms=data.synonyms,
        metrics=metrics,
    )
    save_model(model, model_path)
    say(f"wrote {model_path} in {time.perf_counter() - started:.1f}s")
    return model


def save_model(model: Model, model_path: Path) -> None:
    """Write via a temporary file and a rename, so a reader never sees half an artifact."""
    model_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=model_path.name + ".", suffix=".tmp", dir=model_path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pickle.dump(
                {"version": model.version, "model": model}, fh, protocol=pickle.HIGHEST_PROTOCOL
            )
        os.replace(tmp, model_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(model_path: Path) -> Model:
    """Read an artifact; raise `ArtifactError` when it is missing, damaged or of another version."""
    try:
        with model_path.open("rb") as fh:
            payload = pickle.load(fh)  # noqa: S301 - our own artifact, see save_model
    except FileNotFoundError as exc:
        raise ArtifactError(f"NLU model {model_path} is missing; run `relais nlu train`") from exc
    except Exception as exc:  # unpickling another version can fail in many ways
        raise ArtifactError(f"NLU model {model_path} is unreadable: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("version") != ARTIFACT_VERSION:
        found = payload.get("version") if isinstance(payload, dict) else type(payload).__name__
        raise ArtifactError(
            f"NLU model {model_path} was made by {found}, expected {ARTIFACT_VERSION}"
        )
    model = payload["model"]
    if not isinstance(model, Model):
        raise ArtifactError(f"NLU model {model_path} holds no model")
    return model


def _artifact_version(model_path: Path) -> str | None:
    try:
        with model_path.open("rb") as fh:
            payload = pickle.load(fh)  # noqa: S301 - our own artifact, see save_model
    except Exception:  # any unreadable artifact is simply stale
        return None
    return payload.get("version") if isinstance(payload, dict) else None


def is_stale(data_dir: DataDir, model_path: Path) -> bool:
    """True when the artifact is missing, older than a training file, or of another version."""
    if not model_path.exists():
        return True
    built = model_path.stat().st_mtime
    if any(p.stat().st_mtime > built for p in training_files(data_dir)):
        return True
    return _artifact_version(model_path) != ARTIFACT_VERSION


def ensure_model(data_dir: DataDir, model_path: Path, *, progress: Progress | None = None) -> bool:
    """Train when the artifact is missing, stale or foreign; return whether it trained."""
    if not is_stale(data_dir, model_path):
        return False
    log.info("training the NLU model: %s is missing or stale", model_path)
    train(data_dir, model_path, progress=progress)
    return True
