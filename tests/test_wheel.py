"""The wheel a deployment installs: built with `pip wheel .`, installed in a fresh virtual
environment, run from a folder outside the clone: `relais chat` answers and `relais serve`
says it is ready. The data (texts, FAQ, NLU data, demo landlord) must travel inside it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest

from tests.paths import REPO_ROOT

pytestmark = pytest.mark.slow


def run(args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh environment with only the wheel and its dependencies (pip's configured index)."""
    root = tmp_path_factory.mktemp("wheel")
    clone = root / "clone"
    # A clean copy of the tracked files: no egg-info, no var/, no caches of the working tree.
    files = run(["git", "ls-files", "-z"], cwd=REPO_ROOT).stdout.split("\0")
    for name in filter(None, files):
        source = REPO_ROOT / name
        if source.is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name)
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(root / "dist"), str(clone)])
    (wheel,) = (root / "dist").glob("relais-*.whl")
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], timeout=900)
    return env_dir


def test_the_wheel_holds_the_data_as_bot_data(installed: Path) -> None:
    python = str(installed / "bin" / "python")
    code = (
        "import importlib.resources as r, importlib.util as u;"
        "print((r.files('bot.data') / 'texts.yml').is_file(), u.find_spec('data') is None)"
    )
    assert run([python, "-c", code], cwd=installed).stdout.split() == ["True", "True"]


def test_chat_and_serve_from_outside_the_clone(installed: Path, tmp_path: Path) -> None:
    relais = str(installed / "bin" / "relais")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RELAIS_", "VIRTUAL_ENV"))}
    env["PATH"] = f"{installed / 'bin'}:{env.get('PATH', '')}"
    chat = run(
        [relais, "chat", "--phone", "+33612345600"],
        input="bonjour\nj'ai une fuite sous l'évier\n",
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    replies = chat.stdout.strip().splitlines()
    assert "Nadia" in replies[0], chat.stdout
    assert len(replies) == 2, chat.stdout
    assert (tmp_path / "var" / "nlu" / "model.pkl").is_file()  # relative to the working folder

    port = free_port()
    server = subprocess.Popen(
        [relais, "serve", "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        status = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.2)
        assert status == 200, server.stdout.read() if server.poll() is not None else "no answer"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/console/login", timeout=5) as r:
            assert r.status == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
