"""A bot split by Discord shards (SPEC §5, §7): two PromoBalanceBot instances with SHARD_COUNT=2,
one serving shard 0 and one shard 1, against one fake Discord with guilds on both shards. Each sees
only its shard's guilds and answers only their interactions; the jobs of a guild on the other shard
(a purchase's role, a reminder DM, a recurring grant to a role) run over REST from the process that
holds the scheduler.

The two instances have a database each (SQLite serves one process: its file lock refuses a
second); what is tested here is the gateway and REST side, not a shared ledger."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import aiohttp
import discord
import pytest
import yarl

from bot.config import Settings
from bot.discordbot.client import PromoBalanceBot, point_at, run
from bot.discordbot.shards import serves_guild
from bot.domain import delivery as rules
from fakediscord import FakeDiscord, Guild, Member, Perm, Role, snowflake_on_shard
from tests.conftest import Clock
from tests.e2e import text_of


@dataclass
class Split:
    fake: FakeDiscord
    clock: Clock
    even: Guild  # on shard 0
    odd: Guild  # on shard 1
    mod: Member
    alice: Member
    vip: Role  # in odd, below the bot
    above: Role  # in odd, above the bot's role
    bots: list[PromoBalanceBot]
    paths: list[Path]


def settings_for(fake: FakeDiscord, path: Path, shard_ids: tuple[int, ...], shard_count: int = 2) -> Settings:
    return Settings(
        discord_token=fake.token,
        database_path=path,
        dev_guild_id=None,
        log_level="DEBUG",
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        shard_count=shard_count,
        shard_ids=shard_ids,
    )


async def no_pause(self: PromoBalanceBot, shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before each IDENTIFY but a process's first (Discord allows one per 5 s
    per bot); the fake does not limit it."""


