"""`relais import`: a landlord's residences, tenants and staff from its own spreadsheet exports.

Files are CSV (`;`, `,` or tab; UTF-8, UTF-8 with BOM or Windows-1252, as French Excel writes
them) or XLSX. Columns are found by their header, whatever its case and accents, among the
names property-management software uses; `--map` names the others. Every row is checked in
full before anything is written, then the whole import is one transaction: a rejected row is
reported with its spreadsheet line number and never leaves half a tenant; a file that cannot
be read at all (`ImportFileError`) writes nothing.

The reference (tenant reference, residence code, staff login) is the key: a second run of
the same file finds every row unchanged.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import openpyxl
import yaml
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.phones import to_e164
from bot.storage.db import Database
from bot.storage.models import Residence, Role, StaffUser, Tenant

MAX_BYTES = 50 * 1024 * 1024
KINDS = ("residences", "tenants", "staff")
# Rows written per statement: large enough that 50,000 tenants are a few dozen round trips,
# small enough to stay under SQLite's and asyncpg's parameter limits.
CHUNK = 1000


class ImportFileError(ValueError):
    """The file cannot be imported at all (not a table, no reference column…): nothing written."""


class _DryRun(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Rejected:
    line: int
    reason: str


@dataclass(slots=True)
class Report:
    kind: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    departed: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "departed": self.departed,
            "rejected": [{"line": r.line, "reason": r.reason} for r in self.rejected],
        }

    def text(self) -> str:
        lines = [
            f"{self.kind.capitalize()}: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {self.departed} departed, "
            f"{len(self.rejected)} rejected."
        ]
        if not self.created and not self.updated and not self.departed:
            lines.append("Nothing to change: the database already matches this file.")
        for r in self.rejected:
            lines.append(f"  line {r.line}: {r.reason}")
        if self.dry_run:
            lines.append("Dry run: nothing was written.")
        return "\n".join(lines)


# -- headers ---------------------------------------------------------------------------------


def fold(text: str) -> str:
    """A header as compared: lower case, no accents, words separated by one space."""
    text = unicodedata.normalize("NFKD", str(text).lower())
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


# The usual names of each column in French landlords' exports (compared folded).
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "tenants": {
        "reference": (
            "reference locataire",
            "ref locataire",
            "n locataire",
            "no locataire",
            "num locataire",
            "numero locataire",
            "code locataire",
            "matricule locataire",
            "reference",
            "tenant reference",
            "reference",
        ),
        "last_name": ("nom", "nom locataire", "nom de famille", "last name", "surname"),
        "first_name": ("prenom", "prenom locataire", "first name"),
        "phone": (
            "telephone portable",
            "tel portable",
            "portable",
            "mobile",
            "telephone mobile",
            "tel mobile",
            "telephone",
            "tel",
            "phone",
            "gsm",
        ),
        "email": ("email", "e mail", "mail", "courriel", "adresse email", "adresse mail"),
        "residence": (
            "code residence",
            "residence",
            "code groupe",
            "groupe",
            "code programme",
            "programme",
            "residence code",
        ),
        "building": ("batiment", "bat", "code batiment", "entree", "building"),
        "floor": ("etage", "niveau", "floor"),
        "apartment": (
            "logement",
            "n logement",
            "no logement",
            "num logement",
            "numero logement",
            "porte",
            "n porte",
            "numero porte",
            "appartement",
            "apartment",
        ),
        "language": ("langue", "langue parlee", "language"),
    },
    "residences": {
        "code": ("code residence", "code", "code groupe", "code programme", "residence code"),
        "name": ("nom", "nom residence", "libelle", "libelle residence", "residence", "name"),
        "address": ("adresse", "adresse residence", "address"),
        "postcode": ("code postal", "cp", "postcode"),
        "city": ("ville", "commune", "city"),
        "buildings": ("batiments", "batiment", "buildings"),
        "agency": ("agence", "code agence", "agency"),
        "caretaker_hours": (
            "horaires gardien",
            "horaires du gardien",
            "horaires loge",
            "permanence gardien",
            "caretaker hours",
        ),
        "bulky_waste": (
            "encombrants",
            "collecte encombrants",
            "regle encombrants",
            "jour encombrants",
            "bulky waste",
        ),
    },
    "staff": {
        "login": ("identifiant", "login", "code utilisateur", "utilisateur"),
        "name": ("nom", "nom complet", "nom prenom", "name"),
        "role": ("role", "fonction", "profil"),
        "residences": ("residences", "residence", "codes residences", "groupes"),
        "phone": ("telephone", "telephone portable", "portable", "mobile", "tel", "phone"),
        "telegram": ("telegram", "telegram chat id", "id telegram"),
    },
}
KEY = {"tenants": "reference", "residences": "code", "staff": "login"}
KEY_LABEL = {
    "tenants": "tenant reference ('Référence locataire', 'N° locataire' or 'Code locataire')",
    "residences": "residence code ('Code résidence' or 'Code')",
    "staff": "login ('Identifiant' or 'Login')",
}


def match_columns(kind: str, header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """Field -> column index. `mapping` (field -> header as written) wins over the names."""
    folded = [fold(h) for h in header]
    found: dict[str, int] = {}
    for fld, name in mapping.items():
        if fld not in COLUMNS[kind]:
            raise ImportFileError(
                f"--map: unknown field '{fld}' for {kind} "
                f"(expected one of: {', '.join(COLUMNS[kind])})"
            )
        if fold(name) not in folded:
            raise ImportFileError(f"--map: column '{name}' is not in the file's header")
        found[fld] = folded.index(fold(name))
    taken = set(found.values())
    for fld, names in COLUMNS[kind].items():
        if fld in found:
            continue
        for name in names:  # the most specific name first
            idx = next((i for i, h in enumerate(folded) if h == name and i not in taken), None)
            if idx is not None:
                found[fld] = idx
                taken.add(idx)
                break
    if KEY[kind] not in found:
        raise ImportFileError(f"no {KEY_LABEL[kind]} column in the header line")
    return found


def read_mapping(path: Path | None) -> dict[str, str]:
    """`--map` file: `field: "Header in the file"` (at the top or under `columns:`)."""
    if path is None:
        return {}
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ImportFileError(f"--map {path}: cannot read it ({type(exc).__name__})") from exc
    if isinstance(doc, dict) and isinstance(doc.get("columns"), dict):
        doc = doc["columns"]
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        raise ImportFileError(f'--map {path}: expected lines like  phone: "Tel. portable"')
    return {str(k): v for k, v in doc.items()}


# -- reading the file ------------------------------------------------------------------------


@dataclass(slots=True)
class Table:
    header: list[str]
    rows: list[tuple[int, list[str]]]  # (line as a spreadsheet shows it, cells)


def read_table(path: Path) -> Table:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImportFileError(f"{path.name}: too large ({size // 1_000_000} MB)")
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read the file ({exc.strerror})") from exc
    if not data.strip():
        raise ImportFileError(f"{path.name}: the file is empty")
    if data.startswith(b"PK\x03\x04"):
        return _read_xlsx(path, data)
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            f"{path.name}: an old Excel .xls file; save it as .xlsx or CSV and import that"
        )
    return _read_csv(path, data)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel keeps "0612345678" as the number 612345678
    if isinstance(value, datetime):
        return value.date().isoformat()
    return str(value).strip()


def _read_xlsx(path: Path, data: bytes) -> Table:
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ImportFileError(f"{path.name}: not a readable XLSX workbook") from exc
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise ImportFileError(f"{path.name}: the workbook has no sheet")
        rows = [[_cell(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        book.close()
    return _table(path, rows)


def _decode(path: Path, data: bytes) -> str:
    # A text file has no NUL and few control characters; random bytes have both.
    sample = data[:65536]
    controls = sum(1 for b in sample if b < 32 and b not in (9, 10, 13))
    if b"\x00" in sample or controls > len(sample) // 100:
        raise ImportFileError(f"{path.name}: not a CSV or XLSX file (binary content)")
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        # French Excel saves "CSV (séparateur: point-virgule)" in Windows-1252.
        return data.decode("cp1252", errors="replace")


def _read_csv(path: Path, data: bytes) -> Table:
    text = _decode(path, data)
    first = text.split("\n", 1)[0]
    # The header line decides: column names seldom hold a separator, while names and
    # addresses in the rows often hold commas, which can mislead a guess made on the rows.
    counts = {d: first.count(d) for d in ";\t,"}
    delimiter = max(counts, key=lambda d: counts[d])
    if counts[delimiter] == 0:
        raise ImportFileError(
            f"{path.name}: not a CSV table (no ';', ',' or tab between the header's columns)"
        )
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise ImportFileError(f"{path.name}: not a readable CSV file ({exc})") from exc
    return _table(path, [[c.strip() for c in row] for row in rows])


def _table(path: Path, rows: list[list[str]]) -> Table:
    if not rows or not any(rows[0]):
        raise ImportFileError(f"{path.name}: no header line (the first line is empty)")
    header = rows[0]
    body = [(i + 2, r) for i, r in enumerate(rows[1:]) if any(c for c in r)]
    return Table(header, body)


# -- rows to records -------------------------------------------------------------------------


def _get(row: list[str], cols: dict[str, int], fld: str) -> str | None:
    """The cell of `fld`, or None when the file has no such column (then it is left alone)."""
    idx = cols.get(fld)
    if idx is None:
        return None
    return row[idx].strip() if idx < len(row) else ""


def _row_key(line: int, key: str, seen: dict[str, int], report: Report, missing: str) -> str | None:
    """A row's key when it has one not met earlier in the file; else the row is rejected."""
    if not key:
        report.rejected.append(Rejected(line, missing))
        return None
    if key in seen:
        report.rejected.append(
            Rejected(line, f"duplicate reference {key} (already on line {seen[key]})")
        )
        return None
    seen[key] = line
    return key


