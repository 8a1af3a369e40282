"""Fake Twilio REST and Telegram Bot API servers on 127.0.0.1 that record what they receive.

One HTTP server speaks both APIs (their paths differ). Tell it to fail:
`fake.fail("twilio", 500)`, `fake.fail("telegram", 429, retry_after=1)`; each failure is used
once, in order. By hand: `python -m tests.channels.fakes --port 8099` prints every request; POST an Update to
/fake/telegram/updates to have getUpdates (`relais telegram poll`) return it.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

TWILIO_MESSAGES = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")
TELEGRAM_METHOD = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>\w+)$")
TELEGRAM_FILE = re.compile(r"^/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
# A tiny valid JPEG header: enough for a content check, not an image viewer.
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"\xff\xd9"


@dataclass
class Call:
    api: str  # "twilio" or "telegram"
    method: str  # "Messages.json", "sendMessage", "getFile", ...
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)
    auth: tuple[str, str] | None = None


@dataclass
class Failure:
    status: int
    retry_after: int | None = None
    code: int | None = None
    description: str = ""


class FakeProviders:
    def __init__(
        self,
        *,
        twilio_sid: str = "AC00000000000000000000000000000001",
        twilio_token: str = "twilio-test-token",
        telegram_token: str = "123456:TEST-token_for-fake",
        port: int = 0,
        verbose: bool = False,
    ) -> None:
        self.twilio_sid = twilio_sid
        self.twilio_token = twilio_token
        self.telegram_token = telegram_token
        self.verbose = verbose
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []  # served by getUpdates
        self.files: dict[str, bytes] = {"photos/file_1.jpg": JPEG}
        self._failures: dict[str, deque[Failure]] = {"twilio": deque(), "telegram": deque()}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.server = _Server(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProviders:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(
        self,
        api: str,
        status: int,
        *,
        times: int = 1,
        retry_after: int | None = None,
        code: int | None = None,
        description: str = "",
    ) -> None:
        for _ in range(times):
            self._failures[api].append(Failure(status, retry_after, code, description))

    # -- what was received -------------------------------------------------------------

    def twilio_sent(self) -> list[dict[str, Any]]:
        """Messages Twilio accepted (created), in order."""
        return [c.params for c in self.calls if c.api == "twilio" and c.status == 201]

    def telegram_calls(self, method: str, *, ok_only: bool = True) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.calls
            if c.api == "telegram" and c.method == method and (c.status == 200 or not ok_only)
        ]

    def attempts(self, api: str) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.api == api and c.method in ("Messages.json", "sendMessage", "sendPhoto")
        ]

    # -- the HTTP side -------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                m = TELEGRAM_FILE.match(self.path)
                if m and m["token"] == fake.telegram_token and m["path"] in fake.files:
                    fake._record(Call("telegram", "file", {"path": m["path"]}, 200))
                    self._reply(200, fake.files[m["path"]], "image/jpeg")
                    return
                m = TELEGRAM_METHOD.match(self.path.split("?")[0])
                if m:
                    self._telegram(m["token"], m["method"], {})
                    return
                self._reply(404, b'{"error":"not found"}')

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                path = self.path.split("?")[0]
                if path == "/fake/telegram/updates":  # queue an update for getUpdates, by hand
                    with fake._lock:
                        fake.updates.append(json.loads(body))
                    self._reply(200, b'{"queued":true}')
                elif m := TWILIO_MESSAGES.match(path):
                    self._twilio(m["sid"], body)
                elif m := TELEGRAM_METHOD.match(path):
                    self._telegram(m["token"], m["method"], self._params(body))
                else:
                    self._reply(404, b'{"error":"not found"}')

            def _params(self, body: bytes) -> dict[str, Any]:
                ctype = self.headers.get("content-type", "")
                if ctype.startswith("application/json"):
                    data = json.loads(body or b"{}")
                    return data if isinstance(data, dict) else {}
                if ctype.startswith("multipart/form-data"):
                    msg = BytesParser(policy=HTTP).parsebytes(
                        f"Content-Type: {ctype}\r\n\r\n".encode() + body
                    )
                    params: dict[str, Any] = {}
                    for part in msg.iter_parts():
                        name = part.get_param("name", header="content-disposition")
                        params[str(name)] = part.get_content()
                    return params
                return {
                    k: v[-1] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()
                }

            def _reply(
                self,
                status: int,
                body: bytes,
                ctype: str = "application/json",
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def _twilio(self, sid: str, body: bytes) -> None:
                pairs = parse_qs(body.decode(), keep_blank_values=True)
                params: dict[str, Any] = {k: v[-1] for k, v in pairs.items()}
                if "MediaUrl" in pairs:
                    params["MediaUrl"] = pairs["MediaUrl"]
                auth = self.headers.get("authorization", "")
                user, _, password = (
                    base64.b64decode(auth.removeprefix("Basic "))
                    .decode(errors="replace")
                    .partition(":")
                    if auth.startswith("Basic ")
                    else ("", "", "")
                )
                if (user, password) != (fake.twilio_sid, fake.twilio_token) or sid != user:
                    fake._record(
                        Call("twilio", "Messages.json", params, 401, auth=(user, password))
                    )
                    self._reply(
                        401,
                        json.dumps(
                            {"code": 20003, "message": "Authenticate", "status": 401}
                        ).encode(),
                    )
                    return
                failure = fake._next_failure("twilio")
                if failure:
                    fake._record(Call("twilio", "Messages.json", params, failure.status))
                    headers = (
                        {"Retry-After": str(failure.retry_after)} if failure.retry_after else {}
                    )
                    self._reply(
                        failure.status,
                        json.dumps(
                            {
                                "code": failure.code or 20500,
                                "message": failure.description or "Internal Server Error",
                                "more_info": f"https://www.twilio.com/docs/errors/{failure.code or 20500}",
                                "status": failure.status,
                            }
                        ).encode(),
                        headers=headers,
                    )
                    return
                fake._record(Call("twilio", "Messages.json", params, 201, auth=(user, password)))
                msg_sid = f"SM{next(fake._ids):032x}"
                self._reply(
                    201,
                    json.dumps(
                        {
                            "account_sid": sid,
                            "api_version": "2010-04-01",
                            "body": params.get("Body"),
                            "date_created": time.strftime(
                                "%a, %d %b %Y %H:%M:%S +0000", time.gmtime()
                            ),
                            "direction": "outbound-api",
                            "error_code": None,
                            "error_message": None,
                            "from": params.get("From"),
                            "messaging_service_sid": None,
                            "num_media": str(len(pairs.get("MediaUrl", []))),
                            "num_segments": "1",
                            "price": None,
                            "price_unit": "USD",
                            "sid": msg_sid,
                            "status": "queued",
                            "to": params.get("To"),
                            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{msg_sid}.json",
                        }
                    ).encode(),
                )

            def _telegram(self, token: str, method: str, params: dict[str, Any]) -> None:
                if token != fake.telegram_token:
                    fake._record(Call("telegram", method, params, 401))
                    self._reply(401, b'{"ok":false,"error_code":401,"description":"Unauthorized"}')
                    return
                failure = (
                    fake._next_failure("telegram")
                    if method in ("sendMessage", "sendPhoto")
                    else None
                )
                if failure:
                    fake._record(Call("telegram", method, params, failure.status))
                    answer: dict[str, Any] = {
                        "ok": False,
                        "error_code": failure.status,
                        "description": failure.description
                        or {
                            429: f"Too Many Requests: retry after {failure.retry_after}",
                            403: "Forbidden: bot was blocked by the user",
                            400: "Bad Request: chat not found",
                        }.get(failure.status, "Internal Server Error"),
                    }
                    if failure.retry_after is not None:
                        answer["parameters"] = {"retry_after": failure.retry_after}
                    self._reply(failure.status, json.dumps(answer).encode())
                    return
                result = fake._telegram_result(method, params)
                fake._record(Call("telegram", method, params, 200))
                self._reply(200, json.dumps({"ok": True, "result": result}).encode())

        return Handler

    def _telegram_result(self, method: str, params: dict[str, Any]) -> Any:
        now = int(time.time())
        if method in ("sendMessage", "sendPhoto"):
            chat_id = int(params.get("chat_id", 0))
            result: dict[str, Any] = {
                "message_id": next(self._ids),
                "date": now,
                "chat": {"id": chat_id, "type": "private", "first_name": "Tenant"},
                "from": {
                    "id": 123456,
                    "is_bot": True,
                    "first_name": "Relais",
                    "username": "relais_demo_bot",
                },
            }
            if method == "sendMessage":
                result["text"] = params.get("text", "")
            else:
                result["photo"] = [
                    {"file_id": "AgAC-sent", "file_unique_id": "sent", "width": 90, "height": 90}
                ]
            return result
        if method == "getFile":
            path = "photos/file_1.jpg"
            return {
                "file_id": params.get("file_id"),
                "file_unique_id": "AQADfile1",
                "file_size": len(self.files[path]),
                "file_path": path,
            }
        if method == "getUpdates":
            offset = int(params.get("offset") or 0)
            with self._lock:
                # Telegram returns pending updates in increasing update_id order.
                pending = sorted(
                    (u for u in self.updates if u["update_id"] >= offset),
                    key=lambda u: int(u["update_id"]),
                )
            if not pending:
                time.sleep(min(float(params.get("timeout") or 0), 0.5))
            return pending
        if method == "getMe":
            return {
                "id": 123456,
                "is_bot": True,
                "first_name": "Relais",
                "username": "relais_demo_bot",
            }
        return True  # setWebhook, deleteWebhook...

    def _next_failure(self, api: str) -> Failure | None:
        with self._lock:
            return self._failures[api].popleft() if self._failures[api] else None

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
        if self.verbose:
            shown = {k: v for k, v in call.params.items() if k != "reply_markup"}
            dumped = json.dumps(shown, ensure_ascii=False)[:300]
            print(f"{call.api:8} {call.method:14} {call.status}  {dumped}", flush=True)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up (a long poll cancelled at shutdown) is not an error here.
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8099)
    args = parser.parse_args()
    fake = FakeProviders(port=args.port, verbose=True).start()
    print(
        f"Fake providers on {fake.url}\n"
        f"  RELAIS_TWILIO_API_BASE={fake.url} RELAIS_TWILIO_ACCOUNT_SID={fake.twilio_sid} "
        f"RELAIS_TWILIO_AUTH_TOKEN={fake.twilio_token}\n"
        f"  RELAIS_TELEGRAM_API_BASE={fake.url} RELAIS_TELEGRAM_TOKEN={fake.telegram_token}",
        flush=True,
    )
    try:
        fake.thread.join()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
