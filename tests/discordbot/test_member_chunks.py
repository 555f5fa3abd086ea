"""/credits grant-role right after a start: Discord sends a big guild's members in
GUILD_MEMBERS_CHUNK batches after READY, and a role looks smaller than it is until the last one.
The command grants to the whole role or to nobody, and says how many it granted.

A fresh bot starts against a guild whose member chunks the fake holds, so the command runs while
the member list is provably incomplete; the test releases the chunks when it chooses."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.config import Settings
from bot.discordbot.client import PromoBalanceBot, point_at
from fakediscord import FakeDiscord, Guild, Member, Perm, Role
from tests.conftest import Clock
from tests.e2e import start_bot, stop_bot, text_of

LOADING = "still loading"


@dataclass
class Fresh:
    fake: FakeDiscord
    guild: Guild
    mod: Member
    role: Role  # every member but the moderator and the bot has it
    members: list[Member]
    settings: Settings
    bot: PromoBalanceBot | None = None

    def lots_per_member(self) -> dict[int, int]:
        con = sqlite3.connect(f"file:{self.settings.database_path}?mode=ro", uri=True)
        try:
            rows = con.execute(
                "SELECT user_id, COUNT(*) FROM lots WHERE guild_id = ? GROUP BY user_id", (self.guild.id,)
            )
            return dict(rows.fetchall())
        finally:
            con.close()

    def member_requests(self) -> list[dict[str, Any]]:
        return [m for m in self.fake.gateway.received if m["op"] == 8]

    def cached_members(self) -> int:
        assert self.bot is not None
        guild = self.bot.get_guild(self.guild.id)
        return 0 if guild is None else len(guild.members)


@pytest.fixture
async def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """``await fresh(members, **bot_options)``: a guild of that many role members, its member
    chunks held, and a bot just started against it (its op 8 sent, no chunk delivered yet)."""
    fake = FakeDiscord()
    await fake.start()
    started: list[tuple[PromoBalanceBot, asyncio.Task]] = []

    async def start(count: int, **bot_options: Any) -> Fresh:
        guild = fake.add_guild(name="Big Guild")
        mod_role = fake.add_role(guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
        role = fake.add_role(guild.id, "Members", position=2)
        mod = fake.add_member(guild.id, name="mod", roles=[mod_role.id])
        members = [fake.add_member(guild.id, name=f"m{i}", roles=[role.id]) for i in range(count)]
        settings = Settings(
            discord_token=fake.token,
            database_path=tmp_path / "bot.sqlite3",
            dev_guild_id=None,
            log_level="DEBUG",
            discord_api_base=fake.api_base,
            discord_gateway_url=fake.gateway_url,
        )
        monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
        )
        point_at(settings)
        world = Fresh(fake, guild, mod, role, members, settings)
        fake.hold_member_chunks()
        bot, task = await start_bot(settings, fake, Clock(), members_loaded=False, **bot_options)
        started.append((bot, task))
        world.bot = bot
        chunks = -(-(count + 2) // 1000)  # the bot, the moderator and the role's members
        await fake.wait_for(lambda: fake.pending_member_chunks == chunks, what="the bot's request for the members")
        assert world.cached_members() == 1  # GUILD_CREATE carried only the bot
        return world

    try:
        yield start
    finally:
        fake.release_member_chunks()
        for bot, task in started:
            with contextlib.suppress(Exception):
                await stop_bot(bot, task)
        await fake.stop()
    fake.assert_clean()


async def test_grant_role_during_loading_waits_for_the_whole_list_and_grants_each_member_once(fresh):
    """600 members, none delivered yet: the command defers and waits; released, it grants all 600
    in one go and says 600. Repeating it is a second grant to the same 600, not a top-up of a part."""
    w: Fresh = await fresh(600)
    rec = await w.fake.invoke(w.guild.id, w.mod.id, "credits grant-role", {"role": w.role.id, "amount": "5"})
    assert rec.deferred
    assert rec.ephemeral  # "thinking…" while it waits
    assert rec.followups == []
    assert w.lots_per_member() == {}  # nothing granted from a partial list

    w.fake.release_member_chunks()
    answer = await rec.wait_for_followup(1, timeout=10)
    assert "to each of the 600 members" in text_of(answer), text_of(answer)
    assert w.lots_per_member() == {m.id: 1 for m in w.members}
    assert len(w.member_requests()) == 1  # it joined discord.py's start-up request, sent no other


async def test_grant_role_on_a_partly_loaded_list_refuses_and_writes_nothing(fresh):
    """1,500 members in two chunks, the first delivered (1,000 members in the cache, which is what
    granted "144 of 600" before): the command waits its bounded time, then refuses and writes
    nothing. Once loaded, the same command grants all 1,500 exactly once."""
    w: Fresh = await fresh(1500, member_list_wait=0.2)
    w.fake.release_member_chunks(1)
    await w.fake.wait_for(lambda: w.cached_members() == 1000, what="the first chunk in the bot's cache")
    assert not w.bot.get_guild(w.guild.id).chunked

    rec = await w.fake.invoke(w.guild.id, w.mod.id, "credits grant-role", {"role": w.role.id, "amount": "5"})
    answer = await rec.wait_for_followup(1, timeout=10)
    text = text_of(answer)
    assert answer.ephemeral
    assert LOADING in text, text
    assert "try again in a minute" in text, text
    assert "Error id" not in text
    assert "Nothing was granted" in text
    assert w.lots_per_member() == {}

    w.fake.release_member_chunks()
    await w.fake.wait_for(lambda: w.bot.member_list_complete(w.bot.get_guild(w.guild.id)), what="the whole list")
    again = await w.fake.invoke(w.guild.id, w.mod.id, "credits grant-role", {"role": w.role.id, "amount": "5"})
    answer = await again.wait_for_followup(1, timeout=10)
    assert "to each of the 1500 members" in text_of(answer), text_of(answer)
    assert w.lots_per_member() == {m.id: 1 for m in w.members}
    assert len(w.member_requests()) == 1


async def test_recurring_grants_use_the_same_rule_for_a_complete_list(fresh):
    """The scheduler's role members come through the same rule: none while loading, all after."""
    w: Fresh = await fresh(600)
    bot = w.bot
    assert not bot.member_list_complete(bot.get_guild(w.guild.id))
    assert await bot.role_members(w.guild.id, w.role.id) is None
    w.fake.release_member_chunks()
    await w.fake.wait_for(lambda: bot.member_list_complete(bot.get_guild(w.guild.id)), what="the whole list")
    assert sorted(await bot.role_members(w.guild.id, w.role.id) or []) == sorted(m.id for m in w.members)
