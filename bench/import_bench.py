"""`relais import` at a large landlord's size: 50,000 tenants over 500 residences.

    .venv/bin/python bench/import_bench.py                      # SQLite, then PostgreSQL
    .venv/bin/python bench/import_bench.py --tenants 10000 --backend sqlite

Writes a generated Windows-1252 `;` CSV (French headers, phones in the forms landlords store
them, 1 % bad rows), imports the residences then the tenants (first run: every row created),
imports the same file again (every row unchanged), then a full export missing 2 % of the
tenants (`--full`: departed). Prints the time of each step; the target is under a minute for
the first import on each database. PostgreSQL: a database `relais_bench_import_<random>` is
created on the server of --pg-admin-url and dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import random
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.ops.importer import Importer
from bot.storage.db import Database, upgrade

FIRST = ["Nadia", "Jean", "Fatou", "Michel", "Aïcha", "Éloïse", "Loïc", "Zoé", "Gérard", "Inès"]
LAST = ["Martin", "Bernard", "Dubois", "Lefèvre", "Haddad", "Ndiaye", "Caron", "Mercier"]


def phone_forms(n: int, rnd: random.Random) -> str:
    digits = f"6{n:08d}"
    forms = [
        f"0{digits[0]} {digits[1:3]} {digits[3:5]} {digits[5:7]} {digits[7:9]}",
        f"0{digits[0]}.{digits[1:3]}.{digits[3:5]}.{digits[5:7]}.{digits[7:9]}",
        f"+33 {digits}",
        f"0033{digits}",
        f"0{digits}",
    ]
    return rnd.choice(forms)


def write_files(folder: Path, tenants: int, residences: int, seed: int = 7) -> tuple[Path, Path]:
    rnd = random.Random(seed)
    res_path = folder / "residences.csv"
    with res_path.open("w", encoding="cp1252", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(["Code résidence", "Nom", "Adresse", "Code postal", "Ville", "Bâtiments"])
        for i in range(residences):
            w.writerow(
                [f"R{i:04d}", f"Résidence {i}", f"{i} rue des Écoles", "59000", "Lille", "A B C"]
            )
    ten_path = folder / "tenants.csv"
    with ten_path.open("w", encoding="cp1252", newline="") as f:
        w = csv.writer(f, delimiter=";")
        w.writerow(
            [
                "N° locataire",
                "Nom",
                "Prénom",
                "Portable",
                "E-mail",
                "Groupe",
                "Bât.",
                "Étage",
                "Porte",
            ]
        )
        for i in range(tenants):
            phone = phone_forms(i, rnd) if rnd.random() > 0.01 else "06 12"  # 1 % bad phones
            w.writerow(
                [
                    f"T{i:07d}",
                    rnd.choice(LAST),
                    rnd.choice(FIRST),
                    phone,
                    f"locataire{i}@example.org",
                    f"R{rnd.randrange(residences):04d}",
                    rnd.choice("ABC"),
                    str(rnd.randrange(12)),
                    f"{rnd.randrange(1, 13)}{rnd.randrange(1, 9):02d}",
                ]
            )
    return res_path, ten_path


def without_some(path: Path, folder: Path, share: float) -> Path:
    lines = path.read_text(encoding="cp1252").splitlines(keepends=True)
    keep = [lines[0]] + [line for i, line in enumerate(lines[1:]) if i % int(1 / share) != 0]
    out = folder / "tenants_full.csv"
    out.write_text("".join(keep), encoding="cp1252")
    return out


async def run(url: str, res: Path, ten: Path, full: Path) -> None:
    db = Database(url)
    try:
        started = time.perf_counter()
        r = await Importer(db).run("residences", res)
        print(f"  residences: {r.created} created in {time.perf_counter() - started:.2f} s")
        for label, path, kwargs in (
            ("tenants, first import", ten, {}),
            ("tenants, same file again", ten, {}),
            ("tenants, --full without 2 %", full, {"full": True}),
        ):
            started = time.perf_counter()
            r = await Importer(db, **kwargs).run("tenants", path)  # type: ignore[arg-type]
            took = time.perf_counter() - started
            print(
                f"  {label}: {took:.2f} s ({r.created} created, {r.updated} updated, "
                f"{r.unchanged} unchanged, {r.departed} departed, {len(r.rejected)} rejected)"
            )
    finally:
        await db.dispose()


async def admin(url: str, sql: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(sql))
    await engine.dispose()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tenants", type=int, default=50_000)
    p.add_argument("--residences", type=int, default=500)
    p.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    p.add_argument("--pg-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        res, ten = write_files(folder, args.tenants, args.residences)
        full = without_some(ten, folder, 0.02)
        size = ten.stat().st_size / 1e6
        print(f"{args.tenants} tenants ({size:.1f} MB CSV), {args.residences} residences")
        if args.backend in ("sqlite", "both"):
            url = f"sqlite+aiosqlite:///{folder / 'bench.sqlite3'}"
            upgrade(url)
            print("SQLite:")
            asyncio.run(run(url, res, ten, full))
        if args.backend in ("postgres", "both"):
            name = f"relais_bench_import_{uuid.uuid4().hex[:8]}"
            asyncio.run(admin(args.pg_admin_url, f'CREATE DATABASE "{name}"'))
            url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
            try:
                upgrade(url)
                print("PostgreSQL:")
                asyncio.run(run(url, res, ten, full))
            finally:
                asyncio.run(
                    admin(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )


if __name__ == "__main__":
    main()
