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
