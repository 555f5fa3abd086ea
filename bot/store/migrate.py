"""Versioned SQL migrations (`migrations/0001_init.sql`, …), each applied in one transaction.

The schema version is `PRAGMA user_version`: migration N sets it to N in the same transaction,
so a crash half-way leaves the previous version, and the next start applies N again. The version
is read under the write lock, so two processes opening a new database at once (the bot and
`python -m bot verify`) apply each migration exactly once.

Only the bot at its start and `python -m bot db upgrade` migrate, each after an online backup of
the database as it was (`backup_path`); `backup`, `verify`, `export` and `db status` open the file
without migrating it (SqliteStore(path, migrate=False)).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).with_name("migrations")
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class SchemaTooNew(RuntimeError):
    """The database was written by a newer release: this code must not read or change it."""

    def __init__(self, version: int, code: int) -> None:
        self.version = version
        self.code = code
        super().__init__(
            f"the database is at schema version {version}, newer than this code ({code}): "
            "upgrade Promo Balance before opening it"
        )


@dataclass(frozen=True)
class Upgrade:
    """What opening a database for writing did to its schema; `backup` is None for a new file."""

    from_version: int
    to_version: int
    applied: tuple[str, ...]
    backup: Path | None


def migrations(folder: Path | None = None) -> list[tuple[int, Path]]:
    """The numbered migrations of `folder` (SQLite's, `MIGRATIONS`, by default; PostgreSQL has its
    own, bot/store/postgres/migrations/)."""
    folder = MIGRATIONS if folder is None else folder
    found = sorted((int(m.group(1)), path) for path in folder.iterdir() if (m := _NAME.match(path.name)))
    if [n for n, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps: {[p.name for _, p in found]}")
    return found


def code_version(folder: Path | None = None) -> int:
    """The schema version this code expects: its last migration's number."""
    return len(migrations() if folder is None else migrations(folder))


def schema_version(conn: sqlite3.Connection) -> int:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    return int(version)


def pending(version: int, folder: Path | None = None) -> list[str]:
    """The names (without `.sql`) of the migrations a database at `version` still needs."""
    found = migrations() if folder is None else migrations(folder)
    return [path.stem for number, path in found if number > version]


def backup_path(database: Path, target: int, now: datetime | None = None) -> Path:
    """Where the copy taken before upgrading `database` to `target` goes: beside it, named for the
    version it precedes and the UTC time, e.g. `promobalance.before-v3-20250102T030405Z.sqlite3`.
    Never an existing file (a second upgrade in the same second gets `-2`, …)."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = database.suffix or ".sqlite3"
    base = f"{database.stem}.before-v{target}-{stamp}"
    candidate = database.with_name(base + suffix)
    n = 1
    while candidate.exists():
        n += 1
        candidate = database.with_name(f"{base}-{n}{suffix}")
    return candidate


def statements(script: str) -> Iterator[str]:
    """Split a script into statements (triggers' inner semicolons included) without executescript,
    which would commit the transaction we are in."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") or not part.strip() for part in buffer.splitlines()):
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    known = migrations()
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            current = schema_version(conn)
            if current > len(known):
                raise SchemaTooNew(current, len(known))
            if current == len(known):
                conn.execute("COMMIT")
                return current
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
