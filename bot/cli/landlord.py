"""`relais import residences|tenants|staff FILE` and `relais export residences|faq|texts [FILE]`."""

from __future__ import annotations

import asyncio
import enum
import json
from pathlib import Path
from typing import Annotated

import typer

from bot.core.settings import Settings
from bot.dialogue.content import Content, export_faq, export_residences, export_texts
from bot.ops.importer import Importer, ImportFileError, Report, read_mapping
from bot.storage.db import Database, upgrade_async

import_app = typer.Typer(
    help="Import the landlord's residences, tenants or staff from a CSV or XLSX export.",
    no_args_is_help=True,
)
export_app = typer.Typer(
    help="Write the residences, FAQ or texts as the database has them (the data/ YAML format).",
    no_args_is_help=True,
)


class What(enum.StrEnum):
    residences = "residences"
    tenants = "tenants"
    staff = "staff"


class Exported(enum.StrEnum):
    residences = "residences"
    faq = "faq"
    texts = "texts"


def _import(
    kind: What,
    file: Path,
    dry_run: bool,
    full: bool,
    mapping: Path | None,
    as_json: bool,
) -> None:
    settings = Settings()
    if full and kind is not What.tenants:
        typer.echo("Error: --full is for tenants only.", err=True)
        raise typer.Exit(2)

    async def run() -> Report:
        if settings.is_sqlite:
            await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
        try:
            importer = Importer(
                db,
                region=settings.phone_region,
                dry_run=dry_run,
                full=full,
                mapping=read_mapping(mapping),
            )
            return await importer.run(kind.value, file)
        finally:
            await db.dispose()

    try:
        report = asyncio.run(run())
    except ImportFileError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        typer.echo(report.text())


DryRun = Annotated[bool, typer.Option("--dry-run", help="Check and count; write nothing.")]
Full = Annotated[
    bool,
    typer.Option("--full", help="A full export: tenants absent from it are marked departed."),
]
Map = Annotated[
    Path | None,
    typer.Option("--map", help='YAML file naming columns: `phone: "Tel. 1"`.', exists=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="The report as one JSON object.")]
File = Annotated[Path, typer.Argument(help="CSV (; , or tab) or XLSX file.")]


@import_app.command("tenants")
def import_tenants(
    file: File, dry_run: DryRun = False, full: Full = False, map: Map = None, json: AsJson = False
) -> None:
    """Tenants by reference: name, mobile phone, residence, building, floor, dwelling."""
    _import(What.tenants, file, dry_run, full, map, json)


@import_app.command("residences")
def import_residences(
    file: File, dry_run: DryRun = False, full: Full = False, map: Map = None, json: AsJson = False
) -> None:
    """Residences by code: name, address, buildings, agency, caretaker hours, bulky waste."""
    _import(What.residences, file, dry_run, full, map, json)


@import_app.command("staff")
def import_staff(
    file: File, dry_run: DryRun = False, full: Full = False, map: Map = None, json: AsJson = False
) -> None:
    """Staff by login: name, role, residences, phone, Telegram (passwords: `relais users add`)."""
    _import(What.staff, file, dry_run, full, map, json)


def _export(what: Exported, file: Path | None) -> None:
    settings = Settings()

    async def run() -> str:
        if settings.is_sqlite:
            await upgrade_async(settings.database_url)
        db = Database(settings.database_url)
        try:
            async with db.session() as s:
                if what is Exported.residences:
                    return await export_residences(s)
                content = Content(settings.data)
                await content.refresh(s)
                return export_faq(content) if what is Exported.faq else export_texts(content)
        finally:
            await db.dispose()

    text = asyncio.run(run())
    if file is None:
        typer.echo(text, nl=False)
    else:
        file.write_text(text, encoding="utf-8")
        typer.echo(f"Wrote {what.value} to {file}.", err=True)


@export_app.command("residences")
def export_residences_cmd(file: Annotated[Path | None, typer.Argument()] = None) -> None:
    """residences.yml: landlord, agencies, residences with their current facts."""
    _export(Exported.residences, file)


@export_app.command("faq")
def export_faq_cmd(file: Annotated[Path | None, typer.Argument()] = None) -> None:
    """faq.yml with the managers' answers."""
    _export(Exported.faq, file)


@export_app.command("texts")
def export_texts_cmd(file: Annotated[Path | None, typer.Argument()] = None) -> None:
    """texts.yml with the managers' texts."""
    _export(Exported.texts, file)
