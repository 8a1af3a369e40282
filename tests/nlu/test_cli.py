"""The `relais nlu` commands, and the exact `predict` line contract other tools rely on."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nlu.cli import app

runner = CliRunner()


def test_predict_contract(model_path: Path, data_dir: Path) -> None:
    lines = ["ya une fuite ds la sdb depuis hier", "ça sent le gaz", "", "😀", "bonjour"]
    result = runner.invoke(
        app,
        ["predict", "--model", str(model_path), "--data-dir", str(data_dir.shipped)],
        input="\n".join(lines) + "\n",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == len(lines)
    for row, text in zip(rows, lines, strict=True):
        assert list(row) == ["text", "intent", "confidence", "entities", "language"]
        assert row["text"] == text
        assert isinstance(row["confidence"], float)
        assert all(set(e) == {"type", "value", "text", "start", "end"} for e in row["entities"])
    assert rows[0]["intent"] == "repair"
    assert {"type": "place", "value": "salle_de_bain", "text": "sdb", "start": 19, "end": 22} in (
        rows[0]["entities"]
    )
    assert rows[1]["intent"] == "emergency"
    # The emergency layer's hazard rides in the same entities list, in the same shape.
    assert {"type": "hazard", "value": "gas", "text": "", "start": 0, "end": 0} in (
        rows[1]["entities"]
    )
    assert rows[2]["intent"] == rows[3]["intent"] == "out_of_scope"


def test_train_shows_progress(tmp_path: Path) -> None:
    from tests.nlu.test_training import SMALL

    (tmp_path / "nlu.yml").write_text(SMALL, encoding="utf-8")
    model = tmp_path / "m.pkl"
    result = runner.invoke(app, ["train", "--model", str(model), "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "threshold" in result.output
    assert model.exists()


def test_defaults(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from nlu.paths import default_data_dir, default_model_path

    assert default_data_dir().file("nlu.yml").exists()
    monkeypatch.setenv("RELAIS_NLU_MODEL_PATH", str(tmp_path / "x.pkl"))
    assert default_model_path() == tmp_path / "x.pkl"
    monkeypatch.delenv("RELAIS_NLU_MODEL_PATH")
    monkeypatch.chdir(tmp_path)
    assert default_model_path() == tmp_path / "var" / "nlu" / "model.pkl"


def test_help_lists_the_commands() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "evaluate", "predict"):
        assert command in result.output


def test_evaluate_reports_emergency_recall_first(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    intents = {
        "emergency": [
            "ça sent le gaz",
            "au feu",
            "inondation cuisine",
            "fumée partout",
            "gas leak",
        ],
        "repair": [
            "fuite sous l'évier",
            "radiateur froid",
            "plus d'eau chaude",
            "volet cassé",
            "porte cassée",
        ],
        "greet": ["bonjour", "salut", "hello", "bonsoir", "coucou"],
    }

    def rasa(examples: dict[str, list[str]]) -> str:
        blocks = [
            f"- intent: {name}\n  examples: |\n" + "".join(f"    - {t}\n" for t in texts)
            for name, texts in examples.items()
        ]
        return 'version: "3.1"\nnlu:\n' + "".join(blocks)

    (data / "nlu.yml").write_text(rasa(intents), encoding="utf-8")
    (data / "nlu_test.yml").write_text(
        rasa({"emergency": ["odeur de gaz"], "repair": ["la chaudière est en panne"]}),
        encoding="utf-8",
    )
    (data / "nlu_dev.yml").write_text(
        rasa(
            {
                "emergency": ["y a le feu au local", "the lift is stuck with my son inside"],
                "repair": ["le robinet goutte"],
                "greet": ["bonjour madame"],
            }
        ),
        encoding="utf-8",
    )
    model = tmp_path / "m.pkl"
    args = ["evaluate", "--data-dir", str(data), "--model", str(model), "--skip-cv"]
    result = runner.invoke(app, [*args, "--set", "dev"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert lines[0] == "=== held-out nlu_dev.yml (4 examples) ==="
    assert lines[1] == "emergency recall: 1.000 (2/2)"
    assert lines[2].startswith("emergency precision: ")
    assert lines[3].startswith("macro-F1 over the intents: ")
    assert "confusion (rows: true, columns: predicted)" in result.stdout
    assert "nlu_test.yml" not in result.stdout

    both = runner.invoke(app, args)
    assert both.exit_code == 0, both.output
    assert "held-out nlu_test.yml (2 examples)" in both.stdout
    assert "held-out nlu_dev.yml (4 examples)" in both.stdout

    wrong = runner.invoke(app, [*args, "--set", "everything"])
    assert wrong.exit_code == 2
