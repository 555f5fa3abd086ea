"""Raw SQL behind the bot's back, on whichever database its settings name: the SQLite file, or the
PostgreSQL database of DATABASE_URL. Tests read rows to check what a command wrote, and write rows
as a hand-edit or a bug would.

`connect(settings)` answers `execute(sql, args)` with a cursor (`fetchone`, `fetchall`) on either,
and takes SQLite's `?` placeholders on both, so one test body checks both backends."""

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
from bot.store.sqlite import SqliteStore


def to_psycopg(sql: str) -> str:
    """SQLite's `?` placeholders as psycopg's `%s` (a literal % doubled first)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresConnection:
    """A psycopg connection that runs the tests' SQLite-style statements; commits each one."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True, cursor_factory=psycopg.ClientCursor)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(to_psycopg(sql), tuple(args))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cursor:
            cursor.executemany(to_psycopg(sql), [tuple(row) for row in rows])  # type: ignore[arg-type]

    def commit(self) -> None:  # autocommit: for code written against sqlite3
        pass

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> PostgresConnection:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


class SqliteConnection(sqlite3.Connection):
    """sqlite3's connection, closed (not only committed) when its `with` block ends."""

    def __exit__(self, *exc: Any) -> bool:
        result = super().__exit__(*exc)
        self.close()
        return bool(result)


Target = Settings | Engine | Path | str  # Settings, a store, a SQLite file, or a postgresql:// URL


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


def connect(target: Target) -> SqliteConnection | PostgresConnection:
    """A connection to the database of `target`."""
    resolved = _resolve(target)
    if isinstance(resolved, str) and is_postgres(resolved):
        return PostgresConnection(resolved)
    return sqlite3.connect(resolved, factory=SqliteConnection)


def rows(target: Target, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    with connect(target) as db:
        return [tuple(row) for row in db.execute(sql, tuple(args)).fetchall()]


def execute(target: Target, sql: str, args: Sequence[Any] = ()) -> None:
    """A write behind the bot's back, committed."""
    with connect(target) as db:
        db.execute(sql, tuple(args))
        db.commit()


def tables(target: Target) -> list[str]:
    if is_postgres(target):
        sql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1"
    return [name for (name,) in rows(target, sql)]


def dump(target: Target) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal before and after means nothing at all was written."""
    with connect(target) as db:
        return {
            table: sorted((tuple(r) for r in db.execute(f'SELECT * FROM "{table}"').fetchall()), key=repr)
            for table in tables(target)
        }
