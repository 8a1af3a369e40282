"""Default locations of the NLU training data and of the trained model artifact."""

from __future__ import annotations

import os
from pathlib import Path

from bot.core.datadir import DataDir


def default_data_dir() -> DataDir:
    """The data shipped with Relais (package `bot.data`), where `nlu.yml` lives."""
    return DataDir()


def default_model_path() -> Path:
    """`RELAIS_NLU_MODEL_PATH` if set, else `var/nlu/model.pkl` under the current directory."""
    env = os.environ.get("RELAIS_NLU_MODEL_PATH")
    if env:
        return Path(env)
    return Path.cwd() / "var" / "nlu" / "model.pkl"
