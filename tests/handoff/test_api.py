"""The landlord's API end to end, on SQLite and PostgreSQL: a repair opened by a tenant's SMS
(the real Twilio webhook, signed) is listed, scheduled, done and confirmed through /api/v1; the
tenant gets each step by SMS (the fake Twilio); a local receiver gets signed webhooks."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook
from typer.testing import CliRunner

from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.ops.apikeys import create_key
from bot.storage.models import AuditLog, Conversation, Outbox, Request, RequestEvent
from channels import gsm7
from tests.channels.conftest import Gateway, gateway_settings, twilio_form
from tests.channels.fakes import FakeProviders
from tests.fakes import KeywordEngine
from tests.handoff.conftest import csrf_for, sign_in
from tests.handoff.receiver import SECRET, Receiver

NADIA = "+33612345600"
PROBLEM = "application/problem+json"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def providers() -> Iterator[FakeProviders]:
    fake = FakeProviders().start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
async def stack(
    database_url: str, providers: FakeProviders, receiver: Receiver
) -> AsyncIterator[Gateway]:
    """The whole app (channels, console, API) with Twilio and the webhook receiver faked."""
    settings = gateway_settings(
        database_url,
        providers,
        webhook_url=receiver.url,
        webhook_secret=SECRET,
        webhook_timeout_seconds=0.5,
        quiet_hours="",  # the quiet hours have their own test
        outbox_max_attempts=5,
    ).model_copy(update={"outbox_backoff_seconds": 0.2})
    runtime = Runtime(settings, engine=KeywordEngine())
    app = create_app(settings, runtime=runtime, prepare=False)
    await runtime.start(Roles(consume=True, outbox=True, recover=False, escalate=False))
    gw = Gateway(runtime, app, providers)
    try:
        yield gw
    finally:
        await gw.client.aclose()
        await runtime.stop()


_sids = iter(range(10_000))


async def sms(gw: Gateway, text: str) -> str:
    """Nadia writes `text`; returns the last SMS Twilio got for her."""
    sid = f"SM{next(_sids):032d}"
    form = twilio_form("sms_text", Body=text, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)
    resp = await gw.post_twilio(form)
    assert resp.status_code == 200, resp.text
    await gw.settled()
    return str(gw.providers.twilio_sent()[-1]["Body"])


async def open_repair(gw: Gateway) -> str:
    """The intake, answered until the bot gives the reference."""
    reply = await sms(gw, "Il y a une fuite sous l'évier de la cuisine")
    for answer in ("depuis hier", "non", "non"):
        if "R-20" in reply:
            break
        reply = await sms(gw, answer)
    assert "R-20" in reply, reply
    async with gw.runtime.db.session() as s:
        return str((await s.execute(select(Request.reference))).scalar_one())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_repair_by_sms_followed_through_the_api(stack: Gateway, receiver: Receiver) -> None:
    api = stack.client
    token = await create_key(stack.runtime.db, "gmao")
    reference = await open_repair(stack)

    # Listed, with the filters the landlord's system uses.
    r = await api.get(
        "/api/v1/requests",
        params={"status": "received", "residence": "FLEURS", "kind": "repair"},
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["reference"] == reference and item["tenant"] == "L-10231"
    assert item["due_at"] and item["late"] is False
    r = await api.get("/api/v1/requests", params={"residence": "CANAL"}, headers=bearer(token))
    assert r.json()["items"] == []

    # Scheduled for a date: the tenant's SMS names it.
    sent = len(stack.providers.twilio_sent())
    r = await api.patch(
        f"/api/v1/requests/{reference}",
        json={
            "status": "scheduled",
            "scheduled_for": "2026-12-08T08:00:00+01:00",
            "note": "Plombier, clé chez le gardien",
        },
        headers=bearer(token),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "scheduled"
    await stack.settled()
    bodies = [m["Body"] for m in stack.providers.twilio_sent()[sent:]]
    assert all(gsm7.is_gsm7(b) and gsm7.segments(b) == 1 for b in bodies)
    assert bodies == [
        f"Votre demande {reference} : intervention prévue le mardi 8 décembre à 8h00."
    ]

    # Done: the tenant is asked whether it really is.
    r = await api.patch(
        f"/api/v1/requests/{reference}", json={"status": "done"}, headers=bearer(token)
    )
    assert r.status_code == 200, r.text
    await stack.settled()
    question = stack.providers.twilio_sent()[-1]["Body"]
    assert question.startswith(
        f"Votre demande {reference} est marquée réparée. Est-ce bien le cas ?"
    )

    # A move that makes no sense: 409, with the moves that do.
    r = await api.patch(
        f"/api/v1/requests/{reference}",
        json={"status": "scheduled", "scheduled_for": "2026-12-09T14:00:00+01:00"},
        headers=bearer(token),
    )
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 409 and problem["allowed"] == ["closed", "reopened"]
    assert problem["current"] == "done" and problem["type"].endswith("/transition")

    # "oui": closed by the tenant, and the satisfaction question follows.
    sent = len(stack.providers.twilio_sent())
    await sms(stack, "oui c'est bon merci")
    bodies = [m["Body"] for m in stack.providers.twilio_sent()[sent:]]
    assert bodies[0] == f"Merci de votre confirmation : la demande {reference} est close."
    assert "de 1 (pas satisfait) à 5" in bodies[1]
    await sms(stack, "5")
    async with stack.runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        assert conv.satisfaction == 5

    r = await api.get(f"/api/v1/requests/{reference}", headers=bearer(token))
    body = r.json()
    assert body["status"] == "closed" and body["closed_at"]
    steps = [(e["from_status"], e["to_status"], e["actor"]) for e in body["events"]]
    assert steps == [
        (None, "received", "tenant"),
        ("received", "scheduled", "api:gmao"),
        ("scheduled", "done", "api:gmao"),
        ("done", "closed", "tenant"),
    ]
    assert body["events"][1]["note"] == "Plombier, clé chez le gardien"
    assert body["events"][1]["data"]["scheduled_for"].startswith("2026-12-08T07:00:00")

    # The landlord's receiver: every event, signed, in order.
    await wait_for(lambda: len(receiver.accepted()) >= 5)
    verifier = Webhook(SECRET)
    events = [verifier.verify(d.body, d.headers) for d in receiver.accepted()]
    # Events of one request in order; the handoff's (another key) may come before or after.
    assert sorted(e["type"] for e in events) == [
        "handoff.created",
        "request.created",
        "request.updated",
        "request.updated",
        "request.updated",
    ]
    of_request = [e for e in events if e["type"].startswith("request.")]
    assert of_request[0]["type"] == "request.created"
    assert of_request[0]["data"]["status"] == "received"
    updates = [e for e in events if e["type"] == "request.updated"]
    assert [e["data"]["status"] for e in updates] == ["scheduled", "done", "closed"]
    assert all(e["data"]["reference"] == reference for e in updates)
    # A tampered body fails the verification.
    created = next(d for d in receiver.accepted() if d.event["type"] == "request.created")
    tampered = created.body.replace(b'"status":"received"', b'"status":"closed"')
    assert tampered != created.body
    with pytest.raises(Exception, match="signature"):
        verifier.verify(tampered, created.headers)


async def test_not_fixed_reopens_it_to_the_caretaker_with_the_tenants_words(
    stack: Gateway,
) -> None:
    token = await create_key(stack.runtime.db, "gmao")
    reference = await open_repair(stack)
    for status in ("taken", "done"):
        r = await stack.client.patch(
            f"/api/v1/requests/{reference}", json={"status": status}, headers=bearer(token)
        )
        assert r.status_code == 200, r.text
    await stack.settled()
    reply = await sms(stack, "non ça fuit encore sous l'évier")
    assert reply.startswith(f"Désolé que ce ne soit pas réglé. Je rouvre la demande {reference}")
    async with stack.runtime.db.session() as s:
        request = (await s.execute(select(Request))).scalar_one()
        last = (
            await s.execute(select(RequestEvent).order_by(RequestEvent.id.desc()).limit(1))
        ).scalar_one()
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
    assert request.status == "reopened"
    assert (last.from_status, last.to_status, last.actor) == ("done", "reopened", "tenant")
    assert last.note == "non ça fuit encore sous l'évier"
    assert conv.state == "queued" and conv.dialogue.get("asked") is None


async def test_bad_token_unknown_reference_and_bad_body_are_problems(stack: Gateway) -> None:
    api = stack.client
    token = await create_key(stack.runtime.db, "gmao")
    r = await api.get("/api/v1/requests", headers=bearer("rls_not-a-real-token"))
    assert r.status_code == 401 and r.headers["content-type"] == PROBLEM
    assert r.headers["www-authenticate"] == "Bearer"
    assert (await api.get("/api/v1/requests")).status_code == 401
    async with stack.runtime.db.session() as s:
        audited = list(
            (
                await s.execute(select(AuditLog).where(AuditLog.action == "api_unauthorized"))
            ).scalars()
        )
    assert len(audited) == 2 and audited[0].detail["token_prefix"] == "rls_not-a-"
    r = await api.get("/api/v1/requests/R-2026-999999", headers=bearer(token))
    assert r.status_code == 404 and r.json()["title"] == "Unknown request"
    r = await api.patch(
        "/api/v1/requests/R-2026-999999", json={"status": "done"}, headers=bearer(token)
    )
    assert r.status_code == 404 and r.headers["content-type"] == PROBLEM
    r = await api.patch(
        "/api/v1/requests/R-2026-999999", json={"status": "fixed"}, headers=bearer(token)
    )
    assert r.status_code == 422 and r.json()["errors"][0]["location"] == ["body", "status"]
    r = await api.get("/api/v1/tenants/L-10231", headers=bearer(token))
    assert r.status_code == 200 and r.json()["residence"] == "FLEURS"
    assert (await api.get("/api/v1/tenants/L-0", headers=bearer(token))).status_code == 404


async def test_openapi_documents_the_api(stack: Gateway) -> None:
    doc = (await stack.client.get("/api/openapi.json")).json()
    assert {"/v1/requests", "/v1/requests/{reference}", "/v1/tenants/{reference}"} <= set(
        doc["paths"]
    )
    assert "patch" in doc["paths"]["/v1/requests/{reference}"]
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    page = await stack.client.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in page.text


async def test_a_failing_receiver_is_retried_with_backoff_and_blocks_nothing(
    stack: Gateway, receiver: Receiver
) -> None:
    # 500, then silence past the sender's timeout, then 503: the fourth try gets through.
    receiver.failing_type = "request.created"
    receiver.failures.extend([("status", 500), ("sleep", 1.0), ("status", 503)])
    await open_repair(stack)  # (settled: every outbox row, webhooks included, is final)
    tries = [d for d in receiver.deliveries if d.event["type"] == "request.created"]
    assert [d.status for d in tries] == [500, 599, 503, 200]
    # One event, retried: the same webhook-id each time, waiting longer each time (the
    # backoff is 0.2 s doubled per attempt, ±20 %; the timeout adds 0.5 s to the second).
    assert len({d.headers["webhook-id"] for d in tries}) == 1
    gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
    assert gaps[0] >= 0.16 and gaps[1] >= 0.5 + 0.32 and gaps[2] >= 0.64, gaps
    # The tenant's reference went out before the event got through: nothing waited for it.
    answer = next(c for c in stack.providers.calls if "R-20" in str(c.params.get("Body", "")))
    assert answer.at < tries[-1].at
    async with stack.runtime.db.session() as s:
        rows = list((await s.execute(select(Outbox).where(Outbox.channel == "webhook"))).scalars())
    created = next(r for r in rows if '"request.created"' in r.text)
    assert created.status == "sent" and created.attempts == 4
    metrics = (await stack.client.get("/metrics")).text
    assert 'relais_webhook_deliveries{status="sent"}' in metrics


def test_api_keys_cli_prints_the_token_last_and_revokes(sqlite_url: str, monkeypatch: Any) -> None:
    from bot.cli.main import app

    monkeypatch.setenv("RELAIS_DATABASE_URL", sqlite_url)
    runner = CliRunner()
    created = runner.invoke(app, ["api-keys", "create", "gmao"])
    assert created.exit_code == 0, created.output
    token = created.output.strip().splitlines()[-1]
    assert token.startswith("rls_") and len(token) > 40 and " " not in token
    listed = runner.invoke(app, ["api-keys", "list"])
    assert "gmao" in listed.output and token not in listed.output and "active" in listed.output
    assert runner.invoke(app, ["api-keys", "create", "gmao"]).exit_code == 1
    assert runner.invoke(app, ["api-keys", "revoke", "gmao"]).exit_code == 0
    assert "revoked" in runner.invoke(app, ["api-keys", "list"]).output
    assert runner.invoke(app, ["api-keys", "revoke", "nobody"]).exit_code == 1

    async def refused() -> int:
        from tests.conftest import make_settings

        rt = Runtime(make_settings(sqlite_url), engine=KeywordEngine())
        app_ = create_app(rt.settings, runtime=rt, prepare=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app_), base_url="http://t"
        ) as c:
            status = (await c.get("/api/v1/requests", headers=bearer(token))).status_code
        await rt.db.dispose()
        return status

    assert asyncio.run(refused()) == 401


async def test_a_receiver_that_stays_down_shows_in_metrics_and_doctor(
    stack: Gateway, receiver: Receiver
) -> None:
    from bot.ops.doctor import check_webhook_deliveries

    receiver.failing_type = "request.created"
    receiver.failures.extend([("status", 500)] * 5)
    await open_repair(stack)  # the tenant's replies are all there: nothing waited
    assert "R-20" in stack.providers.twilio_sent()[-1]["Body"]
    metrics = (await stack.client.get("/metrics")).text
    assert 'relais_webhook_deliveries{status="failed"} 1.0' in metrics
    assert "relais_webhook_retries_total 4.0" in metrics
    [check] = await check_webhook_deliveries(stack.runtime.settings)
    assert check.status == "fail" and "HTTP 500" in check.message


async def test_a_caretaker_closing_the_conversation_is_a_signed_event(
    stack: Gateway, receiver: Receiver
) -> None:
    await open_repair(stack)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.app),
        base_url="https://testserver",  # the session cookie is Secure behind an https URL
        headers={"accept": "text/html"},
    ) as karim:
        assert (await sign_in(karim, "karim")).status_code == 303
        async with stack.runtime.db.session() as s:
            conv = (await s.execute(select(Conversation))).unique().scalar_one()
        r = await karim.post(
            f"/console/c/{conv.id}/close",
            data={"csrf": await csrf_for(karim), "resolution": "Joint changé"},
        )
        assert r.status_code == 303
    await stack.settled()
    verifier = Webhook(SECRET)
    events = [verifier.verify(d.body, d.headers) for d in receiver.accepted()]
    closed = [e for e in events if e["type"] == "conversation.closed"]
    assert len(closed) == 1
    assert closed[0]["data"]["resolution"] == "Joint changé"
    assert closed[0]["data"]["id"] == conv.id and closed[0]["data"]["closed_at"]
