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
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import case, delete, null, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.passwords import hash_password, verify_password
from bot.storage.models import Conversation, LoginThrottle, Role, StaffSession, StaffUser
from bot.storage.store import audit

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

SESSION_COOKIE = "relais_session"
LOGIN_CSRF_COOKIE = "relais_login_csrf"
SESSION_TTL = timedelta(hours=12)
MAX_FAILURES = 5  # wrong passwords for one account name before it is locked...
LOCKOUT = timedelta(minutes=15)  # ...for this long (also the window the failures count in)
CLIENT_MAX_FAILURES = 20  # wrong passwords from one client address, any account, per window
EMERGENCY = 10  # Conversation.priority of an emergency
SIGNED_OUT = "signed_out"  # the bus event that ends a session's live streams

# The largest id of a table (PostgreSQL's integer); a path or form id past it is refused
# (422) before it reaches a query, where PostgreSQL would answer an error (a 500).
MAX_DB_ID = 2**31 - 1
DbId = Annotated[int, Path(ge=0, le=MAX_DB_ID)]

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
    locked_minutes: int = 0  # > 0: the account name is locked for that long
    throttled_minutes: int = 0  # > 0: this client address is refused for that long


def _upsert(s: AsyncSession) -> Any:
    dialect = s.get_bind().dialect.name
    return (pg_insert if dialect == "postgresql" else sqlite_insert)(LoginThrottle)


async def _count_attempt(s: AsyncSession, key: str, now: datetime) -> tuple[int, datetime | None]:
    """Count one more attempt under `key`, in one statement (no read-then-write race):
    the attempts so far in the window (this one included) and the lock, if any."""
    t = LoginThrottle
    lock_over = t.locked_until.is_not(None) & (t.locked_until <= now)
    window_over = t.locked_until.is_(None) & (t.last_at <= now - LOCKOUT)
    stmt = (
        _upsert(s)
        .values(key=key, failures=1, last_at=now, locked_until=None)
        .on_conflict_do_update(
            index_elements=["key"],
            set_={
                "failures": case((lock_over | window_over, 1), else_=t.failures + 1),
                "locked_until": case((lock_over, null()), else_=t.locked_until),
                "last_at": now,
            },
        )
        .returning(t.failures, t.locked_until)
    )
    failures, locked_until = (await s.execute(stmt)).one()
    return int(failures), locked_until


