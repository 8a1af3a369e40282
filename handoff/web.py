"""Mounts the console on the app: static files, sign-in routes, caretaker and manager pages.

`install_console(app, runtime)` is called by `bot.app.create_app`. The manager pages live in
`handoff.manager`; when that module exists it must expose `router` (an `APIRouter` whose
routes start with /console/manager) or `install_manager(app, runtime)`.
"""

from __future__ import annotations

import json
import logging
import secrets
from typing import TYPE_CHECKING

from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.core.errors import Unavailable
from bot.storage.db import UNAVAILABLE_ERRORS, is_unavailable
from channels import gsm7
from handoff.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SignInRequired,
    csrf_protect,
    current_staff,
    is_api,
    login_url,
    record_refusal,
    runtime_of,
    safe_next,
    session_cookie_kwargs,
    sign_in,
    sign_out,
)
from handoff.broadcasts import router as broadcasts_router
from handoff.console import router as console_router
from handoff.facts_pages import router as facts_router
from handoff.headers import ConsoleHeaders, origin_of
from handoff.history import router as history_router
from handoff.i18n import LANG_COOKIE, LANGUAGES, request_language, translate
from handoff.manager import router as manager_router
from handoff.requests_console import router as requests_router
from handoff.templating import STATIC_DIR, render

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

router = APIRouter(include_in_schema=False)


def install_console(app: FastAPI, runtime: Runtime) -> None:
    media = origin_of(runtime.settings.twilio_api_base)
    app.add_middleware(ConsoleHeaders, media_origins=[media] if media else [])
    app.mount("/console/static", StaticFiles(directory=STATIC_DIR), name="console-static")
    app.include_router(router)
    app.include_router(console_router)
    app.include_router(history_router)
    app.include_router(requests_router)
    app.include_router(broadcasts_router)
    app.include_router(manager_router)
    app.include_router(facts_router)

    async def database_away(request: Request, exc: Exception) -> Response:
        """The database (or its pool) is unreachable: 503, "try again", not a 500."""
        if not request.url.path.startswith("/console") or not (
            is_unavailable(exc) or isinstance(exc, PoolTimeout)
        ):
            raise exc
        log.warning("console: database unavailable (%s)", type(exc).__name__)
        away = Unavailable()
        if is_api(request):
            return JSONResponse({"error": away.reason}, status_code=away.status)
        return render(
            request,
            "error.html",
            {"message": translate(request_language(request), "error.unavailable"), "status": 503},
            status_code=away.status,
        )

    for kind in (*UNAVAILABLE_ERRORS, DBAPIError, PoolTimeout):
        app.add_exception_handler(kind, database_away)

    @app.exception_handler(SignInRequired)
    async def signed_out(request: Request, exc: SignInRequired) -> Response:
        if exc.api:
            return JSONResponse({"error": "sign-in required"}, status_code=401)
        return RedirectResponse(login_url(request), status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 403 and request.url.path.startswith("/console"):
            await record_refusal(request, exc.detail)
        if not request.url.path.startswith("/console") or is_api(request):
            return JSONResponse(
                {"detail": exc.detail},
                status_code=exc.status_code,
                headers=getattr(exc, "headers", None),
            )
        key = {403: "error.forbidden", 404: "error.not_found"}.get(exc.status_code, "")
        if exc.detail == "csrf":
            key = "error.csrf"
        message = translate(request_language(request), key) if key else str(exc.detail)
        return render(
            request,
            "error.html",
            {"message": message, "status": exc.status_code},
            status_code=exc.status_code,
        )


# -- sign-in ------------------------------------------------------------------------------


def _login_page(
    request: Request, *, error: str = "", status_code: int = 200, login: str = "", notice: str = ""
) -> Response:
    # Sign-in CSRF: a random value in a cookie and in the form (double submit), since there
    # is no session yet to hold a token.
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "error": error,
            "login_csrf": token,
            "login": login,
            "notice": notice,
            "next": safe_next(request.query_params.get("next")),
        },
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        path="/console/login",
        max_age=3600,
    )
    return response


# The SMS alphabet for the reply box's segment counter, from the module the SMS sender uses.
GSM7_JS = f"window.RELAIS_GSM7 = {json.dumps(gsm7.table(), ensure_ascii=True)};\n"


@router.get("/console/gsm7.js")
async def gsm7_table() -> Response:
    return Response(
        GSM7_JS,
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.get("/console/login")
async def login_form(request: Request) -> Response:
    notice = ""
    if request.query_params.get("bye"):
        notice = translate(request_language(request), "login.signed_out")
    return _login_page(request, notice=notice)


@router.post("/console/login")
async def login_submit(
    request: Request,
    login: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
    next: str = Form("/console"),
) -> Response:
    lang = request_language(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf or not cookie or not secrets.compare_digest(csrf, cookie):
        return _login_page(
            request, error=translate(lang, "login.expired"), status_code=403, login=login
        )
    rt = runtime_of(request)
    result = await sign_in(
        rt,
        login,
        password,
        client=request.client.host if request.client else "",
        previous_session=request.cookies.get(SESSION_COOKIE),
    )
    if result.locked_minutes or result.throttled_minutes:
        key = "login.locked" if result.locked_minutes else "login.throttled"
        return _login_page(
            request,
            status_code=429,
            login=login,
            error=translate(lang, key, minutes=result.locked_minutes or result.throttled_minutes),
        )
    if result.session_id is None:
        return _login_page(
            request, status_code=401, login=login, error=translate(lang, "login.failed")
        )
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, result.session_id, **session_cookie_kwargs(rt))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/console/logout")
async def logout(request: Request) -> Response:
    staff = await current_staff(request)
    await csrf_protect(request, staff)
    rt = runtime_of(request)
    await sign_out(rt, request.cookies.get(SESSION_COOKIE, ""), staff)
    response = RedirectResponse("/console/login?bye=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/console/lang/{code}")
async def switch_language(request: Request, code: str) -> Response:
    if code not in LANGUAGES:
        raise HTTPException(status_code=404)
    response = RedirectResponse(safe_next(request.query_params.get("next")), status_code=303)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response
