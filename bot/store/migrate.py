"""Versioned SQL migrations (`migrations/0001_init.sql`, …), each applied in one transaction.

The schema version is `PRAGMA user_version`: migration N sets it to N in the same transaction,
so a crash half-way leaves the previous version, and the next start applies N again.
"""

from __future__ import annotations

import logging
import re
import sqlite3
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


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    (current,) = conn.execute("PRAGMA user_version").fetchone()
    known = migrations()
    if current > len(known):
        raise RuntimeError(
            f"the database is at schema version {current}, newer than this code ({len(known)}): "
            "upgrade Promo Balance before opening it"
        )
    for number, path in known[current:]:
        log.info("applying migration %s", path.name)
        # executescript runs outside the sqlite3 module's own transaction handling, so the
        # script carries its own BEGIN … COMMIT; on error we roll back what it started.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{path.read_text(encoding='utf-8')}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        current = number
    return int(current)
