"""Operations commands: `relais doctor` and `relais gdpr export|erase|purge`."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from bot.core.settings import Settings
from bot.ops.doctor import load_settings, report, run_checks
from bot.ops.gdpr import Erasure, TenantNotFound, erase_tenant, export_tenant, purge
from bot.storage.db import Database

gdpr_app = typer.Typer(help="Personal data: export, erase, purge past retention.")


def install_ops_commands(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
    app.add_typer(gdpr_app, name="gdpr")


def doctor() -> None:
    """Check the settings, database, Redis, provider credentials and webhook URL."""
    settings, checks = load_settings()
    if settings is not None:
        checks = asyncio.run(run_checks(settings))
    text, code = report(checks)
    typer.echo(text)
    raise typer.Exit(code)


def _db(settings: Settings) -> Database:
    return Database(settings.database_url)


@gdpr_app.command("export")
def gdpr_export(
    tenant: Annotated[str, typer.Option(help="The tenant's reference, e.g. L-10231.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Everything held on one tenant, as JSON (audited)."""
    settings = Settings()

    async def run() -> dict[str, object]:
        db = _db(settings)
        try:
            return await export_tenant(db, tenant, actor="cli")
        finally:
            await db.dispose()

    try:
        data = asyncio.run(run())
    except TenantNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    if output:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"Exported tenant {tenant} to {output}.", err=True)
    else:
        sys.stdout.write(text + "\n")


@gdpr_app.command("erase")
def gdpr_erase(
    tenant: Annotated[str, typer.Option(help="The tenant's reference, e.g. L-10231.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase a tenant's personal data; anonymous counts stay (audited)."""
    if not yes and sys.stdin.isatty():
        typer.confirm(f"Erase the personal data of tenant {tenant}? No undo", abort=True)
    settings = Settings()

    async def run() -> Erasure:
        db = _db(settings)
        try:
            return await erase_tenant(db, tenant, actor="cli")
        finally:
            await db.dispose()

    try:
        done = asyncio.run(run())
    except TenantNotFound as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"Erased tenant {tenant}: {done.conversations} conversation(s), "
        f"{done.messages} message(s), {done.requests} request(s)."
    )


@gdpr_app.command("purge")
def gdpr_purge(
    months: Annotated[
        int | None, typer.Option(help="Retention in months (default RELAIS_RETENTION_MONTHS).")
    ] = None,
) -> None:
    """Erase conversations whose last message is older than the retention (audited)."""
    settings = Settings()
    retention = months or settings.retention_months

    async def run() -> Erasure:
        db = _db(settings)
        try:
            return await purge(db, retention, actor="cli")
        finally:
            await db.dispose()

    done = asyncio.run(run())
    typer.echo(
        f"Purged conversations older than {retention} months: {done.conversations} "
        f"conversation(s), {done.messages} message(s), {done.requests} request(s)."
    )
