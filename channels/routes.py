"""The one web route every webhook channel shares: size limit, verify, parse, store, answer."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.types import Receive, Scope, Send

from bot.core.channel import WebhookChannel, WebhookRequest
from bot.core.errors import RelaisError, TooLarge, Unsupported

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)


def public_url(request: Request, base: str) -> str:
    """The URL the provider signed: our public base URL plus the path and query we received."""
    url = base.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return url


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body over {limit // 1024} KB")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise TooLarge(f"body over {limit // 1024} KB")
    return bytes(body)


def error_response(exc: RelaisError) -> Response:
    return Response(
        content=f'{{"error":"{exc.reason}"}}'
        if exc.status != 200
        else '{"ok":true,"ignored":true}',
        status_code=exc.status,
        media_type="application/json",
    )


Endpoint = Callable[[Request], Awaitable[Response]]


class RelaisApp(FastAPI):
    """FastAPI, with the providers' webhook POSTs answered before any of its layers: its
    telemetry, body-limit, routing, dependency and exception layers cost as much CPU as the
    webhook's own work (verify, parse, store, enqueue; py-spy under bench/load.py). Other
    requests take the usual way; the router holds the same routes (405 for a GET)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.posts: dict[str, Endpoint] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.posts.get(scope["path"])
            if endpoint is not None:
                response = await endpoint(Request(scope, receive))
                await response(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def webhook_endpoint(channel: WebhookChannel, runtime: Runtime) -> Endpoint:
    async def webhook(request: Request) -> Response:
        try:
            body = await read_limited(request, channel.max_body)
            req = WebhookRequest(
                method=request.method,
                url=public_url(request, runtime.settings.public_url),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                query=dict(request.query_params),
            )
            await channel.verify(req)
            inbounds = channel.parse(req)
            for inbound in inbounds:
                await runtime.ingest(inbound)
        except Unsupported as exc:
            log.info("%s: %s", channel.name, exc.reason)
            return error_response(exc)
        except RelaisError as exc:
            log.warning("%s webhook refused: %s %s", channel.name, exc.status, exc.reason)
            return error_response(exc)
        status, media_type, content = channel.acknowledge()
        return Response(content=content, status_code=status, media_type=media_type)

    return webhook


def install_posts(app: RelaisApp, endpoints: dict[str, Endpoint]) -> None:
    """Serve each path's POST ahead of the app's layers, and keep it in the app's router too:
    405 for another method, 404 stays 404 around it."""
    for path, endpoint in endpoints.items():
        app.add_api_route(path, endpoint, methods=["POST"], include_in_schema=False)
    app.posts.update(endpoints)