def _language(value: str) -> str:
    v = fold(value)
    if v in ("en", "eng", "anglais", "english", "gb", "uk"):
        return "en"
    return "fr"


@dataclass(slots=True)
class _Pending:
    line: int
    values: dict[str, Any]


def _changed(current: dict[str, Any], new: dict[str, Any]) -> bool:
    return any(current.get(k) != v for k, v in new.items())


class Importer:
    def __init__(
        self,
        db: Database,
        *,
        region: str = "FR",
        dry_run: bool = False,
        full: bool = False,
        mapping: dict[str, str] | None = None,
        now: datetime | None = None,
    ) -> None:
        self.db = db
        self.region = region
        self.dry_run = dry_run
        self.full = full
        self.mapping = mapping or {}
        self.now = now or datetime.now(UTC)

    async def run(self, kind: str, path: Path) -> Report:
        if kind not in KINDS:
            raise ImportFileError(f"unknown kind '{kind}' (residences, tenants or staff)")
        table = read_table(path)
        cols = match_columns(kind, table.header, self.mapping)
        report = Report(kind, dry_run=self.dry_run)
        try:
            async with self.db.transaction() as s:
                if kind == "tenants":
                    await self._tenants(s, table, cols, report)
                elif kind == "residences":
                    await self._residences(s, table, cols, report)
                else:
                    await self._staff(s, table, cols, report)
                if self.dry_run:
                    raise _DryRun  # rolls the transaction back: everything was counted
        except _DryRun:
            pass
        return report

    # -- tenants -----------------------------------------------------------------------------

    async def _tenants(
        self, s: AsyncSession, table: Table, cols: dict[str, int], report: Report
    ) -> None:
        residences = dict((await s.execute(select(Residence.code, Residence.id))).tuples().all())
        folded_codes = {fold(code): rid for code, rid in residences.items()}
        fields = (
            "first_name",
            "last_name",
            "phone",
            "email",
            "residence_id",
            "building",
            "floor",
            "apartment",
            "language",
        )
        existing: dict[str, dict[str, Any]] = {}
        stmt = select(
            Tenant.id,
            Tenant.reference,
            Tenant.departed_at,
            Tenant.erased_at,
            *(getattr(Tenant, f) for f in fields),
        )
        for rec in (await s.execute(stmt)).mappings():
            existing[rec["reference"]] = dict(rec)
        phone_owner = {t["phone"]: ref for ref, t in existing.items() if t["phone"]}
        seen: dict[str, int] = {}  # reference -> line
        phones: dict[str, tuple[str, int]] = {}  # phone -> (reference, line) in this file
        creates: list[_Pending] = []
        updates: list[_Pending] = []
        for line, row in table.rows:
            found = _row_key(
                line, _get(row, cols, "reference") or "", seen, report, "no tenant reference"
            )
            if found is None:
                continue
            ref = found
            values: dict[str, Any] = {}
            for fld in ("first_name", "last_name", "building", "floor", "apartment"):
                v = _get(row, cols, fld)
                if v is not None:
                    values[fld] = v[: 100 if fld.endswith("name") else 16]
            email = _get(row, cols, "email")
            if email is not None:
                values["email"] = email[:200] or None
            lang = _get(row, cols, "language")
            if lang is not None:
                values["language"] = _language(lang) if lang else "fr"
            code = _get(row, cols, "residence")
            if code is not None:
                rid = residences.get(code) or folded_codes.get(fold(code)) if code else None
                if code and rid is None:
                    report.rejected.append(Rejected(line, f"unknown residence '{code}'"))
                    continue
                values["residence_id"] = rid
            raw_phone = _get(row, cols, "phone")
            if raw_phone is not None:
                phone = to_e164(raw_phone, self.region) if raw_phone else None
                if raw_phone and phone is None:
                    report.rejected.append(
                        Rejected(line, f"'{raw_phone[:40]}' is not a phone number")
                    )
                    continue
                if phone is not None:
                    if phone in phones:
                        other, other_line = phones[phone]
                        report.rejected.append(
                            Rejected(
                                line,
                                f"two tenants sharing one phone: {phone} is also tenant "
                                f"{other}'s (line {other_line})",
                            )
                        )
                        continue
                    phones[phone] = (ref, line)
                values["phone"] = phone
            current = existing.get(ref)
            if current is None:
                creates.append(_Pending(line, {"reference": ref[:32], **values}))
            elif current["erased_at"] is not None:
                report.rejected.append(
                    Rejected(line, f"tenant {ref} was erased (GDPR): not imported again")
                )
            elif _changed(current, values) or current["departed_at"] is not None:
                updates.append(_Pending(line, {"id": current["id"], "reference": ref, **values}))
            else:
                report.unchanged += 1
        departing = []
        if self.full:
            departing = [
                t
                for ref, t in existing.items()
                if ref not in seen and t["departed_at"] is None and t["erased_at"] is None
            ]
        freed = {t["phone"] for t in departing if t["phone"]}
        # A phone this file gives to one tenant may still be another's in the database: fine
        # when that other tenant gives it up in this same import, else the row is rejected.
        releasing = {
            existing[p.values["reference"]]["phone"]
            for p in updates
            if "phone" in p.values and existing[p.values["reference"]]["phone"] != p.values["phone"]
        }

        def phone_free(p: _Pending) -> bool:
            phone = p.values.get("phone")
            owner = phone_owner.get(phone) if phone else None
            if owner and owner != p.values["reference"] and phone not in freed | releasing:
                report.rejected.append(
                    Rejected(
                        p.line,
                        f"two tenants sharing one phone: {phone} already belongs to tenant {owner}",
                    )
                )
                return False
            return True

        keep_creates = [p for p in creates if phone_free(p)]
        keep_updates = [p for p in updates if phone_free(p)]
        report.created = len(keep_creates)
        report.updated = len(keep_updates)
        report.departed = len(departing)
        report.rejected.sort(key=lambda r: r.line)
        # Phones that move are emptied first: the unique index must hold after each statement.
        moving = [
            {"id": p.values["id"], "phone": None}
            for p in keep_updates
            if "phone" in p.values and existing[p.values["reference"]]["phone"]
        ]
        gone = [
            {"id": t["id"], "phone": None, "telegram_chat_id": None, "departed_at": self.now}
            for t in departing
        ]
        await _executemany_update(s, gone)
        await _executemany_update(s, moving)
        for chunk in _chunks([{**p.values, "departed_at": None} for p in keep_updates]):
            chunk = [{k: v for k, v in row.items() if k != "reference"} for row in chunk]
            await _executemany_update(s, chunk)
        for chunk in _chunks([p.values for p in keep_creates]):
            await s.execute(insert(Tenant), [_tenant_defaults(v) for v in chunk])

    # -- residences --------------------------------------------------------------------------

    async def _residences(
        self, s: AsyncSession, table: Table, cols: dict[str, int], report: Report
    ) -> None:
        rows = list((await s.execute(select(Residence))).scalars())
        by_code = {r.code: r for r in rows}
        agencies: dict[str, dict[str, Any]] = {}
        for r in rows:
            key = str((r.extra or {}).get("agency") or "")
            if key and r.agency:
                agencies.setdefault(fold(key), r.agency)
            if r.agency.get("name"):
                agencies.setdefault(fold(str(r.agency["name"])), r.agency)
        seen: dict[str, int] = {}
        for line, row in table.rows:
            found = _row_key(
                line, (_get(row, cols, "code") or "")[:32], seen, report, "no residence code"
            )
            if found is None:
                continue
            code = found
            current = by_code.get(code)
            values: dict[str, Any] = {}
            name = _get(row, cols, "name")
            if name is not None and name:
                values["name"] = name[:200]
            elif current is None:
                values["name"] = code
            address = _get(row, cols, "address")
            if address is not None:
                values["address"] = address[:300]
            city = _get(row, cols, "city")
            postcode = _get(row, cols, "postcode")
            if city is not None or postcode is not None:
                values["city"] = " ".join(x for x in (postcode, city) if x)[:100]
            buildings = _get(row, cols, "buildings")
            if buildings is not None:
                values["buildings"] = [b for b in re.split(r"[,;/\s]+", buildings) if b]
            agency = _get(row, cols, "agency")
            extra = dict(current.extra or {}) if current else {}
            if agency:
                values["agency"] = dict(agencies.get(fold(agency)) or {"name": agency})
                extra["agency"] = agency
            hours = _get(row, cols, "caretaker_hours")
            if hours is not None:
                ch = dict(current.caretaker_hours or {}) if current else {}
                text = dict(ch.get("text") or {})
                text["fr"] = hours
                ch["text"] = text
                values["caretaker_hours"] = ch
            bulky = _get(row, cols, "bulky_waste")
            if bulky:
                rule = parse_collection_rule(bulky)
                if rule is None:
                    report.rejected.append(
                        Rejected(
                            line,
                            f"bulky-waste rule not understood: '{bulky[:60]}' (write e.g. "
                            "'chaque jeudi', '2e mardi du mois', 'dernier vendredi du mois')",
                        )
                    )
                    continue
                bw = dict(current.bulky_waste or {}) if current else {}
                bw["rule"] = rule
                bw["text"] = {**(bw.get("text") or {}), "fr": bulky}
                values["bulky_waste"] = bw
            if current is None:
                report.created += 1
                if not self.dry_run:
                    s.add(Residence(code=code, extra=extra, **values))
                continue
            values["extra"] = extra
            if any(getattr(current, k) != v for k, v in values.items()):
                report.updated += 1
                for k, v in values.items():
                    setattr(current, k, v)
            else:
                report.unchanged += 1
        report.rejected.sort(key=lambda r: r.line)
        await s.flush()

    # -- staff -------------------------------------------------------------------------------

    async def _staff(
        self, s: AsyncSession, table: Table, cols: dict[str, int], report: Report
    ) -> None:
        residences = {r.code: r for r in (await s.execute(select(Residence))).scalars()}
        users = {u.login: u for u in (await s.execute(select(StaffUser))).scalars()}
        seen: dict[str, int] = {}
        for line, row in table.rows:
            found = _row_key(line, (_get(row, cols, "login") or "")[:64], seen, report, "no login")
            if found is None:
                continue
            login = found
            values: dict[str, Any] = {}
            name = _get(row, cols, "name")
            if name is not None:
                values["display_name"] = (name or login)[:200]
            role_text = _get(row, cols, "role")
            if role_text is not None:
                role = staff_role(role_text)
                if role is None:
                    report.rejected.append(
                        Rejected(
                            line,
                            f"unknown role '{role_text[:40]}' (gardien, astreinte or responsable)",
                        )
                    )
                    continue
                values["role"] = role
            raw_phone = _get(row, cols, "phone")
            if raw_phone is not None:
                phone = to_e164(raw_phone, self.region) if raw_phone else None
                if raw_phone and phone is None:
                    report.rejected.append(
                        Rejected(line, f"'{raw_phone[:40]}' is not a phone number")
                    )
                    continue
                values["phone"] = phone
            telegram = _get(row, cols, "telegram")
            if telegram is not None:
                values["telegram_chat_id"] = telegram[:64] or None
            codes_text = _get(row, cols, "residences")
            chosen: list[Residence] | None = None
            if codes_text is not None:
                codes = [c for c in re.split(r"[,;/\s]+", codes_text) if c]
                unknown = [c for c in codes if c not in residences]
                if unknown:
                    report.rejected.append(
                        Rejected(line, f"unknown residence '{', '.join(unknown)}'")
                    )
                    continue
                chosen = [residences[c] for c in codes]
            user = users.get(login)
            role_now = values.get("role") or (user.role if user else Role.CARETAKER.value)
            if role_now == Role.CARETAKER.value and not (chosen or (user and user.residences)):
                report.rejected.append(Rejected(line, "a caretaker needs at least one residence"))
                continue
            if user is None:
                report.created += 1
                # No password: the account signs in once `relais users add` has set one.
                user = StaffUser(login=login, password_hash="", **values)
                user.residences = chosen or []
                users[login] = user
                s.add(user)
            else:
                same_res = chosen is None or {r.id for r in user.residences} == {
                    r.id for r in chosen
                }
                if same_res and not any(getattr(user, k) != v for k, v in values.items()):
                    report.unchanged += 1
                    continue
                report.updated += 1
                for k, v in values.items():
                    setattr(user, k, v)
                if chosen is not None:
                    user.residences = chosen
            if role_now == Role.CARETAKER.value:
                for r in chosen or []:
                    if not (r.extra or {}).get("caretaker"):
                        r.extra = {**(r.extra or {}), "caretaker": login}
        report.rejected.sort(key=lambda r: r.line)
        await s.flush()


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), CHUNK):
        yield rows[i : i + CHUNK]


