"""PostgreSQL's own migrations (bot/store/postgres/migrations/0001_init.sql, …), each applied in
one transaction (PostgreSQL's DDL is transactional: a migration that fails leaves nothing).

The version is the largest `version` of the table `schema_version`, written in the same
transaction as its migration. Each step holds a transaction-level advisory lock (`MIGRATION_LOCK`)
and reads the version after taking it, so two processes that start on a new database at once
apply each migration exactly once: the second waits, then sees it done. A database at a version
newer than the code is refused (`SchemaTooNew`), before anything is written to it.

The numbering is PostgreSQL's own (its version 1 is SQLite's schema after 0001-0004).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import psycopg

from bot.store.migrate import SchemaTooNew, migrations

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
#: pg_advisory_xact_lock key of schema changes ("migr" in ASCII).
MIGRATION_LOCK = 0x6D696772


def code_version() -> int:
    """The PostgreSQL schema version this code expects."""
    return len(migrations(MIGRATIONS))


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The database's version: 0 for an empty database (read only: nothing is created)."""
    (table,) = conn.execute("SELECT to_regclass('schema_version')").fetchone() or (None,)
    if table is None:
        return 0
    (version,) = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone() or (0,)
    return int(version)


def migrate(conn: psycopg.Connection[Any]) -> tuple[int, int]:
    """Bring the schema up to date on an autocommit connection; returns (the version it found,
    read under the lock, the version now in force): equal when another process did the work."""
    known = migrations(MIGRATIONS)
    found: int | None = None
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            current = schema_version(conn)
            found = current if found is None else found
            if current > len(known):
                raise SchemaTooNew(current, len(known))
            if current == len(known):
                return found, current
            number, path = known[current]
            log.info("applying PostgreSQL migration %s", path.name)
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            conn.execute(path.read_text(encoding="utf-8").encode())
            conn.execute("INSERT INTO schema_version (version, name) VALUES (%s, %s)", (number, path.stem))
