"""The NLU engine interface the bot relies on, and the factory that picks a backend."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.core.datadir import DataDir
from nlu.embedded import EmbeddedEngine
from nlu.rasa import RasaEngine
from nlu.training import ensure_model
from nlu.types import Parse

ENGINE_KINDS = ("embedded", "rasa")


@runtime_checkable
class Engine(Protocol):
    """Anything that turns a tenant's text into a `Parse`."""

    name: str

    async def parse(self, text: str) -> Parse: ...

    async def aclose(self) -> None: ...


def build_engine(
    *,
    kind: str,
    model_path: Path,
    data_dir: DataDir,
    rasa_url: str | None = None,
    threshold: float | None = None,
) -> Engine:
    """Build the engine named by `kind` ("embedded" or "rasa").

    The embedded engine is trained first when its artifact is missing, stale or from another
    version, so a fresh checkout works with no setup.
    """
    if kind == "embedded":
        ensure_model(data_dir, model_path)
        return EmbeddedEngine.load(model_path, threshold=threshold)
    if kind == "rasa":
        if not rasa_url:
            raise ValueError(
                "NLU engine 'rasa' needs a server URL (RELAIS_RASA_URL), and none is set"
            )
        engine: Engine = RasaEngine(rasa_url)
        return engine
    raise ValueError(f"Unknown NLU engine {kind!r}; expected one of {', '.join(ENGINE_KINDS)}")