def _refused_minutes(counted: tuple[int, datetime | None], limit: int, now: datetime) -> int:
    """> 0 when this attempt must not be checked: a lock, or the limit already reached by
    attempts counted before it (being checked in parallel)."""
    failures, locked_until = counted
    if locked_until is not None and locked_until > now:
        return _minutes_left(locked_until, now)
    if failures > limit:
        return int(LOCKOUT.total_seconds() // 60)
    return 0


async def sign_in(
    rt: Runtime,
    login: str,
    password: str,
    *,
    client: str = "",
    previous_session: str | None = None,
) -> SignIn:
    """Check a password with the lock-out rules; on success open a fresh session.

    The attempt is counted (per account name and per client address) before the password is
    checked, so that parallel attempts cannot all be checked; an account name that does not
    exist is counted, locked and timed (a dummy hash is checked) like one that does.
    """
    now = rt.clock()
    accounts = LoginThrottle.account_key(login)
    clients = LoginThrottle.client_key(client)
    async with rt.db.transaction() as s:
        staff = (
            await s.execute(select(StaffUser).where(StaffUser.login == login.strip()))
        ).scalar_one_or_none()
        by_account = await _count_attempt(s, accounts, now)
        by_client = await _count_attempt(s, clients, now)
    locked = _refused_minutes(by_account, MAX_FAILURES, now)
    if locked:
        return SignIn(locked_minutes=locked)
    throttled = _refused_minutes(by_client, CLIENT_MAX_FAILURES, now)
    if throttled:
        return SignIn(throttled_minutes=throttled)
    # argon2 takes tens of milliseconds of CPU: off the event loop.
    ok = await asyncio.to_thread(
        verify_password, staff.password_hash if staff else _DUMMY_HASH, password
    )
    ok = ok and staff is not None and staff.active
    async with rt.db.transaction() as s:
        if not ok:
            lock = False
            for key, (failures, _), limit in (
                (accounts, by_account, MAX_FAILURES),
                (clients, by_client, CLIENT_MAX_FAILURES),
            ):
                if failures >= limit:
                    lock = lock or key == accounts
                    await s.execute(
                        update(LoginThrottle)
                        .where(LoginThrottle.key == key)
                        .values(locked_until=now + LOCKOUT)
                    )
            if staff is not None:
                await _audit(s, staff, "login_failed", {"locked": lock})
            if lock:
                return SignIn(locked_minutes=int(LOCKOUT.total_seconds() // 60))
            return SignIn()
        assert staff is not None
        await s.execute(delete(LoginThrottle).where(LoginThrottle.key == accounts))
        # The address gets back the attempt counted for this success, not more: signing in
        # to one's own account must not clear the count of guesses at others.
        await s.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == clients, LoginThrottle.failures > 0)
            .values(failures=LoginThrottle.failures - 1)
        )
        # Counters past their window are cleared here rather than by a separate job.
        await s.execute(
            delete(LoginThrottle).where(
                LoginThrottle.last_at < now - LOCKOUT,
                (LoginThrottle.locked_until.is_(None)) | (LoginThrottle.locked_until < now),
            )
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
    session_hash = hash_session_id(session_id)
    async with rt.db.transaction() as s:
        await s.execute(delete(StaffSession).where(StaffSession.id == session_hash))
        await _audit(s, staff, "logout", {})
    try:
        # Every process ends this session's live streams now (handoff.events).
        await rt.bus.publish({"type": SIGNED_OUT, "session_hash": session_hash})
    except Exception as exc:
        # The streams find the session gone at their next check, seconds later.
        log.warning("sign-out not announced to the live streams (%s)", type(exc).__name__)


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


# -- refused access ------------------------------------------------------------------------

FORBIDDEN = "forbidden"  # the audit action of a refused request (403)
_CONVERSATION_PATH = re.compile(r"^/console/(?:api/)?(?:c|manager/conversations)/(\d+)(?:/|$)")


def refusal_reason(request: Request, detail: object) -> str:
    """Why a request was refused, in one word the audit log turns into a sentence."""
    if detail == "csrf":
        return "csrf"
    if detail == "role not allowed" or request.url.path.startswith("/console/manager"):
        return "role"
    if _CONVERSATION_PATH.match(request.url.path):
        return "residence"
    return "other"


async def record_refusal(request: Request, detail: object) -> None:
    """One audit entry per refused request (403): who, which page, why. Never the request's
    body nor its query string (a search may hold a name or a phone number); the log line
    names the route's pattern only. Best effort: a refusal is answered even if not recorded."""
    staff: StaffUser | None = getattr(request.state, "staff", None)
    path = request.url.path
    found = _CONVERSATION_PATH.match(path)
    reason = refusal_reason(request, detail)
    route = request.scope.get("route")
    pattern = getattr(route, "path", "") or "?"
    try:
        async with runtime_of(request).db.transaction() as s:
            await audit(
                s,
                FORBIDDEN,
                staff_id=staff.id if staff else None,
                actor=staff.login if staff else "",
                target_type="conversation" if found else "page",
                target_id=found.group(1) if found else path[:64],
                detail={"method": request.method, "path": path[:200], "reason": reason},
            )
    except Exception as exc:
        log.warning("refused access not recorded (%s)", type(exc).__name__)
    log.info(
        "403 %s %s (%s) for staff %s",
        request.method,
        pattern,
        reason,
        staff.id if staff else "-",
    )


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
