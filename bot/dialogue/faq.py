"""FAQ retrieval: the answer in data/faq.yml whose example questions best match a tenant's text.

Each entry's example questions are indexed; a message scores against an entry as its best
cosine similarity with one of the entry's examples, mixing word and character n-gram TF-IDF
(character n-grams forgive SMS spelling, words keep the meaning). Below `threshold` there is
no answer and the bot hands the question to a person. The methods and the threshold were
chosen by measurement on labelled questions: see bench/faq_retrieval.py.
"""

from __future__ import annotations

import math
import string
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.core.datadir import DataDir
from bot.dialogue.texts import with_places
from nlu.normalize import normalize

METHODS = ("hybrid", "tfidf_word", "tfidf_char", "bm25")
DEFAULT_METHOD = "hybrid"
# Chosen on the dev half of tests/dialogue/data/faq_eval.tsv (bench/faq_retrieval.py; figures
# in bench/README.md). At or above DEFAULT_THRESHOLD the answer is nearly always right and is
# given as is; between SUGGEST_THRESHOLD and it, the answer is given with "does that answer
# it? if not, reply NO"; below, a person answers.
DEFAULT_THRESHOLD = 0.45
SUGGEST_THRESHOLD = 0.28

# Words that say nothing about which answer is wanted.
_STOP_TEXT = """
    a ai au aux avec c ca ce ces cette d de des du elle en est et il ils j je l la le les leur
    m ma mais me mes mon n ne nous on ou par pas pour qu que qui s sa se ses son sur t ta te
    tes ton tu un une vos votre vous y est-ce quoi comment bonjour svp merci est c'est
    peux peut puis faire fait dois doit voudrais veux voulais savoir besoin il faut
    combien quel quelle quels quelles donner
    the a an and or to of for in on my i me is it do does can could how what why when where
    who would like want need please hello hi you your with this that are was be get have
    """
_STOP = frozenset(_STOP_TEXT.split())


@dataclass(frozen=True, slots=True)
class FaqEntry:
    id: str
    examples: tuple[str, ...]
    answer: dict[str, str]
    offer_human: bool = False


@dataclass(frozen=True, slots=True)
class FaqMatch:
    entry: FaqEntry
    score: float


def prepare(text: str) -> str:
    """The text as the index sees it: normalised (SMS spellings, accents), no stop words."""
    words = [w for w in normalize(text).replace("'", " ").split() if w not in _STOP]
    return " ".join(words)


class Faq:
    def __init__(
        self,
        entries: Sequence[FaqEntry],
        *,
        method: str = DEFAULT_METHOD,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"Unknown FAQ method {method!r}; expected one of {METHODS}")
        self.entries = tuple(entries)
        self.method = method
        self.threshold = threshold
        self._owner: list[int] = []
        docs: list[str] = []
        for i, entry in enumerate(self.entries):
            for example in entry.examples:
                docs.append(prepare(example))
                self._owner.append(i)
        self._owner_arr = np.array(self._owner)
        self._word = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True).fit(docs)
        self._char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True).fit(
            docs
        )
        self._word_index = _Similarity(self._word, self._word.transform(docs))
        self._char_index = _Similarity(self._char, self._char.transform(docs))
        self._bm25 = _BM25([d.split() for d in docs])

    @classmethod
    def load(cls, data_dir: DataDir, **kwargs: Any) -> Faq:
        return cls(read_entries(data_dir.file("faq.yml")), **kwargs)

    def scores(self, text: str) -> list[float]:
        """One score per entry (0..1 for the TF-IDF methods): its best example's similarity."""
        query = prepare(text)
        if not query:
            return [0.0] * len(self.entries)
        if self.method == "bm25":
            per_doc = self._bm25.scores(query.split())
        else:
            word = self._word_index.of(query)
            char = self._char_index.of(query)
            per_doc = {"tfidf_word": word, "tfidf_char": char}.get(self.method, (word + char) / 2)
        best = np.zeros(len(self.entries))
        np.maximum.at(best, self._owner_arr, per_doc)
        return [float(s) for s in best]

    def rank(self, text: str) -> list[FaqMatch]:
        scored = self.scores(text)
        order = sorted(range(len(scored)), key=lambda i: -scored[i])
        return [FaqMatch(self.entries[i], scored[i]) for i in order]

    def match(self, text: str, *, threshold: float | None = None) -> FaqMatch | None:
        """The best answer, or None when nothing is similar enough to answer safely."""
        ranked = self.rank(text)
        limit = self.threshold if threshold is None else threshold
        if ranked and ranked[0].score >= limit:
            return ranked[0]
        return None


