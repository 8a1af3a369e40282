"""The console as an installable web app: its manifest, its service worker and the page the
service worker shows offline. None of them holds staff or tenant data: they are served to
anyone (a browser fetches a manifest without cookies)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from handoff.i18n import translate
from handoff.templating import STATIC_DIR, env

router = APIRouter(include_in_schema=False)

THEME = "#0b5cab"  # console.css's --brand
BACKGROUND = "#f4f6f8"  # console.css's --bg
SCOPE = "/console"  # the queue is /console itself, so not "/console/"
ICONS = "/console/static/icons"
FAVICON = STATIC_DIR / "icons" / "favicon.ico"


def manifest() -> dict[str, Any]:
    return {
        "name": "Relais — console",
        "short_name": translate("fr", "app.short_name"),
        "description": translate("fr", "app.description"),
        "lang": "fr",
        "dir": "ltr",
        "id": SCOPE,
        "start_url": SCOPE,
        "scope": SCOPE,
        "display": "standalone",
        "orientation": "any",
        "theme_color": THEME,
        "background_color": BACKGROUND,
        "icons": [
            {
                "src": f"{ICONS}/relais-192.png",
                "sizes": "192x192",
                "type": "image/png",
                "purpose": "any maskable",
            },
            {
                "src": f"{ICONS}/relais-512.png",
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "any maskable",
            },
            {"src": f"{ICONS}/relais.svg", "sizes": "any", "type": "image/svg+xml"},
        ],
    }


@router.get("/console/manifest.webmanifest")
async def web_manifest() -> Response:
    return JSONResponse(manifest(), media_type="application/manifest+json")


@router.get("/console/sw.js")
async def service_worker() -> Response:
    # Served from /console/ so that it may control /console itself (the queue), with the
    # header that lets a worker's scope be wider than its own folder.
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={"Service-Worker-Allowed": SCOPE},
    )


@router.get("/console/offline")
async def offline_page() -> Response:
    """Kept by the service worker, in both languages (it cannot know which one will be wanted
    when the network is down)."""
    html = env.get_template("offline.html").render(
        texts=[
            (lang, {k: translate(lang, f"offline.{k}") for k in ("title", "text", "retry")})
            for lang in ("fr", "en")
        ]
    )
    return HTMLResponse(html)


def favicon() -> Response:
    return FileResponse(
        FAVICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"}
    )
