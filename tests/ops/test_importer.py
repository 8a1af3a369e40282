"""`relais import` on files as landlords export them, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select

from bot.app.runtime import Runtime
from bot.core.phones import find_phone, to_e164
from bot.dialogue.reading import find_identity
from bot.ops.importer import Importer, ImportFileError, parse_collection_rule, read_table
from bot.storage.db import Database
from bot.storage.models import Conversation, Message, Residence, StaffUser, Tenant
from tests.fakes import RecordingChannel
from tests.worker.test_pipeline import send, settled

HEADER = [
    "Référence locataire", "NOM", "Prénom", "Téléphone portable", "E-mail",
    "Code résidence", "Bâtiment", "Étage", "N° logement", "Langue",
]  # fmt: skip
RESIDENCES = ["FLEURS", "CANAL", "HORIZON", "PARC"]


def messy(n: int, form: int) -> str:
    d = f"6{n:08d}"
    return [
        f"0{d[0]} {d[1:3]} {d[3:5]} {d[5:7]} {d[7:9]}",
        f"0{d[0]}.{d[1:3]}.{d[3:5]}.{d[5:7]}.{d[7:9]}",
        f"+33 {d[0]} {d[1:3]} {d[3:5]} {d[5:7]} {d[7:9]}",
        f"0033 {d}",
        f"0{d}",
    ][form % 5]


def landlord_rows(count: int = 300) -> list[list[str]]:
    rnd = random.Random(20)
    rows = []
    for i in range(count):
        rows.append(
            [
                f"L-7{i:04d}",
                rnd.choice(["Lefèvre", "Ndiaye", "Haddad", "Caron"]),
                rnd.choice(["Éloïse", "Loïc", "Zoé", "Inès"]),
                messy(10_000 + i, i),
                f"l{i}@example.org",
                RESIDENCES[i % 4],
                "A",
                str(i % 10),
                f"{i:03d}",
                "Anglais" if i % 50 == 0 else "Français",
            ]
        )
    return rows


def write_csv(
    path: Path, rows: list[list[str]], *, delimiter: str = ";", enc: str = "cp1252"
) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    w.writerow(HEADER)
    w.writerows(rows)
    path.write_bytes(buf.getvalue().encode(enc))
    return path


def with_bad_rows(rows: list[list[str]]) -> tuple[list[list[str]], list[dict[str, object]]]:
    """The rows with five bad ones put in; the report they must give (line 1 is the header)."""
    rows = [list(r) for r in rows]
    rows[9][5] = "NULLEPART"  # line 11
    rows[19][3] = "06 12"  # line 21
    rows[29][0] = rows[28][0]  # line 31: the reference of line 30
    rows[39][3] = rows[38][3]  # line 41: the phone of line 40, written the same
    rows[49][3] = "pas de portable"  # line 51
    expected = [
        {"line": 11, "reason": "unknown residence 'NULLEPART'"},
        {"line": 21, "reason": "'06 12' is not a phone number"},
        {"line": 31, "reason": f"duplicate reference {rows[28][0]} (already on line 30)"},
        {
            "line": 41,
            "reason": f"two tenants sharing one phone: {to_e164(rows[38][3])} is also tenant "
            f"{rows[38][0]}'s (line 40)",
        },
        {"line": 51, "reason": "'pas de portable' is not a phone number"},
    ]
    return rows, expected


async def count_tenants(db: Database) -> int:
    async with db.session() as s:
        return int((await s.execute(select(func.count(Tenant.id)))).scalar_one())


async def test_a_french_excel_export_imports_with_an_exact_report(
    database_url: str, tmp_path: Path
) -> None:
    rows, expected = with_bad_rows(landlord_rows(300))
    path = write_csv(tmp_path / "locataires.csv", rows)
    assert "é".encode("cp1252") in path.read_bytes()  # really Windows-1252, not UTF-8
    db = Database(database_url)
    try:
        before = await count_tenants(db)
        report = await Importer(db).run("tenants", path)
        assert report.to_json() == {
            "created": 295,
            "updated": 0,
            "unchanged": 0,
            "departed": 0,
            "rejected": expected,
        }
        assert await count_tenants(db) == before + 295
        async with db.session() as s:
            t = (
                (await s.execute(select(Tenant).where(Tenant.reference == "L-70003")))
                .unique()
                .scalar_one()
            )
            assert t.phone == "+33600010003" and t.first_name in ("Éloïse", "Loïc", "Zoé", "Inès")
            assert t.residence is not None and t.residence.code == "PARC"
            assert (t.building, t.floor, t.apartment, t.language) == ("A", "3", "003", "fr")
            english = (
                (await s.execute(select(Tenant).where(Tenant.reference == "L-70050")))
                .unique()
                .scalar_one()
            )
            assert english.language == "en"
            # A rejected row is not there at all, not half there.
            assert (
                await s.execute(select(Tenant).where(Tenant.reference == rows[9][0]))
            ).first() is None

        again = await Importer(db).run("tenants", path)
        assert (again.created, again.updated, again.unchanged, again.departed) == (0, 0, 295, 0)
        assert "Nothing to change" in again.text()
        assert await count_tenants(db) == before + 295
    finally:
        await db.dispose()


async def test_an_xlsx_export_with_other_headers_and_numbers_as_phones(
    database_url: str, tmp_path: Path
) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["code locataire", "nom", "prenom", "MOBILE", "Groupe", "Bat", "Etage", "Porte"])
    # Excel turns "0612345690" into the number 612345690 unless the column is text.
    sheet.append(["X-1", "Caron", "Odile", 612345690, "fleurs", "B", 2, 201])
    sheet.append(["X-2", "Roux", "Léo", "+262 692 12 34 56", "PARC", "D", 0, "004"])
    sheet.append(["X-3", "Smith", "Ann", "+44 7911 123456", "CANAL", "1", 1, "101"])
    path = tmp_path / "export.xlsx"
    book.save(path)
    db = Database(database_url)
    try:
        report = await Importer(db).run("tenants", path)
        assert report.to_json()["created"] == 3 and report.rejected == []
        async with db.session() as s:
            got = {
                t.reference: (t.phone, t.residence.code if t.residence else None, t.apartment)
                for t in (await s.execute(select(Tenant).where(Tenant.reference.like("X-%"))))
                .unique()
                .scalars()
            }
        assert got == {
            "X-1": ("+33612345690", "FLEURS", "201"),
            "X-2": ("+262692123456", "PARC", "004"),
            "X-3": ("+447911123456", "CANAL", "101"),
        }
    finally:
        await db.dispose()


async def test_full_export_marks_absent_tenants_departed_and_they_are_no_longer_recognised(
    database_url: str, tmp_path: Path, recording: RecordingChannel
) -> None:
    db = Database(database_url)
    try:
        async with db.session() as s:
            demo = [
                (t.reference, t.phone)
                for t in (await s.execute(select(Tenant).order_by(Tenant.id))).unique().scalars()
            ]
        # The landlord's full export: every demo tenant but the first, one phone changed,
        # written the French way.
        rows = [[ref, "", "", phone, "", "", "", "", "", ""] for ref, phone in demo[1:]]
        rows[0][3] = "06 99 88 77 66"
        header_only = [HEADER[0], HEADER[3]]
        path = tmp_path / "full.csv"
        path.write_text(
            ";".join(header_only) + "\n" + "\n".join(f"{r[0]};{r[3]}" for r in rows) + "\n",
            encoding="utf-8-sig",
        )
        dry = await Importer(db, full=True, dry_run=True).run("tenants", path)
        assert (dry.departed, dry.updated, dry.unchanged) == (1, 1, len(demo) - 2)
        async with db.session() as s:
            first = (
                (await s.execute(select(Tenant).where(Tenant.reference == demo[0][0])))
                .unique()
                .scalar_one()
            )
            assert first.departed_at is None and first.phone == demo[0][1]  # dry run
        report = await Importer(db, full=True).run("tenants", path)
        assert report.to_json() == {
            "created": 0,
            "updated": 1,
            "unchanged": len(demo) - 2,
            "departed": 1,
            "rejected": [],
        }
        async with db.session() as s:
            first = (
                (await s.execute(select(Tenant).where(Tenant.reference == demo[0][0])))
                .unique()
                .scalar_one()
            )
            assert first.departed_at is not None and first.phone is None
            moved = (
                (await s.execute(select(Tenant).where(Tenant.reference == demo[1][0])))
                .unique()
                .scalar_one()
            )
            assert moved.phone == "+33699887766"
        again = await Importer(db, full=True).run("tenants", path)
        assert (again.departed, again.updated, again.created) == (0, 0, 0)
    finally:
        await db.dispose()


async def test_a_departed_tenant_writing_again_is_asked_who_they_are(
    runtime: Runtime, recording: RecordingChannel, tmp_path: Path
) -> None:
    await send(runtime, "bonjour", address="+33612345600", pid="d1")
    await settled(runtime)
    assert "Nadia" in recording.sent[-1].text
    path = tmp_path / "full.csv"
    path.write_text("N° locataire;Portable\nL-10232;+33612345601\n", encoding="utf-8")
    report = await Importer(runtime.db, full=True).run("tenants", path)
    assert report.departed == 31 and report.unchanged == 1
    await send(runtime, "bonjour", address="+33612345600", pid="d2")
    await settled(runtime)
    # No name: not recognised (Bonjour or Bonsoir by the hour).
    assert recording.sent[-1].text.startswith(("Bonjour !", "Bonsoir !"))
    async with runtime.db.session() as s:
        conv = (await s.execute(select(Conversation))).unique().scalar_one()
        assert conv.tenant_id is None  # the old messages stay in the conversation
        count = (await s.execute(select(func.count(Message.id)))).scalar_one()
        assert count == 4


async def test_phones_swapped_between_two_tenants(database_url: str, tmp_path: Path) -> None:
    path = tmp_path / "swap.csv"
    path.write_text(
        "Référence locataire,Téléphone\nL-10231,06 12 34 56 01\nL-10232,06 12 34 56 00\n",
        encoding="utf-8",
    )
    db = Database(database_url)
    try:
        report = await Importer(db).run("tenants", path)
        assert (report.updated, report.rejected) == (2, [])
        async with db.session() as s:
            phones = dict(
                (
                    await s.execute(
                        select(Tenant.reference, Tenant.phone).where(
                            Tenant.reference.in_(["L-10231", "L-10232"])
                        )
                    )
                )
                .tuples()
                .all()
            )
        assert phones == {"L-10231": "+33612345601", "L-10232": "+33612345600"}
        # A phone kept by a tenant absent from the file cannot be given to another.
        path.write_text("Référence locataire,Téléphone\nL-10233,+33612345601\n", encoding="utf-8")
        clash = await Importer(db).run("tenants", path)
        assert clash.to_json()["rejected"] == [
            {
                "line": 2,
                "reason": "two tenants sharing one phone: +33612345601 already belongs to "
                "tenant L-10231",
            }
        ]
    finally:
        await db.dispose()


async def test_residences_then_staff(database_url: str, tmp_path: Path) -> None:
    res = tmp_path / "residences.csv"
    res.write_text(
        "Code résidence\tLibellé\tAdresse\tCP\tVille\tBâtiments\tAgence\tHoraires gardien\tEncombrants\n"
        "GARE\tRésidence de la Gare\t1 place de la Gare\t59000\tLille\tA, B\tlille\tlundi-vendredi 8h-12h\tle 1er et 3e mercredi du mois\n"
        "MOULIN\tLe Moulin\t2 rue du Moulin\t59100\tRoubaix\tM\troubaix\t\tchaque samedi\n"
        "FLOU\tFlou\t\t\t\t\t\t\tquand il fait beau\n",
        encoding="utf-8",
    )
    staff = tmp_path / "staff.csv"
    staff.write_text(
        "Identifiant;Nom;Fonction;Résidences;Téléphone\n"
        "paul;Paul Girard;Gardien;GARE;06 11 00 00 20\n"
        "zoe;Zoé Blanc;Responsable;GARE MOULIN;\n"
        "max;Max;Plombier;GARE;\n"
        "ines;Inès;Gardienne;NULLEPART;\n",
        encoding="utf-8",
    )
    db = Database(database_url)
    try:
        r = await Importer(db).run("residences", res)
        assert r.to_json() == {
            "created": 2,
            "updated": 0,
            "unchanged": 0,
            "departed": 0,
            "rejected": [
                {
                    "line": 4,
                    "reason": "bulky-waste rule not understood: 'quand il fait beau' (write e.g. "
                    "'chaque jeudi', '2e mardi du mois', 'dernier vendredi du mois')",
                }
            ],
        }
        s_report = await Importer(db).run("staff", staff)
        assert [(x.line, x.reason) for x in s_report.rejected] == [
            (4, "unknown role 'Plombier' (gardien, astreinte or responsable)"),
            (5, "unknown residence 'NULLEPART'"),
        ]
        assert s_report.created == 2
        async with db.session() as s:
            gare = (await s.execute(select(Residence).where(Residence.code == "GARE"))).scalar_one()
            assert gare.bulky_waste["rule"] == {"kind": "monthly", "nth": [1, 3], "weekday": 2}
            assert gare.agency["name"] == "Agence Lille Centre" and gare.city == "59000 Lille"
            assert gare.buildings == ["A", "B"] and gare.extra["caretaker"] == "paul"
            paul = (
                await s.execute(select(StaffUser).where(StaffUser.login == "paul"))
            ).scalar_one()
            assert paul.role == "caretaker" and paul.phone == "+33611000020"
            assert paul.password_hash == ""  # signs in once `relais users add` sets one
        assert (await Importer(db).run("residences", res)).unchanged == 2
        assert (await Importer(db).run("staff", staff)).unchanged == 2
    finally:
        await db.dispose()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"\n\n  \n", "the file is empty"),
        (random.Random(1).randbytes(200_000), "binary content"),
        (b"PK\x03\x04 not really a zip", "not a readable XLSX workbook"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 old excel", "old Excel .xls file"),
        ("Nom;Prénom\nDupont;Jean\n".encode(), "no tenant reference"),
        (b"just one line of text without columns", "not a CSV table"),
    ],
)
async def test_a_file_that_cannot_be_imported_writes_nothing(
    sqlite_url: str, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "file.csv"
    path.write_bytes(content)
    db = Database(sqlite_url)
    try:
        before = await count_tenants(db)
        with pytest.raises(ImportFileError, match=message.replace(".", r"\.")):
            await Importer(db).run("tenants", path)
        assert await count_tenants(db) == before
    finally:
        await db.dispose()


def test_delimiters_and_encodings(tmp_path: Path) -> None:
    rows = landlord_rows(3)
    for delimiter in (";", ",", "\t"):
        for enc in ("utf-8", "utf-8-sig", "cp1252"):
            table = read_table(write_csv(tmp_path / "t.csv", rows, delimiter=delimiter, enc=enc))
            assert table.header == HEADER, (delimiter, enc)
            assert table.rows[0] == (2, rows[0])


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("06-12-34-56-78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("+33 (0)6 12 34 56 78", "+33612345678"),
        ("0033 6 12 34 56 78", "+33612345678"),
        ("612345678", "+33612345678"),
        ("01 23 45 67 89", "+33123456789"),
        ("0692 12 34 56", "+262692123456"),  # La Réunion, dialled from France
        ("+262 692 12 34 56", "+262692123456"),
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("0694 20 12 34", "+594694201234"),  # Guyane
        ("0696 12 34 56", "+596696123456"),  # Martinique
        ("+269 321 23 45", "+2693212345"),  # Comores
        ("+44 7911 123456", "+447911123456"),
        ("0044 7911 123456", "+447911123456"),
        ("+1 415 555 2671", "+14155552671"),
        ("06 12", None),
        ("pas de portable", None),
        ("", None),
        ("00000000000000", None),
    ],
)
def test_phone_numbers_as_landlords_store_them(raw: str, e164: str | None) -> None:
    assert to_e164(raw) == e164


def test_one_function_for_telegram_contacts_and_typed_numbers() -> None:
    # Telegram: international without the "+".
    assert to_e164("33612345600", international=True) == "+33612345600"
    assert to_e164("262692123456", international=True) == "+262692123456"
    # A Belgian landlord: national numbers read as Belgian.
    assert to_e164("0470 12 34 56", "BE") == "+32470123456"
    # The identification dialogue.
    assert find_identity("c'est le 06.12.34.56.00 merci") == "+33612345600"
    assert find_identity("mon numéro +33 6 12 34 56 00") == "+33612345600"
    assert find_identity("0692 12 34 56") == "+262692123456"
    assert find_identity("ma référence L-10231") == "L-10231"
    assert find_identity("j'habite au 12 rue des Lilas 59000 Lille") is None
    assert find_phone("0470 12 34 56", "BE") == "+32470123456"


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("chaque jeudi", {"kind": "weekly", "weekday": 3}),
        ("tous les lundis", {"kind": "weekly", "weekday": 0}),
        ("le 2e mardi du mois", {"kind": "monthly", "nth": [2], "weekday": 1}),
        ("les 1er et 3e lundis du mois", {"kind": "monthly", "nth": [1, 3], "weekday": 0}),
        ("dernier vendredi du mois", {"kind": "monthly_last", "weekday": 4}),
        ("quand il fait beau", None),
        ("lundi ou mardi", None),
    ],
)
def test_collection_rules_in_words(text: str, rule: dict[str, object] | None) -> None:
    assert parse_collection_rule(text) == rule


def test_report_json_is_one_object() -> None:
    from bot.ops.importer import Rejected, Report

    r = Report("tenants", created=1, rejected=[Rejected(3, "x")])
    assert json.loads(json.dumps(r.to_json())) == {
        "created": 1,
        "updated": 0,
        "unchanged": 0,
        "departed": 0,
        "rejected": [{"line": 3, "reason": "x"}],
    }


def test_semicolons_win_over_commas_in_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "Référence locataire;Nom;Adresse\n"
        "L-1;Martin, Paul;12, rue des Lilas, bât. A\n"
        "L-2;Dupont, Jean;3, place, du, Marché\n",
        encoding="cp1252",
    )
    table = read_table(path)
    assert table.header == ["Référence locataire", "Nom", "Adresse"]
    assert table.rows == [
        (2, ["L-1", "Martin, Paul", "12, rue des Lilas, bât. A"]),
        (3, ["L-2", "Dupont, Jean", "3, place, du, Marché"]),
    ]
