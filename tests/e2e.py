"""End-to-end fixtures: the real bot (discord.py, cogs, ledger, database) connected to the fake
Discord on loopback, driven by raw interaction payloads.

Every test on `world` runs twice: on a SQLite file, and on a PostgreSQL database (DATABASE_URL),
the same commands and the same checks (tests/rawsql.py reads either)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord
import pytest
import yarl

from bot.config import Settings
from bot.discordbot.client import PromoBalanceBot, point_at
from fakediscord import FakeDiscord, Guild, InteractionRecord, Member, Perm, Role
from tests import rawsql
from tests.conftest import Clock


@dataclass
class World:
    fake: FakeDiscord
    bot: PromoBalanceBot
    clock: Clock
    guild: Guild
    owner: Member
    mod: Member
    alice: Member
    bob: Member
    mod_role: Role
    vip_role: Role
    audit_channel_id: int
    settings: Settings

    @property
    def ledger(self):
        return self.bot.ledger

    async def run(self, user: Member, command: str, **options) -> InteractionRecord:
        """Invoke a slash command as `user` and wait for the bot's first answer."""
        return await self.fake.invoke(self.guild.id, user.id, command, options or None)

    async def finished(self, record: InteractionRecord) -> InteractionRecord:
        """For deferred commands: wait until the 'thinking…' message got its content."""
        if record.deferred:
            await record.wait_for_followup(1)
        return record


def text_of(record_or_message) -> str:
    """Everything a user sees in a message: content and embeds, as one string."""
    message = getattr(record_or_message, "message", None) or record_or_message
    content = message.content or ""
    return content + "\n" + message.embed_text


def button(record_or_message, prefix: str) -> str:
    message = getattr(record_or_message, "message", None) or record_or_message
    ids = [cid for cid in message.custom_ids if cid.startswith(prefix)]
    assert ids, f"no button {prefix!r} in {message.custom_ids}"
    return ids[0]


def db_dump(w: World) -> dict[str, list[tuple]]:
    """Every row of every table: equal before and after means the command wrote nothing at all."""
    return rawsql.dump(w.settings)


async def refused(w: World, user, command: str, expect: str, *, enforce: bool = True, **options) -> str:
    """Run a command that must be refused: a clear ephemeral answer, no apology, nothing written."""
    before = db_dump(w)
    rec = await w.fake.invoke(w.guild.id, user.id, command, options or None, enforce_permissions=enforce)
    await w.finished(rec)
    message = rec.message
    text = text_of(message)
    assert message.ephemeral, text
    assert expect.casefold() in text.casefold(), text
    assert "Error id" not in text, text  # a user's mistake, not the bot's bug
    assert db_dump(w) == before, f"/{command} wrote something although it was refused"
    return text


async def start_bot(
    settings: Settings, fake: FakeDiscord, clock: Clock, *, members_loaded: bool = True, **options: Any
) -> tuple[PromoBalanceBot, asyncio.Task]:
    """Start the bot against the fake; with ``members_loaded``, return once it has every guild's
    whole member list (Discord sends it in chunks after READY)."""
    # Scheduled jobs run when a test calls them (bot.jobs.expire() …), on the test's clock.
    bot = PromoBalanceBot(settings, clock=clock, tick_seconds=None, dm_rate=float("inf"), **options)
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    await fake.wait_until_ready()
    await fake.wait_for(lambda: fake.sync_count > 0 or bot.is_ready(), timeout=10, what="command sync")
    if members_loaded and bot.members_intent:
        await fake.wait_for(
            lambda: all(bot.member_list_complete(bot.get_guild(g)) for g in fake.guilds),
            timeout=10,
            what="the bot's member lists",
        )
    return bot, task


async def stop_bot(bot: PromoBalanceBot, task: asyncio.Task) -> None:
    await bot.close()
    with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
        await asyncio.wait_for(task, 10)


Restart = Callable[[], Awaitable[PromoBalanceBot]]


@pytest.fixture
async def restart(world: World) -> AsyncIterator[Restart]:
    """Stop the running bot and start a new PromoBalanceBot on the same database file."""
    started: list[tuple[PromoBalanceBot, asyncio.Task]] = []

    async def run() -> PromoBalanceBot:
        w = world
        await w.bot.close()
        await w.fake.wait_for(lambda: not w.fake.gateway.ready.is_set(), what="the old bot to disconnect")
        bot, task = await start_bot(w.settings, w.fake, w.clock)
        started.append((bot, task))
        w.bot = bot
        await w.fake.wait_for(
            lambda: (g := bot.get_guild(w.guild.id)) is not None and g.get_member(w.alice.id) is not None,
            what="the new bot's member cache",
        )
        return bot

    yield run
    for bot, task in reversed(started):
        await stop_bot(bot, task)


BACKENDS = ("sqlite", "postgres")


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> str | None:
    """None: the SQLite file; else a new PostgreSQL database (the server starts only if asked)."""
    return request.getfixturevalue("pg_url") if request.param == "postgres" else None


@pytest.fixture
async def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str | None) -> AsyncIterator[World]:
    fake = FakeDiscord()
    await fake.start()
    guild = fake.add_guild(name="Shop Guild")
    owner = fake.add_member(guild.id, name="owner")
    guild.owner_id = owner.id
    mod_role = fake.add_role(guild.id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
    vip_role = fake.add_role(guild.id, "VIP", position=2)
    clock = Clock()
    long_ago = clock() - timedelta(days=400)
    mod = fake.add_member(guild.id, name="mod", roles=[mod_role.id], joined_at=long_ago)
    alice = fake.add_member(guild.id, name="alice", joined_at=long_ago)
    bob = fake.add_member(guild.id, name="bob", joined_at=clock() - timedelta(days=2))
    audit = fake.add_channel(guild.id, "audit-log")

    settings = Settings(
        discord_token=fake.token,
        database_path=tmp_path / "bot.sqlite3",
        dev_guild_id=None,
        log_level="DEBUG",
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        database_url=database_url,
    )
    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    point_at(settings)
    assert yarl.URL(fake.gateway_url) == discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    bot, task = await start_bot(settings, fake, clock)
    try:
        yield World(fake, bot, clock, guild, owner, mod, alice, bob, mod_role, vip_role, audit.id, settings)
    finally:
        await stop_bot(bot, task)
        await fake.stop()
    fake.assert_clean()
