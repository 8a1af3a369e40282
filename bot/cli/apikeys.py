"""`relais api-keys create|list|revoke`: tokens of the landlord's systems for /api/v1."""

from __future__ import annotations

import asyncio

import typer

from bot.core.settings import Settings
from bot.ops.apikeys import ApiKeyError, create_key, list_keys, revoke_key
from bot.storage.db import Database, upgrade

app = typer.Typer(help="Tokens of the landlord's systems (REST API).", no_args_is_help=True)


def _url() -> str:
    """The database, migrated first (outside any event loop: Alembic runs its own)."""
    settings = Settings()
    upgrade(settings.database_url)
    return settings.database_url


@app.command("create")
def create(name: str) -> None:
    """Create a key; its token is printed once, alone on the last line."""

    url = _url()

    async def run() -> str:
        db = Database(url)
        try:
            return await create_key(db, name)
        finally:
            await db.dispose()

    try:
        token = asyncio.run(run())
    except ApiKeyError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"API key '{name}' created. Its token is shown once; keep it secret:")
    typer.echo("Use it as: Authorization: Bearer <token>")
    typer.echo(token)


@app.command("list")
def list_() -> None:
    """The keys: name, token prefix, created, last used, revoked."""

    url = _url()

    async def run() -> None:
        db = Database(url)
        try:
            keys = await list_keys(db)
        finally:
            await db.dispose()
        if not keys:
            typer.echo("No API key.")
        for k in keys:
            used = k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "never"
            state = f"revoked {k.revoked_at:%Y-%m-%d}" if k.revoked_at else "active"
            typer.echo(
                f"{k.name:<24} {k.prefix}…  created {k.created_at:%Y-%m-%d}  used {used}  {state}"
            )

    asyncio.run(run())


@app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a key: its token is refused from now on."""

    url = _url()

    async def run() -> None:
        db = Database(url)
        try:
            await revoke_key(db, name)
        finally:
            await db.dispose()

    try:
        asyncio.run(run())
    except ApiKeyError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"API key '{name}' revoked.")
