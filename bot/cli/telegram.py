"""`relais telegram set-webhook` and `relais telegram poll`: the webhook, or long polling."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import aiohttp
import typer
import uvicorn
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import AiogramError

from bot.app.factory import create_app
from bot.app.runtime import Runtime
from bot.core.settings import Settings
from bot.ops.logs import setup_logging
from channels.telegram import ALLOWED_UPDATES, TelegramChannel, poll_updates

cli = typer.Typer(help="Telegram webhook and long polling.", no_args_is_help=True)


def _settings_with_token() -> Any:
    settings = Settings()
    if not settings.telegram_token:
        typer.echo("RELAIS_TELEGRAM_TOKEN is missing: the bot's token from @BotFather.", err=True)
        raise typer.Exit(2)
    return settings


def _bot(settings: Any) -> Bot:
    return Bot(
        settings.telegram_token.get_secret_value(),
        session=AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base)),
    )


@cli.command("set-webhook")
def set_webhook() -> None:
    """Point Telegram at RELAIS_PUBLIC_URL/channels/telegram, with the secret token."""
    settings = _settings_with_token()
    if not settings.telegram_secret:
        typer.echo(
            "RELAIS_TELEGRAM_SECRET is missing: Telegram must send it with every update "
            "(1-256 characters A-Z, a-z, 0-9, _ and -).",
            err=True,
        )
        raise typer.Exit(2)
    url = settings.public_url.rstrip("/") + TelegramChannel.path

    async def run() -> None:
        bot = _bot(settings)
        try:
            await bot.set_webhook(
                url=url,
                secret_token=settings.telegram_secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
            )
        finally:
            await bot.session.close()

    try:
        asyncio.run(run())
    except (AiogramError, aiohttp.ClientError) as exc:
        typer.echo(f"setWebhook failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Telegram will deliver updates to {url}")


@cli.command()
def poll(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port for the web chat and console.")] = 8000,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the gateway like `relais serve`, fetching Telegram updates by long polling.

    For a landlord without a public URL: the webhook is removed first (Telegram allows one
    or the other), then updates are fetched with getUpdates and stored like webhook ones.
    """
    settings = _settings_with_token()
    setup_logging(log_level, settings.log_format)
    app = create_app(settings)
    runtime: Runtime = app.state.runtime
    channel = runtime.channels.get("telegram")
    assert isinstance(channel, TelegramChannel)
    server = _PollingServer(uvicorn.Config(app, host=host, port=port, log_level=log_level.lower()))

    async def run() -> None:
        serving = asyncio.create_task(server.serve())
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.05)
        if serving.done():
            return await serving
        server.polling = asyncio.create_task(poll_updates(channel.bot, runtime.ingest))
        await serving  # until Ctrl-C: uvicorn handles the signals
        polling = server.polling
        polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    asyncio.run(run())


class _PollingServer(uvicorn.Server):
    """Stops polling first on Ctrl-C, before the runtime (and the bot's session) shut down."""

    polling: asyncio.Task[None] | None = None

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self.polling is not None:
            self.polling.cancel()
        super().handle_exit(sig, frame)
