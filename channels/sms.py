"""Twilio SMS and WhatsApp: the signed webhook, the delivery status callback, and the sender."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select, update
from twilio.request_validator import RequestValidator

from bot.errors import (
    BadSignature,
    Malformed,
    PermanentSendError,
    RelaisError,
    TransientSendError,
)
from bot.models import Message, Outbox
from bot.types import Inbound, Media, Outbound, SendResult
from channels import gsm7
from channels.base import WebhookChannel, WebhookRequest
from channels.routes import error_response, public_url, read_limited

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_MEDIA = 10  # Twilio sends at most ten MediaUrlN per message
WHATSAPP = "whatsapp:"

# Later statuses never go back to earlier ones: Twilio's callbacks can arrive out of order.
STATUS_RANK = {
    "accepted": 0, "queued": 1, "sending": 2, "sent": 3,
    "delivered": 4, "undelivered": 4, "failed": 4, "read": 5,
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
        client: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.api_base = api_base.rstrip("/")
        self.public_url = public_url.rstrip("/")
        self.validator = RequestValidator(auth_token)
        self.client = client or httpx.AsyncClient(timeout=timeout)

    # -- inbound ---------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        signature = request.headers.get("x-twilio-signature", "")
        if not signature or not self.validator.validate(request.url, request.form, signature):
            # The usual cause is a proxy: we checked another URL than the one Twilio signed.
            log.warning(
                "Twilio signature refused for URL %s (if the gateway is behind a proxy, "
                "RELAIS_PUBLIC_URL must be the URL configured in Twilio's console)",
                request.url,
            )
            raise BadSignature("missing signature" if not signature else "bad signature")

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
        data: dict[str, str | list[str]] = {
            "To": to,
            "From": sender,
            "Body": text,
            "StatusCallback": self.public_url + self.status_path,
        }
        urls = [m.url for m in outbound.media if m.url and m.url.startswith("http")]
        if urls:
            data["MediaUrl"] = urls[:MAX_MEDIA]
        url = f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            resp = await self.client.post(url, data=data, auth=(self.account_sid, self.auth_token))
        except httpx.TimeoutException as exc:
            raise TransientSendError(f"Twilio timed out ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise TransientSendError(f"Twilio unreachable ({type(exc).__name__})") from exc
        if resp.status_code == 429 or resp.status_code >= 500:
            raise TransientSendError(
                f"Twilio answered {resp.status_code}", retry_after=_retry_after(resp)
            )
        if resp.status_code >= 400:
            # Twilio's message may quote the phone number: keep only its codes.
            code = _json(resp).get("code", "?")
            hint = ""
            if resp.status_code == 401:
                hint = " (check RELAIS_TWILIO_ACCOUNT_SID and RELAIS_TWILIO_AUTH_TOKEN)"
            raise PermanentSendError(
                f"Twilio refused the message ({resp.status_code}, error {code}){hint}"
            )
        body = _json(resp)
        return SendResult(
            provider_id=str(body.get("sid") or "") or None,
            segments=gsm7.segments(text),
            status="sent",
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def _whatsapp(number: str) -> str:
    return number if number.startswith(WHATSAPP) else WHATSAPP + number


def _json(resp: httpx.Response) -> dict[str, object]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


def status_router(channel: TwilioChannel, runtime: Runtime) -> APIRouter:
    """`POST /channels/sms/twilio/status`: Twilio's delivery reports for the messages we sent."""
    router = APIRouter()

    @router.post(channel.status_path, include_in_schema=False)
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

    return router


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
