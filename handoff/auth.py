"""Console sign-in: sessions, lock-out, CSRF, roles, and who may see which conversation.

The session cookie holds only a random id; the table keeps its SHA-256, so a copy of the
database does not hand out live sessions. A new id is issued at every sign-in (no fixation).

Use in a route:

    @router.get("/console/x")
    async def page(staff: StaffUser = Depends(current_staff)): ...

    @router.post("/console/x")
    async def act(staff: StaffUser = Depends(csrf_protect)): ...   # signed in + CSRF checked

    @router.get("/console/manager/y")
    async def report(staff: StaffUser = Depends(require_role("manager"))): ...

Pages answer a signed-out visitor with a redirect to /console/login; API routes (paths under
/console/api/, the event stream, or requests that do not accept HTML) answer 401.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.passwords import hash_password, verify_password
from bot.storage.models import Conversation, Role, StaffSession, StaffUser
from bot.storage.store import audit

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

SESSION_COOKIE = "relais_session"
LOGIN_CSRF_COOKIE = "relais_login_csrf"
SESSION_TTL = timedelta(hours=12)
MAX_FAILURES = 5
LOCKOUT = timedelta(minutes=15)
EMERGENCY = 10  # Conversation.priority of an emergency

# Verified against when the login is unknown, so both cases take as long.
_DUMMY_HASH = hash_password("not-a-real-password")


class SignInRequired(Exception):
    """Raised by `current_staff`; the console's handler turns it into a redirect or a 401."""

    def __init__(self, api: bool) -> None:
        super().__init__("sign-in required")
        self.api = api


