"""Text compared without regard to case or accents ("evier" finds "Évier"), the same in
Python and in SQL on both databases, with no extension and no extra column.

`fold(text)` in Python; `Fold(column)` in SQL: PostgreSQL runs `translate` (then `replace`
for the ligatures) and `lower`; SQLite runs `relais_fold`, this module's `fold` registered
on every connection by `bot.storage.db` (SQLite's parser cannot nest the sixty `replace`
calls the mapping would take).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FUNCTION = "relais_fold"

# One letter for another: accented Latin letters (upper and lower case) to plain lower case,
# curly apostrophes to the straight one. Then the two-letter ligatures.
PLAIN = {
    **dict.fromkeys("àáâãäåÀÁÂÃÄÅ", "a"),
    **dict.fromkeys("çÇ", "c"),
    **dict.fromkeys("èéêëÈÉÊË", "e"),
    **dict.fromkeys("ìíîïÌÍÎÏ", "i"),
    **dict.fromkeys("ñÑ", "n"),
    **dict.fromkeys("òóôõöøÒÓÔÕÖØ", "o"),
    **dict.fromkeys("ùúûüÙÚÛÜ", "u"),
    **dict.fromkeys("ýÿÝŸ", "y"),
    **dict.fromkeys("’‘ʼ", "'"),
}
LIGATURES = {"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae"}
_TABLE = str.maketrans({**PLAIN, **LIGATURES})


def fold(text: str | None) -> str:
    """Lower case without accents. Only ASCII letters are lower-cased beyond the mapping
    (as SQLite's and a C-locale PostgreSQL's `lower` do), so both sides always agree."""
    if text is None:
        return ""
    return "".join(c.lower() if c.isascii() else c for c in str(text).translate(_TABLE))


class Fold(FunctionElement[str]):
    """`fold(expression)` in SQL."""

    type = Text()
    inherit_cache = True
    name = "relais_fold"


def _quote(text: str) -> str:
    return text.replace("'", "''")


@compiles(Fold)
def _fold_sqlite(element: Fold, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FUNCTION}({compiler.process(element.clauses, **kw)})"


@compiles(Fold, "postgresql")
def _fold_postgresql(element: Fold, compiler: SQLCompiler, **kw: Any) -> str:
    sql = compiler.process(element.clauses, **kw)
    accented, plain = "".join(PLAIN), "".join(PLAIN.values())
    sql = f"translate({sql}, '{_quote(accented)}', '{_quote(plain)}')"
    for ligature, letters in LIGATURES.items():
        sql = f"replace({sql}, '{ligature}', '{letters}')"
    # ASCII lower-casing only, whatever the database's locale, as `fold` does.
    return f"translate({sql}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
