"""The web application: `create_app(settings)` builds the FastAPI app of `relais serve`."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, RedirectResponse, Response

from bot.db import upgrade_async
from bot.demo import load_demo
from bot.runtime import Roles, Runtime
from bot.settings import Settings
from channels.routes import RelaisApp
from handoff.api import build_api

log = logging.getLogger(__name__)


async def prepare_database(runtime: Runtime) -> None:
    """Embedded SQLite is migrated on start; demo data goes into an empty database."""
    s = runtime.settings
    if s.is_sqlite:
        await upgrade_async(s.database_url)
    if s.load_demo:
        await load_demo(runtime.db, s.data_dir, only_if_empty=True)


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    roles: Roles = Roles(),  # noqa: B008 - frozen default
    prepare: bool = True,
) -> RelaisApp:
    settings = settings or Settings()
    rt = runtime or Runtime(settings)
    from channels.registry import install_channels

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if prepare:
            await prepare_database(rt)
        await rt.start(roles)
        banner = getattr(app.state, "banner", None)
        if banner:
            from bot.cli import print_banner

            print_banner(banner, rt.settings)
        if getattr(app.state, "freeze_heap", False):  # `relais serve` (not the tests)
            from bot.cli import freeze_heap

            freeze_heap()
        try:
            yield
        finally:
            await rt.stop()

    app = RelaisApp(title="Relais", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.runtime = rt
    install_channels(app, rt)
    _install_console(app, rt)
    # The landlord's systems: /api/v1/..., documented at /api/docs.
    app.mount("/api", build_api(rt))

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/webchat/")

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
        return JSONResponse(
            {"status": "ok" if ok else "unavailable", "checks": checks},
            status_code=200 if ok else 503,
        )

    from bot.metrics import CONTENT_TYPE_LATEST, Scraper

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


def _install_console(app: FastAPI, rt: Runtime) -> None:
    try:
        from handoff.web import install_console
    except ImportError:  # the console is optional for a bare gateway
        return
    install_console(app, rt)
