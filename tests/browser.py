"""Browser tests' shared parts: Debian's Chromium through Playwright, and the app on a real
uvicorn in a background thread (its own event loop, where the runtime lives)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from bot.app.runtime import Runtime
from tests.paths import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium keeps dialling out, which this network refuses.
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SHOTS = REPO_ROOT / "artifacts" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


def need_chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("RELAIS_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}, and RELAIS_REQUIRE_SERVICES=1 says browser tests must run")
        pytest.skip(reason)
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    runtime: Runtime
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the server's event loop, where the runtime lives."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, runtime: Runtime) -> Iterator[Server]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
    )
    uv = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(uv.serve(),), daemon=True)
    thread.start()
    for _ in range(1000):
        if uv.started:
            break
        threading.Event().wait(0.02)
    assert uv.started, "uvicorn did not start"
    try:
        yield Server(f"http://127.0.0.1:{port}", runtime, loop)
    finally:
        uv.should_exit = True
        thread.join(15)
        loop.close()


@contextlib.contextmanager
def launch(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(chromium), args=ARGS)
        try:
            yield b
        finally:
            b.close()
