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
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import redis.asyncio as redis
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from sqlalchemy import select

from bot.core.channel import Channel
from bot.core.errors import Malformed, RelaisError, TooLarge, Unavailable
from bot.core.types import Inbound, Media, Outbound, SendResult
from bot.messaging.alerts import report_flood
from bot.storage.models import Conversation, Direction, Message, Outbox
from bot.storage.uploads import KEY, LocalUploads, UploadStore, build_upload_store
from channels.clients import Decision, WebChatLimits, client_address
from channels.payloads import WebChatHello, WebChatMessage, depth_check, web_chat_frame
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
FORGET_PATH = "/channels/webchat/forget"
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
ADDRESS_PREFIX = "web-"
ROTATION_GRACE = 60  # seconds a replaced token still works (tabs, requests in flight)
_SID = re.compile(r"[A-Za-z0-9_-]{24}")
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


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
        store: UploadStore | None = None,
        max_upload: int = 5 * 1024 * 1024,
        quota: UploadQuota | None = None,
        idle: float = 14 * 24 * 3600,
        clock: Callable[[], float] = time.time,
        limits: WebChatLimits | None = None,
        forwarded_header: str | None = None,
        ledger: TokenLedger | None = None,
    ) -> None:
        self.bus = bus
        self.db = db
        self._key = hashlib.sha256(b"relais-webchat:" + secret.encode()).digest()
        self._pseudonym_key = hashlib.sha256(b"relais-webchat-address:" + secret.encode()).digest()
        self.idle = idle
        self.clock = clock
        self.limits = limits or WebChatLimits()
        self.ledger = ledger or TokenLedger(ttl=idle)
        self.forwarded_header = forwarded_header
        self.origins = {o.strip().rstrip("/") for o in origins.split(",") if o.strip()}
        self.store: UploadStore = store or LocalUploads(Path("var/uploads"))
        self.max_upload = max_upload
        self.quota = quota or UploadQuota()
        self._quota_lock = asyncio.Lock()  # a session's parallel uploads are counted one by one
        self._total: tuple[float, int] | None = None  # (when counted, bytes stored in all)

    @classmethod
    def from_settings(
        cls, settings: Settings, *, bus: Bus, db: Database, store: UploadStore | None = None
    ) -> WebChatChannel:
        return cls(
            bus=bus,
            db=db,
            store=store or build_upload_store(settings),
            max_upload=settings.upload_max_mb * 1024 * 1024,
            quota=UploadQuota(
                files_per_session=settings.uploads_per_session,
                bytes_per_session=settings.uploads_session_mb * 1024 * 1024,
                bytes_in_all=settings.uploads_total_mb * 1024 * 1024,
                unattached=settings.uploads_unattached_minutes * 60,
            ),
            secret=settings.secret_key.get_secret_value(),
            origins=settings.webchat_origins,
            idle=settings.webchat_session_idle_hours * 3600,
            limits=WebChatLimits(
                redis_url=settings.redis_url,
                sessions_per_ip_hour=settings.webchat_sessions_per_ip_hour,
                sessions_per_hour=settings.webchat_sessions_per_hour,
                messages_per_ip_minute=settings.webchat_messages_per_ip_minute,
                messages_per_minute=settings.webchat_messages_per_minute,
            ),
            forwarded_header=settings.forwarded_header,
            ledger=TokenLedger(settings.redis_url, ttl=settings.webchat_session_idle_hours * 3600),
        )

    def client(self, peer: object, headers: Any) -> str:
        """The address a request or socket is counted by (see channels.clients)."""
        return client_address(peer, headers, self.forwarded_header)

    async def aclose(self) -> None:
        await self.limits.close()
        await self.ledger.close()

    # -- sessions ------------------------------------------------------------------------
    # A token is `<session id>.<issued at, hex seconds>.<nonce>.<signature>`: the server signs
    # it, so a client cannot choose its own. Each use (a hello, a message) hands the widget a
    # fresh one; the ledger remembers each session's newest, and a token issued more than
    # `ROTATION_GRACE` seconds before it is refused. Every token is refused once older than
    # `idle`: a session left alone ends.
    # Staff never see a token: a conversation's address is `web-<HMAC of the session id>`,
    # the same under every token of the session.

    def new_session(self, sid: str | None = None) -> str:
        sid = sid or secrets.token_urlsafe(18)
        # A nonce: two tokens issued within the same second differ all the same.
        body = f"{sid}.{int(self.clock()):x}.{secrets.token_hex(4)}"
        return f"{body}.{self._sign(body)}"

    def session_id(self, session: Any) -> str | None:
        """The session a token belongs to, or None: forged, tampered with or expired."""
        if not isinstance(session, str) or len(session) > 100:
            return None
        body, _, mac = session.rpartition(".")
        sid, _, rest = body.partition(".")
        issued, _, _nonce = rest.partition(".")
        if not _SID.fullmatch(sid) or not hmac.compare_digest(
            mac.encode(), self._sign(body).encode()
        ):
            return None
        try:
            age = self.clock() - int(issued, 16)
        except ValueError:
            return None
        return sid if -300 <= age <= self.idle else None

    def valid_session(self, session: Any) -> bool:
        return self.session_id(session) is not None

    async def current(self, session: Any) -> str | None:
        """The session of a token still in use: valid (`session_id`) and not replaced by a
        newer token of its session more than `ROTATION_GRACE` seconds before it was issued
        (other tabs of the browser and requests in flight keep working that long)."""
        sid = self.session_id(session)
        if sid is None:
            return None
        latest = await self.ledger.latest(sid)
        issued = int(str(session).split(".")[1], 16)
        return sid if latest is None or issued >= latest - ROTATION_GRACE else None

    async def issue(self, sid: str | None = None) -> str:
        """A new token (for a new session, or the next of `sid`'s), recorded as its newest."""
        token = self.new_session(sid)
        await self.ledger.record(token.partition(".")[0], int(token.split(".")[1], 16))
        return token

    async def renew(self, session: Any) -> str | None:
        """A fresh token for the same session; None if `session` is not a current token."""
        sid = await self.current(session)
        return await self.issue(sid) if sid else None

    async def revoke(self, session: Any) -> str | None:
        """End a session ("forget this device"): every token of it, this one and any issued
        before, is refused from now on. Its conversation stays, for staff. The address of the
        session ended, or None if `session` was not a current token."""
        sid = await self.current(session)
        if sid is None:
            return None
        # Newest "issued" beyond anything the session could hold: `current` refuses them all
        # until the ledger forgets the session, when every token of it is past its idle time.
        await self.ledger.record(sid, int(self.clock() + self.idle) + ROTATION_GRACE + 1)
        return f"{ADDRESS_PREFIX}{self._owner_of(sid)}"

    def _sign(self, body: str) -> str:
        return hmac.new(self._key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def _owner_of(self, sid: str) -> str:
        return hmac.new(self._pseudonym_key, sid.encode(), hashlib.sha256).hexdigest()[:16]

    def owner(self, session: str) -> str:
        """A short, non-secret, stable name for a session: its upload folder and address."""
        sid = self.session_id(session)
        return self._owner_of(sid) if sid else ""

    def address_of(self, session: Any) -> str | None:
        """The conversation address of a session ("web-3f9a…"); None for an invalid token."""
        sid = self.session_id(session)
        return f"{ADDRESS_PREFIX}{self._owner_of(sid)}" if sid else None

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
        message: dict[str, Any] = {
            "id": outbound.message_id,
            "text": outbound.text,
            "author": author,
            "created_at": created,
            "media": [_media_view(m.url, m.content_type) for m in outbound.media if m.url],
        }
        if outbound.extra.get("kind") == "emergency":
            # A safety text: the widget shows it as one (added field; older widgets ignore it).
            message["kind"] = "emergency"
        await self.bus.publish({"type": "webchat", "session": outbound.address, "message": message})
        return SendResult(provider_id=f"webchat-{outbound.outbox_id}", status="sent")

    # -- uploads ---------------------------------------------------------------------------

    @property
    def uploads(self) -> Path | None:
        """The folder of a local store (None for S3)."""
        return self.store.root if isinstance(self.store, LocalUploads) else None

    @uploads.setter
    def uploads(self, folder: Path) -> None:
        self.store = LocalUploads(folder)

    def upload_path(self, ref: str) -> Path | None:
        """Where a local store keeps `ref` (None for S3 or a malformed ref)."""
        if not isinstance(self.store, LocalUploads) or not KEY.fullmatch(ref):
            return None
        return self.store.path(ref)

    async def read_upload(self, ref: str) -> tuple[bytes, str]:
        """The bytes and content type of an uploaded photo, for staff (the console).

        `ref` is `<owner>/<name>` (what follows /channels/webchat/media/ in a media url).
        """
        if not KEY.fullmatch(ref):
            raise LookupError("no such upload")
        return await self.store.get(ref), _content_type(ref)

    async def store_upload(self, owner: str, body: bytes, ctype: str) -> str | None:
        """Keep a session's photo; its key, or None when a quota would be passed."""
        q = self.quota
        async with self._quota_lock:
            mine = await self.store.list(owner + "/")
            if len(mine) >= q.files_per_session:
                return None
            if sum(x.size for x in mine) + len(body) > q.bytes_per_session:
                return None
            counted_at, total = self._total or (0.0, 0)
            if time.monotonic() - counted_at > 300:  # the sweep deleted some meanwhile
                counted_at, total = time.monotonic(), sum(x.size for x in await self.store.list())
            if total + len(body) > q.bytes_in_all:
                self._total = (counted_at, total)
                raise QuotaFull
            key = f"{owner}/{secrets.token_hex(16)}{IMAGE_TYPES[ctype][0]}"
            await self.store.put(key, body, ctype)
            self._total = (counted_at, total + len(body))
        return key

    async def attachable(self, owner: str, refs: list[Any]) -> list[str]:
        """The refs a session may attach: its own uploads, still kept and not about to be
        swept away as never attached."""
        wanted = [str(r) for r in refs[:10] if isinstance(r, str) and KEY.fullmatch(r)]
        wanted = [r for r in wanted if r.partition("/")[0] == owner]
        if not wanted:
            return []
        limit = datetime.now(UTC) - timedelta(seconds=self.quota.unattached - 60)
        kept = {x.key for x in await self.store.list(owner + "/") if x.modified > limit}
        return [r for r in wanted if r in kept]


class TokenLedger:
    """When each web-chat session's newest token was issued: in Redis when configured (every
    gateway sees a rotation), in memory otherwise. Redis away: only the token's own checks
    (signature, age) apply. Redis keys hold a hash of the session id, never the id itself."""

    def __init__(self, redis_url: str | None = None, *, ttl: float, prefix: str = "relais"):
        self.redis: Any = (
            redis.from_url(
                redis_url, decode_responses=True, socket_timeout=1, socket_connect_timeout=1
            )
            if redis_url
            else None
        )
        self.ttl = int(ttl) + 1
        self.prefix = prefix
        self._memory: dict[str, int] = {}

    def _key(self, sid: str) -> str:
        return f"{self.prefix}:wcsess:{hashlib.sha256(sid.encode()).hexdigest()[:32]}"

    async def latest(self, sid: str) -> int | None:
        if self.redis is None:
            return self._memory.get(sid)
        try:
            value = await self.redis.get(self._key(sid))
        except Exception as exc:
            log.warning("web chat token ledger unavailable (%s)", type(exc).__name__)
            return None
        return int(value) if value else None

    async def record(self, sid: str, issued: int) -> None:
        if self.redis is None:
            if len(self._memory) > 100_000:  # forget sessions past their idle time
                cutoff = min(issued, int(time.time())) - self.ttl  # (a revocation is ahead)
                self._memory = {k: v for k, v in self._memory.items() if v >= cutoff}
            self._memory[sid] = max(issued, self._memory.get(sid, 0))
            return
        try:
            await self.redis.set(self._key(sid), issued, ex=self.ttl)
        except Exception as exc:
            log.warning("web chat token ledger unavailable (%s)", type(exc).__name__)

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()


class QuotaFull(Exception):
    """The uploads of every session together reached RELAIS_UPLOADS_TOTAL_MB."""


@dataclass(frozen=True, slots=True)
class UploadQuota:
    files_per_session: int = 20
    bytes_per_session: int = 40 * 1024 * 1024
    bytes_in_all: int = 2048 * 1024 * 1024
    unattached: float = 15 * 60  # seconds an upload may wait to be attached


def _content_type(ref: str) -> str:
    return next(t for t, (ext, _) in IMAGE_TYPES.items() if ref.endswith(ext))


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


async def history(db: Database, address: str, since: int) -> list[dict[str, Any]]:
    """What the session missed: its own conversation only, never a staff note."""
    async with db.session() as s:
        rows = (
            await s.execute(
                select(Message)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .where(
                    Conversation.channel == "webchat",
                    Conversation.address == address,
                    Message.id > since,
                    Message.internal.is_(False),
                )
                .order_by(Message.id.desc())
                .limit(HISTORY)
            )
        ).scalars()
        messages = list(reversed(list(rows)))
        # Which of the bot's messages were safety texts: their outbox rows say so.
        sent = [m.id for m in messages if m.direction == Direction.OUT.value]
        urgent: set[int] = set()
        if sent:
            extras = await s.execute(
                select(Outbox.message_id, Outbox.extra).where(Outbox.message_id.in_(sent))
            )
            urgent = {mid for mid, extra in extras if (extra or {}).get("kind") == "emergency"}
        views = [_message_view(m) for m in messages]
        for view in views:
            if view["id"] in urgent:
                view["kind"] = "emergency"
        return views


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
    @r.options(FORGET_PATH, include_in_schema=False)
    @r.options(MEDIA_PATH + "/{owner}/{name}", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        return cors(request, Response(status_code=204))

    async def flooded(decision: Decision) -> None:
        if decision.tripped:  # the first refusal of its window: on-call and managers know
            await report_flood(runtime, "webchat")

    def refuse(request: Request, status: int, reason: str) -> Response:
        return cors(request, JSONResponse({"error": reason}, status_code=status))

    @r.post(UPLOAD_PATH, include_in_schema=False)
    async def upload(request: Request) -> Response:
        session = request.headers.get(SESSION_HEADER, "")
        if not channel.origin_allowed(request.headers.get("origin")):
            return refuse(request, 403, "origin not allowed")
        if await channel.current(session) is None:
            return refuse(request, 403, "unknown session")
        decision = await channel.limits.message(channel.client(request.client, request.headers))
        if not decision.allowed:
            await flooded(decision)
            response = refuse(request, 429, "too many uploads, try again later")
            response.headers["Retry-After"] = str(decision.retry_after)
            return response
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in IMAGE_TYPES:
            return refuse(request, 415, "only photos (JPEG, PNG, GIF, WebP)")
        try:
            body = await read_limited(request, channel.max_upload)
        except TooLarge:
            return refuse(request, 413, f"photo over {channel.max_upload // 1024 // 1024} MB")
        _ext, magics = IMAGE_TYPES[ctype]
        if not body.startswith(magics):
            return refuse(request, 415, "the file is not the image it claims to be")
        try:
            ref = await channel.store_upload(channel.owner(session), body, ctype)
        except QuotaFull:
            log.warning("web chat upload refused: RELAIS_UPLOADS_TOTAL_MB reached")
            return refuse(request, 507, "no room for photos right now")
        if ref is None:
            return refuse(request, 429, "this conversation has as many photos as it may")
        return cors(
            request,
            JSONResponse({"ref": ref, "url": f"{MEDIA_PATH}/{ref}", "content_type": ctype}),
        )

    @r.post(FORGET_PATH, include_in_schema=False)
    async def forget(request: Request) -> Response:
        """ "Oublier cet appareil": the session ends here; its open sockets are told and closed."""
        if not channel.origin_allowed(request.headers.get("origin")):
            return refuse(request, 403, "origin not allowed")
        address = await channel.revoke(request.headers.get(SESSION_HEADER, ""))
        if address is None:
            return refuse(request, 403, "unknown session")
        try:
            await runtime.bus.publish({"type": "webchat_forget", "session": address})
        except Exception as exc:  # the other tabs' sockets find out at their next hello
            log.warning("web chat event not published (%s)", type(exc).__name__)
        return cors(request, Response(status_code=204))

    @r.get(MEDIA_PATH + "/{owner}/{name}", include_in_schema=False)
    async def media(owner: str, name: str, request: Request) -> Response:
        session = request.headers.get(SESSION_HEADER, "")
        if await channel.current(session) is None or channel.owner(session) != owner:
            return refuse(request, 404, "not found")
        try:
            data, ctype = await channel.read_upload(f"{owner}/{name}")
        except LookupError:
            return refuse(request, 404, "not found")
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
        # Every end has its close frame, with a code saying why (a dropped socket tells the
        # widget nothing, and it would reconnect at once).
        code = 1000
        try:
            client = channel.client(websocket.client, websocket.headers)
            await WebChatSocket(websocket, channel, runtime, client).run()
        except TimeoutError:  # no hello in time
            code = 1008
        except WebSocketDisconnect:
            return
        except Malformed as exc:  # a frame of the wrong shape (channels.payloads)
            log.info("web chat socket closed: %s", exc.reason)
            code = 1007
        except Exception as exc:
            log.warning("web chat socket failed (%s)", type(exc).__name__)
            code = 1011
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code=code)

    return r


class WebChatSocket:
    """One tenant's open widget: hello, history, then messages both ways."""

    def __init__(
        self, ws: WebSocket, channel: WebChatChannel, runtime: Runtime, client: str = ""
    ) -> None:
        self.ws = ws
        self.client = client  # the address limits count this socket by
        self.channel = channel
        self.runtime = runtime
        self.session = ""  # the current token (it changes at every use)
        self.address = ""  # the conversation's address: the session's pseudonym

    async def receive(self) -> dict[str, Any] | None:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        raw = message.get("text") or ""  # binary frames are not part of the protocol
        if len(raw) > MAX_FRAME:
            await self._close(1009)
        try:
            data = json.loads(raw)
            depth_check(data)
        except (RecursionError, Malformed):
            await self._close(1009)  # nested deeper than a widget's frame: too big to take
        except ValueError:
            data = None
        return data if isinstance(data, dict) else None

    async def _close(self, code: int) -> None:
        await self.ws.close(code=code)
        raise WebSocketDisconnect(code)

    async def run(self) -> None:
        hello = await asyncio.wait_for(self.receive(), timeout=30)
        if not hello or hello.get("type") != "hello":
            await self.ws.close(code=1002)
            return
        fields: WebChatHello = web_chat_frame(WebChatHello, hello)
        rotated = await self.channel.renew(fields.token())
        fresh = rotated is None  # first visit, a token we did not issue, expired or replaced
        if fresh:
            # New sessions are counted per client address and in all: a script opening
            # sockets gets a few sessions, not one per socket.
            decision = await self.channel.limits.new_session(self.client)
            if not decision.allowed:
                await self.busy(decision)
                await self.ws.close(code=1013)  # try again later
                return
        self.session = rotated or await self.channel.issue()
        self.address = self.channel.address_of(self.session) or ""
        since = fields.since or 0
        # Subscribe before reading the history, so nothing falls between the two.
        async with self.runtime.bus.subscribe(self.address) as events:
            await self.ws.send_json({"type": "welcome", "session": self.session})
            # A session issued a moment ago has no history: no query for a first visit.
            past = [] if fresh else await history(self.runtime.db, self.address, since)
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
            event = await events.get()  # this session's only (bus.subscribe(address))
            if event.get("type") == "webchat":
                await self.ws.send_json({"type": "message", "message": event["message"]})
            elif event.get("type") == "webchat_typing":
                await self.ws.send_json({"type": "typing"})
            elif event.get("type") == "webchat_forget":  # the session ended (another tab)
                await self.ws.send_json({"type": "forgotten"})
                await self.ws.close(code=4001)
                return

    async def on_message(self, data: dict[str, Any]) -> None:
        fields: WebChatMessage = web_chat_frame(WebChatMessage, data)
        client_id = fields.id
        if not isinstance(client_id, str) or not _CLIENT_ID.fullmatch(client_id):
            await self.ws.send_json({"type": "error", "reason": "bad message id"})
            return
        text = (fields.text or "")[:MAX_TEXT].strip()
        media: list[Media] = []
        for ref in await self.channel.attachable(self.owner, fields.media or []):
            # A session attaches only its own uploads (attachable checks).
            media.append(
                Media(kind="photo", url=f"{MEDIA_PATH}/{ref}", content_type=_content_type(ref))
            )
        if not text and not media:
            await self.ws.send_json({"type": "ack", "id": client_id, "message_id": None})
            return
        decision = await self.channel.limits.message(self.client)
        if not decision.allowed:  # not stored: the widget keeps it and sends it again later
            await self.busy(decision, client_id)
            return
        inbound = Inbound(
            channel="webchat",
            address=self.address,
            text=text,
            provider_id=f"{self.owner}:{client_id}",
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
        await self.renew()
        if recorded.created:
            await self.announce(recorded.message_id, recorded.conversation_id)

    async def busy(self, decision: Decision, client_id: str | None = None) -> None:
        """Over a limit: say so (the widget shows its own text, with the emergency numbers)."""
        if decision.tripped:
            await report_flood(self.runtime, "webchat")
        await self.ws.send_json(
            {
                "type": "error",
                "id": client_id,
                "reason": "busy",
                "retry": client_id is not None,
                "retry_after": decision.retry_after,
            }
        )

    @property
    def owner(self) -> str:
        return self.address.removeprefix(ADDRESS_PREFIX)

    async def renew(self) -> None:
        """Each use hands the widget a fresh token; the previous one stops working
        `ROTATION_GRACE` seconds later (other tabs read the newest from storage)."""
        self.session = await self.channel.renew(self.session) or self.session
        await self.ws.send_json({"type": "session", "session": self.session})

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
                    {"type": "webchat", "session": self.address, "message": view}
                )
            if bot_answers:
                await self.runtime.bus.publish({"type": "webchat_typing", "session": self.address})
        except Exception as exc:  # live display only: the history has it on reconnect
            log.warning("web chat event not published (%s)", type(exc).__name__)
