"""The store runs each unit of work as ONE function on aiosqlite's worker thread, through
`Connection._execute(fn, conn, ...)` and `Connection._conn` (bot/store/sqlite/engine.py `_on_writer`): one hop
per transaction, which is what keeps a grant within 0.7x of plain sqlite3. aiosqlite has no public
way to do that, so the version is pinned and this test fails loudly if its internals change.

SQLite only: the contract is aiosqlite's.
"""

from __future__ import annotations

import sqlite3
import threading
from importlib.metadata import version
from pathlib import Path

import aiosqlite


def test_the_pinned_aiosqlite_is_the_one_installed():
    assert version("aiosqlite") == "0.22.1", "re-check Connection._execute and _conn before moving the pin"


async def test_execute_runs_one_function_on_the_worker_thread_with_the_raw_connection(tmp_path: Path):
    db = await aiosqlite.connect(tmp_path / "x.sqlite3", isolation_level=None)
    try:
        assert isinstance(db._conn, sqlite3.Connection)
        seen: list[int] = []

        def unit(conn: sqlite3.Connection, value: int) -> int:
            seen.append(threading.get_ident())
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
            conn.execute("INSERT INTO t VALUES (?)", (value,))
            conn.execute("COMMIT")
            return int(conn.execute("SELECT sum(v) FROM t").fetchone()[0])

        assert await db._execute(unit, db._conn, 2) == 2
        assert await db._execute(unit, db._conn, 3) == 5
        # Both ran on one thread, not the event loop's: aiosqlite's single writer thread.
        assert len(set(seen)) == 1
        assert seen[0] != threading.get_ident()
    finally:
        await db.close()
