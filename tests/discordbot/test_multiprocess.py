"""Three `python -m bot` processes on one PostgreSQL database, one bot of three shards (SPEC §5, §7).

Each process serves one shard (SHARD_COUNT=3, SHARD_IDS=0/1/2) of the fake Discord on loopback;
each shard has one guild. The commands are synced once in all. One process holds the scheduler
lease and runs the jobs for every guild, also those of the shards it does not serve (over REST).
It is SIGKILLed while it sends the reminder DMs that are due; another process takes the lease
over within 60 s and carries on: each member gets their reminder exactly once, every recurring
run happens once, every lot that expires gets one expire entry, and the ledger's invariants hold.
"""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from bot.app.ledger import Ledger
from bot.store.postgres import PostgresStore
from fakediscord import FakeDiscord, Guild, Member, Perm, Role, snowflake_on_shard
from tests.e2e import button, text_of
from tests.processes import BotProcess, Launch, assert_clean

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")]

SHARDS = 3
REMINDED = 40  # members per guild with a reminder due: 120 DMs at 20 a second, so the kill lands mid-run
EXPIRING = 3  # members per guild whose credit expires during the test
VIPS = 4  # members per guild with the role of a recurring grant that is due
TAKEOVER = "holds the scheduler lease now"
FAILOVER_LIMIT = 60  # SPEC §5: another process takes over within 60 s of the holder dying
DM_POST = r"^/channels/\d+/messages$"


