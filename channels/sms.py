"""Twilio SMS and WhatsApp: the signed webhook, the delivery status callback, and the sender."""

from __future__ import annotations

import hmac
import json
import logging
from typing import TYPE_CHECKING, ClassVar

import aiohttp
from fastapi import Request
from fastapi.responses import Response
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from bot.core.channel import WebhookChannel, WebhookRequest
from bot.core.errors import (
    BadSignature,
    Malformed,
    PermanentSendError,
    RelaisError,
    TransientSendError,
)
from bot.core.status import DeliveryStatus
from bot.core.types import Inbound, Media, Outbound, SendResult
from bot.storage.models import Message, Outbox
from channels import gsm7
from channels.routes import Endpoint, error_response, public_url, read_limited

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_MEDIA = 10  # Twilio sends at most ten MediaUrlN per message
WHATSAPP = "whatsapp:"

# Later statuses never go back to earlier ones: Twilio's callbacks can arrive out of order.
STATUS_RANK: dict[str, int] = {
    DeliveryStatus.ACCEPTED: 0, DeliveryStatus.QUEUED: 1, DeliveryStatus.SENDING: 2,
    DeliveryStatus.SENT: 3, DeliveryStatus.DELIVERED: 4, DeliveryStatus.UNDELIVERED: 4,
    DeliveryStatus.FAILED: 4, DeliveryStatus.READ: 5,
}  # fmt: skip


