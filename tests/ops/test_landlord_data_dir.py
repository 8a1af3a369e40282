"""RELAIS_DATA_DIR: the seed of a fresh install, the export and the import read a landlord's own
folder the same way (its files first, the shipped ones for what it lacks)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.cli.test_cli import relais

OWN_FAQ = """
faq:
  - id: bin_days
    examples: [quand sortir les poubelles, jour des poubelles]
    answer:
      fr: "Poubelles : sortez-les la veille au soir, {residence}."
      en: "Bins: put them out the evening before, {residence}."
"""
OWN_RESIDENCES = """
landlord: {name: Logis du Littoral, website: https://logis.example, oncall_phone: "+262262000000"}
agencies:
  nord: {name: Agence Nord, address: 1 rue du Port, phone: 0262 00 00 00, hours: {}, hours_text: {fr: "9h-12h", en: "9-12"}}
residences:
  - {code: PORT, name: Résidence du Port, address: 2 quai Ouest, city: 97400 Saint-Denis, buildings: [A], agency: nord, caretaker: leo}
"""
OWN_TENANTS = "tenants: []\n"
OWN_STAFF = (
    "demo_password: une-phrase-longue\n"
    "staff:\n  - {login: leo, name: Léo Payet, role: caretaker, residences: [PORT]}\n"
)


def test_a_landlords_own_folder_seeds_exports_and_imports(tmp_path: Path) -> None:
    own = tmp_path / "logis"
    own.mkdir()
    (own / "faq.yml").write_text(OWN_FAQ, encoding="utf-8")
    (own / "residences.yml").write_text(OWN_RESIDENCES, encoding="utf-8")
    (own / "tenants.yml").write_text(OWN_TENANTS, encoding="utf-8")
    (own / "staff.yml").write_text(OWN_STAFF, encoding="utf-8")
    env = {
        "RELAIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'logis.sqlite3'}",
        "RELAIS_REDIS_URL": "",
        "RELAIS_DATA_DIR": str(own),
    }
    # A fresh install is seeded from the landlord's folder.
    loaded = relais(["demo", "load"], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "1 residences" in loaded.stdout
    residences = yaml.safe_load(relais(["export", "residences"], env).stdout)
    assert residences["landlord"]["name"] == "Logis du Littoral"
    assert [r["code"] for r in residences["residences"]] == ["PORT"]
    # The FAQ is the landlord's; the texts it did not write are the shipped ones.
    faq = yaml.safe_load(relais(["export", "faq"], env).stdout)
    assert [e["id"] for e in faq["faq"]] == ["bin_days"]
    texts = yaml.safe_load(relais(["export", "texts"], env).stdout)
    assert texts["greet"]["fr"].startswith("{hello}{name}")
    # The import works on the residences of that install, phones read as La Réunion's.
    tenants = tmp_path / "locataires.csv"
    tenants.write_text(
        "Référence locataire;Nom;Portable;Code résidence\n"
        "P-1;Hoarau;0692 12 34 56;PORT\n"
        "P-2;Grondin;0693 11 22 33;FLEURS\n",
        encoding="utf-8",
    )
    report = relais(["import", "tenants", str(tenants), "--json"], env)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout) == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "departed": 0,
        "rejected": [{"line": 3, "reason": "unknown residence 'FLEURS'"}],
    }
    # Writing the export back into the folder gives the same seed.
    out = own / "faq_export.yml"
    written = relais(["export", "faq", str(out)], env)
    assert written.returncode == 0 and yaml.safe_load(out.read_text(encoding="utf-8")) == faq
