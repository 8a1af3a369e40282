"""Uploads (issue 16, item 4): one store interface over a folder and an S3-compatible server,
quotas, never-attached uploads swept away, and attachments erased with their conversation.

The S3 backend runs against moto's server mode (from PyPI, in the test extras) on a free port.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiobotocore.session import get_session
from moto.server import ThreadedMotoServer
from sqlalchemy import select, update

from bot.app.runtime import Roles, Runtime
from bot.ops.gdpr import erase_tenant, purge
from bot.storage.models import Attachment, Conversation, Tenant
from bot.storage.uploads import (
    LocalUploads,
    S3Uploads,
    UploadStore,
    build_upload_store,
    sweep_uploads,
)
from channels.registry import install_channels
from channels.routes import RelaisApp
from tests.channels.conftest import ORIGIN, Gateway, gateway_settings
from tests.channels.fakes import FakeProviders
from tests.channels.test_webchat import PNG, Tab
from tests.channels.test_webchat_limits import serve
from tests.cli.test_cli import relais
from tests.conftest import make_settings
from tests.fakes import KeywordEngine

BUCKET = "relais-uploads"
OWNER_A, OWNER_B = "0123456789abcdef", "fedcba9876543210"


def key(owner: str, ext: str = ".png") -> str:
    return f"{owner}/{uuid.uuid4().hex}{ext}"


def photo(size: int) -> bytes:
    return PNG + b"\0" * (size - len(PNG))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, a free port, with the bucket created."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "relais-test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "relais-test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-3")
    endpoint = f"http://127.0.0.1:{port}"

    async def make_bucket() -> None:
        async with get_session().create_client(
            "s3", endpoint_url=endpoint, region_name="eu-west-3"
        ) as s3:
            await s3.create_bucket(
                Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
            )

    asyncio.run(make_bucket())
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(params=["local", "s3"])
def uploads_settings(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """The settings choosing each backend; every S3 test has a prefix of its own."""
    if request.param == "local":
        return {"uploads_url": str(tmp_path / "uploads")}
    endpoint = request.getfixturevalue("s3_endpoint")
    return {
        "uploads_url": f"s3://{BUCKET}/test-{uuid.uuid4().hex[:8]}",
        "uploads_s3_endpoint": endpoint,
        "uploads_s3_region": "eu-west-3",
    }


@pytest.fixture
async def store(uploads_settings: dict[str, Any], sqlite_url: str) -> AsyncIterator[UploadStore]:
    built = build_upload_store(make_settings(sqlite_url, **uploads_settings))
    try:
        yield built
    finally:
        await built.close()


async def test_store_contract(store: UploadStore) -> None:
    expected = LocalUploads if not isinstance(store, S3Uploads) else S3Uploads
    assert isinstance(store, expected)
    a1, a2, b1 = key(OWNER_A), key(OWNER_A, ".jpg"), key(OWNER_B)
    await store.put(a1, b"one", "image/png")
    await store.put(a2, b"two!", "image/jpeg")
    await store.put(b1, b"three", "image/png")
    assert await store.get(a1) == b"one" and await store.get(b1) == b"three"
    listed = {s.key: s for s in await store.list()}
    assert set(listed) == {a1, a2, b1}
    assert listed[a2].size == 4
    assert abs(listed[a2].modified - datetime.now(UTC)) < timedelta(minutes=1)
    assert {s.key for s in await store.list(OWNER_A + "/")} == {a1, a2}
    with pytest.raises(LookupError):
        await store.get(key(OWNER_A))
    for bad in ("../../etc/passwd", f"{OWNER_A}/../{OWNER_B}/x.png", "a/b.png", f"{OWNER_A}/"):
        with pytest.raises(ValueError):
            await store.get(bad)
        with pytest.raises(ValueError):
            await store.put(bad, b"x", "image/png")
    with pytest.raises(ValueError):
        await store.list("../")
    with pytest.raises(ValueError):
        await store.delete_prefix("")  # never everything at once
    assert await store.delete([a1, key(OWNER_A)]) == 2  # a missing one is no error
    assert {s.key for s in await store.list()} == {a2, b1}
    await store.delete_prefix(OWNER_A + "/")
    assert [s.key for s in await store.list()] == [b1]
    with pytest.raises(LookupError):
        await store.get(a2)


GatewayFactory = Callable[..., Any]


@pytest.fixture
async def gateway_with(
    database_url: str, providers: FakeProviders, uploads_settings: dict[str, Any]
) -> AsyncIterator[GatewayFactory]:
    """`await gateway_with(**settings)`: the channels served by uvicorn on the backend under
    test; (gateway, host)."""
    opened: list[tuple[Runtime, Gateway, Any]] = []

    async def make(**overrides: Any) -> tuple[Gateway, str]:
        settings = gateway_settings(database_url, providers, **uploads_settings, **overrides)
        runtime = Runtime(settings, engine=KeywordEngine())
        app = RelaisApp()
        install_channels(app, runtime)
        await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
        gw = Gateway(runtime, app, providers)
        served = serve(app)
        host = await served.__aenter__()
        opened.append((runtime, gw, served))
        return gw, host

    try:
        yield make
    finally:
        for runtime, gw, served in opened:
            await served.__aexit__(None, None, None)
            await gw.client.aclose()
            await runtime.stop()


async def upload(http: httpx.AsyncClient, session: str, body: bytes) -> httpx.Response:
    return await http.post(
        "/channels/webchat/upload",
        content=body,
        headers={"Content-Type": "image/png", "X-Webchat-Session": session},
    )


async def test_quotas_then_never_attached_uploads_are_swept(gateway_with: GatewayFactory) -> None:
    gw, host = await gateway_with(uploads_per_session=3, uploads_total_mb=1)
    store = gw.runtime.uploads
    a, b = await Tab.open(host), await Tab.open(host)
    async with httpx.AsyncClient(base_url=f"http://{host}", headers={"Origin": ORIGIN}) as http:
        # One session: three photos, not a fourth.
        refs = [(await upload(http, a.session, photo(200_000))).json()["ref"] for _ in range(3)]
        refused = await upload(http, a.session, photo(1000))
        assert refused.status_code == 429, refused.text
        # Every session together: 1 MB in all.
        assert (await upload(http, b.session, photo(200_000))).status_code == 200
        assert (await upload(http, b.session, photo(200_000))).status_code == 200
        full = await upload(http, b.session, photo(200_000))
        assert full.status_code == 507, full.text
    assert len(await store.list()) == 5
    # One photo is attached to a message; the others never are.
    await a.say("la fuite", "sweep-000001", media=[refs[0]])
    await gw.settled()
    assert (
        await sweep_uploads(gw.runtime.db, store, older_than=timedelta(minutes=15)) == 0
    )  # too new
    later = datetime.now(UTC) + timedelta(minutes=16)
    assert (
        await sweep_uploads(gw.runtime.db, store, older_than=timedelta(minutes=15), now=later) == 4
    )
    assert [s.key for s in await store.list()] == [refs[0]]
    await a.close()
    await b.close()


async def test_erase_and_retention_purge_delete_the_photos(gateway_with: GatewayFactory) -> None:
    gw, host = await gateway_with()
    store = gw.runtime.uploads
    tenant_tab, other_tab = await Tab.open(host), await Tab.open(host)
    async with httpx.AsyncClient(base_url=f"http://{host}", headers={"Origin": ORIGIN}) as http:
        attached = (await upload(http, tenant_tab.session, PNG)).json()["ref"]
        await upload(http, tenant_tab.session, PNG)  # never attached: goes with the session
        other = (await upload(http, other_tab.session, PNG)).json()["ref"]
    await tenant_tab.say("voici la fuite", "erase-000001", media=[attached])
    await other_tab.say("mon balcon", "erase-000002", media=[other])
    await gw.settled()
    channel: Any = gw.runtime.channels["webchat"]
    mine = channel.address_of(tenant_tab.session)
    async with gw.runtime.db.transaction() as s:
        tenant = (
            (await s.execute(select(Tenant).where(Tenant.reference == "L-10231")))
            .unique()
            .scalar_one()
        )
        await s.execute(
            update(Conversation).where(Conversation.address == mine).values(tenant_id=tenant.id)
        )
    await erase_tenant(gw.runtime.db, "L-10231", uploads=store)
    assert {s.key for s in await store.list()} == {other}  # the tenant's photos, both gone
    async with gw.runtime.db.session() as s:
        urls = sorted(str(u) for u in (await s.execute(select(Attachment.url))).scalars())
    assert urls == sorted(["None", f"/channels/webchat/media/{other}"])
    # Past the retention, the other conversation goes, its photo with it.
    async with gw.runtime.db.transaction() as s:
        await s.execute(
            update(Conversation)
            .where(Conversation.address == channel.address_of(other_tab.session))
            .values(last_message_at=datetime(2020, 1, 1, tzinfo=UTC))
        )
    assert (await purge(gw.runtime.db, 24, uploads=store)).conversations == 1
    assert await store.list() == []
    await tenant_tab.close()
    await other_tab.close()


def test_gdpr_purge_deletes_uploads_left_behind(
    tmp_path: Path, sqlite_url: str, nlu_model_path: Path
) -> None:
    folder = tmp_path / "uploads"
    stale, fresh = key(OWNER_A), key(OWNER_B)
    for k in (stale, fresh):
        (folder / k).parent.mkdir(parents=True, exist_ok=True)
        (folder / k).write_bytes(PNG)
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).timestamp()
    os.utime(folder / stale, (an_hour_ago, an_hour_ago))
    done = relais(
        ["gdpr", "purge"],
        {
            "RELAIS_DATABASE_URL": sqlite_url,
            "RELAIS_UPLOADS_URL": str(folder),
            "RELAIS_NLU_MODEL_PATH": str(nlu_model_path),
            "RELAIS_REDIS_URL": "",
        },
    )
    assert done.returncode == 0, done.stderr
    assert "1 upload(s) never attached to a message deleted" in done.stdout
    assert not (folder / stale).exists() and (folder / fresh).exists()


async def test_an_upload_about_to_be_swept_is_not_attached(gateway_with: GatewayFactory) -> None:
    gw, host = await gateway_with()
    tab = await Tab.open(host)
    async with httpx.AsyncClient(base_url=f"http://{host}", headers={"Origin": ORIGIN}) as http:
        fresh = (await upload(http, tab.session, PNG)).json()["ref"]
    channel: Any = gw.runtime.channels["webchat"]
    owner = channel.owner(tab.session)
    assert await channel.attachable(owner, [fresh, "nope", 7]) == [fresh]
    assert await channel.attachable("0" * 16, [fresh]) == []  # another session's
    # Fourteen minutes later (the sweep takes it at fifteen), it may not be attached any more.
    channel.quota = dataclasses.replace(channel.quota, unattached=60.0)
    assert await channel.attachable(owner, [fresh]) == []
    await tab.close()
