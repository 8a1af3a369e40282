"""Jinja2 templates of the console (autoescaped) and `render()`, which every page uses."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from channels.media import redirectable
from handoff.i18n import other_language, request_language, translate

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"

env = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    # Every piece of tenant text goes through here: escaping is never optional.
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@pass_context
def _t(ctx: Context, key: str, **values: Any) -> str:
    return translate(ctx.get("lang", "fr"), key, **values)


def _hhmm(value: datetime | None, tz: Any = None) -> str:
    if value is None:
        return ""
    return (value.astimezone(tz) if tz else value).strftime("%H:%M")


def _waited(seconds: float, lang: str = "fr") -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return "< 1 min"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d}"
    return f"{hours // 24} j" if lang == "fr" else f"{hours // 24} d"


env.globals["t"] = _t
env.filters["hhmm"] = _hhmm
env.filters["waited"] = _waited


@pass_context
def _provider_media(ctx: Context, url: object) -> bool:
    """A photo shown straight from its provider: Twilio's media hosts, or the configured
    Twilio API's origin (channels.media), the same the console's CSP lets in."""
    request = ctx.get("request")
    # A page rendered outside a request (none today) knows only Twilio's own hosts.
    runtime = getattr(request.app.state, "runtime", None) if request is not None else None
    api_base = runtime.settings.twilio_api_base if runtime is not None else ""
    return redirectable(url, api_base) is not None


env.tests["provider_media"] = _provider_media


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    """Render a page with what base.html needs: language, signed-in staff, CSRF token."""
    lang = request_language(request)
    ctx: dict[str, Any] = {
        "request": request,
        "lang": lang,
        "other_lang": other_language(lang),
        "staff": getattr(request.state, "staff", None),
        "csrf": getattr(request.state, "csrf", ""),
        "path": request.url.path,
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
