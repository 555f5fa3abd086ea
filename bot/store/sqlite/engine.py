"""The SQLite engine on aiosqlite: one file, one writer thread, one hop per transaction.

Every unit of work is one plain function run on aiosqlite's worker thread, wrapped in
BEGIN IMMEDIATE … COMMIT. That thread runs one function at a time, so the transactions of
concurrent coroutines cannot interleave, and a checkout costs one hop to the thread instead of one
per statement. aiosqlite 0.22 has no public call for "run this function on your thread", so
`_on_writer` uses its private `_execute`; the version is pinned in pyproject.toml and
tests/store/test_aiosqlite_contract.py fails loudly if that contract changes. (The public route,
one awaited `execute` per statement, costs a thread hop per statement: a checkout does ~15.)
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import aiosqlite

from bot.store.migrate import (
    MIGRATIONS,
    SchemaTooNew,
    Upgrade,
    backup_path,
    code_version,
    migrate,
    pending,
    schema_version,
)
from bot.store.ports import CommitThenRaise
from bot.store.sql.verify import verify_invariants
from bot.store.sqlite.tx import SqliteTx

log = logging.getLogger(__name__)
T = TypeVar("T")


class SqliteStore:
    """The ledger on one SQLite file, opened in one of two modes.

    `migrate=True` (the bot, `python -m bot db upgrade`, tests): a new file is created with every
    migration; an existing one at an older schema version is first copied beside itself
    (`migrate.backup_path`, SQLite online backup), then migrated; `upgrade` says what was done.
    `migrate=False` (`backup`, `verify`, `export`, `db status`): the file must exist and is only
    read (`PRAGMA query_only`, its journal mode untouched), at whatever version it is;
    `schema_version` says which, and the caller decides whether it can work on it. Both modes
    refuse a database newer than the code (`SchemaTooNew`).
    """

    migrations = MIGRATIONS

    def __init__(self, path: str | Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        self.migrate = migrate
        self.schema_version = 0
        self.upgrade: Upgrade | None = None
        self._db: aiosqlite.Connection | None = None
        self._tx: SqliteTx | None = None  # the writer connection's repositories
        self._reader: SqliteTx | None = None  # short reads on the event loop's thread

    @property
    def location(self) -> str:
        return str(self.path)

    # lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        memory = str(self.path) == ":memory:"
        if self.migrate and not memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.migrate or memory:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        else:  # mode=rw: a missing file is an error, not a new empty database
            if not self.path.is_file():
                # Refused before aiosqlite starts its worker thread: a connect that fails in that
                # thread leaves it behind, to report to a closed event loop later.
                raise sqlite3.OperationalError(f"unable to open database file {self.path}")
            uri = self.path.resolve().as_uri() + "?mode=rw"
            self._db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        self._tx = SqliteTx(self._db._conn)
        try:
            # The version first: a database newer than the code is refused before anything
            # (not even the switch to WAL) is written to it.
            self.schema_version = await self._on_writer(schema_version)
            if self.schema_version > code_version():
                raise SchemaTooNew(self.schema_version, code_version())
            if self.migrate:
                backup = await self._backup_before_upgrade()
                await self._on_writer(configure_writer)
                await self._migrate(backup)
            else:
                await self._on_writer(configure_reader)
        except BaseException:
            await self.close()  # aiosqlite's thread is not a daemon: a leaked one blocks exit
            raise
        log.info("database %s ready (schema version %d)", self.path, self.schema_version)
        if self.migrate and not memory:
            reader = sqlite3.connect(self.path, isolation_level=None)
            reader.execute("PRAGMA query_only = ON")
            reader.execute("PRAGMA busy_timeout = 50")
            self._reader = SqliteTx(reader)

    async def _backup_before_upgrade(self) -> Path | None:
        """A copy of the file as it is (journal mode included) when migrations are pending for a
        database that has data to lose; None for a new database or one that is up to date."""
        before, target = self.schema_version, code_version()
        if not 0 < before < target or str(self.path) == ":memory:":
            return None
        backup = backup_path(self.path, target)
        await self.backup(backup)
        log.info("database %s is at schema version %d: backed up to %s before upgrading", self.path, before, backup)
        return backup

    async def _migrate(self, backup: Path | None) -> None:
        """Apply the pending migrations (another process may have applied them meanwhile)."""
        before = self.schema_version
        self.schema_version = await self._on_writer(migrate)
        if self.schema_version != before:
            applied = tuple(pending(before))
            self.upgrade = Upgrade(before, self.schema_version, applied, backup)
            log.info(
                "database %s upgraded from schema version %d to %d (%s); %s",
                self.path,
                before,
                self.schema_version,
                ", ".join(applied),
                f"the database as it was is in {backup}" if backup else "a new database, nothing to back up",
            )

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.conn.close()
            self._reader = None
        self._tx = None
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def backup(self, target: str | Path) -> None:
        """SQLite online backup: a consistent copy, safe while the bot keeps writing."""
        assert self._db is not None
        dest = await aiosqlite.connect(target)
        try:
            await self._db.backup(dest)
        finally:
            await dest.close()

    # running units of work ---------------------------------------------------------------------
    async def _on_writer(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` on aiosqlite's worker thread: one hop."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        db = self._db
        return cast(T, await db._execute(fn, db._conn, *args))  # type: ignore[no-untyped-call]

    async def write(self, unit: Callable[..., T | CommitThenRaise], *args: Any) -> T:
        """`unit(tx, *args)` in one write transaction (see bot/store/ports.py `Engine.write`)."""
        if self._tx is None:
            raise RuntimeError("the store is not open")
        result = await self._on_writer(in_write_transaction, self._tx, unit, args)
        if isinstance(result, CommitThenRaise):
            raise result.error
        return cast(T, result)

    async def read(self, query: Callable[..., T], *args: Any, fast: bool = False) -> T:
        """`query(tx, *args)` on one snapshot. A `fast` read runs on the event loop's thread through
        the second connection: no hop to the worker thread and back (two thread wake-ups, the p99
        of a read on a busy host). A WAL reader does not wait for the writer and sees the last
        committed state; if it is busy (a WAL recovery), the worker thread waits instead."""
        if fast and self._reader is not None:
            try:
                return in_snapshot(self._reader.conn, self._reader, query, args)
            except sqlite3.OperationalError:
                pass
        if self._tx is None:
            raise RuntimeError("the store is not open")
        return await self._on_writer(in_snapshot, self._tx, query, args)

    async def verify(self, now: int) -> list[str]:
        return await self._on_writer(in_snapshot_of_connection, verify_invariants, now)


# --- functions run on the worker thread -----------------------------------------------------------


def configure_writer(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA busy_timeout = 5000")
    # Switching a new file to WAL needs an exclusive lock, and SQLite does not wait for it through
    # the busy timeout: when the bot and the CLI open a new database together, retry briefly.
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)
    # FULL: a committed purchase survives a power cut (WAL fsyncs at every commit).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def configure_reader(conn: sqlite3.Connection) -> None:
    """For a connection that only reads: no journal-mode switch (that would write the header)."""
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")


def in_write_transaction(conn: sqlite3.Connection, tx: SqliteTx, unit: Callable[..., T], args: tuple[Any, ...]) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = unit(tx, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def in_snapshot(conn: sqlite3.Connection, tx: SqliteTx, query: Callable[..., T], args: tuple[Any, ...]) -> T:
    """A read of several statements that sees one consistent state."""
    conn.execute("BEGIN")
    try:
        return query(tx, *args)
    finally:
        conn.execute("COMMIT")


def in_snapshot_of_connection(conn: sqlite3.Connection, query: Callable[..., T], *args: Any) -> T:
    conn.execute("BEGIN")
    try:
        return query(conn, *args)
    finally:
        conn.execute("COMMIT")