def render(entry: FaqEntry, lang: str, params: dict[str, Any]) -> str:
    template = entry.answer.get(lang) or entry.answer.get("fr") or ""
    filled = _Blank(with_places(params, "fr" if lang not in entry.answer else lang))
    return string.Formatter().vformat(template, (), filled).strip()


class _Blank(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return ""


def read_entries(path: Path) -> list[FaqEntry]:
    return list(_read(str(path)))


@lru_cache(maxsize=4)
def _read(path: str) -> tuple[FaqEntry, ...]:
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    entries = []
    for item in doc["faq"]:
        answer = item.get("answer") or {}
        if "fr" not in answer:
            raise ValueError(f"{path}: FAQ entry '{item.get('id')}' has no French answer")
        entries.append(
            FaqEntry(
                id=str(item["id"]),
                examples=tuple(str(e) for e in item.get("examples", [])),
                answer={k: str(v) for k, v in answer.items()},
                offer_human=bool(item.get("offer_human", False)),
            )
        )
    return tuple(entries)


@lru_cache(maxsize=4)
def load_faq(data_dir: DataDir) -> Faq:
    """The FAQ of a data directory, indexed once per process."""
    return Faq.load(data_dir)


class _Similarity:
    """Cosine similarity of a query with every example, as `vectorizer.transform([query])`
    times the examples' matrix would give it (sublinear tf, idf, l2 norm), without building a
    one-row sparse matrix: scikit-learn's checks cost more than the arithmetic (a turn asks
    twice; figures in bench/README.md)."""

    def __init__(self, vectorizer: TfidfVectorizer, docs: Any) -> None:
        assert vectorizer.sublinear_tf and vectorizer.use_idf and vectorizer.norm == "l2"
        self.analyze = vectorizer.build_analyzer()
        self.vocabulary: dict[str, int] = vectorizer.vocabulary_
        self.idf: np.ndarray = vectorizer.idf_
        self.by_term = docs.T.tocsr()  # one row per term: the examples that have it
        self.n_docs = docs.shape[0]

    def of(self, query: str) -> np.ndarray:
        counts = Counter(
            i for term in self.analyze(query) if (i := self.vocabulary.get(term)) is not None
        )
        if not counts:
            return np.zeros(self.n_docs)
        terms = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        weights = (np.log(tf) + 1.0) * self.idf[terms]
        weights /= np.sqrt(weights @ weights)
        return np.asarray(self.by_term[terms].T @ weights).ravel()


class _BM25:
    """Okapi BM25 over short documents (k1=1.2, b=0.75); scores are not bounded."""

    def __init__(self, docs: list[list[str]], k1: float = 1.2, b: float = 0.75) -> None:
        self.docs = [Counter(d) for d in docs]
        self.lengths = [len(d) for d in docs]
        self.avg = (sum(self.lengths) / len(docs)) if docs else 1.0
        df: Counter[str] = Counter()
        for d in docs:
            df.update(set(d))
        n = len(docs)
        self.idf = {w: math.log(1 + (n - c + 0.5) / (c + 0.5)) for w, c in df.items()}
        self.k1, self.b = k1, b

    def scores(self, query: list[str]) -> np.ndarray:
        out = np.zeros(len(self.docs))
        for i, (tf, length) in enumerate(zip(self.docs, self.lengths, strict=True)):
            s = 0.0
            for w in query:
                f = tf.get(w, 0)
                if f:
                    norm = f + self.k1 * (1 - self.b + self.b * length / self.avg)
                    s += self.idf[w] * f * (self.k1 + 1) / norm
            out[i] = s
        return out