def runtime_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def hash_session_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def is_api(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/console/api/") or path == "/console/events":
        return True
    return "text/html" not in request.headers.get("accept", "")


def login_url(request: Request) -> str:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return "/console/login?next=" + quote(target, safe="")


def safe_next(target: str | None) -> str:
    """Only console paths: an open redirect after sign-in would be a phishing aid."""
    if target and target.startswith("/console") and not target.startswith("//"):
        return target
    return "/console"


# -- sessions ---------------------------------------------------------------------------


async def load_session(request: Request) -> tuple[StaffUser, StaffSession] | None:
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw or len(raw) > 128:
        return None
    rt = runtime_of(request)
    async with rt.db.session() as s:
        row = await s.get(StaffSession, hash_session_id(raw))
        if row is None or row.expires_at <= rt.clock():
            return None
        staff = (
            await s.execute(select(StaffUser).where(StaffUser.id == row.staff_id))
        ).scalar_one_or_none()
        if staff is None or not staff.active:
            return None
        return staff, row


async def current_staff(request: Request) -> StaffUser:
    """The signed-in staff member; also sets `request.state.staff` and `request.state.csrf`."""
    cached: StaffUser | None = getattr(request.state, "staff", None)
    if cached is not None:
        return cached
    found = await load_session(request)
    if found is None:
        raise SignInRequired(api=is_api(request))
    staff, row = found
    request.state.staff = staff
    request.state.csrf = row.csrf_token
    request.state.session_hash = row.id
    return staff


def require_role(*roles: str) -> Callable[..., Awaitable[StaffUser]]:
    """A dependency admitting only the given roles (403 for the others)."""
    allowed = {Role(r).value for r in roles}

    async def dependency(staff: StaffUser = Depends(current_staff)) -> StaffUser:  # noqa: B008
        if staff.role not in allowed:
            raise HTTPException(status_code=403, detail="role not allowed")
        return staff

    return dependency


async def csrf_protect(request: Request, staff: StaffUser = Depends(current_staff)) -> StaffUser:  # noqa: B008
    """Signed in, and the request carries the session's CSRF token (form field `csrf` or
    header `X-CSRF-Token`); 403 otherwise."""
    sent = request.headers.get("x-csrf-token")
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            form = await request.form()  # cached by Starlette: the route can read it again
            value = form.get("csrf")
            sent = value if isinstance(value, str) else None
    expected = getattr(request.state, "csrf", "")
    if not sent or not expected or not secrets.compare_digest(sent, expected):
        raise HTTPException(status_code=403, detail="csrf")
    return staff


@dataclass(frozen=True, slots=True)
class SignIn:
    """The outcome of a sign-in attempt."""

    staff: StaffUser | None = None
    session_id: str | None = None  # the cookie value, only on success
    locked_minutes: int = 0  # > 0: the account is locked for that long


async def sign_in(
    rt: Runtime, login: str, password: str, *, previous_session: str | None = None
) -> SignIn:
    """Check a password with the lock-out rule; on success open a fresh session."""
    now = rt.clock()
    async with rt.db.session() as s:
        staff = (
            await s.execute(select(StaffUser).where(StaffUser.login == login.strip()))
        ).scalar_one_or_none()
    if staff is not None and staff.locked_until is not None and staff.locked_until > now:
        return SignIn(locked_minutes=_minutes_left(staff.locked_until, now))
    # argon2 takes tens of milliseconds of CPU: off the event loop.
    ok = await asyncio.to_thread(
        verify_password, staff.password_hash if staff else _DUMMY_HASH, password
    )
    if staff is None or not staff.active:
        return SignIn()
    async with rt.db.transaction() as s:
        if not ok:
            failures = staff.failed_logins + 1
            values: dict[str, Any] = {"failed_logins": failures}
            if failures >= MAX_FAILURES:
                values = {"failed_logins": 0, "locked_until": now + LOCKOUT}
            await s.execute(update(StaffUser).where(StaffUser.id == staff.id).values(**values))
            await _audit(s, staff, "login_failed", {"locked": "locked_until" in values})
            if "locked_until" in values:
                return SignIn(locked_minutes=int(LOCKOUT.total_seconds() // 60))
            return SignIn()
        await s.execute(
            update(StaffUser)
            .where(StaffUser.id == staff.id)
            .values(failed_logins=0, locked_until=None)
        )
        if previous_session:
            await s.execute(
                delete(StaffSession).where(StaffSession.id == hash_session_id(previous_session))
            )
        session_id = secrets.token_urlsafe(32)
        s.add(
            StaffSession(
                id=hash_session_id(session_id),
                staff_id=staff.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=now,
                expires_at=now + SESSION_TTL,
            )
        )
        # Expired sessions of anyone are cleared here rather than by a separate job.
        await s.execute(delete(StaffSession).where(StaffSession.expires_at < now))
        await _audit(s, staff, "login", {})
    return SignIn(staff=staff, session_id=session_id)


async def sign_out(rt: Runtime, session_id: str, staff: StaffUser) -> None:
    async with rt.db.transaction() as s:
        await s.execute(delete(StaffSession).where(StaffSession.id == hash_session_id(session_id)))
        await _audit(s, staff, "logout", {})


async def _audit(s: AsyncSession, staff: StaffUser, action: str, detail: dict[str, Any]) -> None:
    await audit(
        s,
        action,
        staff_id=staff.id,
        actor=staff.login,
        target_type="staff",
        target_id=staff.id,
        detail=detail,
    )


def _minutes_left(until: datetime, now: datetime) -> int:
    return max(1, int((until - now).total_seconds() + 59) // 60)


# -- who sees what ------------------------------------------------------------------------


def visible_residence_ids(staff: StaffUser) -> set[int] | None:
    """Residences whose conversations this person works on; None means all (manager).

    The on-call role also sees emergencies of every residence: use `can_see` or
    `visible_clause` for conversations, not this set alone.
    """
    if staff.role == Role.MANAGER.value:
        return None
    return {r.id for r in staff.residences}


def can_see(staff: StaffUser, conversation: Conversation) -> bool:
    """Caretaker: their residences only. On call: their residences, every emergency, and
    conversations of tenants nobody has identified yet (no residence, so no caretaker).
    Manager: everything, read-only (see `can_act`)."""
    ids = visible_residence_ids(staff)
    if ids is None:
        return True
    if conversation.residence_id is not None and conversation.residence_id in ids:
        return True
    if staff.role == Role.ONCALL.value:
        return conversation.priority >= EMERGENCY or conversation.residence_id is None
    return False


def can_act(staff: StaffUser, conversation: Conversation) -> bool:
    """Take, reply, note, transfer, close: not for managers, who read only."""
    return staff.role != Role.MANAGER.value and can_see(staff, conversation)


def visible_clause(staff: StaffUser) -> Any:
    """The SQL condition on `Conversation` matching `can_see` (for queue and search queries)."""
    ids = visible_residence_ids(staff)
    if ids is None:
        return Conversation.id.is_not(None)
    mine = Conversation.residence_id.in_(sorted(ids)) if ids else Conversation.id.is_(None)
    if staff.role == Role.ONCALL.value:
        return mine | (Conversation.priority >= EMERGENCY) | Conversation.residence_id.is_(None)
    return mine


def session_cookie_kwargs(rt: Runtime) -> dict[str, Any]:
    return {
        "httponly": True,
        # Lax, not Strict: the link in an escalation SMS is a cross-site navigation and must
        # open the conversation signed in. Lax still withholds the cookie from foreign POSTs.
        "samesite": "lax",
        "secure": rt.settings.public_url.startswith("https://"),
        "path": "/",
    }