@contextlib.asynccontextmanager
async def running(bot: PromoBalanceBot, fake: FakeDiscord) -> AsyncIterator[PromoBalanceBot]:
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    try:
        # every guild of its shards cached with its whole member list (on_ready itself comes 2 s
        # after each shard's last GUILD_CREATE: discord.py's guild_ready_timeout)
        await fake.wait_for(
            lambda: all(bot.member_list_complete(bot.get_guild(g)) for g in fake.guilds if serves_guild(bot, g)),
            timeout=10,
            what="its shards' guilds and member lists",
        )
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Split]:
    fake = FakeDiscord()
    await fake.start()
    even = fake.add_guild(snowflake_on_shard(0, 2), name="Even Guild")
    odd = fake.add_guild(snowflake_on_shard(1, 2), name="Odd Guild")
    mod_even = fake.add_role(even.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
    mod_odd = fake.add_role(odd.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
    vip = fake.add_role(odd.id, "VIP", position=2)
    above = fake.add_role(odd.id, "Above the bot", position=150)
    mod = fake.add_member(even.id, name="mod", roles=[mod_even.id])
    fake.add_member(odd.id, mod.id, roles=[mod_odd.id])
    alice = fake.add_member(even.id, name="alice")
    fake.add_member(odd.id, alice.id)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    monkeypatch.setattr(PromoBalanceBot, "before_identify_hook", no_pause)
    paths = [tmp_path / "shard0.sqlite3", tmp_path / "shard1.sqlite3"]
    point_at(settings_for(fake, paths[0], (0,)))
    assert yarl.URL(fake.gateway_url) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    clock = Clock()
    bots = [
        PromoBalanceBot(settings_for(fake, path, (shard,)), clock=clock, tick_seconds=None, dm_rate=float("inf"))
        for shard, path in enumerate(paths)
    ]
    try:
        async with running(bots[0], fake), running(bots[1], fake):
            yield Split(fake, clock, even, odd, mod, alice, vip, above, bots, paths)
    finally:
        await fake.stop()
    fake.assert_clean()


def rows(path: Path, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql, args).fetchall()


async def test_each_process_sees_only_its_shard_and_answers_only_its_interactions(split: Split) -> None:
    s = split
    zero, one = s.bots
    assert [g.id for g in zero.guilds] == [s.even.id]
    assert [g.id for g in one.guilds] == [s.odd.id]
    assert zero.get_guild(s.odd.id) is None
    assert sorted(m["d"]["shard"] for m in s.fake.gateway.received if m["op"] == 2) == [[0, 2], [1, 2]]
    for guild, bot, other in ((s.odd, one, zero), (s.even, zero, one)):
        record = await s.fake.invoke(guild.id, s.mod.id, "credits grant", {"member": s.alice.id, "amount": "25"})
        await record.wait_for_response()
        assert "25" in text_of(record), text_of(record)
        assert (await bot.ledger.balance(guild.id, s.alice.id)).total == 25
        assert (await other.ledger.balance(guild.id, s.alice.id)).total == 0
    # both processes synced (each has its own database here, so each its own digest): one PUT each
    assert s.fake.sync_count == 2


async def test_the_other_shards_purchase_role_is_delivered_over_rest(split: Split) -> None:
    s = split
    zero = s.bots[0]  # the scheduler's holder, say: odd is on shard 1, not in its cache
    ledger = zero.ledger
    await ledger.grant(s.odd.id, s.alice.id, 100, actor_id=s.mod.id, key="credit", expires="30d")
    item = await ledger.add_item(s.odd.id, "VIP pass", 30, "perks", actor_id=s.mod.id, key="vip", role_id=s.vip.id)
    order = await ledger.checkout(s.odd.id, s.alice.id, item.id, key="buy-vip")
    assert await zero.jobs.deliver() == 1
    assert s.vip.id in s.fake.member(s.odd.id, s.alice.id).roles
    assert (await ledger.order(s.odd.id, order.id)).status == "completed"  # type: ignore[union-attr]
    # the bot's place in the guild came over REST: the guild's roles, then the bot's member
    assert [r.status for r in s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}$")] == [200]
    assert [r.status for r in s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}/members/{s.fake.bot_user_id}$")] == [200]

    # a role above the bot's: known impossible from those answers, never sent to Discord; refunded
    # and the member told by DM, with the guild's name (over REST too)
    high = await ledger.add_item(s.odd.id, "Above", 30, "perks", actor_id=s.mod.id, key="high", role_id=s.above.id)
    refused = await ledger.checkout(s.odd.id, s.alice.id, high.id, key="buy-high")
    while await zero.jobs.deliver():
        pass
    assert s.fake.requests_to("PUT", rf"/roles/{s.above.id}$") == []
    assert rows(s.paths[0], "SELECT action, status, reason FROM deliveries WHERE order_id = ? ORDER BY id", refused.id)[
        0
    ] == ("add_role", "failed", rules.ROLE_ABOVE_BOT)
    assert (await ledger.balance(s.odd.id, s.alice.id)).total == 70
    dms = s.fake.dms(s.alice.id)
    assert len(dms) == 1
    assert "Odd Guild" in dms[0].content
    assert "refunded" in dms[0].content


async def test_the_other_shards_reminder_dm_names_its_guild(split: Split) -> None:
    s = split
    zero = s.bots[0]
    bob = s.fake.add_member(s.odd.id, name="bob")
    for member in (s.alice, bob):
        await zero.ledger.grant(s.odd.id, member.id, "40", actor_id=s.mod.id, key=None, expires="3d")
    assert await zero.jobs.remind() == 2
    for member in (s.alice, bob):
        dms = s.fake.dms(member.id)
        assert len(dms) == 1
        assert "Odd Guild" in dms[0].embed_text
        assert "your server" not in dms[0].embed_text
    # the name came over REST once for the run, not once per DM
    assert len(s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}$")) == 1


async def test_the_other_shards_recurring_grant_lists_the_role_over_rest(split: Split) -> None:
    s = split
    zero = s.bots[0]
    many = [s.fake.add_member(s.odd.id, name=f"m{i}", roles=[s.vip.id]) for i in range(1200)]
    s.fake.add_member(s.odd.id, name="helper-bot", roles=[s.vip.id], bot=True)  # bots hold no credit
    s.fake.add_member(s.odd.id, name="no-vip")
    schedule = await zero.ledger.add_schedule(
        s.odd.id, s.vip.id, "10", "0 12 * * *", actor_id=s.mod.id, key=None, valid_days=30
    )
    s.clock.current = s.clock.current.replace(hour=12, minute=0) + timedelta(days=1)
    assert await zero.jobs.recurring() == 1
    granted = rows(s.paths[0], "SELECT user_id FROM lots WHERE source_ref = ?", f"schedule:{schedule.id}")
    assert sorted(u for (u,) in granted) == sorted(m.id for m in many)
    pages = s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}/members$")
    # 1,205 members: a page of 1000, then the rest after the last id of the first
    assert [(p.query.get("limit"), p.query.get("after")) for p in pages] == [
        ("1000", None),
        ("1000", str(max(sorted(s.fake.guilds[s.odd.id].members)[:1000]))),
    ]
    assert await zero.jobs.recurring() == 0  # ran once for its due time

    # a deleted role: the run goes by with nobody to grant, as for a guild in the cache
    s.fake.delete_role(s.odd.id, s.vip.id)
    s.clock.advance(days=1)
    await zero.jobs.recurring()
    assert len(s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}/members$")) == 2  # the roles said: gone
    assert len(rows(s.paths[0], "SELECT user_id FROM lots WHERE source_ref = ?", f"schedule:{schedule.id}")) == 1200


async def test_one_process_running_both_shards_syncs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SHARD_IDS 0,1 in one process: both shards identify, every guild is cached with its shard,
    and the commands are synced once (setup_hook runs once per process, not per shard)."""
    async with FakeDiscord() as fake:
        guilds = [fake.add_guild(snowflake_on_shard(i % 2, 2), name=f"g{i}") for i in range(4)]
        settings = settings_for(fake, tmp_path / "both.sqlite3", (0, 1))
        monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        )
        monkeypatch.setattr(PromoBalanceBot, "before_identify_hook", no_pause)
        point_at(settings)
        bot = PromoBalanceBot(settings, clock=Clock(), tick_seconds=None)
        async with running(bot, fake):
            await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], what="both shards")
            assert sorted(g.id for g in bot.guilds) == sorted(g.id for g in guilds)
            assert {g.id: g.shard_id for g in bot.guilds} == {g.id: (g.id >> 22) % 2 for g in guilds}
            assert fake.sync_count == 1
        fake.assert_clean()


async def test_without_shard_count_it_runs_the_recommended_shards(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No SHARD_COUNT: discord.py asks GET /gateway/bot and runs every recommended shard here."""
    async with FakeDiscord() as fake:
        fake.recommended_shards = 2
        fake.add_guild(snowflake_on_shard(0, 2))
        fake.add_guild(snowflake_on_shard(1, 2))
        settings = settings_for(fake, tmp_path / "auto.sqlite3", (0,))
        settings = dataclasses.replace(settings, shard_count=None, shard_ids=None)
        monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        )
        monkeypatch.setattr(PromoBalanceBot, "before_identify_hook", no_pause)
        point_at(settings)
        bot = PromoBalanceBot(settings, clock=Clock(), tick_seconds=None)
        async with running(bot, fake):
            assert bot.shard_count == 2
            await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], what="both shards")
            assert len(bot.guilds) == 2
        fake.assert_clean()


