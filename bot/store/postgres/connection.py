"""psycopg connections as the shared repositories (bot/store/sql/) expect them.

`PgConnection` gives the repositories the two calls of `sqlite3.Connection` they use, `execute`
and `executemany`, on a psycopg connection, with each statement translated once (`pg_sql`, cached):
`?` placeholders become `%s`, SQLite's index hints (`INDEXED BY`) go, and `x COLLATE NOCASE`
becomes `lower(x)` (text columns are COLLATE "C" on PostgreSQL, where lower() folds ASCII only, as
NOCASE does). A statement whose meaning differs is not translated here: it is overridden in
bot/store/postgres/rows.py.

The connections bind parameters client side (`psycopg.ClientCursor`): a parameter is a literal in
the statement, so `? IS NULL` or `CASE WHEN ? = 'active'` need no declared type, as on SQLite. They
load NUMERIC as int when it is whole (`SUM` of BIGINT is NUMERIC on PostgreSQL, an integer on
SQLite) and send a Python bool as 0/1, the integer flags the schema keeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Loader
from psycopg.types.numeric import Int4Dumper

from bot.store.sql import Cursor

_TRANSLATED: dict[str, str] = {}
_CACHE_LIMIT = 4096  # statements built with a varying number of `?` (IN lists) could grow it
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_NOCASE_EQUALS = re.compile(r"([\w.]+) = \? COLLATE NOCASE")
_NOCASE = re.compile(r"([\w.]+) COLLATE NOCASE")
_PLACEHOLDER = re.compile(r"('(?:[^']|'')*')|\?")  # a `?` outside a string literal


def pg_sql(sql: str) -> str:
    """The PostgreSQL spelling of a statement of the shared repositories (cached)."""
    translated = _TRANSLATED.get(sql)
    if translated is None:
        translated = _INDEXED_BY.sub("", sql)
        translated = _NOCASE_EQUALS.sub(r"lower(\1) = lower(?)", translated)
        translated = _NOCASE.sub(r"lower(\1)", translated)
        translated = _PLACEHOLDER.sub(lambda m: m.group(1) or "%s", translated.replace("%", "%%"))
        if len(_TRANSLATED) < _CACHE_LIMIT:
            _TRANSLATED[sql] = translated
    return translated


class WholeNumericLoader(Loader):
    """NUMERIC as int when it has no fraction (a SUM of BIGINT), else Decimal."""

    def load(self, data: Buffer) -> Any:
        raw = bytes(data)
        if raw.isdigit() or (raw[:1] == b"-" and raw[1:].isdigit()):
            return int(raw)
        return Decimal(raw.decode())


def configure(conn: psycopg.Connection[Any]) -> None:
    """Set up a new connection of the pool: the loaders and dumpers above."""
    conn.adapters.register_loader("numeric", WholeNumericLoader)
    conn.adapters.register_dumper(bool, Int4Dumper)


def connect_kwargs(read_only: bool) -> dict[str, Any]:
    """How the store's connections are opened: autocommit (the store writes BEGIN and COMMIT
    itself, as on SQLite), client-side binding; `read_only`: every transaction is READ ONLY."""
    kwargs: dict[str, Any] = {"autocommit": True, "cursor_factory": psycopg.ClientCursor}
    if read_only:
        kwargs["options"] = "-c default_transaction_read_only=on"
    return kwargs


class PgConnection:
    """A psycopg connection speaking the repositories' SQL (bot/store/sql/ `Connection`)."""

    __slots__ = ("raw",)
    IntegrityError = psycopg.IntegrityError

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        return self.raw.execute(pg_sql(sql), parameters)

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor:
        cursor = self.raw.cursor()
        cursor.executemany(pg_sql(sql), parameters)
        return cursor
