"""Which channels this process runs, from the settings, and their web routes."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from channels.base import WebhookChannel
from channels.routes import webhook_router

if TYPE_CHECKING:
    from bot.runtime import Runtime


def install_channels(app: FastAPI, runtime: Runtime) -> None:
    """Add every configured channel's sender to the runtime and its webhook route to the app."""
    for channel in build_channels(runtime):
        runtime.add_channel(channel)
    for sender in {id(c): c for c in runtime.channels.values()}.values():
        if isinstance(sender, WebhookChannel):
            app.include_router(webhook_router(sender, runtime))


def build_channels(runtime: Runtime) -> list[WebhookChannel]:
    # Each channel module adds itself here when its settings are present.
    return []
