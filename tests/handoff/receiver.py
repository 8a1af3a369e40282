"""A local webhook receiver, as a landlord's system runs one: records every delivery, and can
be told to answer 500 or to keep silent past the sender's timeout first."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SECRET = "whsec_" + base64.b64encode(b"relais-test-webhook-secret-0123").decode()


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int
    at: float  # when it arrived (time.monotonic)

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class Receiver:
    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.failures: deque[tuple[str, float]] = deque()  # ("status", 500) or ("sleep", 1.0)
        self.failing_type: str | None = None  # only events of this type fail (None: any)
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                arrived = time.monotonic()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                kind = json.loads(body or b"{}").get("type")
                with receiver._lock:
                    action = None
                    if receiver.failures and receiver.failing_type in (None, kind):
                        action = receiver.failures.popleft()
                status = 200
                if action is not None and action[0] == "sleep":
                    time.sleep(action[1])
                    status = 599  # the sender gave up before this answer
                elif action is not None:
                    status = int(action[1])
                with receiver._lock:
                    receiver.deliveries.append(
                        Delivery(dict(self.headers.items()), body, status, arrived)
                    )
                try:
                    self.send_response(200 if status == 599 else status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass  # the sender hung up (timeout)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/relais"

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.deliveries if d.status == 200]
