"""`relais import` and `relais export` as a landlord runs them: real command, real files."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import yaml

from tests.cli.test_cli import relais
from tests.ops.test_importer import landlord_rows, with_bad_rows, write_csv


def env_for(tmp_path: Path, **more: str) -> dict[str, str]:
    return {
        "RELAIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'landlord.sqlite3'}",
        "RELAIS_REDIS_URL": "",
        **more,
    }


def test_import_reports_json_then_nothing_to_change(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert relais(["demo", "load"], env).returncode == 0
    rows, expected = with_bad_rows(landlord_rows(300))
    path = write_csv(tmp_path / "locataires.csv", rows)
    dry = relais(["import", "tenants", str(path), "--dry-run", "--json"], env)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["created"] == 295
    first = relais(["import", "tenants", str(path), "--json"], env)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {  # one JSON object, nothing else on stdout
        "created": 295,
        "updated": 0,
        "unchanged": 0,
        "departed": 0,
        "rejected": expected,
    }
    second = relais(["import", "tenants", str(path)], env)
    assert second.returncode == 0
    assert second.stdout.splitlines()[:2] == [
        "Tenants: 0 created, 0 updated, 295 unchanged, 0 departed, 5 rejected.",
        "Nothing to change: the database already matches this file.",
    ]
    assert "  line 11: unknown residence 'NULLEPART'" in second.stdout


def test_bad_files_exit_2_with_one_line_and_write_nothing(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    assert relais(["demo", "load"], env).returncode == 0
    garbage = tmp_path / "export.csv"
    garbage.write_bytes(random.Random(5).randbytes(10 * 1024 * 1024))
    empty = tmp_path / "vide.csv"
    empty.write_bytes(b"")
    noref = tmp_path / "noref.csv"
    noref.write_text("Nom;Prénom;Portable\nDupont;Jean;0612345678\n", encoding="utf-8")
    picture = tmp_path / "photo.xlsx"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))
    for path, words in (
        (garbage, "not a CSV or XLSX file"),
        (empty, "empty"),
        (noref, "no tenant reference"),
        (picture, "not a CSV or XLSX file"),
        (tmp_path / "absent.csv", "cannot read the file"),
    ):
        result = relais(["import", "tenants", str(path), "--json"], env)
        assert result.returncode == 2, (path, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], result.stderr
    counted = relais(["import", "tenants", str(noref.with_name("ok.csv")), "--json"], env)
    assert counted.returncode == 2  # still absent: nothing was ever written
    exported = relais(["export", "residences"], env)
    assert len(yaml.safe_load(exported.stdout)["residences"]) == 4


def test_an_imported_tenant_is_recognised_by_phone_and_answered_for_their_residence(
    tmp_path: Path, nlu_model_path: Path
) -> None:
    env = env_for(tmp_path, RELAIS_NLU_MODEL_PATH=str(nlu_model_path))
    assert relais(["demo", "load"], env).returncode == 0
    residences = tmp_path / "residences.csv"
    residences.write_text(
        "Code résidence;Nom;Adresse;Code postal;Ville;Bâtiments;Agence;Encombrants\n"
        "VERGERS;Résidence Les Vergers;5 rue des Pommiers;59000;Lille;A B;lille;chaque mercredi\n",
        encoding="cp1252",
    )
    tenants = tmp_path / "tenants.csv"
    tenants.write_text(
        "N° locataire;Nom;Prénom;Portable;Groupe;Bât.;Étage;Porte\n"
        "V-0001;Lemoine;Hélène;06 98 76 54 32;VERGERS;A;1;101\n",
        encoding="cp1252",
    )
    assert relais(["import", "residences", str(residences)], env).returncode == 0
    imported = relais(["import", "tenants", str(tenants), "--json"], env)
    assert json.loads(imported.stdout)["created"] == 1, imported.stderr
    chat = relais(
        ["chat", "--phone", "+33698765432"],
        {**env, "RELAIS_FAKE_NOW": "2026-03-09T10:00:00+01:00"},  # a Monday
        stdin="bonjour\nquand passent les encombrants ?\n",
    )
    assert chat.returncode == 0, chat.stderr
    replies = chat.stdout.strip().splitlines()
    assert "Hélène" in replies[0]
    assert "Résidence Les Vergers" in chat.stdout and "11 mars" in chat.stdout, chat.stdout
