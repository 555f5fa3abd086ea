"""`python -m bot` as a server owner runs it: a real process against the fake Discord on loopback.

It connects and syncs its commands once, serves a member, skips the sync on a restart with the
same database, syncs to DEV_GUILD_ID when set, stops cleanly on SIGTERM and Ctrl-C, explains a
wrong token, and runs on without the Server Members intent when Discord refuses it (4014).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sqlite3
import sys
from pathlib import Path

import discord
import pytest
import yarl

from bot.app.ledger import Ledger
from bot.config import Settings
from bot.discordbot.client import PromoBalanceBot, point_at
from bot.store.sqlite import SqliteStore
from fakediscord import FakeDiscord, Guild, Member, Perm, Role
from tests.e2e import text_of
from tests.processes import Launch, assert_clean

ROOT = Path(__file__).resolve().parents[2]
DM_POST = r"^/channels/\d+/messages$"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Shop:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.guild: Guild = fake.add_guild(name="Shop Guild")
        self.mod_role: Role = fake.add_role(self.guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
        self.vip_role: Role = fake.add_role(self.guild.id, "VIP", position=2)
        self.mod: Member = fake.add_member(self.guild.id, name="mod", roles=[self.mod_role.id])
        self.alice: Member = fake.add_member(self.guild.id, name="alice", roles=[self.vip_role.id])


def has_wal(db: Path) -> bool:
    """In WAL mode SQLite keeps `<db>-wal` while connections are open and removes it when the last
    one closes normally: a file left behind means the store was not closed."""
    return Path(f"{db}-wal").exists()


async def test_connects_syncs_once_serves_and_stops_on_sigterm(fake: FakeDiscord, launch: Launch, tmp_path: Path):
    shop = Shop(fake)
    bot = await launch(fake)
    await fake.wait_until_ready(timeout=20)
    assert fake.sync_count == 1
    assert fake.sync_log[0].guild_id is None  # globally, without DEV_GUILD_ID
    assert "balance" in {c["name"] for c in fake.synced_commands()}
    assert fake.token not in bot.log

    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert rec.ephemeral
    assert "Your balance" in text_of(rec)

    db = tmp_path / "data" / "bot.sqlite3"
    assert has_wal(db)
    assert await bot.stop(signal.SIGTERM) == 0
    assert "SIGTERM received" in bot.log
    assert_clean(bot)
    assert " WARNING " not in bot.log, bot.log  # a normal start and stop alarms nobody
    assert "Running job" not in bot.log  # the scheduler's per-tick chatter stays out of the log
    assert not has_wal(db)

    again = await launch(fake)
    await again.wait_for_log("command tree unchanged", fake, seconds=20)
    await fake.wait_for(lambda: fake.gateway.identify_count == 2, timeout=10, what="the second IDENTIFY")
    assert fake.sync_count == 1  # the restart did not spend Discord's sync budget
    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "Your balance" in text_of(rec)
    assert await again.stop(signal.SIGINT) == 0  # Ctrl-C
    assert_clean(again)


async def test_a_second_process_on_the_database_refuses_to_start_and_a_killed_one_blocks_nothing(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    """SPEC §5: on SQLite one bot process serves the database. A second one says which process
    holds it and exits without connecting; the CLI works beside the bot; after a SIGKILL the
    operating system has released the lock, and the bot starts again at once."""
    shop = Shop(fake)
    first = await launch(fake)
    await fake.wait_until_ready(timeout=20)

    second = await launch(fake)
    assert await second.exit_code() != 0
    assert f"pid {first.proc.pid} on host {socket.gethostname()}" in second.log, second.log
    assert "already running" in second.log
    assert "Traceback" not in second.log, second.log
    assert fake.gateway.identify_count == 1  # it never connected, so it runs no jobs either

    verify = await launch(fake, "verify")  # the token-free commands work beside the bot
    assert await verify.exit_code() == 0, verify.log
    assert "every ledger invariant holds" in verify.log
    export = await launch(fake, "export", "--guild", str(shop.guild.id))
    assert await export.exit_code() == 0, export.log
    assert export.log.startswith("entry_id,created_at,"), export.log
    backup = await launch(fake, "backup", str(tmp_path / "copy.sqlite3"))
    assert await backup.exit_code() == 0, backup.log
    assert (tmp_path / "copy.sqlite3").stat().st_size > 0
    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "Your balance" in text_of(rec)  # the first one serves on

    first.proc.kill()  # SIGKILL: no clean-up of any kind
    assert await first.exit_code() == -signal.SIGKILL
    again = await launch(fake)
    await fake.wait_for(lambda: fake.gateway.identify_count == 2, timeout=20, what="the restart's IDENTIFY")
    await fake.wait_until_ready(timeout=20)
    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "Your balance" in text_of(rec)
    assert await again.stop() == 0
    assert_clean(again)


async def test_a_bot_killed_while_sending_a_reminder_resends_it_once_under_its_nonce(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    """SIGKILLed in the middle of a DM (waiting out Discord's 429), the bot leaves its claim
    'pending'. The next start is another run: it takes that claim for a crashed send and resends
    it under the same nonce, once."""
    shop = Shop(fake)
    db = tmp_path / "data" / "bot.sqlite3"
    store = SqliteStore(db)
    await store.open()
    try:
        grant = await Ledger(store).grant(
            shop.guild.id, shop.alice.id, "40", actor_id=shop.mod.id, key="g", expires="3d"
        )
    finally:
        await store.close()
    lot = grant.first_lot_id
    stuck = fake.fail_next("POST", DM_POST, status=429, retry_after=600)

    first = await launch(fake)  # the reminder job runs at start
    await fake.wait_for(lambda: stuck.hits, timeout=20, what="the reminder DM")
    assert reminder_statuses(db) == {lot: "pending"}
    first.proc.kill()
    assert await first.exit_code() == -signal.SIGKILL

    again = await launch(fake)
    await fake.wait_for(lambda: len(fake.dms(shop.alice.id)) == 1, timeout=20, what="the resent DM")
    await fake.wait_for(lambda: reminder_statuses(db) == {lot: "sent"}, timeout=10, what="the settle")
    posts = fake.requests_to("POST", DM_POST)
    assert len(posts) == 2
    assert posts[0].json["nonce"] == posts[1].json["nonce"]
    assert [r.status for r in posts] == [429, 200]
    assert await again.stop() == 0
    assert_clean(again)


def reminder_statuses(db: Path) -> dict[int, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT lot_id, status FROM reminders").fetchall())
    finally:
        conn.close()


async def test_dev_guild_gets_the_commands(fake: FakeDiscord, launch: Launch):
    shop = Shop(fake)
    bot = await launch(fake, DEV_GUILD_ID=str(shop.guild.id))
    await fake.wait_until_ready(timeout=20)
    assert [call.guild_id for call in fake.sync_log] == [shop.guild.id]
    assert "redeem" in {c["name"] for c in fake.synced_commands(shop.guild.id)}
    assert fake.synced_commands() == []
    rec = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "Your balance" in text_of(rec)
    assert await bot.stop() == 0
    assert_clean(bot)


async def test_a_wrong_token_is_explained_without_a_traceback(fake: FakeDiscord, launch: Launch):
    bot = await launch(fake, DISCORD_TOKEN="not-the-right-token")
    assert await bot.exit_code() == 2
    assert "Discord refused the token" in bot.log
    assert "DISCORD_TOKEN" in bot.log
    assert "Traceback" not in bot.log, bot.log
    assert "not-the-right-token" not in bot.log
    assert fake.gateway.identify_count == 0
    assert fake.sync_count == 0


async def test_without_the_server_members_intent_it_runs_on_and_says_how_to_enable_it(launch: Launch):
    async with FakeDiscord(privileged_members_intent=False) as fake:
        shop = Shop(fake)
        bot = await launch(fake)
        await fake.wait_until_ready(timeout=20)
        await bot.wait_for_log("Server Members intent is off", fake)
        identifies = [m for m in fake.gateway.received if m["op"] == 2]
        assert [bool(m["d"]["intents"] & (1 << 1)) for m in identifies] == [True, False]
        assert fake.sync_count == 1  # the second attempt found the tree already synced

        rec = await fake.invoke(
            shop.guild.id, shop.mod.id, "credits grant-role", {"role": shop.vip_role.id, "amount": "5"}
        )
        assert rec.ephemeral
        text = text_of(rec)
        assert "Server Members intent is off" in text
        assert "Privileged Gateway Intents" in text  # how to turn it on
        balance = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
        assert "Your balance" in text_of(balance)

        assert await bot.stop() == 0
        assert "Traceback" not in bot.log, bot.log
        fake.assert_clean()


async def test_close_lets_a_running_job_finish_then_closes_the_store(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """Stopping while the expiry sweep runs: the sweep completes (APScheduler alone would cancel
    it mid-write), the client closes, and the store closes last."""
    bot = PromoBalanceBot(pointed_at(fake, tmp_path, monkeypatch), tick_seconds=3600)
    order: list[str] = []
    sweep = bot.ledger.sweep_expired

    async def slow_sweep(*args, **kwargs):
        order.append("sweep started")
        await asyncio.sleep(0.5)
        result = await sweep(*args, **kwargs)  # needs the store still open
        order.append("sweep finished")
        return result

    store_close = bot.store.close

    async def recording_close() -> None:
        order.append(f"store closed (client closed: {bot.is_closed()})")
        await store_close()

    monkeypatch.setattr(bot.ledger, "sweep_expired", slow_sweep)
    monkeypatch.setattr(bot.store, "close", recording_close)
    await bot.login(fake.token)  # setup_hook starts the jobs; the sweep runs at once
    await fake.wait_for(lambda: "sweep started" in order, what="the sweep")
    await bot.close()
    assert order == ["sweep started", "sweep finished", "store closed (client closed: True)"]
    assert not any("raised an exception" in r.getMessage() for r in caplog.records)


def pointed_at(fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = Settings(
        discord_token=fake.token,
        database_path=tmp_path / "bot.sqlite3",
        dev_guild_id=None,
        log_level="INFO",
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
    )
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    point_at(settings)
    return settings


async def test_a_failed_sync_is_logged_and_retried_and_the_state_is_per_application(
    fake: FakeDiscord, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    settings = pointed_at(fake, tmp_path, monkeypatch)
    fake.fail_next("PUT", r"^/applications/\d+/commands$", status=403, code=50001, message="Missing Access")
    bot = PromoBalanceBot(settings, tick_seconds=None)
    try:
        await bot.login(fake.token)  # the failed sync does not stop the start
        assert fake.sync_count == 0
        assert any("could not sync" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
        await bot.sync_commands()  # not recorded as synced, so the next start tries again
        assert fake.sync_count == 1
        await bot.sync_commands()
        assert fake.sync_count == 1
    finally:
        await bot.close()

    # The same database under another application (a second bot, a new token for a new app): sync.
    async with FakeDiscord() as other:
        other.add_guild()
        other_bot = PromoBalanceBot(pointed_at(other, tmp_path, monkeypatch), tick_seconds=None)
        try:
            await other_bot.login(other.token)
            assert other.sync_count == 1
        finally:
            await other_bot.close()
        other.assert_clean()


async def test_grant_role_right_after_a_start_grants_the_whole_role_once(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    """A fresh `python -m bot` against a 600-member guild whose member chunks are held: a
    grant-role during loading waits (deferred) instead of granting the part it sees; released,
    it grants every member once and says 600."""
    shop = Shop(fake)
    role = fake.add_role(shop.guild.id, "Members", position=3)
    members = [fake.add_member(shop.guild.id, name=f"m{i}", roles=[role.id]) for i in range(600)]
    fake.hold_member_chunks()
    bot = await launch(fake)
    await fake.wait_until_ready(timeout=20)
    await fake.wait_for(lambda: fake.pending_member_chunks == 1, timeout=10, what="the bot's op 8")

    rec = await fake.invoke(shop.guild.id, shop.mod.id, "credits grant-role", {"role": role.id, "amount": "5"})
    assert rec.deferred
    assert rec.followups == []

    def lots() -> dict[int, int]:
        con = sqlite3.connect(f"file:{tmp_path / 'data' / 'bot.sqlite3'}?mode=ro", uri=True)
        try:
            return dict(con.execute("SELECT user_id, COUNT(*) FROM lots GROUP BY user_id").fetchall())
        finally:
            con.close()

    assert lots() == {}  # nothing granted from the partial list
    fake.release_member_chunks()
    answer = await rec.wait_for_followup(1, timeout=15)
    assert "to each of the 600 members" in text_of(answer), text_of(answer)
    assert lots() == {m.id: 1 for m in members}
    assert await bot.stop() == 0
    assert_clean(bot)
