"""The REST API of the landlord's systems: /api/v1 requests and tenants, under a bearer token.

A FastAPI application of its own, mounted at /api: its OpenAPI document is /api/openapi.json,
its documentation /api/docs, and every error it answers is an RFC 9457 problem
(`application/problem+json`). A bad token is 401 and audited.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.messaging.webhooks import request_json
from bot.ops.apikeys import authenticate
from bot.storage.models import ApiKey, RequestEvent, Residence, Tenant
from bot.storage.models import Request as RequestRow
from bot.storage.store import audit
from bot.worker.lifecycle import Actor, Change, RequestStatus, TransitionRefused, status_of
from handoff.tracking import RequestNotFound, move_request

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

PROBLEM = "application/problem+json"
PROBLEM_TYPES = "https://relais.example/problems/"
bearer = HTTPBearer(auto_error=False, description="`relais api-keys create NAME` prints one.")


class Problem(Exception):
    """An RFC 9457 problem: `kind` names its type, `extra` adds members (e.g. `allowed`)."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "", **extra: Any):
        super().__init__(title)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )


def problem_response(
    status: int, kind: str, title: str, detail: str = "", instance: str = "", **extra: Any
) -> JSONResponse:
    body: dict[str, Any] = {"type": PROBLEM_TYPES + kind, "title": title, "status": status}
    if detail:
        body["detail"] = detail
    if instance:
        body["instance"] = instance
    body.update(extra)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


# -- shapes -------------------------------------------------------------------------------


class Event(BaseModel):
    at: datetime
    actor: str
    from_status: str | None
    to_status: str
    note: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class RequestOut(BaseModel):
    reference: str
    kind: str
    status: str
    summary: str = ""
    residence: str | None = None
    building: str | None = None
    tenant: str | None = None
    scheduled_for: datetime | None = None
    scheduled_slot: Literal["morning", "afternoon"] | None = None
    contractor: str | None = None
    due_at: datetime | None = None
    late: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None
    closed_at: datetime | None = None
    events: list[Event] | None = None


class RequestList(BaseModel):
    items: list[RequestOut]
    count: int


class RequestPatch(BaseModel):
    """A move of the request; `scheduled_for` with `scheduled` (an ISO 8601 date-time with its
    offset; with `slot` only its date counts), `contractor` with `waiting_contractor`."""

    status: RequestStatus
    scheduled_for: datetime | None = None
    slot: Literal["morning", "afternoon"] | None = None
    contractor: str | None = Field(default=None, max_length=200)
    note: str | None = Field(default=None, max_length=2000)

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "status": "scheduled",
                    "scheduled_for": "2026-12-08T08:00:00+01:00",
                    "note": "Plombier, clé chez le gardien",
                },
                {"status": "done"},
            ]
        }
    }


class TenantOut(BaseModel):
    reference: str
    first_name: str
    last_name: str
    residence: str | None
    building: str
    floor: str
    apartment: str
    language: str
    phone: str | None
    email: str | None
    requests: list[str]


PROBLEMS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, unknown or revoked token (problem details)"},
    404: {"description": "Unknown reference (problem details)"},
    409: {"description": "A move that makes no sense; `allowed` lists the possible ones"},
    422: {"description": "Malformed body or query (problem details)"},
}


# -- the application ------------------------------------------------------------------------