async def test_a_shard_count_other_than_the_running_processes_stops_the_bot_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord closes an IDENTIFY whose shard count differs from the live sessions' with 4010: the
    process exits 2 saying what to fix, instead of a traceback or reconnecting forever."""
    async with FakeDiscord() as fake, aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        await ws.receive_json()  # HELLO
        identify = {"token": fake.token, "intents": 1, "properties": {}, "shard": [0, 3]}
        await ws.send_json({"op": 2, "d": identify})
        await fake.wait_for(lambda: fake.gateway.ready_shards == [0], what="the other process's shard")
        settings = settings_for(fake, tmp_path / "wrong.sqlite3", (1,))
        monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        )
        assert await asyncio.wait_for(run(settings), 30) == 2
    assert "Discord refused shard 1" in caplog.text
    assert "same SHARD_COUNT" in caplog.text


async def test_the_other_shards_staff_order_is_posted_edited_and_dmed_over_rest(split: Split) -> None:
    s = split
    zero = s.bots[0]
    ledger = zero.ledger
    channel = s.fake.add_channel(s.odd.id, "orders")
    await ledger.update_settings(s.odd.id, actor_id=s.mod.id, key=None, fulfilment_channel_id=channel.id)
    await ledger.grant(s.odd.id, s.alice.id, 100, actor_id=s.mod.id, key="credit", expires="30d")
    item = await ledger.add_item(s.odd.id, "Custom emoji", 60, "perks", actor_id=s.mod.id, key="i", delivery="staff")
    order = await ledger.checkout(s.odd.id, s.alice.id, item.id, key="buy")
    assert await zero.jobs.deliver() == 1
    posts = s.fake.channel_messages(channel.id)
    assert len(posts) == 1
    assert f"#{order.id}" in posts[0].embed_text
    await ledger.fulfil(s.odd.id, order.id, actor_id=s.mod.id, key="done")
    while await zero.jobs.deliver():
        pass
    assert len(posts[0].edits) == 1  # who acted and when, without the buttons
    assert posts[0].custom_ids == []
    dms = s.fake.dms(s.alice.id)
    assert len(dms) == 1
    assert "Odd Guild" in dms[0].content


async def test_too_many_guilds_for_the_shard_count_stops_the_bot_with_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Discord closes a session that would have more than 2,500 guilds with 4011 (the fake: its
    ``max_guilds_per_shard``): exit 2, saying to shard more."""
    async with FakeDiscord() as fake:
        fake.max_guilds_per_shard = 1
        fake.add_guild(snowflake_on_shard(0, 2))
        fake.add_guild(snowflake_on_shard(0, 2))
        settings = settings_for(fake, tmp_path / "small.sqlite3", (0,))
        monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        )
        assert await asyncio.wait_for(run(settings), 30) == 2
    assert "too many guilds" in caplog.text
    assert "larger SHARD_COUNT" in caplog.text


