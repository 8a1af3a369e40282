"""Staff accounts: creation from the command line."""

from __future__ import annotations

from sqlalchemy import select

from bot.core.passwords import hash_password
from bot.core.settings import Settings
from bot.storage.db import Database, upgrade_async
from bot.storage.models import Residence, Role, StaffUser

MIN_PASSWORD = 10


class UserError(ValueError):
    pass


async def add_user(
    settings: Settings,
    *,
    login: str,
    role: str,
    residences: list[str],
    password: str,
    name: str | None = None,
    phone: str | None = None,
) -> bool:
    """Create or update a staff account; True when it was created."""
    if role not in {r.value for r in Role}:
        raise UserError(f"unknown role '{role}' (caretaker, oncall or manager)")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if role == Role.CARETAKER.value and not residences:
        raise UserError("a caretaker needs at least one --residence")
    if settings.is_sqlite:
        await upgrade_async(settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.transaction() as s:
            found = list(
                (await s.execute(select(Residence).where(Residence.code.in_(residences)))).scalars()
            )
            missing = set(residences) - {r.code for r in found}
            if missing:
                raise UserError(f"unknown residence code(s): {', '.join(sorted(missing))}")
            user = (
                await s.execute(select(StaffUser).where(StaffUser.login == login))
            ).scalar_one_or_none()
            created = user is None
            if user is None:
                user = StaffUser(login=login)
            user.role = role
            user.display_name = name or user.display_name or login
            user.phone = phone or user.phone
            user.password_hash = hash_password(password)
            user.failed_logins = 0
            user.locked_until = None
            user.residences = found
            s.add(user)
        return created
    finally:
        await db.dispose()
