"""Sign-in, lock-out, sign-out, session regeneration and CSRF."""

from __future__ import annotations

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
