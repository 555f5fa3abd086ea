"""A bot split across real processes by Discord shards: two `python -m bot` with SHARD_COUNT=2 and
SHARD_IDS 0 and 1 against one fake Discord. Each identifies with its own shard, gets only its
shard's guilds and answers their interactions; the two run side by side. (Each has its own SQLite
file here: on SQLite a database serves one process. Sharing one database is PostgreSQL's, §7.)"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest

from fakediscord import FakeDiscord, Perm, snowflake_on_shard
from tests.e2e import text_of
from tests.processes import Launch

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def lots(path: Path, guild_id: int) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT COUNT(*) FROM lots WHERE guild_id = ?", (guild_id,)).fetchone()[0])


async def test_two_processes_serve_one_shard_each(fake: FakeDiscord, launch: Launch, tmp_path: Path) -> None:
    guilds = [fake.add_guild(snowflake_on_shard(shard, 2), name=f"Shard {shard} Guild") for shard in (0, 1)]
    mod = fake.add_user(name="mod")
    alice = fake.add_user(name="alice")
    for guild in guilds:
        role = fake.add_role(guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
        fake.add_member(guild.id, mod.id, roles=[role.id])
        fake.add_member(guild.id, alice.id)
    processes = [
        await launch(fake, DATABASE_PATH=str(tmp_path / f"shard{shard}.sqlite3"), SHARD_COUNT="2", SHARD_IDS=str(shard))
        for shard in (0, 1)
    ]
    try:
        await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], timeout=30, what="both processes' shards")
        identified = sorted(m["d"]["shard"] for m in fake.gateway.received if m["op"] == 2)
        assert identified == [[0, 2], [1, 2]]
        for shard, guild in enumerate(guilds):
            record = await fake.invoke(guild.id, mod.id, "credits grant", {"member": alice.id, "amount": "5"})
            await record.wait_for_response(10)
            assert "5" in text_of(record), text_of(record)
            # written by the process of the guild's shard, and only by it
            assert lots(tmp_path / f"shard{shard}.sqlite3", guild.id) == 1
            assert lots(tmp_path / f"shard{1 - shard}.sqlite3", guild.id) == 0
    finally:
        codes = [await p.stop() for p in processes]
    for shard, process in enumerate(processes):
        assert f"serving shards {shard} of 2" in process.log, process.log
        assert "Traceback" not in process.log, process.log
    assert codes == [0, 0]
