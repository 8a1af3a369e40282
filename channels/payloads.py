"""The providers' payloads as Relais reads them, validated at the edge (pydantic models).

A signature or a secret says who sent a request, not that its fields have the types and
sizes the rest of the code expects: a `Latitude=nan`, a 300-character `MessageSid`, a `photo`
that is a string, a NUL byte, a JSON nested 100,000 deep once reached the database or the
parser and answered 500. Here every field Relais uses is checked; anything else is
`Malformed` (400), with the name of the field at fault and never its value (it may be
personal). Fields Relais does not read are ignored.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from bot.core.errors import Malformed

MAX_DEPTH = 32  # Telegram's updates nest a few levels; more is not a Telegram update
MAX_ID = 2**53  # Telegram: ids fit in 52 bits (its documentation); also safe as a float
TWILIO_MAX_MEDIA = 10


def reason(exc: ValidationError) -> str:
    """`field.sub: what is wrong` of the first error, without the input."""
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err.get("loc", ())) or "payload"
    return f"{where}: {err.get('msg', 'invalid')}"[:120]


def no_nul(values: Any) -> None:
    """A NUL character in any string: no provider sends one, and PostgreSQL's text refuses
    it (the message would fail at storage, after the provider was told 200 or as a 500)."""
    stack = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise Malformed("NUL character in a field")
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def loads(body: bytes) -> Any:
    """JSON from a provider: invalid, too deep (the parser's recursion) or with NaN/Infinity
    (not JSON, which Python accepts) is Malformed."""

    def constant(name: str) -> Any:
        raise Malformed(f"{name} is not JSON")

    try:
        data = json.loads(body, parse_constant=constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise Malformed("body is not valid JSON") from exc
    depth_check(data)
    return data


def depth_check(data: Any, limit: int = MAX_DEPTH) -> None:
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            raise Malformed(f"JSON nested deeper than {limit}")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


# -- Twilio ---------------------------------------------------------------------------------


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


Coordinate = Annotated[float | None, BeforeValidator(_blank_is_none)]


class TwilioMessage(BaseModel):
    """An incoming SMS/MMS/WhatsApp message's form (Twilio's "TwiML webhook" request)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    sender: str = Field(alias="From", min_length=1, max_length=64)
    message_sid: str = Field(
        alias="MessageSid", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$"
    )
    body: str = Field(default="", alias="Body", max_length=10_000)
    num_media: Annotated[int, BeforeValidator(_blank_is_none)] = Field(
        default=0, alias="NumMedia", ge=0, le=TWILIO_MAX_MEDIA
    )
    latitude: Coordinate = Field(default=None, alias="Latitude", ge=-90, le=90, allow_inf_nan=False)
    longitude: Coordinate = Field(
        default=None, alias="Longitude", ge=-180, le=180, allow_inf_nan=False
    )

    @classmethod
    def read(cls, form: dict[str, str]) -> TwilioMessage:
        no_nul(form)
        if not form.get("MessageSid") and form.get("SmsMessageSid"):
            form = {**form, "MessageSid": form["SmsMessageSid"]}
        try:
            return cls.model_validate(form)
        except ValidationError as exc:
            raise Malformed(reason(exc)) from exc


class TwilioStatus(BaseModel):
    """A delivery report (the StatusCallback of a message we sent)."""

    model_config = ConfigDict(extra="ignore")

    MessageSid: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9]+$")
    MessageStatus: str = Field(min_length=1, max_length=24, pattern=r"^[A-Za-z_-]+$")

    @classmethod
    def read(cls, form: dict[str, str]) -> TwilioStatus:
        no_nul(form)
        try:
            return cls.model_validate(form)
        except ValidationError as exc:
            raise Malformed(reason(exc)) from exc


# -- Telegram -------------------------------------------------------------------------------

TelegramId = Annotated[int, Field(ge=-MAX_ID, le=MAX_ID)]
FileId = Annotated[str, Field(min_length=1, max_length=256)]


class _Telegram(BaseModel):
    # JSON's own types, no coercion: a string where Telegram sends an integer is not an Update.
    model_config = ConfigDict(extra="ignore", strict=True)


class TgUser(_Telegram):
    id: TelegramId


class TgChat(_Telegram):
    id: TelegramId
    type: str = Field(default="private", max_length=32)


class TgPhotoSize(_Telegram):
    file_id: FileId
    width: int = Field(default=0, ge=0, le=100_000)
    height: int = Field(default=0, ge=0, le=100_000)


class TgFile(_Telegram):
    """A document, voice note, audio, video or video note: the fields Relais keeps."""

    file_id: FileId
    mime_type: str | None = Field(default=None, max_length=100)
    file_name: str | None = Field(default=None, max_length=256)


class TgLocation(_Telegram):
    latitude: float = Field(ge=-90, le=90, allow_inf_nan=False)
    longitude: float = Field(ge=-180, le=180, allow_inf_nan=False)


class TgContact(_Telegram):
    phone_number: str = Field(min_length=1, max_length=32)
    user_id: TelegramId | None = None


class TgSticker(_Telegram):
    emoji: str | None = Field(default=None, max_length=32)


class TgMessage(_Telegram):
    """The subset of Telegram's `Message` that Relais reads."""

    model_config = ConfigDict(extra="ignore", strict=True, populate_by_name=True)

    chat: TgChat
    sender: TgUser | None = Field(default=None, alias="from")
    text: str | None = Field(default=None, max_length=10_000)
    caption: str | None = Field(default=None, max_length=10_000)
    photo: list[TgPhotoSize] | None = Field(default=None, max_length=20)
    document: TgFile | None = None
    voice: TgFile | None = None
    audio: TgFile | None = None
    video: TgFile | None = None
    video_note: TgFile | None = None
    location: TgLocation | None = None
    contact: TgContact | None = None
    sticker: TgSticker | None = None


class TgUpdate(_Telegram):
    """An `Update`: its id, and the new message if it is one (other kinds are ignored)."""

    update_id: int = Field(ge=0, le=MAX_ID)
    message: TgMessage | None = None

    @classmethod
    def read(cls, data: Any) -> TgUpdate:
        no_nul(data)
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise Malformed(reason(exc)) from exc


# -- the web-chat widget's frames ---------------------------------------------------------------

SESSION_TOKEN = re.compile(r"[A-Za-z0-9_.-]{1,200}")


class WebChatHello(BaseModel):
    """The widget's first frame: the session it holds, and the last message id it shows."""

    model_config = ConfigDict(extra="ignore", strict=True)

    type: str = Field(max_length=16)
    session: str | None = Field(default=None, max_length=200)
    since: int | None = Field(default=None, ge=0, le=2**31 - 1)

    def token(self) -> str | None:
        """The session token if it could be one we issued (ASCII, short), else None."""
        return self.session if self.session and SESSION_TOKEN.fullmatch(self.session) else None


class WebChatMessage(BaseModel):
    """A tenant's message frame: its client id (checked by the socket), text and uploads."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: Any = None
    text: str | None = None
    media: list[str] | None = Field(default=None, max_length=10)


def web_chat_frame(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """`model` read from a frame; Malformed (the socket closes with 1007) if it is not one."""
    no_nul(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Malformed(reason(exc)) from exc
