"""Console fixtures: the app over a started runtime, and signed-in httpx clients."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from fastapi import FastAPI

from bot.app.factory import create_app
from bot.app.runtime import Runtime

PASSWORD = "relais-demo"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def app(runtime: Runtime) -> FastAPI:
    # The runtime fixture is already started; the app's own lifespan is not run by httpx.
    return create_app(runtime.settings, runtime=runtime, prepare=False)


Client = httpx.AsyncClient
ClientFactory = Callable[..., Awaitable[httpx.AsyncClient]]


def csrf_of(html: str) -> str:
    m = CSRF_FIELD.search(html)
    assert m, "no csrf field in the page"
    return m.group(1)


async def sign_in(
    client: httpx.AsyncClient,
    login: str,
    password: str = PASSWORD,
) -> httpx.Response:
    page = await client.get("/console/login")
    return await client.post(
        "/console/login",
        data={"login": login, "password": password, "csrf": csrf_of(page.text)},
    )


@pytest.fixture
async def client_for(app: FastAPI) -> AsyncIterator[ClientFactory]:
    """`await client_for("karim")`: an httpx client signed in as that demo account."""
    clients: list[httpx.AsyncClient] = []

    async def make(login: str | None = None) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://testserver",
            headers={"accept": "text/html"},
        )
        clients.append(client)
        if login:
            r = await sign_in(client, login)
            assert r.status_code == 303, r.text
        return client

    yield make
    for c in clients:
        await c.aclose()


async def csrf_for(client: httpx.AsyncClient) -> str:
    return csrf_of((await client.get("/console")).text)
