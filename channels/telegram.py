"""Telegram: the secret-checked webhook, the sender (aiogram), file download and long polling."""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import secrets
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response
from aiogram.types import File, KeyboardButton, Message, ReplyKeyboardMarkup

from bot.core.channel import WebhookChannel, WebhookRequest
from bot.core.errors import (
    BadSecret,
    Malformed,
    PermanentSendError,
    RelaisError,
    TransientSendError,
    Unsupported,
)
from bot.core.status import DeliveryStatus
from bot.core.types import Inbound, Media, Outbound, SendResult

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message"]
# Media a tenant may send besides photos: stored with their file id, downloadable by staff.
FILE_KINDS = ("document", "voice", "audio", "video", "video_note")

# aiogram reads every answer as `Response[<return type>]`; pydantic keeps such generic classes
# only while something refers to them, and builds one again (milliseconds) after each full garbage
# collection. Held here, the classes for the calls Relais makes are built once.
_RESPONSE_TYPES = (Response[Message], Response[File], Response[bool])


class TelegramChannel(WebhookChannel):
    name: ClassVar[str] = "telegram"
    path: ClassVar[str] = "/channels/telegram"

    def __init__(
        self,
        *,
        token: str,
        secret: str | None,
        api_base: str = "https://api.telegram.org",
        button_label: str = "Partager mon numéro",
        bot: Bot | None = None,
    ) -> None:
        self.secret = secret
        self.button_label = button_label
        self.bot = bot or Bot(
            token, session=AiohttpSession(api=TelegramAPIServer.from_base(api_base))
        )

    # -- inbound ---------------------------------------------------------------------------

    async def verify(self, request: WebhookRequest) -> None:
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        if not self.secret or not secrets.compare_digest(given.encode(), self.secret.encode()):
            raise BadSecret("missing secret token" if not given else "bad secret token")

    def parse(self, request: WebhookRequest) -> list[Inbound]:
        return parse_update(request.json)

    # -- outbound --------------------------------------------------------------------------

    async def send(self, outbound: Outbound) -> SendResult:
        markup = None
        if outbound.extra.get("request_contact"):
            markup = ReplyKeyboardMarkup(
                keyboard=[[KeyboardButton(text=self.button_label, request_contact=True)]],
                resize_keyboard=True,
                one_time_keyboard=True,
            )
        photo = next(
            (
                m.file_id or m.url
                for m in outbound.media
                if m.kind == "photo" and (m.file_id or (m.url or "").startswith("http"))
            ),
            None,
        )
        try:
            if photo:
                sent = await self.bot.send_photo(
                    outbound.address, photo, caption=outbound.text or None, reply_markup=markup
                )
            else:
                sent = await self.bot.send_message(
                    outbound.address, outbound.text, reply_markup=markup
                )
        except TelegramRetryAfter as exc:
            raise TransientSendError(
                "Telegram: too many requests", retry_after=exc.retry_after
            ) from exc
        except (TelegramForbiddenError, TelegramUnauthorizedError, TelegramMigrateToChat) as exc:
            raise PermanentSendError(f"Telegram refused: {exc.message}") from exc
        except (TelegramBadRequest, TelegramNotFound) as exc:
            raise PermanentSendError(f"Telegram refused: {exc.message}") from exc
        except (TelegramServerError, TelegramNetworkError, ClientDecodeError) as exc:
            raise TransientSendError(f"Telegram unavailable ({type(exc).__name__})") from exc
        except TelegramAPIError as exc:  # another status: better retried than lost
            raise TransientSendError(f"Telegram error: {exc.message}") from exc
        return SendResult(provider_id=str(sent.message_id), status=DeliveryStatus.SENT)

    async def download_file(self, file_id: str) -> tuple[bytes, str]:
        """The bytes and content type of a file a tenant sent (a photo's `file_id`).

        Raises `LookupError` when Telegram does not know the file (or it is over 20 MB).
        """
        try:
            info = await self.bot.get_file(file_id)
            if not info.file_path:
                raise LookupError("Telegram gave no path for this file")
            stream = await self.bot.download_file(info.file_path)
        except (TelegramBadRequest, TelegramNotFound, aiohttp.ClientResponseError) as exc:
            raise LookupError(f"Telegram file unavailable ({type(exc).__name__})") from exc
        assert stream is not None  # no destination given: aiogram returns a BytesIO
        content_type = mimetypes.guess_type(info.file_path)[0] or "application/octet-stream"
        return stream.read(), content_type

    async def aclose(self) -> None:
        await self.bot.session.close()


