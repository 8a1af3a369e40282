"""The web application: `create_app(settings)` builds the FastAPI app of `relais serve`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.core.settings import Settings
from bot.ops.demo import load_demo
from bot.ops.metrics import CONTENT_TYPE_LATEST, Scraper
from bot.storage.db import upgrade_async
from channels.registry import install_channels
from channels.routes import RelaisApp
from handoff.api import build_api
from handoff.app_shell import favicon
from handoff.app_shell import router as app_shell_router
from handoff.web import install_console

log = logging.getLogger(__name__)


async def prepare_database(runtime: Runtime) -> None:
    """Embedded SQLite is migrated on start; demo data goes into an empty database."""
    s = runtime.settings
    if s.is_sqlite:
        await upgrade_async(s.database_url)
    if s.load_demo:
        await load_demo(runtime.db, s.data, only_if_empty=True)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    roles: Roles = Roles(),  # noqa: B008 - frozen default
    prepare: bool = True,
) -> RelaisApp:
    settings = settings or Settings()
    rt = runtime or Runtime(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if prepare:
            await prepare_database(rt)
        await rt.start(roles)
        on_started = getattr(app.state, "on_started", None)
        if on_started is not None:  # `relais serve`: the banner, and the heap frozen
            on_started(rt)
        try:
            yield
        finally:
            await rt.stop()

    app = RelaisApp(title="Relais", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = rt
    install_channels(app, rt)
    attach_handoff(rt)
    install_console(app, rt)
    app.include_router(app_shell_router)  # manifest, service worker, offline page
    # The landlord's systems: /api/v1/..., documented at /api/docs.
    app.mount("/api", build_api(rt))

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/webchat/")

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon_ico() -> Response:
        # One icon for the console, the manager pages and the web-chat demo page.
        return favicon()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks: dict[str, Any] = {}
        ok = True
        try:
            await rt.db.ping()
            checks["database"] = "ok"
        except Exception as exc:
            ok = False
            checks["database"] = f"unavailable: {type(exc).__name__}"
        if settings.redis_url:
            try:
                await rt.bus.ping()
                checks["redis"] = "ok"
            except Exception as exc:
                ok = False
                checks["redis"] = f"unavailable: {type(exc).__name__}"
        checks["nlu"] = "ok" if rt._engine is not None else "loading"
        ok = ok and rt._engine is not None
        if roles.consume:
            # A process meant to answer messages is not ready while nothing reads the bus
            # (Redis away when it started, or its consumers restarting).
            checks["consumers"] = "ok" if rt.consuming else "not running"
            ok = ok and rt.consuming
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    scraper = Scraper(rt.db)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        # Internal: the reverse proxy should not expose it (see the production checklist).
        try:
            body = await scraper.render()
        except Exception as exc:
            return JSONResponse({"error": f"unavailable: {type(exc).__name__}"}, status_code=503)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return app
