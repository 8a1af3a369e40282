"""NLU generalisation options on the dev set: quality, ms per message and MB of each (prints).

Each option is the embedded engine with one thing changed: the features (word n-grams only,
longer character n-grams), the normalisation (without the colloquial words and idioms), the rules
(classifier alone), or a second, binary classifier for emergencies on top. Every variant is
trained on data/nlu*.yml and evaluated on data/nlu_dev.yml (never trained on), with the same
threshold as the shipped model so that only the option changes. Run:

    .venv/bin/python bench/nlu_options.py
"""

from __future__ import annotations

import gc
import pickle
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu import embedded
from nlu.classifier import IntentClassifier, make_vectorizers
from nlu.cli import emergency_scores
from nlu.embedded import EmbeddedEngine
from nlu.normalize import normalize
from nlu.paths import default_data_dir
from nlu.training import Model, load_dev_data, load_test_data, load_training_data, train

ROUNDS = 3


def _word() -> TfidfVectorizer:
    return make_vectorizers()[0]


def _char(low: int, high: int, features: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        analyzer="char_wb",
        ngram_range=(low, high),
        sublinear_tf=True,
        min_df=2,
        lowercase=False,
        max_features=features,
        dtype=np.float32,
    )


@dataclass
class Option:
    name: str
    vectorizers: Callable[[], list[TfidfVectorizer]] = make_vectorizers
    synonyms: bool = True
    rules: bool = True
    emergency_model: bool = False
    notes: list[str] = field(default_factory=list)


OPTIONS = [
    Option("shipped: words 1-2 + char_wb 2-4, synonyms, rules"),
    Option("words 1-2 only (no character n-grams)", vectorizers=lambda: [_word()]),
    Option("words 1-2 + char_wb 2-5", vectorizers=lambda: [_word(), _char(2, 5, 100000)]),
    Option("words 1-2 + char_wb 3-6", vectorizers=lambda: [_word(), _char(3, 6, 150000)]),
    Option("without colloquial words and idioms", synonyms=False),
    Option("classifier alone (no emergency rules)", rules=False),
    Option("+ second classifier for emergencies (binary, p >= 0.35)", emergency_model=True),
]


class SecondOpinion:
    """A binary emergency classifier on the same features; it may only add emergencies."""

    def __init__(self, clf: IntentClassifier, texts: list[str], labels: list[str]) -> None:
        self.clf = clf
        x = clf.transform(texts)
        y = np.asarray([label == "emergency" for label in labels])
        self.model = LogisticRegression(C=10.0, class_weight="balanced", max_iter=500).fit(x, y)

    def says_emergency(self, normalized: str) -> bool:
        return float(self.model.predict_proba(self.clf.transform([normalized]))[0, 1]) >= 0.35


def run(option: Option, texts: list[str], labels: list[str], threshold: float) -> None:
    data_dir = default_data_dir()
    normalized = [normalize(t, synonyms=option.synonyms) for t in texts]
    clf = IntentClassifier()
    clf.vectorizers = option.vectorizers()
    clf.fit(normalized, labels)
    model = Model(classifier=clf, threshold=threshold, n_examples=len(texts))
    size_mb = len(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6
    gc.collect()
    tracemalloc.start()
    loaded = pickle.loads(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    resident_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    engine = EmbeddedEngine(loaded)
    second = SecondOpinion(clf, normalized, labels) if option.emergency_model else None

    original_normalize = embedded.normalize
    original_assess = embedded.assess
    # The variant's normalisation and rules, in the engine itself (restored below).
    embedded.normalize = lambda text: normalize(text, synonyms=option.synonyms)  # type: ignore[assignment]
    if not option.rules:
        embedded.assess = lambda whole, parts=(): embedded.Verdict()  # type: ignore[assignment]
    try:

        def parse(text: str) -> str:
            intent = engine.parse_sync(text).intent
            if second and intent != "emergency" and second.says_emergency(normalize(text)):
                return "emergency"
            return intent

        dev = load_dev_data(data_dir)
        predicted = [parse(t) for t in dev.texts]
        timed = dev.texts + load_test_data(data_dir).texts
        latencies = []
        # CPU time of this thread, not wall time: the machine is shared and often loaded.
        for _ in range(ROUNDS):
            for text in timed:
                t0 = time.thread_time()
                parse(text)
                latencies.append(time.thread_time() - t0)
    finally:
        embedded.normalize = original_normalize  # type: ignore[assignment]
        embedded.assess = original_assess  # type: ignore[assignment]
    latencies.sort()
    found, there, called = emergency_scores(dev.labels, predicted)
    macro = f1_score(dev.labels, predicted, labels=sorted(set(dev.labels)), average="macro")
    print(
        f"{option.name:58} recall {found}/{there} precision {found}/{called} "
        f"macro-F1 {macro:.4f}   {statistics.mean(latencies) * 1000:.3f} ms/msg "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.3f} ms CPU   "
        f"artifact {size_mb:.1f} MB, loaded {resident_mb:.1f} MB"
    )


def main() -> None:
    data_dir = default_data_dir()
    training = load_training_data(data_dir)
    shipped = train(data_dir, Path("var/nlu/options-threshold.pkl"))
    Path("var/nlu/options-threshold.pkl").unlink(missing_ok=True)
    print(
        f"{len(training.examples)} training examples, dev set {len(load_dev_data(data_dir).texts)}"
        f" messages, threshold {shipped.threshold} (the shipped model's, for every option)"
    )
    for option in OPTIONS:
        run(option, training.texts, training.labels, shipped.threshold)


if __name__ == "__main__":
    main()
