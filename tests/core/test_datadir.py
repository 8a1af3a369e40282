"""The data folder: a landlord's own files first, file by file, then the shipped defaults."""

from __future__ import annotations

from pathlib import Path

from bot.core.datadir import DataDir, shipped_dir
from bot.core.settings import Settings
from bot.dialogue.texts import Texts
from bot.ops.demo import read_landlord


def test_shipped_data_is_the_package_bot_data() -> None:
    shipped = shipped_dir()
    for name in ("texts.yml", "faq.yml", "canned_replies.yml", "nlu.yml", "residences.yml"):
        assert (shipped / name).is_file(), name
    assert DataDir().file("texts.yml") == shipped / "texts.yml"


def test_own_folder_overrides_file_by_file(tmp_path: Path) -> None:
    (tmp_path / "residences.yml").write_text(
        "landlord:\n  name: Logis du Nord\nresidences: []\n", encoding="utf-8"
    )
    (tmp_path / "nlu_extra.yml").write_text("version: '3.1'\nnlu: []\n", encoding="utf-8")
    data = Settings(_env_file=None, data_dir=tmp_path).data  # type: ignore[call-arg]

    assert read_landlord(data)["name"] == "Logis du Nord"
    # What the folder lacks comes from the shipped defaults.
    assert data.file("texts.yml") == shipped_dir() / "texts.yml"
    assert Texts.load(data).get("rate_limited", "fr")
    names = [p.name for p in data.glob("nlu*.yml")]
    assert names == sorted(names)
    assert "nlu_extra.yml" in names and "nlu.yml" in names
    assert data.glob("nlu_extra.yml") == [tmp_path / "nlu_extra.yml"]


def test_unset_means_the_shipped_data() -> None:
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.data_dir is None
    assert settings.data == DataDir()
