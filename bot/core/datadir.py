"""The data files (texts, FAQ, canned replies, NLU data, demo landlord): a landlord's own folder
first, file by file, then the defaults shipped in the package `bot.data`."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SHIPPED_PACKAGE = "bot.data"


def shipped_dir() -> Path:
    """The defaults shipped with the code (the repository's `data/` folder in a clone).

    pip installs a wheel's files unpacked, so the package's resources are files on disk; the
    NLU's staleness check needs their modification times, hence a real path."""
    root = resources.files(SHIPPED_PACKAGE)
    if not isinstance(root, Path):
        raise RuntimeError(f"{SHIPPED_PACKAGE} must be installed as files, not inside an archive")
    return root


class DataDir:
    """Where to read each data file: `own/NAME` when the landlord's folder has it (set by
    `RELAIS_DATA_DIR`), else the shipped default of the same name."""

    __slots__ = ("own", "shipped")

    def __init__(self, own: Path | None = None) -> None:
        self.own = own
        self.shipped = shipped_dir()

    def file(self, name: str) -> Path:
        if self.own is not None:
            mine = self.own / name
            if mine.is_file():
                return mine
        return self.shipped / name

    def glob(self, pattern: str) -> list[Path]:
        """Every file matching `pattern`, by name: the landlord's where it has one, else ours."""
        found = {p.name: p for p in self.shipped.glob(pattern) if p.is_file()}
        if self.own is not None:
            found.update({p.name: p for p in self.own.glob(pattern) if p.is_file()})
        return [found[name] for name in sorted(found)]

    def __repr__(self) -> str:
        return f"DataDir({str(self.own) if self.own else 'shipped'})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DataDir) and other.own == self.own

    def __hash__(self) -> int:
        return hash(self.own)
