"""The `relais` command line: serve, worker, chat, db, demo, users, nlu."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
import time
import uuid
from typing import Annotated

import typer
import uvicorn

from bot.app.chat import run_chat, run_trace
from bot.app.factory import create_app
from bot.app.runtime import Roles, Runtime
from bot.app.wiring import attach_handoff
from bot.cli.apikeys import app as api_keys_app
from bot.cli.landlord import export_app, import_app
from bot.cli.ops import install_ops_commands
from bot.cli.telegram import cli as telegram_cli
from bot.core.settings import Settings
from bot.ops.demo import _load, load_demo
from bot.ops.demo_history import DEFAULT_SEED, DEFAULT_WEEKS, clear_history, load_history
from bot.ops.logs import setup_logging as configure
from bot.ops.users import UserError, add_user
from bot.storage.db import Database, upgrade
from channels.registry import build_channels
from nlu.cli import app as nlu_app

app = typer.Typer(help="Relais: messaging gateway for social landlords.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data from data/.", no_args_is_help=True)
users_app = typer.Typer(help="Staff accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(users_app, name="users")
app.add_typer(api_keys_app, name="api-keys")
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")


app.add_typer(nlu_app, name="nlu", help="Train, evaluate and query the NLU.")
app.add_typer(telegram_cli, name="telegram", help="Telegram webhook and polling.")
install_ops_commands(app)


def setup_logging(level: str = "INFO", settings: Settings | None = None) -> None:
    # Text on a tty, JSON lines otherwise (RELAIS_LOG_FORMAT decides); phone numbers masked.
    configure(level, (settings or Settings()).log_format)


# Young collections every 50,000 allocations instead of 700: a turn allocates thousands of
# short-lived objects (ORM rows, parses, events), and with the default thresholds a worker spent
# a noticeable part of its CPU per message on collections (bench/worker.py with gc callbacks;
# figures in bench/README.md); the older generations are still collected, after 20 and 10
# younger ones.
GC_THRESHOLDS = (50_000, 20, 10)


def tune_gc() -> None:
    """For the long-running processes (`serve`, `worker`); see also `freeze_heap`."""
    gc.set_threshold(*GC_THRESHOLDS)


def freeze_heap() -> None:
    """Once started: what is loaded by then (libraries, the NLU model, the FAQ) lives as long as
    the process, so it leaves the collector's generations and full collections stop walking
    it. Under bench/load.py a worker's full collection paused it long enough for its
    partitions to back up; frozen, about twenty times shorter (figures in bench/README.md)."""
    gc.collect()  # garbage of the start-up is not kept for ever
    gc.freeze()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every HTTP request.")] = True,
    worker: Annotated[
        bool,
        typer.Option(help="Also process messages and deliver replies (off: `relais worker` do)."),
    ] = True,
) -> None:
    """Run the gateway: webhooks, web chat, console and an in-process worker."""
    settings = Settings()
    setup_logging(log_level, settings)
    tune_gc()
    if not worker and not settings.redis_url:
        typer.echo("--no-worker needs RELAIS_REDIS_URL: nothing else would process messages.")
        raise typer.Exit(2)
    # With --no-worker this process only answers webhooks, web chat and the console, so that
    # their answers never wait behind NLU work; `relais worker` processes do the rest.
    roles = (
        Roles() if worker else Roles(consume=False, outbox=False, recover=False, retention=False)
    )
    application = create_app(settings, roles=roles)
    base = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}"  # noqa: S104

    def on_started(rt: Runtime) -> None:
        print_banner(base, rt.settings)
        freeze_heap()

    application.state.on_started = on_started
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level=log_level.lower(),
        log_config=None,  # logging is set up above (format, masking); uvicorn propagates to it
        access_log=access_log,
        # The client's address is the socket's peer, or RELAIS_FORWARDED_HEADER's: uvicorn's
        # own reading of X-Forwarded-For would let a client choose the address it is limited by.
        proxy_headers=False,
    )


def print_banner(base: str, settings: Settings) -> None:
    lines = [
        "",
        "Relais is running.",
        f"  Web chat demo page : {base}/webchat/",
        f"  Caretaker console  : {base}/console",
        f"  Manager pages      : {base}/console/manager",
        f"  Health             : {base}/healthz  {base}/readyz",
        f"  Database           : {settings.database_url.split('@')[-1]}",
        f"  Bus                : {'Redis' if settings.redis_url else 'in-process'}",
    ]
    if settings.load_demo:
        try:
            staff = _load(settings.data, "staff.yml")
        except (OSError, ValueError):
            staff = {}
        if staff:
            lines.append(f"  Demo accounts (password '{staff.get('demo_password')}'):")
            for st in staff.get("staff", []):
                where = ", ".join(st.get("residences", []))
                lines.append(f"    {st['login']:<10} {st['role']:<9} {where}")
    print("\n".join(lines) + "\n", flush=True)


@app.command()
def worker(
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run an extra pipeline worker (needs RELAIS_REDIS_URL, shared with `relais serve`)."""
    settings = Settings()
    setup_logging(log_level, settings)
    tune_gc()
    if not settings.redis_url:
        typer.echo(
            "relais worker needs RELAIS_REDIS_URL: without Redis the gateway's in-process bus "
            "cannot be shared, and `relais serve` already runs its own worker.",
            err=True,
        )
        raise typer.Exit(2)

    async def run() -> None:
        rt = Runtime(settings)
        for ch in build_channels(rt):
            rt.add_channel(ch)
        attach_handoff(rt)
        await rt.start(Roles(consume=True, outbox=True, recover=True))
        freeze_heap()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        logging.getLogger("relais.worker").info(
            "worker started (%s)", settings.redis_url and "redis"
        )
        await stop.wait()
        await rt.stop()

    asyncio.run(run())


