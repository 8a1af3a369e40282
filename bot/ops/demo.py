"""Demo data from data/: the landlord's residences, tenants and staff, loaded into the database."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import yaml
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.datadir import DataDir
from bot.core.passwords import hash_password
from bot.storage.db import Database
from bot.storage.models import Residence, StaffUser, Tenant

log = logging.getLogger(__name__)

# PostgreSQL advisory lock key held while the demo loads: gateways started together (several
# `relais serve` behind a proxy) load it one after the other, so the second finds it there.
_DEMO_LOCK = 0x52454C41  # "RELA"


@dataclass(frozen=True, slots=True)
class DemoSummary:
    residences: int
    tenants: int
    staff: int
    password: str
    logins: tuple[tuple[str, str], ...]  # (login, role)


def _load(data_dir: DataDir, name: str) -> dict[str, Any]:
    path = data_dir.file(name)
    with path.open(encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top")
    return data


def read_landlord(data_dir: DataDir) -> dict[str, Any]:
    landlord: dict[str, Any] = _load(data_dir, "residences.yml")["landlord"]
    return landlord


async def is_empty(session: AsyncSession) -> bool:
    n = (await session.execute(select(func.count(Residence.id)))).scalar_one()
    return int(n) == 0


async def load_demo(db: Database, data_dir: DataDir, *, only_if_empty: bool = False) -> DemoSummary:
    """Insert or update the demo residences, tenants and staff (idempotent by code/login)."""
    res_doc = _load(data_dir, "residences.yml")
    tenants_doc = _load(data_dir, "tenants.yml")
    staff_doc = _load(data_dir, "staff.yml")
    password = str(staff_doc.get("demo_password", "relais-demo"))
    agencies: dict[str, Any] = res_doc.get("agencies", {})
    landlord: dict[str, Any] = res_doc.get("landlord", {})
    async with db.transaction() as s:
        if db.dialect == "postgresql":
            # Released at commit. (SQLite is for a single process.)
            await s.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _DEMO_LOCK})
        if only_if_empty and not await is_empty(s):
            return await summary(s, password, staff_doc)
        by_code: dict[str, Residence] = {}
        for r in res_doc["residences"]:
            row = (
                await s.execute(select(Residence).where(Residence.code == r["code"]))
            ).scalar_one_or_none() or Residence(code=r["code"])
            row.name = r["name"]
            row.address = r.get("address", "")
            row.city = r.get("city", "")
            row.buildings = [str(b) for b in r.get("buildings", [])]
            row.agency = dict(agencies.get(r.get("agency", ""), {}))
            row.caretaker_hours = dict(r.get("caretaker_hours", {}))
            row.bulky_waste = dict(r.get("bulky_waste", {}))
            row.lift_company = dict(r.get("lift_company", {}))
            row.extra = {"caretaker": r.get("caretaker"), "landlord": landlord}
            s.add(row)
            by_code[r["code"]] = row
        await s.flush()
        for t in tenants_doc["tenants"]:
            trow = (
                await s.execute(select(Tenant).where(Tenant.reference == t["reference"]))
            ).scalar_one_or_none() or Tenant(reference=t["reference"])
            trow.first_name = t.get("first_name", "")
            trow.last_name = t.get("last_name", "")
            trow.phone = t.get("phone")
            trow.telegram_chat_id = t.get("telegram_chat_id")
            trow.residence_id = by_code[t["residence"]].id
            trow.building = str(t.get("building", ""))
            trow.floor = str(t.get("floor", ""))
            trow.apartment = str(t.get("apartment", ""))
            trow.language = t.get("language", "fr")
            trow.vulnerable = bool(t.get("vulnerable", False))
            trow.vulnerability = t.get("vulnerability", "")
            s.add(trow)
        pw_hash = hash_password(password)
        for st in staff_doc["staff"]:
            user = (
                await s.execute(select(StaffUser).where(StaffUser.login == st["login"]))
            ).scalar_one_or_none()
            if user is None:
                user = StaffUser(login=st["login"], password_hash=pw_hash)
            user.display_name = st.get("name", st["login"])
            user.role = st["role"]
            user.phone = st.get("phone")
            user.telegram_chat_id = st.get("telegram_chat_id")
            user.language = st.get("language", "fr")
            user.residences = [by_code[c] for c in st.get("residences", [])]
            s.add(user)
        await s.flush()
        return await summary(s, password, staff_doc)


async def summary(s: AsyncSession, password: str, staff_doc: dict[str, Any]) -> DemoSummary:
    return DemoSummary(
        residences=int((await s.execute(select(func.count(Residence.id)))).scalar_one()),
        tenants=int((await s.execute(select(func.count(Tenant.id)))).scalar_one()),
        staff=int((await s.execute(select(func.count(StaffUser.id)))).scalar_one()),
        password=password,
        logins=tuple((st["login"], st["role"]) for st in staff_doc["staff"]),
    )
