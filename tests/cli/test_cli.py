"""The `relais` command line as a user runs it: chat, demo, users, db."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from bot.storage.db import Database
from bot.storage.models import Conversation, Message, StaffUser
from tests.paths import REPO_ROOT


def relais(
    args: list[str], env: dict[str, str], stdin: str = "", timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli.main", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=REPO_ROOT,
        timeout=timeout,
        check=False,
    )


def env_for(tmp_path: Path, nlu_model_path: Path) -> dict[str, str]:
    return {
        "RELAIS_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.sqlite3'}",
        "RELAIS_NLU_MODEL_PATH": str(nlu_model_path),
        "RELAIS_REDIS_URL": "",
    }


def test_chat_as_a_demo_tenant(tmp_path: Path, nlu_model_path: Path) -> None:
    env = env_for(tmp_path, nlu_model_path)
    result = relais(
        ["chat", "--phone", "+33612345600"],
        env,
        stdin="bonjour\nj'ai une fuite sous l'évier\nmerci\n",
    )
    assert result.returncode == 0, result.stderr
    replies = result.stdout.strip().splitlines()
    assert len(replies) >= 3, result.stdout
    assert "Nadia" in replies[0]
    assert any("fuite" in r.lower() or "R-20" in r or "?" in r for r in replies[1:-1])
    assert "plaisir" in replies[-1].lower() or "merci" not in replies[-1].lower()

    async def check() -> None:
        db = Database(env["RELAIS_DATABASE_URL"])
        async with db.session() as s:
            conv = (await s.execute(select(Conversation))).unique().scalar_one()
            msgs = (await s.execute(select(Message).order_by(Message.id))).scalars().all()
        await db.dispose()
        assert conv.tenant_id is not None
        assert [m.text for m in msgs if m.direction == "in"] == [
            "bonjour",
            "j'ai une fuite sous l'évier",
            "merci",
        ]
        assert msgs[1].intent == "repair" or msgs[0].intent == "greet"

    asyncio.run(check())


def test_chat_unknown_sender_is_asked_to_identify(tmp_path: Path, nlu_model_path: Path) -> None:
    env = env_for(tmp_path, nlu_model_path)
    result = relais(["chat"], env, stdin="mon chauffage ne marche plus\n")
    assert result.returncode == 0, result.stderr
    assert "locataire" in result.stdout


def test_users_add_and_demo_load(tmp_path: Path, nlu_model_path: Path) -> None:
    env = env_for(tmp_path, nlu_model_path)
    loaded = relais(["demo", "load"], env)
    assert loaded.returncode == 0, loaded.stderr
    assert "32 tenants" in loaded.stdout
    added = relais(
        [
            "users",
            "add",
            "nadege",
            "--role",
            "caretaker",
            "--residence",
            "PARC",
            "--password-stdin",
        ],
        env,
        stdin="un-mot-de-passe-long\n",
    )
    assert added.returncode == 0, added.stderr
    refused = relais(
        ["users", "add", "x", "--role", "caretaker", "--residence", "NOPE", "--password-stdin"],
        env,
        stdin="un-mot-de-passe-long\n",
    )
    assert refused.returncode == 1 and "NOPE" in refused.stderr
    short = relais(
        ["users", "add", "y", "--role", "manager", "--password-stdin"], env, stdin="court\n"
    )
    assert short.returncode == 1

    async def check() -> None:
        db = Database(env["RELAIS_DATABASE_URL"])
        async with db.session() as s:
            user = (
                await s.execute(select(StaffUser).where(StaffUser.login == "nadege"))
            ).scalar_one()
        await db.dispose()
        assert [r.code for r in user.residences] == ["PARC"]
        assert user.password_hash.startswith("$argon2")

    asyncio.run(check())


def test_freeze_heap_freezes_what_is_loaded_but_not_start_up_garbage() -> None:
    import gc
    import weakref

    from bot.cli.main import freeze_heap

    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    gone = weakref.ref(cycle)
    del cycle
    try:
        freeze_heap()
        assert gone() is None  # collected first, not frozen for the process's life
        assert gc.get_freeze_count() > 1000  # the modules and objects loaded so far
    finally:
        gc.unfreeze()
