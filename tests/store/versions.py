"""Databases at other schema versions, built for real: an "old" one with only 0001 applied by the
migrate module, and a "newer" one whose user_version is above the code's."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import bot.store.migrate as migrate_mod

GUILD = 1001
ALICE = 11


def old_database(db: Path, version: int = 1, guild_id: int = GUILD, user_id: int = ALICE) -> Path:
    """Apply migrations 1..`version` only, as that release did, and write a member's grant of 100."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for _, path in migrate_mod.migrations()[:version]:
            shutil.copy(path, folder)
        with (
            mock.patch.object(migrate_mod, "MIGRATIONS", Path(folder)),
            contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn,
        ):
            assert migrate_mod.migrate(conn) == version
            conn.executescript(
                f"""
                BEGIN;
                INSERT INTO accounts (guild_id, user_id, created_at) VALUES ({guild_id}, {user_id}, 0);
                INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, source, created_at)
                    VALUES (1, {guild_id}, {user_id}, 'promo', 100, 100, 0, 'grant', 0);
                INSERT INTO entries (guild_id, user_id, lot_id, type, amount, created_at)
                    VALUES ({guild_id}, {user_id}, 1, 'grant', 100, 0);
                COMMIT;
                """
            )
    return db


def newer_database(db: Path) -> Path:
    """A file from a release after this one: the current schema and then some."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        migrate_mod.migrate(conn)
        conn.execute("CREATE TABLE future_thing (x INTEGER)")
        conn.execute(f"PRAGMA user_version = {migrate_mod.code_version() + 1}")
    return db


def user_version(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@dataclass(frozen=True)
class FileState:
    """What "the file was not modified" means: same bytes, same mtime, same schema version."""

    digest: str
    mtime_ns: int
    version: int


def file_state(db: Path) -> FileState:
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    mtime = db.stat().st_mtime_ns
    return FileState(digest, mtime, user_version(db))


def siblings(db: Path) -> set[str]:
    """The files beside the database, other than it and its lock."""
    return {p.name for p in db.parent.iterdir()} - {db.name, f"{db.name}.lock"}