def parse_update(update: Any) -> list[Inbound]:
    """One Telegram `Update` (JSON) → the inbound message it carries; others are Unsupported."""
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise Malformed("not an Update: no integer update_id")
    msg = update.get("message")
    if msg is None:
        kinds = [k for k in update if k != "update_id"]
        raise Unsupported(f"update of type {kinds[0] if kinds else 'none'} ignored")
    if not isinstance(msg, dict) or not isinstance(msg.get("chat"), dict):
        raise Malformed("message without a chat")
    chat_id = msg["chat"].get("id")
    if not isinstance(chat_id, int):
        raise Malformed("chat without an integer id")
    if msg["chat"].get("type", "private") != "private":
        raise Unsupported("group and channel messages ignored")
    sender: dict[str, Any] = msg["from"] if isinstance(msg.get("from"), dict) else {}
    text = msg.get("text") or msg.get("caption") or ""
    media: list[Media] = []
    meta: dict[str, Any] = {}
    try:
        if msg.get("photo"):
            # Telegram sends several sizes of the same photo; the largest is what staff want.
            best = max(msg["photo"], key=lambda p: p.get("width", 0) * p.get("height", 0))
            media.append(
                Media(
                    kind="photo",
                    file_id=best["file_id"],
                    content_type="image/jpeg",
                    data={"width": best.get("width"), "height": best.get("height")},
                )
            )
        for kind in FILE_KINDS:
            item = msg.get(kind)
            if isinstance(item, dict):
                ctype = item.get("mime_type")
                is_image = kind == "document" and str(ctype).startswith("image/")
                media.append(
                    Media(
                        kind="photo" if is_image else kind,
                        file_id=item["file_id"],
                        content_type=ctype,
                        data={"file_name": item["file_name"]} if item.get("file_name") else {},
                    )
                )
        if isinstance(msg.get("location"), dict):
            loc = msg["location"]
            media.append(
                Media(
                    kind="location",
                    data={"lat": float(loc["latitude"]), "lon": float(loc["longitude"])},
                )
            )
        if isinstance(msg.get("contact"), dict):
            contact = msg["contact"]
            phone = e164(str(contact["phone_number"]))
            own = contact.get("user_id") is not None and contact.get("user_id") == sender.get("id")
            media.append(Media(kind="contact", data={"phone": phone, "own": own}))
            meta["contact_phone"] = phone
    except (KeyError, TypeError, ValueError) as exc:
        raise Malformed(f"incomplete media ({type(exc).__name__})") from exc
    if isinstance(msg.get("sticker"), dict) and not text:
        text = str(msg["sticker"].get("emoji") or "")
    if not text and not media:
        raise Unsupported("message without text or media ignored")
    return [
        Inbound(
            channel="telegram",
            address=str(chat_id),
            text=str(text),
            provider_id=str(update["update_id"]),
            media=tuple(media),
            raw=update,
            meta=meta,
        )
    ]


def e164(phone: str) -> str:
    """Telegram gives contacts' numbers without '+' ("33612345600"); tenants are stored E.164."""
    digits = "".join(c for c in phone if c.isdigit())
    return "+" + digits


async def poll_updates(bot: Bot, ingest: Any, *, wait: int = 25) -> None:
    """Long-poll getUpdates forever, storing each message like the webhook does."""
    await bot.delete_webhook(drop_pending_updates=False)
    log.info("Telegram: webhook removed, long polling started")
    offset: int | None = None
    delay = 1.0
    while True:
        try:
            updates = await bot.get_updates(
                offset=offset, timeout=wait, allowed_updates=ALLOWED_UPDATES
            )
            delay = 1.0
        except TelegramRetryAfter as exc:
            await asyncio.sleep(exc.retry_after)
            continue
        except (TelegramAPIError, aiohttp.ClientError) as exc:
            log.warning("getUpdates failed (%s); retrying in %.0fs", type(exc).__name__, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60)
            continue
        for update in updates:
            try:
                for inbound in parse_update(
                    update.model_dump(mode="json", by_alias=True, exclude_none=True)
                ):
                    await ingest(inbound)
            except Unsupported:
                pass
            except RelaisError as exc:
                if exc.status == 503:  # database away: fetch this update again later
                    await asyncio.sleep(delay)
                    break
                log.warning("Telegram update %s refused: %s", update.update_id, exc.reason)
            # Acknowledged (by the next getUpdates) only once stored or refused for good.
            offset = update.update_id + 1