async def _executemany_update(s: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """UPDATE by primary key, rows grouped by the columns they set (one statement each)."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for group in groups.values():
        for chunk in _chunks(group):
            await s.execute(update(Tenant), chunk)


def _tenant_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "first_name": "",
        "last_name": "",
        "phone": None,
        "email": None,
        "residence_id": None,
        "building": "",
        "floor": "",
        "apartment": "",
        "language": "fr",
        "vulnerable": False,
        "vulnerability": "",
        "created_at": datetime.now(UTC),
        **values,
    }


_ROLES = {
    "caretaker": ("gardien", "gardienne", "caretaker", "agent de proximite", "concierge"),
    "oncall": ("astreinte", "oncall", "on call", "permanence"),
    "manager": ("responsable", "manager", "gestionnaire", "responsable de secteur", "chef"),
}


def staff_role(text: str) -> str | None:
    t = fold(text)
    for role, names in _ROLES.items():
        if t in names or any(t.startswith(n) for n in names):
            return role
    return None


_WEEKDAYS = {
    "lundi": 0,
    "mardi": 1,
    "mercredi": 2,
    "jeudi": 3,
    "vendredi": 4,
    "samedi": 5,
    "dimanche": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
}
_ORDINALS = {
    "1er": 1,
    "1re": 1,
    "premier": 1,
    "premiere": 1,
    "first": 1,
    "1st": 1,
    "2e": 2,
    "2eme": 2,
    "deuxieme": 2,
    "second": 2,
    "seconde": 2,
    "2nd": 2,
    "3e": 3,
    "3eme": 3,
    "troisieme": 3,
    "third": 3,
    "3rd": 3,
    "4e": 4,
    "4eme": 4,
    "quatrieme": 4,
    "fourth": 4,
    "4th": 4,
}


def parse_collection_rule(text: str) -> dict[str, Any] | None:
    """'chaque jeudi' -> weekly; '2e mardi du mois', 'les 1er et 3e lundis' -> monthly;
    'dernier vendredi du mois' -> monthly_last. None when it is none of these."""
    words = fold(text).split()
    days = [_WEEKDAYS[w.rstrip("s")] for w in words if w.rstrip("s") in _WEEKDAYS]
    if len(set(days)) != 1:
        return None
    weekday = days[0]
    if any(w in ("dernier", "last") for w in words):
        return {"kind": "monthly_last", "weekday": weekday}
    nth = sorted({_ORDINALS[w] for w in words if w in _ORDINALS})
    if nth:
        return {"kind": "monthly", "nth": nth, "weekday": weekday}
    if any(w in ("chaque", "tous", "every", "hebdomadaire", "weekly", "le") for w in words):
        return {"kind": "weekly", "weekday": weekday}
    return None
