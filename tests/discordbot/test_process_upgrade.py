"""The real `python -m bot` meets an old, a new and a newer database (SPEC §7, explicit migrations).

At its start it backs an old database up beside itself, applies the pending migrations and says
so in the log (versions from and to, the backup's path); a new database needs no backup; a
database newer than the code is refused before anything is written to it.
"""

from __future__ import annotations

import contextlib
import re
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.store.migrate import code_version, migrations
from fakediscord import FakeDiscord
from tests.discordbot.test_process import Shop
from tests.e2e import text_of
from tests.processes import Launch, assert_clean
from tests.store.versions import file_state, newer_database, old_database, siblings, user_version

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

CODE = code_version()


def database(tmp_path: Path) -> Path:
    return tmp_path / "data" / "bot.sqlite3"  # where `launch` points DATABASE_PATH


async def test_an_old_database_is_backed_up_then_upgraded_at_start_and_the_log_says_so(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    shop = Shop(fake)
    db = old_database(database(tmp_path), guild_id=shop.guild.id, user_id=shop.alice.id)

    bot = await launch(fake)
    await fake.wait_until_ready(timeout=20)
    await bot.wait_for_log("upgraded from schema version", fake)

    applied = ", ".join(path.stem for number, path in migrations() if number > 1)
    backup_logged = re.search(r"backed up to (\S+\.before-v\d+-\d{8}T\d{6}Z\.sqlite3) before upgrading", bot.log)
    assert backup_logged, bot.log
    backup = Path(backup_logged.group(1))
    assert backup.parent == db.parent
    assert f"upgraded from schema version 1 to {CODE} ({applied}); the database as it was is in {backup}" in bot.log
    assert bot.log.index("backed up to") < bot.log.index("upgraded from")
    assert siblings(db) - {f"{db.name}-wal", f"{db.name}-shm"} == {backup.name}

    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "100" in text_of(rec)  # the old data, served by the upgraded database
    assert await bot.stop(signal.SIGTERM) == 0
    assert_clean(bot)
    assert user_version(db) == CODE
    assert user_version(backup) == 1
    with contextlib.closing(sqlite3.connect(backup)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT SUM(amount) FROM entries").fetchone() == (100,)

    again = await launch(fake)  # nothing pending: no second backup
    await again.wait_for_log("command tree unchanged", fake, seconds=20)
    await fake.wait_for(lambda: fake.gateway.identify_count == 2, timeout=10, what="the second IDENTIFY")
    assert await again.stop(signal.SIGTERM) == 0
    assert_clean(again)
    assert "upgraded from" not in again.log
    assert "backed up to" not in again.log
    assert siblings(db) == {backup.name}


async def test_a_new_database_is_created_without_a_backup(fake: FakeDiscord, launch: Launch, tmp_path: Path):
    db = database(tmp_path)
    bot = await launch(fake)
    await fake.wait_until_ready(timeout=20)
    await bot.wait_for_log("upgraded from schema version 0", fake)
    assert f"to {CODE}" in bot.log
    assert "a new database, nothing to back up" in bot.log
    assert "backed up to" not in bot.log
    assert await bot.stop(signal.SIGTERM) == 0
    assert_clean(bot)
    assert siblings(db) == set()


async def test_a_newer_database_is_refused_at_start_and_left_as_it_was(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    db = newer_database(database(tmp_path))
    before = file_state(db)
    bot = await launch(fake)
    assert await bot.exit_code() == 2
    assert f"Not starting: the database is at schema version {CODE + 1}, newer than this code ({CODE})" in bot.log
    assert "Traceback" not in bot.log, bot.log
    assert fake.gateway.identify_count == 0
    assert file_state(db) == before
    assert siblings(db) == set()
