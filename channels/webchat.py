"""The web chat: widget and demo page, the tenant's WebSocket, photo upload, and the sender."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from bot.core.channel import Channel
from bot.core.errors import RelaisError, TooLarge, Unavailable
from bot.core.types import Inbound, Media, Outbound, SendResult
from bot.storage.models import Conversation, Direction, Message
from channels.routes import read_limited

if TYPE_CHECKING:
    from bot.app.runtime import Runtime
    from bot.core.settings import Settings
    from bot.messaging.bus import Bus
    from bot.storage.db import Database

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "webchat_static"
WS_PATH = "/channels/webchat/ws"
UPLOAD_PATH = "/channels/webchat/upload"
MEDIA_PATH = "/channels/webchat/media"
SESSION_HEADER = "x-webchat-session"
MAX_FRAME = 16 * 1024  # one WebSocket message from the widget
MAX_TEXT = 4000
HISTORY = 200
# Image types accepted for upload, with the first bytes each file format starts with.
IMAGE_TYPES = {
    "image/jpeg": (".jpg", (b"\xff\xd8\xff",)),
    "image/png": (".png", (b"\x89PNG\r\n\x1a\n",)),
    "image/gif": (".gif", (b"GIF87a", b"GIF89a")),
    "image/webp": (".webp", (b"RIFF",)),
}
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
_REF = re.compile(r"([0-9a-f]{16})/([0-9a-f]{32}\.(?:jpg|png|gif|webp))")


class WebChatChannel(Channel):
    """Sender for the web chat: a reply is published on the bus; the tenant's sockets push it."""

    name: ClassVar[str] = "webchat"

    def __init__(
        self,
        *,
        bus: Bus,
        db: Database,
        secret: str,
        origins: str = "*",
        uploads: Path = Path("var/uploads"),
        max_upload: int = 5 * 1024 * 1024,
    ) -> None:
        self.bus = bus
        self.db = db
        self._key = hashlib.sha256(b"relais-webchat:" + secret.encode()).digest()
        self.origins = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()}
        self.uploads = uploads
        self.max_upload = max_upload

    @classmethod
    def from_settings(cls, settings: Settings, *, bus: Bus, db: Database) -> WebChatChannel:
        return cls(
            bus=bus,
            db=db,
            secret=settings.secret_key.get_secret_value(),
            origins=settings.webchat_origins,
        )

    # -- sessions: a random token signed by the server, so a client cannot choose its own --

    def new_session(self) -> str:
        token = secrets.token_urlsafe(24)
        return f"{token}.{self._sign(token)}"

    def valid_session(self, session: Any) -> bool:
        if not isinstance(session, str) or len(session) > 100:
            return False
        token, _, mac = session.partition(".")
        return bool(token) and hmac.compare_digest(mac, self._sign(token))

    def _sign(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def owner(session: str) -> str:
        """A short, non-secret name for a session: upload folders and provider ids use it."""
        return hashlib.sha256(session.encode()).hexdigest()[:16]

    def origin_allowed(self, origin: str | None) -> bool:
        if "*" in self.origins:
            return True
        return origin is not None and origin.rstrip("/") in self.origins

    # -- outbound --------------------------------------------------------------------------

    async def send(self, outbound: Outbound) -> SendResult:
        author, created = "bot", datetime.now(UTC).isoformat()
        shown = outbound.extra.get("shown")
        if isinstance(shown, dict):  # stored with the outbox row (store.outbox_row)
            author, created = shown.get("author", author), shown.get("created_at", created)
        elif outbound.message_id is not None:  # a row stored before that
            async with self.db.session() as s:
                msg = await s.get(Message, outbound.message_id)
                if msg is not None:
                    author, created = msg.author, msg.created_at.isoformat()
        await self.bus.publish(
            {
                "type": "webchat",
                "session": outbound.address,
                "message": {
                    "id": outbound.message_id,
                    "text": outbound.text,
                    "author": author,
                    "created_at": created,
                    "media": [_media_view(m.url, m.content_type) for m in outbound.media if m.url],
                },
            }
        )
        return SendResult(provider_id=f"webchat-{outbound.outbox_id}", status="sent")

    # -- uploads ---------------------------------------------------------------------------

    def upload_path(self, ref: str) -> Path | None:
        match = _REF.fullmatch(ref)
        return self.uploads / match[1] / match[2] if match else None

    async def read_upload(self, ref: str) -> tuple[bytes, str]:
        """The bytes and content type of an uploaded photo, for staff (the console).

        `ref` is `<owner>/<name>` (what follows /channels/webchat/media/ in a media url).
        """
        path = self.upload_path(ref)
        if path is None or not path.is_file():
            raise LookupError("no such upload")
        ctype = next(t for t, (ext, _) in IMAGE_TYPES.items() if path.suffix == ext)
        return await asyncio.to_thread(path.read_bytes), ctype


def _media_view(url: str | None, content_type: str | None) -> dict[str, Any]:
    return {"url": url, "content_type": content_type}


def _message_view(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "text": m.text,
        "author": m.author,
        "created_at": m.created_at.isoformat() if m.created_at else None,
        "media": [
            _media_view(a.get("url"), a.get("content_type"))
            for a in (m.media or [])
            if a.get("url")
        ],
        # The widget's own id for what the tenant typed, so a resent message is not shown twice.
        "client_id": (m.provider_id or "").partition(":")[2] or None
        if m.direction == Direction.IN.value
        else None,
    }


async def history(db: Database, session: str, since: int) -> list[dict[str, Any]]:
    """What the session missed: its own conversation only, never a staff note."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.channel == "webchat",
                    Conversation.address == session,
                    Message.id > since,
                    Message.internal.is_(False),
                )
                .order_by(Message.id.desc())
                .limit(HISTORY)
            )
        ).scalars()
        return [_message_view(m) for m in reversed(list(rows))]


def router(channel: WebChatChannel, runtime: Runtime) -> APIRouter:
    r = APIRouter()

    @r.get("/webchat/widget.js", include_in_schema=False)
    async def widget() -> FileResponse:
        return FileResponse(
            STATIC / "widget.js",
            media_type="application/javascript",
            headers={"Cache-Control": "public, max-age=300"},
        )

    @r.get("/webchat/", include_in_schema=False)
    async def demo() -> FileResponse:
        return FileResponse(STATIC / "demo.html", media_type="text/html")

    def cors(request: Request, response: Response) -> Response:
        origin = request.headers.get("origin")
        if origin and channel.origin_allowed(origin):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Headers"] = f"content-type, {SESSION_HEADER}"
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Vary"] = "Origin"
        return response

    @r.options(UPLOAD_PATH, include_in_schema=False)
    @r.options(MEDIA_PATH + "/{owner}/{name}", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        return cors(request, Response(status_code=204))

    def refuse(request: Request, status: int, reason: str) -> Response:
        return cors(request, JSONResponse({"error": reason}, status_code=status))

    @r.post(UPLOAD_PATH, include_in_schema=False)
    async def upload(request: Request) -> Response:
        session = request.headers.get(SESSION_HEADER, "")
        if not channel.origin_allowed(request.headers.get("origin")):
            return refuse(request, 403, "origin not allowed")
        if not channel.valid_session(session):
            return refuse(request, 403, "unknown session")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES:
            return refuse(request, 415, "only photos (JPEG, PNG, GIF, WebP)")
        try:
            body = await read_limited(request, channel.max_upload)
        except TooLarge:
            return refuse(request, 413, f"photo over {channel.max_upload // 1024 // 1024} MB")
        ext, magics = IMAGE_TYPES[ctype]
        if not body.startswith(magics):
            return refuse(request, 415, "the file is not the image it claims to be")
        owner = channel.owner(session)
        name = secrets.token_hex(16) + ext
        folder = channel.uploads / owner
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread((folder / name).write_bytes, body)
        ref = f"{owner}/{name}"
        return cors(
            request,
            JSONResponse({"ref": ref, "url": f"{MEDIA_PATH}/{ref}", "content_type": ctype}),
        )

    @r.get(MEDIA_PATH + "/{owner}/{name}", include_in_schema=False)
    async def media(owner: str, name: str, request: Request) -> Response:
        session = request.headers.get(SESSION_HEADER, "")
        if not channel.valid_session(session) or channel.owner(session) != owner:
            return refuse(request, 404, "not found")
        path = channel.upload_path(f"{owner}/{name}")
        if path is None or not path.is_file():
            return refuse(request, 404, "not found")
        data, ctype = await channel.read_upload(f"{owner}/{name}")
        return cors(
            request,
            Response(data, media_type=ctype, headers={"Cache-Control": "private, max-age=3600"}),
        )

    @r.websocket(WS_PATH)
    async def socket(websocket: WebSocket) -> None:
        if not channel.origin_allowed(websocket.headers.get("origin")):
            # Closing before accepting answers the handshake with 403.
            log.warning("web chat socket refused: origin not allowed")
            await websocket.close(code=1008)
            return
        await websocket.accept()
        try:
            await WebChatSocket(websocket, channel, runtime).run()
        except TimeoutError:  # no hello in time
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=1008)
        except WebSocketDisconnect:
            pass

    return r


class WebChatSocket:
    """One tenant's open widget: hello, history, then messages both ways."""

    def __init__(self, ws: WebSocket, channel: WebChatChannel, runtime: Runtime) -> None:
        self.ws = ws
        self.channel = channel
        self.runtime = runtime
        self.session = ""

    async def receive(self) -> dict[str, Any] | None:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        raw = message.get("text") or ""  # binary frames are not part of the protocol
        if len(raw) > MAX_FRAME:
            await self.ws.close(code=1009)
            raise WebSocketDisconnect(1009)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        return data if isinstance(data, dict) else None

    async def run(self) -> None:
        hello = await asyncio.wait_for(self.receive(), timeout=30)
        if not hello or hello.get("type") != "hello":
            await self.ws.close(code=1002)
            return
        session = hello.get("session")
        fresh = not self.channel.valid_session(session)
        if fresh:
            session = self.channel.new_session()  # first visit, or a token we did not issue
        self.session = str(session)
        since = hello.get("since")
        since = since if isinstance(since, int) and since > 0 else 0
        # Subscribe before reading the history, so nothing falls between the two.
        async with self.runtime.bus.subscribe(self.session) as events:
            await self.ws.send_json({"type": "welcome", "session": self.session})
            # A session issued a moment ago has no history: no query for a first visit.
            past = [] if fresh else await history(self.runtime.db, self.session, since)
            await self.ws.send_json({"type": "history", "messages": past})
            pusher = asyncio.create_task(self.push(events))
            try:
                while True:
                    data = await self.receive()
                    if data is not None and data.get("type") == "message":
                        await self.on_message(data)
                    elif data is not None and data.get("type") == "ping":
                        await self.ws.send_json({"type": "pong"})
            finally:
                pusher.cancel()
                with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                    await pusher

    async def push(self, events: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            event = await events.get()  # this session's only (bus.subscribe(session))
            if event.get("type") == "webchat":
                await self.ws.send_json({"type": "message", "message": event["message"]})
            elif event.get("type") == "webchat_typing":
                await self.ws.send_json({"type": "typing"})

    async def on_message(self, data: dict[str, Any]) -> None:
        client_id = data.get("id")
        if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
            await self.ws.send_json({"type": "error", "reason": "bad message id"})
            return
        text = str(data.get("text") or "")[:MAX_TEXT].strip()
        media: list[Media] = []
        for ref in data.get("media") or []:
            path = self.channel.upload_path(str(ref))
            # A session attaches only its own uploads.
            if path is None or path.parent.name != self.channel.owner(self.session):
                continue
            if path.is_file():
                ctype = next(t for t, (ext, _) in IMAGE_TYPES.items() if path.suffix == ext)
                media.append(Media(kind="photo", url=f"{MEDIA_PATH}/{ref}", content_type=ctype))
        if not text and not media:
            await self.ws.send_json({"type": "ack", "id": client_id, "message_id": None})
            return
        inbound = Inbound(
            channel="webchat",
            address=self.session,
            text=text,
            provider_id=f"{self.channel.owner(self.session)}:{client_id}",
            media=tuple(media),
        )
        try:
            recorded = await self.runtime.ingest(inbound)
        except (Unavailable, RelaisError) as exc:
            await self.ws.send_json(
                {"type": "error", "id": client_id, "reason": exc.reason, "retry": True}
            )
            return
        await self.ws.send_json({"type": "ack", "id": client_id, "message_id": recorded.message_id})
        if recorded.created:
            await self.announce(recorded.message_id, recorded.conversation_id)

    async def announce(self, message_id: int, conversation_id: int) -> None:
        """Show the message in the tenant's other tabs, and 'typing…' while the bot works."""
        async with self.runtime.db.session() as s:
            msg = await s.get(Message, message_id)
            conv = await s.get(Conversation, conversation_id)
            view = _message_view(msg) if msg is not None else None
            bot_answers = conv is not None and conv.state != "assigned"
        try:
            if view is not None:
                await self.runtime.bus.publish(
                    {"type": "webchat", "session": self.session, "message": view}
                )
            if bot_answers:
                await self.runtime.bus.publish({"type": "webchat_typing", "session": self.session})
        except Exception as exc:  # live display only: the history has it on reconnect
            log.warning("web chat event not published (%s)", type(exc).__name__)
