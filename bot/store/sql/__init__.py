"""The repositories' SQL, written once for SQLite and PostgreSQL (bot/store/ports.py says what
each method promises).

A repository holds one DB-API connection (`Connection` below): on SQLite the `sqlite3.Connection`
itself, so a statement costs nothing more than it did; on PostgreSQL the psycopg connection behind
bot/store/postgres/connection.py `PgConnection`, which translates each statement to its dialect
once and caches it (`?` placeholders to `%s`, SQLite's spellings of the same thing). The few
statements that mean something different on PostgreSQL are overridden in bot/store/postgres/rows.py.

The SQL is the common subset of SQLite 3.40 and PostgreSQL 15: `INSERT … ON CONFLICT DO NOTHING`,
not `INSERT OR IGNORE`; `RETURNING id`, not `lastrowid`; no reference to a SELECT alias in WHERE;
an upsert's SET names the table's own column `table.column`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int = ..., /) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What the repositories use of a connection: `sqlite3.Connection` has it as it is."""

    @property
    def IntegrityError(self) -> type[Exception]: ...
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...
    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...


def inserted_id(cursor: Cursor) -> int | None:
    """The id an `INSERT … RETURNING id` gave, or None when it inserted nothing (a conflict).
    Every row is fetched, so SQLite finishes the statement before the transaction commits."""
    rows = cursor.fetchall()
    return None if not rows else int(rows[0][0])