def build_api(rt: Runtime) -> FastAPI:
    api = FastAPI(
        title="Relais API",
        version="1",
        summary="Requests and tenants for the landlord's systems.",
        description="Authenticate with `Authorization: Bearer <token>` "
        "(`relais api-keys create NAME`). Errors are RFC 9457 problem details. Relais also "
        "calls RELAIS_WEBHOOK_URL with `request.created`, `request.updated`, "
        "`handoff.created` and `conversation.closed` events, signed as the Standard "
        "Webhooks specification says.",
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )

    @api.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(
            exc.status, exc.kind, exc.title, exc.detail, request.url.path, **exc.extra
        )

    @api.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"location": list(e.get("loc", ())), "message": e.get("msg", "")} for e in exc.errors()
        ]
        return problem_response(
            422, "invalid", "Invalid request", "See `errors`.", request.url.path, errors=errors
        )

    @api.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem_response(exc.status_code, "http", str(exc.detail), "", request.url.path)

    async def api_key(
        request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
    ) -> ApiKey:
        now = rt.clock()
        async with rt.db.transaction() as s:
            key = await authenticate(s, creds.credentials, now) if creds else None
            if key is None:
                # Audited without the token: its first characters only, to tell keys apart.
                given = creds.credentials[:10] if creds else ""
                await audit(
                    s,
                    "api_unauthorized",
                    actor="api",
                    target_type="api",
                    target_id=request.url.path[:64],
                    detail={
                        "token_prefix": given,
                        "client": request.client.host if request.client else "",
                    },
                )
        if key is None:
            raise Problem(401, "unauthorized", "Unauthorized", "A valid bearer token is needed.")
        return key

    Key = Depends(api_key)

    async def out(s: Any, r: RequestRow, *, events: bool = False) -> RequestOut:
        residence = await s.get(Residence, r.residence_id) if r.residence_id else None
        tenant = await s.get(Tenant, r.tenant_id) if r.tenant_id else None
        data = request_json(
            r,
            residence_code=residence.code if residence else "",
            tenant_reference=tenant.reference if tenant else "",
        )
        data["status"] = status_of(r.status).value
        data["late"] = bool(
            r.due_at and r.due_at < rt.clock() and r.status not in ("done", "closed")
        )
        if events:
            rows = (
                await s.execute(
                    select(RequestEvent)
                    .where(RequestEvent.request_id == r.id)
                    .order_by(RequestEvent.id)
                )
            ).scalars()
            data["events"] = [
                Event(
                    at=e.at,
                    actor=e.actor,
                    from_status=e.from_status or None,
                    to_status=e.to_status,
                    note=e.note,
                    data=e.data or {},
                )
                for e in rows
            ]
        return RequestOut(**data)

    @api.get("/v1/requests", response_model=RequestList, responses=PROBLEMS, tags=["requests"])
    async def list_requests(
        key: ApiKey = Key,
        status: RequestStatus | None = None,
        residence: Annotated[str | None, Query(description="Residence code")] = None,
        kind: Annotated[str | None, Query(description="repair, nuisance, ...")] = None,
        updated_since: Annotated[datetime | None, Query(description="ISO 8601")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> RequestList:
        """Requests, most recently updated first."""
        stmt = select(RequestRow).where(RequestRow.reference.is_not(None))
        if status is not None:
            legacy = {"received": ["open"], "taken": ["in_progress"]}.get(status.value, [])
            stmt = stmt.where(RequestRow.status.in_([status.value, *legacy]))
        if kind:
            stmt = stmt.where(RequestRow.kind == kind)
        if updated_since is not None:
            stmt = stmt.where(RequestRow.updated_at >= updated_since)
        async with rt.db.session() as s:
            if residence:
                rid = (
                    await s.execute(select(Residence.id).where(Residence.code == residence))
                ).scalar_one_or_none()
                stmt = stmt.where(RequestRow.residence_id == (rid if rid is not None else -1))
            rows = list(
                (
                    await s.execute(
                        stmt.order_by(RequestRow.updated_at.desc(), RequestRow.id.desc())
                        .limit(limit)
                        .offset(offset)
                    )
                ).scalars()
            )
            items = [await out(s, r) for r in rows]
        return RequestList(items=items, count=len(items))

    @api.get(
        "/v1/requests/{reference}",
        response_model=RequestOut,
        responses=PROBLEMS,
        tags=["requests"],
    )
    async def get_request(reference: str, key: ApiKey = Key) -> RequestOut:
        """One request, with its history of events."""
        async with rt.db.session() as s:
            r = (
                await s.execute(select(RequestRow).where(RequestRow.reference == reference))
            ).scalar_one_or_none()
            if r is None:
                raise Problem(404, "not-found", "Unknown request", f"No request {reference}.")
            return await out(s, r, events=True)

    @api.patch(
        "/v1/requests/{reference}",
        response_model=RequestOut,
        responses=PROBLEMS,
        tags=["requests"],
    )
    async def patch_request(reference: str, body: RequestPatch, key: ApiKey = Key) -> RequestOut:
        """Move a request; the tenant is told as when a caretaker does it."""
        change = Change(
            body.status,
            note=body.note or "",
            scheduled_for=body.scheduled_for,
            slot=body.slot or "",
            contractor=body.contractor or "",
        )
        actor = Actor("api", key.name)
        try:
            await move_request(rt, reference, change, actor)
        except RequestNotFound:
            raise Problem(404, "not-found", "Unknown request", f"No request {reference}.") from None
        except TransitionRefused as refused:
            raise Problem(
                409,
                "transition",
                "Transition not allowed",
                refused.reason or f"A request {refused.current} cannot become {refused.wanted}.",
                current=refused.current,
                allowed=refused.allowed,
            ) from None
        async with rt.db.transaction() as s:
            await audit(
                s,
                "api_request_update",
                actor=f"api:{key.name}",
                target_type="request",
                target_id=reference,
                detail={"status": body.status.value},
            )
        return await get_request(reference, key)

    @api.get(
        "/v1/tenants/{reference}", response_model=TenantOut, responses=PROBLEMS, tags=["tenants"]
    )
    async def get_tenant(reference: str, key: ApiKey = Key) -> TenantOut:
        """A tenant and the references of their requests."""
        async with rt.db.session() as s:
            t = (
                (await s.execute(select(Tenant).where(Tenant.reference == reference)))
                .unique()
                .scalar_one_or_none()
            )
            if t is None or t.erased_at is not None:
                raise Problem(404, "not-found", "Unknown tenant", f"No tenant {reference}.")
            refs = (
                await s.execute(
                    select(RequestRow.reference)
                    .where(RequestRow.tenant_id == t.id, RequestRow.reference.is_not(None))
                    .order_by(RequestRow.id.desc())
                    .limit(100)
                )
            ).scalars()
            return TenantOut(
                reference=t.reference,
                first_name=t.first_name,
                last_name=t.last_name,
                residence=t.residence.code if t.residence else None,
                building=t.building,
                floor=t.floor,
                apartment=t.apartment,
                language=t.language,
                phone=t.phone,
                email=t.email,
                requests=[r for r in refs if r],
            )

    return api
