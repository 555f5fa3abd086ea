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

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.adapt import Buffer, Loader, Transformer
from psycopg.types.numeric import Int4Dumper

from bot.store.sql import Cursor

_TRANSLATED: dict[str, str] = {}
_CACHE_LIMIT = 4096  # statements built with a varying number of `?` (IN lists) could grow it
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_NOCASE_EQUALS = re.compile(r"([\w.]+) = \? COLLATE NOCASE")
_NOCASE = re.compile(r"([\w.]+) COLLATE NOCASE")
_PLACEHOLDER = re.compile(r"('(?:[^']|'')*')|\?")  # a `?` outside a string literal
#: An INSERT of one row of values that `executemany` may send as multi-row INSERTs (not an upsert
#: that updates: two rows of one statement must not update the same row).
_ONE_ROW_INSERT = re.compile(r"^(INSERT INTO \w+ \([^()]*\) VALUES )(\([^()]*\))((?:(?!RETURNING|DO UPDATE).)*)$", re.S)
#: Rows per multi-row INSERT: a grant to 10,000 members is 20 statements, not 10,000.
INSERT_BATCH = 500


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
        """Like sqlite3's; an INSERT of one row is sent as INSERTs of `INSERT_BATCH` rows each
        (what psycopg's own executemany would send is one statement per row, in a pipeline).
        `rowcount` is the sum of the rows each statement inserted, as sqlite3 counts."""
        statement = pg_sql(sql)
        one_row = _ONE_ROW_INSERT.match(statement)
        if one_row is None:
            cursor = self.raw.cursor()
            cursor.executemany(statement, parameters)
            return cursor
        head, values, tail = (part.replace("%%", "%").encode() for part in one_row.groups())
        pieces = values.split(b"%s")
        literal = Transformer(self.raw).as_literal
        done = Inserted()
        rows = iter(parameters)
        while batch := list(itertools.islice(rows, INSERT_BATCH)):
            # The literals merged here, as ClientCursor would merge them, but once per value: its
            # own merge parses the whole statement again for every batch (slow in Python).
            merged = []
            for row in batch:
                if len(row) != len(pieces) - 1:
                    raise psycopg.ProgrammingError(f"{len(pieces) - 1} placeholders but {len(row)} values")
                out = [pieces[0]]
                for value, piece in zip(row, pieces[1:], strict=True):
                    out += (b"NULL" if value is None else literal(value), piece)
                merged.append(b"".join(out))
            cursor = self.raw.execute(head + b", ".join(merged) + tail)
            done.rowcount += max(cursor.rowcount, 0)
        return done


class Inserted:
    """What a batched `executemany` returns: how many rows it inserted, and no rows to fetch."""

    def __init__(self) -> None:
        self.rowcount = 0

    def fetchone(self) -> Any:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def fetchmany(self, size: int = 1, /) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())