class ShardGuild:
    def __init__(self, fake: FakeDiscord, shard: int) -> None:
        self.shard = shard
        self.guild: Guild = fake.add_guild(snowflake_on_shard(shard, SHARDS), name=f"Guild {shard}")
        mods = fake.add_role(self.guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
        self.vip: Role = fake.add_role(self.guild.id, "VIP", position=2)
        self.mod: Member = fake.add_member(self.guild.id, name=f"mod{shard}", roles=[mods.id])
        self.reminded = [fake.add_member(self.guild.id, name=f"r{shard}-{i}") for i in range(REMINDED)]
        self.expiring = [fake.add_member(self.guild.id, name=f"e{shard}-{i}") for i in range(EXPIRING)]
        self.vips = [fake.add_member(self.guild.id, name=f"v{shard}-{i}", roles=[self.vip.id]) for i in range(VIPS)]


async def prepare(url: str, guilds: list[ShardGuild]) -> dict[int, int]:
    """What the bot finds due when it starts: reminders, credit about to expire, a recurring run
    that fell due while it was down. Returns the schedule id of each guild."""
    store = PostgresStore(url)
    await store.open()
    try:
        now = Ledger(store)
        past = Ledger(store, clock=lambda: datetime.now(UTC) - timedelta(days=2))
        schedules = {}
        for g in guilds:
            for member in g.reminded:  # the 1-day window is open: due at once
                await now.grant(g.guild.id, member.id, 50, actor_id=g.mod.id, key=None, expires="2h")
            for member in g.expiring:
                await now.grant(g.guild.id, member.id, 20, actor_id=g.mod.id, key=None, expires="25s")
            schedule = await past.add_schedule(
                g.guild.id, g.vip.id, 25, "0 0 * * *", actor_id=g.mod.id, key=f"s{g.shard}", valid_days=30
            )
            schedules[g.guild.id] = schedule.id
        return schedules
    finally:
        await store.close()


def rows(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def reminder_dms(fake: FakeDiscord, guilds: list[ShardGuild]) -> dict[int, int]:
    """Reminder DMs each reminded member has (messages in their DM channel: a resend under the
    same nonce is the same message, as on Discord)."""
    return {m.id: len(fake.dms(m.id)) for g in guilds for m in g.reminded}


async def test_three_processes_one_leader_killed_mid_run_another_takes_over(
    fake: FakeDiscord, launch: Launch, pg_url: str
):
    guilds = [ShardGuild(fake, shard) for shard in range(SHARDS)]
    schedules = await prepare(pg_url, guilds)
    bots: list[BotProcess] = [
        await launch(fake, DATABASE_URL=pg_url, SHARD_COUNT=str(SHARDS), SHARD_IDS=str(shard), LOG_LEVEL="INFO")
        for shard in range(SHARDS)
    ]
    await fake.wait_for(lambda: fake.gateway.ready_shards == list(range(SHARDS)), 60, "every shard ready")
    # Each process serves its shard's guild, and only that one.
    for g, bot in zip(guilds, bots, strict=True):
        [session] = fake.gateway.serving(g.guild.id)
        assert session.shard_id == g.shard
        assert f"serving shards {g.shard} of {SHARDS}" in bot.log, bot.log
    await fake.wait_for(lambda: fake.sync_count == 1, 30, "the command sync")

    await fake.wait_for(lambda: sum(1 for bot in bots if TAKEOVER in bot.log) == 1, 30, "a lease holder")
    [leader] = [bot for bot in bots if TAKEOVER in bot.log]
    # SIGKILL it while it sends the reminders: some are out, most are not.
    await fake.wait_for(lambda: sum(reminder_dms(fake, guilds).values()) >= 10, 60, "the first reminders")
    leader.proc.kill()
    killed = time.monotonic()
    assert await leader.exit_code() == -signal.SIGKILL
    sent_by_the_first = sum(reminder_dms(fake, guilds).values())
    assert sent_by_the_first < REMINDED * SHARDS, "the holder sent everything before it was killed"
    survivors = [bot for bot in bots if bot is not leader]

    await fake.wait_for(
        lambda: any(TAKEOVER in bot.log for bot in survivors), FAILOVER_LIMIT, "another process to take the lease"
    )
    took_over = time.monotonic() - killed
    await fake.wait_for(
        lambda: sum(reminder_dms(fake, guilds).values()) > sent_by_the_first, FAILOVER_LIMIT, "the reminders to resume"
    )
    resumed = time.monotonic() - killed
    print(f"lease taken over {took_over:.2f} s and reminders resumed {resumed:.2f} s after the SIGKILL")
    [holder] = [bot for bot in survivors if TAKEOVER in bot.log]
    [follower] = [bot for bot in survivors if bot is not holder]

    # Every reminder exactly once, the ones the dead holder was sending included.
    await fake.wait_for(lambda: all(reminder_dms(fake, guilds).values()), 60, "every reminder")
    assert set(reminder_dms(fake, guilds).values()) == {1}
    for g in guilds:
        for member in g.reminded:
            [dm] = fake.dms(member.id)
            assert "50 credits" in text_of(dm), text_of(dm)
    reminded = [m.id for g in guilds for m in g.reminded]

    def settled() -> dict[str, int]:
        return dict(
            rows(
                pg_url,
                "SELECT r.status, COUNT(*) FROM reminders r JOIN lots l ON l.id = r.lot_id"
                " WHERE r.lead_seconds = 86400 AND l.user_id = ANY(%s) GROUP BY r.status",
                reminded,
            )
        )

    await fake.wait_for(lambda: settled() == {"sent": len(reminded)}, 30, "every reminder settled as sent")
    channels = {fake._dm_channels[m] for m in reminded}
    posts = [r for r in fake.requests_to("POST", DM_POST) if int(r.path.split("/")[2]) in channels]
    print(f"{len(posts)} reminder DM posts for {len(reminded)} messages (a resend under its nonce is the same message)")

    # Every lot that expired, once; every recurring run, once.
    expiring_lots = [
        lot_id
        for g in guilds
        for member in g.expiring
        for (lot_id,) in rows(pg_url, "SELECT id FROM lots WHERE guild_id = %s AND user_id = %s", g.guild.id, member.id)
    ]
    assert len(expiring_lots) == EXPIRING * SHARDS

    def all_expired() -> bool:
        return rows(pg_url, "SELECT COUNT(*) FROM lots WHERE id = ANY(%s) AND status = 'expired'", expiring_lots) == [
            (len(expiring_lots),)
        ]

    await fake.wait_for(all_expired, 90, "the expiry sweep")
    assert rows(
        pg_url, "SELECT lot_id, COUNT(*) FROM entries WHERE type = 'expire' GROUP BY lot_id ORDER BY lot_id"
    ) == [(lot_id, 1) for lot_id in sorted(expiring_lots)]
    for g in guilds:
        granted = rows(
            pg_url,
            "SELECT user_id, COUNT(*) FROM lots WHERE source_ref = %s GROUP BY user_id ORDER BY user_id",
            f"schedule:{schedules[g.guild.id]}",
        )
        assert granted == sorted((member.id, 1) for member in g.vips), (g.shard, granted)
    assert fake.sync_count == 1  # once in all, across the three starts

    # A purchase in the process that does not hold the lease: the holder gives the role, once.
    shop = guilds[bots.index(follower)]
    gold = fake.add_role(shop.guild.id, "Gold", position=3)
    added = await fake.invoke(
        shop.guild.id,
        shop.mod.id,
        "shopadmin add",
        {"name": "Gold pass", "price": "30", "category": "perks", "role": gold.id},
    )
    assert "Added to the shop" in text_of(added), text_of(added)
    buyer = shop.reminded[0]
    preview = await fake.invoke(shop.guild.id, buyer.id, "buy", {"item": "Gold pass"})
    confirm = await fake.click(preview, button(preview, "buy:confirm:"), buyer.id)
    await fake.wait_for(lambda: gold.id in fake.member(shop.guild.id, buyer.id).roles, 30, "the role")
    await confirm.wait_for_edit(1, timeout=10)  # the receipt, from the process that took the click
    assert "Order #" in text_of(confirm.message), text_of(confirm.message)
    assert [
        r.status for r in fake.requests_to("PUT", rf"/guilds/{shop.guild.id}/members/{buyer.id}/roles/{gold.id}$")
    ] == [204]

    # The survivors still serve their guilds (the dead one's guild waits for its process).
    dead_shard = bots.index(leader)
    for g in guilds:
        if g.shard == dead_shard:
            assert fake.gateway.serving(g.guild.id) == []
            continue
        answer = await fake.invoke(g.guild.id, g.reminded[1].id, "balance")
        assert "50 credits" in text_of(answer), text_of(answer)
    for bot in survivors:
        assert await bot.stop() == 0
        assert_clean(bot)

    store = PostgresStore(pg_url)
    await store.open()
    try:
        assert await Ledger(store).verify() == []
    finally:
        await store.close()
