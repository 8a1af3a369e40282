"""The intent classifier: TF-IDF over word and character n-grams, then a linear model.

Training uses scikit-learn; prediction for a single message skips scikit-learn's per-call
validation and computes the same sparse dot product by hand, which is what keeps a parse well
under a millisecond.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.svm import LinearSVC

CLASSIFIERS = ("logreg", "svc_calibrated", "sgd")


def make_vectorizers() -> list[TfidfVectorizer]:
    """Word uni/bi-grams for meaning, character n-grams for typos and SMS spellings."""
    return [
        TfidfVectorizer(
            analyzer="word",
            ngram_range=(1, 2),
            sublinear_tf=True,
            min_df=1,
            token_pattern=r"(?u)\b\w+\b",  # noqa: S106 - a regex, not a password
            lowercase=False,
            dtype=np.float32,
        ),
        TfidfVectorizer(
            analyzer="char_wb",
            ngram_range=(2, 4),
            sublinear_tf=True,
            min_df=2,
            lowercase=False,
            max_features=60000,
            dtype=np.float32,
        ),
    ]


def make_estimator(kind: str) -> Any:
    if kind == "logreg":
        # newton-cg reaches the same optimum as lbfgs here, faster (bench/README.md).
        return LogisticRegression(C=20.0, solver="newton-cg", max_iter=300, class_weight="balanced")
    if kind == "svc_calibrated":
        return CalibratedClassifierCV(
            LinearSVC(C=0.5, class_weight="balanced"), cv=3, method="sigmoid"
        )
    if kind == "sgd":
        return SGDClassifier(
            loss="modified_huber",
            alpha=5e-5,
            max_iter=50,
            tol=None,
            class_weight="balanced",
            random_state=0,
        )
    raise ValueError(f"Unknown classifier {kind!r}; expected one of {', '.join(CLASSIFIERS)}")


def _char_wb_analyzer(min_n: int, max_n: int) -> Callable[[str], list[str]]:
    """Same n-grams as scikit-learn's `char_wb` analyzer (for lower-cased input), built faster."""

    def analyze(text: str) -> list[str]:
        grams: list[str] = []
        for word in text.split():
            w = f" {word} "
            size = len(w)
            for n in range(min_n, max_n + 1):
                if size <= n:
                    grams.append(w)
                    break
                grams.extend([w[i : i + n] for i in range(size - n + 1)])
        return grams

    return analyze


def _fast_analyzer(vectorizer: TfidfVectorizer) -> Callable[[str], list[str]]:
    if vectorizer.analyzer == "char_wb" and not vectorizer.lowercase:
        low, high = vectorizer.ngram_range
        return _char_wb_analyzer(low, high)
    analyzer: Callable[[str], list[str]] = vectorizer.build_analyzer()
    return analyzer


class IntentClassifier:
    """A fitted vectorizer + linear model pair with a fast single-message `predict`."""

    def __init__(self, kind: str = "logreg") -> None:
        self.kind = kind
        self.vectorizers = make_vectorizers()
        self.estimator: Any = make_estimator(kind)
        self.classes: tuple[str, ...] = ()
        self._prepare_fast_path()

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> IntentClassifier:
        blocks = [v.fit_transform(texts) for v in self.vectorizers]
        for v in self.vectorizers:
            # The stop-word set is only for introspection and can be large; keep the artifact small.
            v.stop_words_ = None
        self.estimator.fit(sparse.hstack(blocks).tocsr(), list(labels))
        self.classes = tuple(str(c) for c in self.estimator.classes_)
        self._prepare_fast_path()
        return self

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([v.transform(texts) for v in self.vectorizers]).tocsr()

    def predict_proba_many(self, texts: Sequence[str]) -> np.ndarray:
        """Batch probabilities through scikit-learn (evaluation, threshold choice)."""
        return np.asarray(self.estimator.predict_proba(self.transform(texts)))

    # -- fast path -------------------------------------------------------------------------------

    def _prepare_fast_path(self) -> None:
        self._analyzers: list[Callable[[str], list[str]]] = []
        self._vocab: list[dict[str, int]] = []
        self._idf: list[np.ndarray] = []
        self._offsets: list[int] = []
        self._weights: np.ndarray | None = None
        self._bias: np.ndarray | None = None
        if not self.classes:
            return
        offset = 0
        for v in self.vectorizers:
            self._analyzers.append(_fast_analyzer(v))
            self._vocab.append(v.vocabulary_)
            self._idf.append(np.asarray(v.idf_, dtype=np.float64))
            self._offsets.append(offset)
            offset += len(v.vocabulary_)
        if isinstance(self.estimator, LogisticRegression):
            self._weights = np.ascontiguousarray(self.estimator.coef_.T, dtype=np.float64)
            self._bias = np.asarray(self.estimator.intercept_, dtype=np.float64)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "vectorizers": self.vectorizers,
            "estimator": self.estimator,
            "classes": self.classes,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.kind = state["kind"]
        self.vectorizers = state["vectorizers"]
        self.estimator = state["estimator"]
        self.classes = state["classes"]
        self._prepare_fast_path()

    def _features(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        index_blocks: list[np.ndarray] = []
        value_blocks: list[np.ndarray] = []
        for analyzer, vocab, idf, offset in zip(
            self._analyzers, self._vocab, self._idf, self._offsets, strict=True
        ):
            # Counting the n-gram strings first (in C) and looking up each distinct one once is
            # several times faster than looking up every occurrence.
            pairs = [
                (j, c)
                for g, c in Counter(analyzer(text)).items()
                if (j := vocab.get(g)) is not None
            ]
            if not pairs:
                continue
            idx = np.fromiter((i for i, _ in pairs), dtype=np.intp, count=len(pairs))
            counts = np.fromiter((c for _, c in pairs), dtype=np.float64, count=len(pairs))
            values = (1.0 + np.log(counts)) * idf[idx]
            values /= math.sqrt(float(values @ values))
            index_blocks.append(idx + offset)
            value_blocks.append(values)
        if not index_blocks:
            return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.float64)
        return np.concatenate(index_blocks), np.concatenate(value_blocks)

    def predict(self, text: str) -> np.ndarray:
        """Probabilities over `classes` for one normalised text."""
        if self._weights is not None and self._bias is not None:
            idx, vals = self._features(text)
            scores = self._bias + (vals @ self._weights[idx] if len(idx) else 0.0)
            if len(self.classes) == 2:
                p = 1.0 / (1.0 + math.exp(-float(scores[0])))
                return np.asarray([1.0 - p, p])
            scores = scores - scores.max()
            exp = np.exp(scores)
            return np.asarray(exp / exp.sum())
        idx, vals = self._features(text)
        width = self._offsets[-1] + len(self._vocab[-1])
        row = sparse.csr_matrix((vals, idx, [0, len(idx)]), shape=(1, width))
        return np.asarray(self.estimator.predict_proba(row)[0])
