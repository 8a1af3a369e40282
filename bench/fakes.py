"""Fake Twilio and Telegram APIs in their own process, for the load bench and the fault tests.

Run: `python -m bench.fakes --port 8099`. It answers Twilio's `Messages.json` and Telegram's
`sendMessage`/`sendPhoto` like the providers do, and records every accepted message with the
time it arrived. Control endpoints (for the harness, not the providers):
  GET  /_received?since=N     accepted messages from index N: [{api, to, text, t}]
  GET  /_attempts             every attempt, accepted or refused, per API
  POST /_fail                 {"api": "twilio"|"telegram", "status": 500, "times": 3,
                               "retry_after": 1}: the next N attempts are refused so
  POST /_reset
It is a separate process (not a thread of the bench) so that receiving replies does not share
the bench client's CPU. `bare` is the bench's ceiling: an ASGI app that only answers 200.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

received: list[dict[str, Any]] = []
attempts: dict[str, int] = {"twilio": 0, "telegram": 0}
failures: dict[str, deque[tuple[int, int | None]]] = {"twilio": deque(), "telegram": deque()}
ids = itertools.count(1)


async def _params(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        data = json.loads(await request.body() or b"{}")
        return data if isinstance(data, dict) else {}
    if ctype.startswith("multipart/form-data"):
        form = await request.form()
        return {k: v for k, v in form.items() if isinstance(v, str)}
    return {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}


def _failure(api: str) -> tuple[int, int | None] | None:
    attempts[api] += 1
    return failures[api].popleft() if failures[api] else None


async def twilio(request: Request) -> Response:
    params = await _params(request)
    fail = _failure("twilio")
    if fail:
        status, retry_after = fail
        headers = {"Retry-After": str(retry_after)} if retry_after else {}
        return JSONResponse(
            {
                "code": 20500 if status >= 500 else 20429,
                "message": "fake failure",
                "status": status,
            },
            status_code=status,
            headers=headers,
        )
    n = next(ids)
    received.append(
        {
            "api": "twilio",
            "to": params.get("To", ""),
            "text": params.get("Body", ""),
            "t": time.time(),
        }
    )
    return JSONResponse(
        {"sid": f"SM{n:032x}", "status": "queued", "to": params.get("To"), "num_segments": "1"},
        status_code=201,
    )


async def telegram(request: Request) -> Response:
    method = request.path_params["method"]
    params = await _params(request)
    if method not in ("sendMessage", "sendPhoto"):
        return JSONResponse({"ok": True, "result": True})
    fail = _failure("telegram")
    if fail:
        status, retry_after = fail
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": "fake failure"}
        if status == 429:
            body["description"] = f"Too Many Requests: retry after {retry_after or 1}"
            body["parameters"] = {"retry_after": retry_after or 1}
        return JSONResponse(body, status_code=status)
    n = next(ids)
    chat = str(params.get("chat_id", ""))
    text = str(params.get("text") or params.get("caption") or "")
    received.append({"api": "telegram", "to": chat, "text": text, "t": time.time()})
    return JSONResponse(
        {
            "ok": True,
            "result": {
                "message_id": n,
                "date": int(time.time()),
                "chat": {"id": int(chat) if chat.lstrip("-").isdigit() else 0, "type": "private"},
                "text": text,
            },
        }
    )


async def get_received(request: Request) -> Response:
    since = int(request.query_params.get("since", "0"))
    return JSONResponse({"records": received[since:], "total": len(received)})


async def get_attempts(request: Request) -> Response:
    return JSONResponse(attempts)


async def post_fail(request: Request) -> Response:
    spec = json.loads(await request.body())
    for _ in range(int(spec.get("times", 1))):
        failures[spec["api"]].append((int(spec["status"]), spec.get("retry_after")))
    return JSONResponse({"ok": True})


async def post_reset(request: Request) -> Response:
    received.clear()
    for q in failures.values():
        q.clear()
    for k in attempts:
        attempts[k] = 0
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[
        Route("/2010-04-01/Accounts/{sid}/Messages.json", twilio, methods=["POST"]),
        Route("/bot{token}/{method}", telegram, methods=["POST", "GET"]),
        Route("/_received", get_received),
        Route("/_attempts", get_attempts),
        Route("/_fail", post_fail, methods=["POST"]),
        Route("/_reset", post_reset, methods=["POST"]),
    ]
)


async def bare(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: an ASGI app that reads the request and answers 200, nothing else."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/xml")]}
    )
    await send({"type": "http.response.body", "body": b"<Response/>"})


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--bare", action="store_true", help="Serve the bare 200 app instead.")
    args = parser.parse_args()
    # The fakes stamp each reply's arrival: a pause of theirs would count as the stack's
    # latency. No cycle collection (a full one walks every reply recorded so far); a fake
    # lives for one bench run or one test, and refcounting frees the rest.
    gc.disable()
    # Served like `relais serve` serves the gateway: one uvicorn process, no access log.
    uvicorn.run(
        bare if args.bare else app,
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
