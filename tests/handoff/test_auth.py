"""Sign-in, lock-out, sign-out, session regeneration and CSRF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from bot.app.runtime import Runtime
from bot.storage.models import AuditLog, StaffSession, StaffUser
from tests.handoff.conftest import ClientFactory, csrf_for, sign_in


async def test_sign_in_and_out(client_for: ClientFactory) -> None:
    client = await client_for()
    r = await client.get("/console")
    assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    r = await sign_in(client, "karim")
    assert r.status_code == 303 and r.headers["location"] == "/console"
    cookie = r.headers["set-cookie"]
    assert "relais_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = await client.get("/console")
    assert page.status_code == 200 and "Karim" in page.text
    token = await csrf_for(client)
    r = await client.post("/console/logout", data={"csrf": token})
    assert r.status_code == 303
    r = await client.get("/console")
    assert r.status_code == 303


async def test_five_failures_lock_the_account_for_fifteen_minutes(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    start = datetime.now(UTC)
    runtime.clock = lambda: start
    client = await client_for()
    for _ in range(4):
        r = await sign_in(client, "karim", "wrong-password")
        assert r.status_code == 401 and "incorrect" in r.text
    r = await sign_in(client, "karim", "wrong-password")
    assert r.status_code == 429 and "bloqué" in r.text and "15 min" in r.text
    # Locked: even the right password is refused, with the same clear message.
    r = await sign_in(client, "karim")
    assert r.status_code == 429 and "bloqué" in r.text
    runtime.clock = lambda: start + timedelta(minutes=16)
    r = await sign_in(client, "karim")
    assert r.status_code == 303
    async with runtime.db.session() as s:
        karim = (await s.execute(select(StaffUser).where(StaffUser.login == "karim"))).scalar_one()
        failed = (
            await s.execute(
                select(func.count(AuditLog.id)).where(AuditLog.action == "login_failed")
            )
        ).scalar_one()
    assert karim.failed_logins == 0 and karim.locked_until is None and failed == 5


async def test_unknown_login_says_the_same_as_a_wrong_password(client_for: ClientFactory) -> None:
    r = await sign_in(await client_for(), "nobody", "whatever-it-is")
    assert r.status_code == 401 and "Identifiant ou mot de passe incorrect" in r.text


async def test_session_id_is_new_at_every_sign_in(
    runtime: Runtime, client_for: ClientFactory
) -> None:
    # A session id planted before sign-in (fixation) is not the one that gets signed in.
    client = await client_for()
    client.cookies.set("relais_session", "planted-by-an-attacker", domain="testserver.local")
    await sign_in(client, "karim")
    first = client.cookies.get("relais_session", domain="testserver.local")
    assert first and first != "planted-by-an-attacker"
    await sign_in(client, "karim")
    second = client.cookies.get("relais_session", domain="testserver.local")
    assert second and second != first
    # The replaced session is gone: its cookie no longer opens the console.
    other = await client_for()
    other.cookies.set("relais_session", first, domain="testserver.local")
    assert (await other.get("/console")).status_code == 303
    other.cookies.set("relais_session", second, domain="testserver.local")
    assert (await other.get("/console")).status_code == 200
    async with runtime.db.session() as s:
        ids = list((await s.execute(select(StaffSession.id))).scalars())
    assert second not in ids and len(ids) == 1  # only a hash of the cookie is stored


async def test_forms_without_the_csrf_token_are_refused(client_for: ClientFactory) -> None:
    client = await client_for("karim")
    assert (await client.post("/console/logout")).status_code == 403
    assert (await client.post("/console/logout", data={"csrf": "forged"})).status_code == 403
    assert (await client.post("/console/c/1/take", data={})).status_code == 403
    r = await client.post(
        "/console/c/1/take", headers={"X-CSRF-Token": "forged", "accept": "application/json"}
    )
    assert r.status_code == 403
    # Sign-in has its own token (no session yet): without it, no sign-in.
    anon = await client_for()
    r = await anon.post("/console/login", data={"login": "karim", "password": "relais-demo"})
    assert r.status_code == 403 and "relais_session" not in r.headers.get("set-cookie", "")


async def test_english_switch_and_no_open_redirect(client_for: ClientFactory) -> None:
    client = await client_for("karim")
    r = await client.get("/console/lang/en?next=https://evil.example/")
    assert r.status_code == 303 and r.headers["location"] == "/console"
    page = await client.get("/console")
    assert "Queue" in page.text and 'lang="en"' in page.text
    await client.get("/console/lang/fr")
    assert 'lang="fr"' in (await client.get("/console")).text
    anon = await client_for()
    page = await anon.get("/console/login?next=//evil.example")
    assert 'name="next" value="/console"' in page.text
