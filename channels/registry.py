"""Which channels this process runs, from the settings, and their web routes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.core.channel import Channel, WebhookChannel
from channels import sms, webchat
from channels.routes import Endpoint, RelaisApp, install_posts, webhook_endpoint
from channels.sms import TwilioChannel
from channels.telegram import TelegramChannel
from channels.webchat import WebChatChannel
from channels.webhook import WebhookSender

if TYPE_CHECKING:
    from bot.app.runtime import Runtime

log = logging.getLogger(__name__)


def install_channels(app: RelaisApp, runtime: Runtime) -> None:
    """Add every configured channel's sender to the runtime and its web routes to the app."""
    for channel in build_channels(runtime):
        runtime.add_channel(channel)
    fast: dict[str, Endpoint] = {}
    for sender in {id(c): c for c in runtime.channels.values()}.values():
        if isinstance(sender, WebhookChannel):
            fast[sender.path] = webhook_endpoint(sender, runtime)
        if isinstance(sender, sms.TwilioChannel):
            fast[sender.status_path] = sms.status_endpoint(sender, runtime)
        if isinstance(sender, webchat.WebChatChannel):
            app.include_router(webchat.router(sender, runtime))
    install_posts(app, fast)


def build_channels(runtime: Runtime) -> list[Channel]:
    """Web chat always; Twilio when its account and token are set; Telegram when its token is."""
    s = runtime.settings
    channels: list[Channel] = [
        WebChatChannel.from_settings(s, bus=runtime.bus, db=runtime.db, store=runtime.uploads)
    ]
    if s.twilio_account_sid and s.twilio_auth_token:
        if not s.twilio_from:
            log.warning("RELAIS_TWILIO_FROM is not set: SMS replies will be refused by Twilio")
        channels.append(
            TwilioChannel(
                account_sid=s.twilio_account_sid,
                auth_token=s.twilio_auth_token.get_secret_value(),
                from_number=s.twilio_from or "",
                api_base=s.twilio_api_base,
                public_url=s.public_url,
            )
        )
    if s.telegram_token:
        if not s.telegram_secret:
            log.warning(
                "RELAIS_TELEGRAM_SECRET is not set: the Telegram webhook refuses every update "
                "(set it, then run `relais telegram set-webhook`; or use `relais telegram poll`)"
            )
        channels.append(
            TelegramChannel(
                token=s.telegram_token.get_secret_value(),
                secret=s.telegram_secret.get_secret_value() if s.telegram_secret else None,
                api_base=s.telegram_api_base,
                button_label=runtime.texts.get("telegram_share_contact", "fr"),
            )
        )
    if s.webhook_url and s.webhook_secret:
        channels.append(
            WebhookSender(
                url=s.webhook_url,
                secret=s.webhook_secret.get_secret_value(),
                timeout=s.webhook_timeout_seconds,
            )
        )
    elif s.webhook_url:
        log.warning("RELAIS_WEBHOOK_SECRET is not set: webhook events are not sent")
    return channels
