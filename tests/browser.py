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
def serve_in_thread(
    app: FastAPI, runtime: Runtime, *, access_log: bool = False
) -> Iterator[Server]:
    """uvicorn in a thread; with `access_log`, logging as `relais serve` sets it up (uvicorn's
    loggers at INFO into the root logger's handlers, its access log on)."""
    port = free_port()
    logging_options: dict[str, Any] = (
        {"log_config": None, "log_level": "info", "access_log": True}
        if access_log
        else {"log_level": "warning"}
    )
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, timeout_graceful_shutdown=1, **logging_options
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


# What Chromium reported as blocked by the pages' Content-Security-Policy (console messages).
CSP_VIOLATIONS: list[str] = []


def watch_csp(page: Any) -> Any:
    """Record the page's CSP violations: the strict policy must not break the pages."""

    def seen(message: Any) -> None:
        if "Content Security Policy" in message.text:
            CSP_VIOLATIONS.append(message.text)

    page.on("console", seen)
    return page
