"""Bearer tokens of the landlord's systems: created once, stored as SHA-256, revocable, audited."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import Database
from bot.storage.models import ApiKey
from bot.storage.store import audit

PREFIX = "rls_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ApiKeyError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    # A random 256-bit token needs no slow hash: SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


async def create_key(db: Database, name: str, *, actor: str = "cli") -> str:
    """A new token for `name`, returned once (only its hash is kept)."""
    if not _NAME.match(name):
        raise ApiKeyError("A key name is 1-64 letters, digits, '.', '_' or '-'.")
    token = PREFIX + secrets.token_urlsafe(32)
    try:
        async with db.transaction() as s:
            s.add(ApiKey(name=name, token_hash=token_hash(token), prefix=token[:10]))
            await audit(s, "api_key_create", actor=actor, target_type="api_key", target_id=name)
    except IntegrityError as exc:
        raise ApiKeyError(f"A key named '{name}' already exists (revoke it first).") from exc
    return token


async def list_keys(db: Database) -> list[KeyInfo]:
    async with db.session() as s:
        rows = (await s.execute(select(ApiKey).order_by(ApiKey.name))).scalars()
        return [KeyInfo(k.name, k.prefix, k.created_at, k.last_used_at, k.revoked_at) for k in rows]


async def revoke_key(db: Database, name: str, *, actor: str = "cli") -> None:
    async with db.transaction() as s:
        key = (await s.execute(select(ApiKey).where(ApiKey.name == name))).scalar_one_or_none()
        if key is None:
            raise ApiKeyError(f"No key named '{name}'.")
        # Revoked keys are renamed so that the name can be given to a new key.
        key.revoked_at = datetime.now(UTC)
        key.name = f"{name}~revoked-{key.id}"[:64]
        await audit(s, "api_key_revoke", actor=actor, target_type="api_key", target_id=name)


async def authenticate(s: AsyncSession, token: str, now: datetime) -> ApiKey | None:
    """The live key of this token, its last use recorded; None for an unknown or revoked one."""
    if not token.startswith(PREFIX):
        return None
    key = (
        await s.execute(select(ApiKey).where(ApiKey.token_hash == token_hash(token)))
    ).scalar_one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    await s.execute(update(ApiKey).where(ApiKey.id == key.id).values(last_used_at=now))
    return key
