"""Versioned SQL migrations (`migrations/0001_init.sql`, …), each applied in one transaction.

The schema version is `PRAGMA user_version`: migration N sets it to N in the same transaction,
so a crash half-way leaves the previous version, and the next start applies N again. The version
is read under the write lock, so two processes opening a new database at once (the bot and
`python -m bot verify`) apply each migration exactly once.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migrations() -> list[tuple[int, Path]]:
    found = sorted(
        (int(m.group(1)), path) for path in MIGRATIONS.iterdir() if (m := _NAME.match(path.name))
    )
    if [n for n, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {[p.name for _, p in found]}")
    return found


def statements(script: str) -> Iterator[str]:
    """Split a script into statements (triggers' inner semicolons included) without executescript,
    which would commit the transaction we are in."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and not all(
        part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()
    ):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    known = migrations()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current > len(known):
                raise RuntimeError(
                    f"the database is at schema version {current}, newer than this code ({len(known)}): "
                    "upgrade Promo Balance before opening it"
                )
            if current == len(known):
                conn.execute("COMMIT")
                return int(current)
            number, path = known[current]
            log.info("applying migration %s", path.name)
            for statement in statements(path.read_text(encoding="utf-8")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
