"""Where the repository is, for tests that run commands in it or read its files."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
