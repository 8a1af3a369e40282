"""Command line for the NLU: `train`, `evaluate` and `predict` (mounted as `relais nlu`)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import typer

from bot.core.datadir import DataDir
from bot.core.settings import Settings
from nlu.embedded import EmbeddedEngine
from nlu.normalize import normalize
from nlu.paths import default_model_path
from nlu.training import (
    DEV_FILE,
    TEST_FILE,
    apply_threshold,
    choose_threshold,
    cross_val_proba,
    ensure_model,
    grouped_macro_f1,
    load_training_data,
    load_training_file,
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


def emergency_scores(true: Sequence[str], pred: Sequence[str]) -> tuple[int, int, int]:
    """(emergencies found, emergencies there are, emergency calls made)."""
    pairs = list(zip(true, pred, strict=True))
    found = sum(1 for t, p in pairs if t == p == "emergency")
    there = sum(1 for t, _ in pairs if t == "emergency")
    called = sum(1 for _, p in pairs if p == "emergency")
    return found, there, called


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.3f} ({num}/{den})" if den else "n/a (0/0)"


def _report(
    title: str, true: Sequence[str], pred: Sequence[str], texts: Sequence[str], max_errors: int
) -> float:
    """Print emergency recall and precision first, then macro-F1, per-intent F1, confusion."""
    from sklearn.metrics import classification_report, confusion_matrix, f1_score

    typer.echo(f"\n=== {title} ({len(true)} examples) ===")
    found, there, called = emergency_scores(true, pred)
    # The first figure, always: an emergency missed costs far more than any other mistake.
    typer.echo(f"emergency recall: {_ratio(found, there)}")
    typer.echo(f"emergency precision: {_ratio(found, called)}")
    labels = sorted(set(true) | set(pred))
    macro = float(f1_score(true, pred, labels=sorted(set(true)), average="macro", zero_division=0))
    typer.echo(f"macro-F1 over the intents: {macro:.3f}")
    grouped = grouped_macro_f1(true, pred)
    typer.echo(f"macro-F1 over the five topics + everything else: {grouped:.3f}")
    typer.echo(classification_report(true, pred, labels=labels, zero_division=0, digits=3))
    matrix = confusion_matrix(true, pred, labels=labels)
    width = max(len(x) for x in labels) + 1
    typer.echo("confusion (rows: true, columns: predicted)")
    typer.echo(" " * width + " ".join(f"{x[:6]:>6}" for x in labels))
    for name, row in zip(labels, matrix, strict=True):
        typer.echo(f"{name:<{width}}" + " ".join(f"{n:>6}" for n in row))
    errors = [(t, p, x) for t, p, x in zip(true, pred, texts, strict=True) if t != p]
    # Missed emergencies are listed first, whatever the cap.
    errors.sort(key=lambda e: e[0] != "emergency")
    typer.echo(f"errors: {len(errors)} (showing {min(len(errors), max_errors)})")
    for t, p, x in errors[:max_errors]:
        typer.echo(f"  {t:>14} -> {p:<14} {x}")
    return macro


EVAL_SETS = ("all", "test", "dev")


@app.command()
def evaluate(
    data_dir: Path | None = DataDirOption,
    model: Path | None = ModelOption,
    folds: int = typer.Option(5, help="Cross-validation folds on the training data."),
    classifier: str = typer.Option("logreg", help="logreg, svc_calibrated or sgd."),
    max_errors: int = typer.Option(60, help="How many misclassified examples to list."),
    skip_cv: bool = typer.Option(False, "--skip-cv", help="Held-out sets only."),
    eval_set: str = typer.Option(
        "all",
        "--set",
        help="Held-out sets to report: all, test (nlu_test.yml) or dev (nlu_dev.yml).",
    ),
) -> None:
    """Cross-validation on nlu*.yml, then the held-out nlu_test.yml and the dev set nlu_dev.yml.

    Each report opens with emergency recall and precision, then macro-F1, per-intent F1 and the
    confusion matrix.
    """
    if eval_set not in EVAL_SETS:
        typer.echo(f"--set must be one of {', '.join(EVAL_SETS)}", err=True)
        raise typer.Exit(2)
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
    wanted = {"all": (TEST_FILE, DEV_FILE), "test": (TEST_FILE,), "dev": (DEV_FILE,)}[eval_set]
    paths = [data.file(name) for name in wanted]
    missing = [p for p in paths if not p.exists()]
    if missing:
        typer.echo(f"no held-out set at {', '.join(str(p) for p in missing)}", err=True)
        raise typer.Exit(1)
    eval_path = model_path.with_name(model_path.name + f".{classifier}.eval")
    trained = train_model(data, eval_path, classifier=classifier)
    engine = EmbeddedEngine(trained)
    for path in paths:
        held_out = load_training_file(path)
        parses = [engine.parse_sync(t) for t in held_out.texts]
        _report(
            f"held-out {path.name}",
            held_out.labels,
            [p.intent for p in parses],
            held_out.texts,
            max_errors,
        )
    eval_path.unlink(missing_ok=True)


if __name__ == "__main__":
    app()
