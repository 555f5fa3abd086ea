"""The database lock (SPEC §5): one holder at a time, named in the refusal, free again on release.
Its release by the operating system when the holder is SIGKILLed is tested with real processes in
tests/discordbot/test_process.py.

SQLite only: the lock is on the database file (PostgreSQL processes share one database by design).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from bot.store.lock import DatabaseInUse, DatabaseLock


def test_a_second_holder_is_refused_with_the_first_ones_pid_and_host(tmp_path: Path):
    db = tmp_path / "data" / "bot.sqlite3"  # the directory need not exist yet
    with DatabaseLock(db) as first:
        assert first.path == tmp_path / "data" / "bot.sqlite3.lock"
        with pytest.raises(DatabaseInUse) as refused:
            DatabaseLock(db).acquire()
        holder = f"pid {os.getpid()} on host {socket.gethostname()}"
        assert refused.value.holder == holder
        assert holder in str(refused.value)
        assert str(db) in str(refused.value)
        assert first.path.read_text() == holder  # the refused one did not truncate the holder's text
    with DatabaseLock(db):  # released: free again
        pass
    assert first.path.exists()  # never deleted (see the module)


def test_another_database_has_its_own_lock(tmp_path: Path):
    with DatabaseLock(tmp_path / "a.sqlite3"), DatabaseLock(tmp_path / "b.sqlite3"):
        pass


def test_release_is_idempotent(tmp_path: Path):
    lock = DatabaseLock(tmp_path / "bot.sqlite3")
    lock.acquire()
    lock.release()
    lock.release()
