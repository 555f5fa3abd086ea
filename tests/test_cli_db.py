"""`python -m bot db status | db upgrade`, and `backup`, `verify`, `export` never migrating.

Real SQLite files at other schema versions (tests/store/versions.py): an old one (only 0001
applied), a newer one (user_version above the code's), a current one, and none at all. Only
`db upgrade` changes a file, after a backup beside it that is a working database.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import sqlite3
from pathlib import Path

import pytest

from bot import cli
from bot.app.ledger import Ledger
from bot.store.lock import DatabaseLock
from bot.store.migrate import code_version, migrations
from bot.store.sqlite import SqliteStore
from tests.store.versions import ALICE, GUILD, file_state, newer_database, old_database, siblings, user_version
from tests.test_cli_run import run_bot

CODE = code_version()
PENDING_AFTER_1 = [path.stem for number, path in migrations() if number > 1]
BACKUP_LINE = re.compile(r"^Backed up to (.+\.before-v(\d+)-\d{8}T\d{6}Z\.sqlite3) \(schema version (\d+)\)\.$", re.M)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where DATABASE_PATH points; the test decides what (if anything) is there."""
    path = tmp_path / "data" / "pb.sqlite3"
    monkeypatch.chdir(tmp_path)  # no .env of the developer's
    monkeypatch.setenv("DATABASE_PATH", str(path))
    return path


def bot(*argv: str) -> int:
    return cli.main(list(argv))


def current_database(db: Path) -> Path:
    async def seed() -> None:
        store = SqliteStore(db)
        await store.open()
        try:
            await Ledger(store).grant(GUILD, ALICE, 100, actor_id=9, key="g1")
        finally:
            await store.close()

    asyncio.run(seed())
    return db


def balance(db: Path) -> int:
    async def read() -> int:
        store = SqliteStore(db, migrate=False)
        await store.open()
        try:
            return (await Ledger(store).balance(GUILD, ALICE)).total
        finally:
            await store.close()

    return asyncio.run(read())


# db status -----------------------------------------------------------------------------------
def test_status_of_an_old_database_names_the_pending_migrations_and_changes_nothing(db, capsys):
    old_database(db)
    before = file_state(db)

    assert bot("db", "status") == 0

    out = capsys.readouterr().out
    assert f"Schema version: 1 (this code: {CODE})" in out
    assert f"Pending migrations ({CODE - 1}): {', '.join(PENDING_AFTER_1)}" in out
    assert "python -m bot db upgrade" in out
    assert file_state(db) == before
    assert siblings(db) == set()


def test_status_of_a_current_database(db, capsys):
    current_database(db)
    assert bot("db", "status") == 0
    out = capsys.readouterr().out
    assert f"Schema version: {CODE} (this code: {CODE})" in out
    assert "Up to date: no pending migrations." in out


# db upgrade ----------------------------------------------------------------------------------
def test_upgrade_backs_the_old_database_up_beside_it_then_migrates_it(db, capsys):
    old_database(db)
    before = file_state(db)

    assert bot("db", "upgrade") == 0

    out = capsys.readouterr().out
    match = BACKUP_LINE.search(out)
    assert match, out
    copy = Path(match.group(1))
    assert copy.parent == db.parent
    assert copy.name.startswith("pb.before-v")
    assert (int(match.group(2)), int(match.group(3))) == (CODE, 1)
    assert f"Upgraded {db} from schema version 1 to {CODE}: applied {', '.join(PENDING_AFTER_1)}." in out
    assert out.index("Backed up") < out.index("Upgraded")
    assert user_version(db) == CODE
    assert balance(db) == 100
    assert bot("verify") == 0
    # The backup is the database as it was: version 1, its data, a sound SQLite file.
    assert user_version(copy) == 1
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT SUM(amount) FROM entries").fetchone() == (100,)
        assert "deliveries" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert before.version == 1


def test_the_backup_restores_and_upgrades_again(db, capsys):
    old_database(db)
    assert bot("db", "upgrade") == 0
    match = BACKUP_LINE.search(capsys.readouterr().out)
    assert match
    # Restore: the backup put back in the database's place is the old database, and works.
    db.unlink()
    shutil.copy(match.group(1), db)
    assert bot("db", "status") == 0
    assert "Schema version: 1 " in capsys.readouterr().out
    assert bot("db", "upgrade") == 0
    assert user_version(db) == CODE
    assert balance(db) == 100
    assert bot("verify") == 0


def test_upgrade_of_a_current_database_does_nothing_and_takes_no_backup(db, capsys):
    current_database(db)
    before = file_state(db)
    assert bot("db", "upgrade") == 0
    assert "Up to date" in capsys.readouterr().out
    assert siblings(db) == set()
    assert file_state(db).digest == before.digest


