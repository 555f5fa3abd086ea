"""Raw SQL behind the bot's back, on whichever database it uses: the SQLite file, or the
PostgreSQL database of DATABASE_URL. Tests read rows to check what a command wrote, and write rows
as a hand-edit or a bug would.

`connect(target)` answers `execute(sql, args)` with a cursor (`fetchone`, `fetchall`) on either,
in SQLite's spelling (`?` placeholders) on both, translated for PostgreSQL as the store translates
its own statements (bot/store/postgres/connection.py); so one test body checks both backends.
A target is the bot's Settings, a store, a SQLite file or a postgresql:// URL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import psycopg

from bot.config import Settings
from bot.store.ports import Engine
from bot.store.postgres import PostgresStore
from bot.store.postgres.connection import configure, pg_sql
from bot.store.sqlite import SqliteStore

Target = Settings | Engine | Path | str

_SQLITE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
# PostgreSQL's schema_version is the store's own bookkeeping, like SQLite's user_version: left out.
_PG_TABLES = (
    "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
    " AND table_name <> 'schema_version' ORDER BY table_name"
)


class PostgresConnection:
    """A psycopg connection that runs the tests' SQLite-style statements."""

    def __init__(self, url: str, autocommit: bool) -> None:
        self.conn = psycopg.connect(url, autocommit=autocommit, cursor_factory=psycopg.ClientCursor)
        configure(self.conn)  # NUMERIC sums as int, as the store reads them

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(pg_sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(pg_sql(sql), [tuple(row) for row in rows])

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: BaseException | TracebackType | None) -> None:
        if kind is None:
            self.conn.commit()
        self.close()


class SqliteConnection(sqlite3.Connection):
    """sqlite3's connection, closed (not only committed) when its `with` block ends."""

    def __exit__(self, *exc: Any) -> bool:
        result = super().__exit__(*exc)
        self.close()
        return bool(result)


def _resolve(target: Target) -> Path | str:
    if isinstance(target, Settings):
        return target.database_url or target.database_path
    if isinstance(target, PostgresStore):
        return target.url
    if isinstance(target, SqliteStore):
        return target.path
    assert isinstance(target, Path | str), target
    return target


def is_postgres(target: Target) -> bool:
    resolved = _resolve(target)
    return isinstance(resolved, str) and resolved.startswith(("postgresql://", "postgres://"))


def connect(target: Target, *, autocommit: bool = True) -> SqliteConnection | PostgresConnection:
    """A connection of its own to the database of `target`. `autocommit=False`: one transaction,
    committed when the `with` block ends without an error (or by `commit()`; `rollback()` undoes)."""
    resolved = _resolve(target)
    if isinstance(resolved, str) and is_postgres(resolved):
        return PostgresConnection(resolved, autocommit)
    return sqlite3.connect(resolved, factory=SqliteConnection, isolation_level=None if autocommit else "DEFERRED")


def fetched(cursor: sqlite3.Cursor | psycopg.Cursor[Any]) -> list[tuple[Any, ...]]:
    """A statement's rows; none for a statement that returns none (on either driver)."""
    return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


def rows(target: Target, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connect(target) as db:
        return fetched(db.execute(sql, tuple(args)))


def execute(target: Target, sql: str, args: Sequence[Any] = ()) -> None:
    """A write behind the bot's back, committed."""
    with connect(target) as db:
        db.execute(sql, tuple(args))


def tables(target: Target) -> list[str]:
    return [name for (name,) in rows(target, _PG_TABLES if is_postgres(target) else _SQLITE_TABLES)]


def dump(target: Target) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal before and after means nothing at all was written."""
    with connect(target) as db:
        return {table: sorted(fetched(db.execute(f'SELECT * FROM "{table}"')), key=repr) for table in tables(target)}