class TwilioChannel(WebhookChannel):
    name: ClassVar[str] = "sms"
    aliases: ClassVar[tuple[str, ...]] = ("whatsapp",)
    path: ClassVar[str] = "/channels/sms/twilio"
    status_path: ClassVar[str] = "/channels/sms/twilio/status"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str,
        public_url: str,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.api_base = api_base.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.timeout = timeout
        # aiohttp rather than httpx: far less CPU per request (bench/README.md), which counts when a
        # burst's replies all go out through one worker. Made on first use, in the running loop.
        self._session = session
        self._headers = {"Authorization": aiohttp.encode_basic_auth(account_sid, auth_token)}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=100, keepalive_timeout=30),
            )
        return self._session

    # -- inbound ---------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature or not self._signed(request.url, request.form, signature):
            # The usual cause is a proxy: we checked another URL than the one Twilio signed.
            log.warning(
                "Twilio signature refused for URL %s (if the gateway is behind a proxy, "
                "RELAIS_PUBLIC_URL must be the URL configured in Twilio's console)",
                request.url,
            )
            raise BadSignature("missing signature" if not signature else "bad signature")

    def _signed(self, url: str, form: dict[str, str], signature: str) -> bool:
        """The SDK's check, the usual case first: Twilio signed the URL as we received it.
        `validate` alone computes two signatures every time (the URL with and without its
        port), which cost as much CPU as storing the message."""
        computed = self.validator.compute_signature(url, form)
        if hmac.compare_digest(computed.encode(), signature.encode()):
            return True
        return bool(self.validator.validate(url, form, signature))

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        form = request.form
        sender = form.get("From", "")
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or ""
        if not sender or not sid:
            raise Malformed("missing From or MessageSid")
        channel = "whatsapp" if sender.startswith(WHATSAPP) else "sms"
        media: list[Media] = []
        try:
            count = int(form.get("NumMedia") or 0)
        except ValueError as exc:
            raise Malformed("NumMedia is not a number") from exc
        for i in range(min(max(count, 0), MAX_MEDIA)):
            url = form.get(f"MediaUrl{i}")
            if not url:
                raise Malformed(f"MediaUrl{i} missing")
            ctype = form.get(f"MediaContentType{i}") or None
            kind = "photo" if (ctype or "").startswith("image/") else "file"
            media.append(Media(kind=kind, url=url, content_type=ctype))
        if form.get("Latitude") and form.get("Longitude"):  # a WhatsApp shared location
            try:
                lat, lon = float(form["Latitude"]), float(form["Longitude"])
            except ValueError as exc:
                raise Malformed("bad Latitude/Longitude") from exc
            media.append(Media(kind="location", data={"lat": lat, "lon": lon}))
        return [
            Inbound(
                channel=channel,
                address=sender.removeprefix(WHATSAPP),
                text=form.get("Body", ""),
                provider_id=sid,
                media=tuple(media),
                raw=dict(form),
            )
        ]

    def acknowledge(self) -> tuple[int, str, str]:
        # Empty TwiML: the reply goes out later through the REST API, from the outbox.
        return 200, "text/xml", EMPTY_TWIML

    # -- outbound --------------------------------------------------------------------------

    def prepare_text(self, text: str) -> str:
        return gsm7.fold(text)

    async def send(self, outbound: Outbound) -> SendResult:
        text = self.prepare_text(outbound.text)
        to, sender = outbound.address, self.from_number
        if outbound.channel == "whatsapp":
            to, sender = _whatsapp(to), _whatsapp(sender)
        data = [
            ("To", to),
            ("From", sender),
            ("Body", text),
            ("StatusCallback", self.public_url + self.status_path),
        ]
        urls = [m.url for m in outbound.media if m.url and m.url.startswith("http")]
        data += [("MediaUrl", u) for u in urls[:MAX_MEDIA]]
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            async with self._client().post(url, data=data, headers=self._headers) as resp:
                status, retry_after = resp.status, resp.headers.get("retry-after", "")
                content = await resp.read()
        except TimeoutError as exc:
            raise TransientSendError("Twilio timed out") from exc
        except aiohttp.ClientError as exc:
            raise TransientSendError(f"Twilio unreachable ({type(exc).__name__})") from exc
        if status == 429 or status >= 500:
            raise TransientSendError(
                f"Twilio answered {status}",
                retry_after=float(retry_after) if retry_after.isdigit() else None,
            )
        if status >= 400:
            # Twilio's message may quote the phone number: keep only its codes.
            code = _json(content).get("code", "?")
            hint = ""
            if status == 401:
                hint = " (check RELAIS_TWILIO_ACCOUNT_SID and RELAIS_TWILIO_AUTH_TOKEN)"
            raise PermanentSendError(f"Twilio refused the message ({status}, error {code}){hint}")
        body = _json(content)
        return SendResult(
            provider_id=str(body.get("sid") or "") or None,
            segments=gsm7.segments(text),
            status=DeliveryStatus.SENT,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _whatsapp(number: str) -> str:
    return number if number.startswith(WHATSAPP) else WHATSAPP + number


def _json(content: bytes) -> dict[str, object]:
    try:
        body = json.loads(content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def status_endpoint(channel: TwilioChannel, runtime: Runtime) -> Endpoint:
    """`POST /channels/sms/twilio/status`: Twilio's delivery reports for the messages we sent."""

    async def status(request: Request) -> Response:
        try:
            body = await read_limited(request, channel.max_body)
            req = WebhookRequest(
                method=request.method,
                url=public_url(request, runtime.settings.public_url),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
            )
            await channel.verify(req)
            sid, state = req.form.get("MessageSid", ""), req.form.get("MessageStatus", "")
            if not sid or not state:
                raise Malformed("missing MessageSid or MessageStatus")
        except RelaisError as exc:
            log.warning("sms status callback refused: %s %s", exc.status, exc.reason)
            return error_response(exc)
        await record_status(runtime, sid, state.lower())
        return Response(content=EMPTY_TWIML, media_type="text/xml")

    return status


async def record_status(runtime: Runtime, sid: str, state: str) -> bool:
    """Set the delivery status of the message Twilio knows as `sid`; False if it is not ours."""
    async with runtime.db.transaction() as s:
        row = (
            await s.execute(
                select(Message.id, Message.delivery_status)
                .join(Outbox, Outbox.message_id == Message.id)
                .where(Outbox.provider_id == sid)
            )
        ).first()
        if row is None:
            return False  # not ours, or sent before this database: answered 200 all the same
        message_id, current = row
        if STATUS_RANK.get(state, 0) >= STATUS_RANK.get(current or "", 0):
            await s.execute(
                update(Message).where(Message.id == message_id).values(delivery_status=state)
            )
    return True
