"""Command line for the NLU: `train`, `evaluate` and `predict` (mounted as `relais nlu`)."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import typer

from bot.core.datadir import DataDir
from bot.core.settings import Settings
from nlu.embedded import EmbeddedEngine
from nlu.normalize import normalize
from nlu.paths import default_model_path
from nlu.training import (
    apply_threshold,
    choose_threshold,
    cross_val_proba,
    ensure_model,
    group_label,
    grouped_macro_f1,
    load_test_data,
    load_training_data,
)
from nlu.training import train as train_model

app = typer.Typer(
    help="Train, evaluate and query the embedded NLU (intents, entities, emergency rules).",
    no_args_is_help=True,
)

DataDirOption = typer.Option(
    None, "--data-dir", help="Folder of nlu*.yml (default: RELAIS_DATA_DIR, then the shipped data)."
)
ModelOption = typer.Option(
    None, "--model", help="Model artifact (default: RELAIS_NLU_MODEL_PATH or var/nlu/model.pkl)."
)


def _paths(data_dir: Path | None, model: Path | None) -> tuple[DataDir, Path]:
    return DataDir(data_dir or Settings().data_dir), model or default_model_path()


@app.command()
def train(data_dir: Path | None = DataDirOption, model: Path | None = ModelOption) -> None:
    """Train the classifier on data/nlu*.yml and write the model artifact."""
    data, model_path = _paths(data_dir, model)
    train_model(data, model_path, progress=lambda msg: typer.echo(f"[train] {msg}", err=True))


@app.command()
def predict(data_dir: Path | None = DataDirOption, model: Path | None = ModelOption) -> None:
    """Read one message per line on stdin, write one JSON object per line on stdout."""
    data, model_path = _paths(data_dir, model)
    ensure_model(data, model_path, progress=lambda msg: typer.echo(f"[train] {msg}", err=True))
    engine = EmbeddedEngine.load(model_path)
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        parse = engine.parse_sync(text)
        out = {
            "text": parse.text,
            "intent": parse.intent,
            "confidence": round(parse.confidence, 4),
            "entities": [e.to_dict() for e in parse.entities],
            "language": parse.language,
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def _report(
    title: str, true: Sequence[str], pred: Sequence[str], texts: Sequence[str], max_errors: int
) -> float:
    from sklearn.metrics import classification_report, confusion_matrix

    typer.echo(f"\n=== {title} ({len(true)} examples) ===")
    labels = sorted(set(true) | set(pred))
    typer.echo(classification_report(true, pred, labels=labels, zero_division=0, digits=3))
    grouped = grouped_macro_f1(true, pred)
    typer.echo(f"macro-F1 over the five topics + everything else: {grouped:.3f}")
    glabels = sorted({group_label(x) for x in true} | {group_label(x) for x in pred})
    matrix = confusion_matrix(
        [group_label(x) for x in true], [group_label(x) for x in pred], labels=glabels
    )
    width = max(len(x) for x in glabels) + 1
    typer.echo("confusion (rows: true, columns: predicted)")
    typer.echo(" " * width + " ".join(f"{x[:7]:>7}" for x in glabels))
    for name, row in zip(glabels, matrix, strict=True):
        typer.echo(f"{name:<{width}}" + " ".join(f"{n:>7}" for n in row))
    errors = [(t, p, x) for t, p, x in zip(true, pred, texts, strict=True) if t != p]
    typer.echo(f"errors: {len(errors)} (showing {min(len(errors), max_errors)})")
    for t, p, x in errors[:max_errors]:
        typer.echo(f"  {t:>14} -> {p:<14} {x}")
    return grouped


@app.command()
def evaluate(
    data_dir: Path | None = DataDirOption,
    model: Path | None = ModelOption,
    folds: int = typer.Option(5, help="Cross-validation folds on the training data."),
    classifier: str = typer.Option("logreg", help="logreg, svc_calibrated or sgd."),
    max_errors: int = typer.Option(60, help="How many misclassified examples to list."),
    skip_cv: bool = typer.Option(False, "--skip-cv", help="Only the held-out test set."),
) -> None:
    """Stratified k-fold cross-validation on nlu.yml, then the held-out nlu_test.yml."""
    data, model_path = _paths(data_dir, model)
    training = load_training_data(data)
    if not skip_cv:
        texts = [normalize(t) for t in training.texts]
        classes, proba = cross_val_proba(texts, training.labels, classifier, folds=folds)
        threshold = choose_threshold(classes, proba, training.labels, texts)
        pred = apply_threshold(classes, proba, threshold, texts)
        _report(
            f"{folds}-fold cross-validation, {classifier}, threshold {threshold}",
            training.labels,
            pred,
            training.texts,
            max_errors,
        )
    test_path = data.file("nlu_test.yml")
    if not test_path.exists():
        typer.echo(f"no held-out set at {test_path}", err=True)
        raise typer.Exit(1)
    held_out = load_test_data(data)
    trained = train_model(
        data, model_path.with_name(model_path.name + f".{classifier}.eval"), classifier=classifier
    )
    engine = EmbeddedEngine(trained)
    parses = [engine.parse_sync(t) for t in held_out.texts]
    _report(
        "held-out nlu_test.yml",
        held_out.labels,
        [p.intent for p in parses],
        held_out.texts,
        max_errors,
    )
    counts = Counter(held_out.labels)
    missed = [
        p.text
        for p, t in zip(parses, held_out.labels, strict=True)
        if t == "emergency" and p.intent != "emergency"
    ]
    typer.echo(f"emergencies recognised: {counts['emergency'] - len(missed)}/{counts['emergency']}")
    model_path.with_name(model_path.name + f".{classifier}.eval").unlink(missing_ok=True)


if __name__ == "__main__":
    app()