# --- one ledger (PostgreSQL), two shard processes ---------------------------------------------------


@pytest.fixture
async def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_url: str) -> AsyncIterator[Split]:
    """As ``split``, but both instances on one PostgreSQL database, as SPEC §7 runs them."""
    fake = FakeDiscord()
    await fake.start()
    even = fake.add_guild(snowflake_on_shard(0, 2), name="Even Guild")
    odd = fake.add_guild(snowflake_on_shard(1, 2), name="Odd Guild")
    mod_odd = fake.add_role(odd.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
    vip = fake.add_role(odd.id, "VIP", position=2)
    above = fake.add_role(odd.id, "Above the bot", position=150)
    mod = fake.add_member(odd.id, name="mod", roles=[mod_odd.id])
    alice = fake.add_member(odd.id, name="alice", roles=[vip.id])
    fake.add_member(even.id, alice.id)
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    monkeypatch.setattr(PromoBalanceBot, "before_identify_hook", no_pause)
    clock = Clock()
    paths = [tmp_path / "unused0.sqlite3", tmp_path / "unused1.sqlite3"]
    settings = [dataclasses.replace(settings_for(fake, p, (i,)), database_url=pg_url) for i, p in enumerate(paths)]
    point_at(settings[0])
    bots = [PromoBalanceBot(s, clock=clock, tick_seconds=None, dm_rate=float("inf")) for s in settings]
    try:
        async with running(bots[0], fake), running(bots[1], fake):
            yield Split(fake, clock, even, odd, mod, alice, vip, above, bots, paths)
    finally:
        await fake.stop()
    fake.assert_clean()


async def test_with_one_ledger_the_job_runner_serves_the_other_shards_guild(shared: Split) -> None:
    """Shard 1's process answers odd's commands; shard 0's, the scheduler's holder, runs odd's
    reminder, recurring grant and delivery over REST, from the same ledger."""
    s = shared
    zero, one = s.bots
    # the second process found the first one's command digest in the shared database
    assert s.fake.sync_count == 1
    assert not any(p.exists() for p in s.paths)  # nothing went to a SQLite file

    granted = await s.fake.invoke(
        s.odd.id, s.mod.id, "credits grant", {"member": s.alice.id, "amount": "40", "expires": "3d"}
    )
    assert "40" in text_of(granted), text_of(granted)
    scheduled = await s.fake.invoke(
        s.odd.id, s.mod.id, "credits schedule add", {"role": s.vip.id, "amount": "10", "rule": "0 12 * * *"}
    )
    assert "#1" in text_of(scheduled), text_of(scheduled)
    item = await one.ledger.add_item(s.odd.id, "VIP+", 20, "perks", actor_id=s.mod.id, key="i", role_id=s.vip.id)
    order = await one.ledger.checkout(s.odd.id, s.alice.id, item.id, key="buy")  # delivery left to the jobs

    assert await zero.jobs.remind() == 1
    assert "Odd Guild" in s.fake.dms(s.alice.id)[0].embed_text
    s.clock.current = s.clock.current.replace(hour=12, minute=0) + timedelta(days=1)
    assert await zero.jobs.recurring() == 1
    assert await zero.jobs.deliver() == 1
    assert (await zero.ledger.order(s.odd.id, order.id)).status == "completed"  # type: ignore[union-attr]
    assert s.fake.requests_to("GET", rf"^/guilds/{s.odd.id}/members$")  # listed over REST

    # shard 1's process, asked by the member, sees what shard 0's did: 40 - 20 + 10
    balance = await s.fake.invoke(s.odd.id, s.alice.id, "balance")
    assert "30" in text_of(balance), text_of(balance)
    assert (await one.ledger.balance(s.odd.id, s.alice.id)).total == 30