@app.command()
def chat(
    phone: Annotated[
        str | None, typer.Option(help="Speak as the tenant with this phone (E.164).")
    ] = None,
    lang: Annotated[str, typer.Option(help="Prompt language (fr or en).")] = "fr",
    trace: Annotated[
        bool,
        typer.Option(
            "--trace",
            help="Print one JSON object per stdin line: NLU, replies, request, handoff, alerts. "
            "A line '/wait 45m' (or 2h, 3d) moves the clock and runs what falls due.",
        ),
    ] = False,
    channel: Annotated[
        str, typer.Option(help="With --trace: the channel the tenant writes on.")
    ] = "terminal",
) -> None:
    """Talk to the bot from a terminal, as a tenant would (reads stdin when it is not a tty)."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    address = phone or f"terminal-{uuid.uuid4().hex[:8]}"
    if trace:
        raise typer.Exit(asyncio.run(run_trace(Settings(), address, channel=channel)))
    code = asyncio.run(run_chat(Settings(), address, interactive=sys.stdin.isatty(), lang=lang))
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply the database migrations."""
    settings = Settings()
    upgrade(settings.database_url, revision)
    typer.echo(f"Database at {settings.database_url.split('@')[-1]} is up to date.")


@demo_app.command("load")
def demo_load(
    history: Annotated[
        bool,
        typer.Option(
            "--history",
            help="Also generate weeks of demo activity for the dashboard (marked as demo; "
            "replaces the previous demo history; `relais demo clear` removes it).",
        ),
    ] = False,
    weeks: Annotated[int, typer.Option(min=1, max=52, help="Weeks of history.")] = DEFAULT_WEEKS,
    seed: Annotated[int, typer.Option(help="Same seed, same day: same history.")] = DEFAULT_SEED,
    force: Annotated[
        bool, typer.Option("--force", help="Add the history even beside real conversations.")
    ] = False,
) -> None:
    """Load (or refresh) the demo residences, tenants and staff from data/."""
    settings = Settings()
    upgrade(settings.database_url)

    async def run() -> None:
        db = Database(settings.database_url)
        try:
            summary = await load_demo(db, settings.data)
            typer.echo(
                f"Demo data loaded: {summary.residences} residences, {summary.tenants} tenants, "
                f"{summary.staff} staff accounts (password '{summary.password}')."
            )
            if history:
                started = time.monotonic()
                try:
                    h = await load_history(
                        db, weeks=weeks, seed=seed, timezone=settings.timezone, beside_real=force
                    )
                except ValueError as e:
                    typer.echo(f"Demo history not loaded: {e}", err=True)
                    raise typer.Exit(1) from e
                typer.echo(
                    f"Demo history ({h.first_day:%d/%m/%Y}–{h.last_day:%d/%m/%Y}, seed {seed}): "
                    f"{h.conversations} conversations, {h.messages} messages, "
                    f"{h.handoffs} handoffs, {h.requests} requests, {h.ratings} ratings "
                    f"in {time.monotonic() - started:.1f} s. "
                    "Remove it with `relais demo clear`."
                )
        finally:
            await db.dispose()

    asyncio.run(run())


@demo_app.command("clear")
def demo_clear() -> None:
    """Delete the demo history (conversations `demo-...`, requests `DEMO-...`), nothing else."""
    settings = Settings()

    async def run() -> int:
        db = Database(settings.database_url)
        try:
            return await clear_history(db)
        finally:
            await db.dispose()

    n = asyncio.run(run())
    typer.echo(f"Demo history removed: {n} conversations.")


@users_app.command("add")
def users_add(
    login: str,
    role: Annotated[str, typer.Option(help="caretaker, oncall or manager.")],
    residence: Annotated[
        list[str] | None, typer.Option(help="Residence code (repeat for several).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    phone: Annotated[str | None, typer.Option(help="Staff phone (E.164) for alerts.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create or update a staff account."""
    if not password_stdin:
        typer.echo("Give the password on standard input with --password-stdin.", err=True)
        raise typer.Exit(2)
    password = sys.stdin.readline().rstrip("\r\n")
    try:
        created = asyncio.run(
            add_user(
                Settings(),
                login=login,
                role=role,
                residences=residence or [],
                password=password,
                name=name,
                phone=phone,
            )
        )
    except UserError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{'Created' if created else 'Updated'} {role} account '{login}'.")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