def test_upgrade_refuses_a_newer_database_and_writes_nothing(db, capsys):
    newer_database(db)
    before = file_state(db)
    assert bot("db", "upgrade") == 2
    assert "newer than this code" in capsys.readouterr().err
    assert file_state(db) == before
    assert siblings(db) == set()


def test_upgrade_refuses_while_the_bot_holds_the_database(db, capsys):
    old_database(db)
    before = file_state(db)
    with DatabaseLock(db):
        assert bot("db", "upgrade") == 2
    err = capsys.readouterr().err
    assert "already running" in err
    assert "Stop the bot" in err
    assert file_state(db) == before
    assert siblings(db) == set()


# backup, verify, export never migrate ----------------------------------------------------------
def test_backup_copies_an_old_database_as_it_is(db, tmp_path, capsys):
    old_database(db)
    before = file_state(db)
    copy = tmp_path / "copies" / "old.sqlite3"

    assert bot("backup", str(copy)) == 0

    assert f"(schema version 1; the code expects {CODE})" in capsys.readouterr().out
    assert file_state(db) == before
    assert siblings(db) == set()
    assert user_version(copy) == 1
    with contextlib.closing(sqlite3.connect(copy)) as conn:
        assert conn.execute("SELECT SUM(amount) FROM entries").fetchone() == (100,)


@pytest.mark.parametrize("command", [["verify"], ["export", "--guild", str(GUILD)]])
def test_verify_and_export_refuse_an_old_database_and_say_to_upgrade(db, tmp_path, capsys, command):
    old_database(db)
    before = file_state(db)
    out = tmp_path / "ledger.csv"

    assert bot(*command, *(["--out", str(out)] if command[0] == "export" else [])) == 2

    err = capsys.readouterr().err
    assert f"this database is at schema version 1, the code expects {CODE}" in err.lower()
    assert "run `python -m bot db upgrade` first" in err
    assert file_state(db) == before
    assert siblings(db) == set()
    assert not out.exists()


@pytest.mark.parametrize(
    "command", [["verify"], ["export", "--guild", str(GUILD)], ["backup", "COPY"], ["db", "status"]]
)
def test_every_reading_command_refuses_a_newer_database_and_writes_nothing(db, tmp_path, capsys, command):
    newer_database(db)
    before = file_state(db)
    copy, out = tmp_path / "copy.sqlite3", tmp_path / "ledger.csv"
    argv = [str(copy) if a == "COPY" else a for a in command] + (["--out", str(out)] if command[0] == "export" else [])

    assert bot(*argv) == 2

    err = capsys.readouterr().err
    assert f"schema version {CODE + 1}, newer than this code ({CODE})" in err
    assert "upgrade Promo Balance" in err
    assert "Traceback" not in err
    assert file_state(db) == before
    assert siblings(db) == set()
    assert not copy.exists()
    assert not out.exists()


@pytest.mark.parametrize(
    "command", [["verify"], ["export", "--guild", "1"], ["backup", "COPY"], ["db", "status"], ["db", "upgrade"]]
)
def test_every_database_command_explains_a_missing_database_and_creates_none(db, tmp_path, capsys, command):
    copy = tmp_path / "copy.sqlite3"
    assert bot(*[str(copy) if a == "COPY" else a for a in command]) == 2
    assert f"No database at {db}" in capsys.readouterr().err
    assert not db.exists()
    assert not copy.exists()


async def test_a_store_opened_without_migrating_reads_a_current_database_beside_a_writer(tmp_path):
    """`backup` and `verify` while the bot runs (WAL): the read-only open sees committed data."""
    db = tmp_path / "pb.sqlite3"
    writer = SqliteStore(db)
    await writer.open()
    try:
        await Ledger(writer).grant(GUILD, ALICE, 7, actor_id=9, key="g")
        reader = SqliteStore(db, migrate=False)
        await reader.open()
        try:
            assert reader.schema_version == CODE
            assert (await Ledger(reader).balance(GUILD, ALICE)).total == 7
            assert await Ledger(reader).verify() == []
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                await Ledger(reader).grant(GUILD, ALICE, 1, actor_id=9, key="h")
        finally:
            await reader.close()
    finally:
        await writer.close()


def test_db_commands_run_as_a_process(tmp_path):
    """The wiring in `python -m bot`: status, then upgrade, then status again."""
    db = old_database(tmp_path / "pb.sqlite3")
    env = {"DATABASE_PATH": str(db)}
    status = run_bot(tmp_path, "db", "status", env_extra=env)
    assert status.returncode == 0, status.stderr
    assert "Schema version: 1 " in status.stdout
    upgraded = run_bot(tmp_path, "db", "upgrade", env_extra=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert BACKUP_LINE.search(upgraded.stdout), upgraded.stdout
    again = run_bot(tmp_path, "db", "status", env_extra=env)
    assert "Up to date" in again.stdout
    usage = run_bot(tmp_path, "db", env_extra=env)
    assert usage.returncode == 2
    assert "status" in usage.stderr
