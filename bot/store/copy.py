"""`python -m bot copy-db --to URL`: the SQLite ledger copied into an empty PostgreSQL database.

The target gets PostgreSQL's own schema first (PostgresStore's migrations), then every row of every
table in one transaction: parents before children (the foreign keys of the target decide the
order), with their ids, by COPY. The identity sequences are set past the largest id copied, in the
same transaction, so the next row PostgreSQL numbers follows on. Nothing is copied into a database
that holds rows already (`TargetNotEmpty`), and a failure leaves the target without a single row.

Persistence only: the checks that the copy is the same ledger (verify, every guild's export) are the
CLI's (bot/cli.py copy_db), through the ledger.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bot.store.postgres import PostgresStore

#: Tables of the stores' own bookkeeping, never copied: each store keeps its schema version itself.
OWN_TABLES = frozenset({"schema_version"})
COPY_BATCH = 10_000


class CopyRefused(Exception):
    """The copy was not started: the reason is for the operator, as it is."""


class TargetNotEmpty(CopyRefused):
    pass


@dataclass
class CopyResult:
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows copied, in copy order
    sequences: dict[str, int] = field(default_factory=dict)  # table -> the id its sequence is at

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise CopyRefused(f"cannot connect to the PostgreSQL database: {str(exc).strip()}") from None


def _target_tables(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname"
    ).fetchall()
    return [str(name) for (name,) in rows]


def nonempty_tables(url: str) -> list[str]:
    """The tables of the target's schema that hold a row (the stores' bookkeeping aside)."""
    with _connect(url) as conn:
        full = []
        for table in _target_tables(conn):
            if table in OWN_TABLES:
                continue
            row = conn.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))).fetchone()
            if row and row[0]:
                full.append(table)
        return full


def _source_tables(source: sqlite3.Connection) -> list[str]:
    rows = source.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [str(name) for (name,) in rows if name not in OWN_TABLES]


def _columns_of_source(source: sqlite3.Connection, table: str) -> list[str]:
    return [str(row[1]) for row in source.execute(f'PRAGMA table_info("{table}")')]


def _columns_of_target(conn: psycopg.Connection[Any], table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = %s ORDER BY ordinal_position",
        (table,),
    ).fetchall()
    return [str(name) for (name,) in rows]


def _parents(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """table -> the tables its foreign keys point to, in the target."""
    rows = conn.execute(
        "SELECT c.conrelid::regclass::text, c.confrelid::regclass::text FROM pg_constraint c"
        " JOIN pg_namespace n ON n.oid = c.connamespace WHERE c.contype = 'f' AND n.nspname = current_schema()"
    ).fetchall()
    parents: dict[str, set[str]] = {}
    for child, parent in rows:
        if child != parent:
            parents.setdefault(str(child).strip('"'), set()).add(str(parent).strip('"'))
    return parents


def copy_order(tables: Iterable[str], parents: dict[str, set[str]]) -> list[str]:
    """Parents before children; ties by name, so the order is the same every time."""
    left = sorted(tables)
    placed: list[str] = []
    done: set[str] = set()
    while left:
        ready = [t for t in left if not (parents.get(t, set()) & set(left)) - done - {t}]
        if not ready:  # a cycle of foreign keys: not in this schema; copy the rest by name
            ready = left[:1]
        for t in ready:
            placed.append(t)
            done.add(t)
        left = [t for t in left if t not in done]
    return placed


def _plan(source: sqlite3.Connection, conn: psycopg.Connection[Any]) -> list[tuple[str, list[str]]]:
    """(table, columns) to copy, in order; refuses a table or column the target has no room for."""
    target = set(_target_tables(conn))
    tables = _source_tables(source)
    missing = [t for t in tables if t not in target]
    if missing:
        raise CopyRefused(f"the PostgreSQL schema has no table {', '.join(missing)}: is the code older than the file?")
    plan = []
    for table in copy_order(tables, _parents(conn)):
        columns = _columns_of_source(source, table)
        have = set(_columns_of_target(conn, table))
        lost = [c for c in columns if c not in have]
        if lost:
            raise CopyRefused(f"the PostgreSQL table {table} has no column {', '.join(lost)}")
        plan.append((table, columns))
    return plan


def _copy_rows(source: sqlite3.Connection, cur: psycopg.Cursor[Any], table: str, columns: list[str]) -> int:
    names = ", ".join(f'"{c}"' for c in columns)
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    order = " ORDER BY rowid" if _has_rowid(source, table) else ""
    rows = 0
    with cur.copy(statement) as copy:
        for row in source.execute(f'SELECT {names} FROM "{table}"{order}'):
            copy.write_row(row)
            rows += 1
    return rows


def _has_rowid(source: sqlite3.Connection, table: str) -> bool:
    try:
        source.execute(f'SELECT rowid FROM "{table}" LIMIT 0')
    except sqlite3.OperationalError:
        return False
    return True


def _set_sequences(cur: psycopg.Cursor[Any], plan: Iterable[tuple[str, list[str]]]) -> dict[str, int]:
    """Every sequence of an `id` column past the largest id copied (empty table: nextval gives 1)."""
    at: dict[str, int] = {}
    for table, columns in plan:
        if "id" not in columns:
            continue
        row = cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", (sql.Identifier(table).as_string(cur),)).fetchone()
        sequence = row[0] if row else None
        if sequence is None:
            continue
        (top,) = cur.execute(sql.SQL("SELECT MAX(id) FROM {}").format(sql.Identifier(table))).fetchone() or (None,)
        if top is None:
            cur.execute("SELECT setval(%s, 1, false)", (sequence,))
            at[table] = 0
        else:
            cur.execute("SELECT setval(%s, %s, true)", (sequence, int(top)))
            at[table] = int(top)
    return at


def copy_tables(sqlite_path: Path, url: str) -> CopyResult:
    """Copy every row, in one PostgreSQL transaction, from one SQLite read transaction."""
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, isolation_level=None)
    try:
        source.execute("BEGIN")  # one snapshot of the file for the whole copy
        with _connect(url) as conn:
            plan = _plan(source, conn)
            result = CopyResult()
            with conn.transaction(), conn.cursor() as cur:
                # Nothing else writes meanwhile: another copy, or a bot started too early, waits.
                cur.execute(
                    sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
                        sql.SQL(", ").join(sql.Identifier(t) for t, _ in plan)
                    )
                )
                for table, _ in plan:
                    row = cur.execute(
                        sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
                    ).fetchone()
                    if row and row[0]:
                        raise TargetNotEmpty(
                            f"the PostgreSQL table {table} is not empty; copy-db needs an empty database"
                        )
                for table, columns in plan:
                    result.rows[table] = _copy_rows(source, cur, table, columns)
                result.sequences = _set_sequences(cur, plan)
            return result
    finally:
        source.close()


def guild_ids(sqlite_path: Path) -> list[int]:
    """Every guild the SQLite ledger knows of: a guild_id in any table."""
    source = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True)
    try:
        found: set[int] = set()
        for table in _source_tables(source):
            if "guild_id" in _columns_of_source(source, table):
                found.update(
                    int(g) for (g,) in source.execute(f'SELECT DISTINCT guild_id FROM "{table}"') if g is not None
                )
        return sorted(found)
    finally:
        source.close()


async def copy_sqlite_to_postgres(sqlite_path: Path, url: str) -> CopyResult:
    """Refuse a target with rows, give it the PostgreSQL schema, then copy (see the module's doc)."""
    if not await asyncio.to_thread(sqlite_path.exists):
        raise CopyRefused(f"no SQLite database at {sqlite_path}")
    full = await asyncio.to_thread(nonempty_tables, url)
    if full:
        raise TargetNotEmpty(
            f"the PostgreSQL database is not empty (rows in {', '.join(full)}); copy-db only copies into an empty one"
        )
    store = PostgresStore(url, migrate=True)
    await store.open()
    await store.close()
    return await asyncio.to_thread(copy_tables, sqlite_path, url)
