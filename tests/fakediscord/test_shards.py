"""The fake's gateway sharding, as Discord serves it: several live sessions, one per shard, each
with only its shard's guilds and events; the IDENTIFYs Discord refuses closed with its codes."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord.ext import commands

from fakediscord import FakeDiscord, shard_of, snowflake_on_shard
from fakediscord.gateway import INVALID_SHARD, SHARDING_REQUIRED

INTENTS = int(discord.Intents(guilds=True, members=True).value)


class RawSession:
    """A hand-driven gateway connection: IDENTIFY, then read what the fake sends."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def identify(self, fake: FakeDiscord, shard: list[int] | None) -> None:
        hello = await self.ws.receive_json()
        assert hello["op"] == 10
        data: dict[str, Any] = {"token": fake.token, "intents": INTENTS, "properties": {}}
        if shard is not None:
            data["shard"] = shard
        await self.ws.send_json({"op": 2, "d": data})

    async def next_event(self) -> dict[str, Any]:
        """The next DISPATCH (the fake sends only dispatches after HELLO to a silent client)."""
        msg = await self.ws.receive(5.0)
        assert msg.type is aiohttp.WSMsgType.TEXT, (msg.type, msg.data, self.ws.close_code)
        payload: dict[str, Any] = json.loads(msg.data)
        self.events.append(payload)
        return payload

    async def until(self, event: str) -> dict[str, Any]:
        while True:
            payload = await self.next_event()
            if payload["t"] == event:
                return payload

    async def closed_with(self) -> int | None:
        msg = await self.ws.receive(5.0)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING), msg
        return self.ws.close_code


@contextlib.asynccontextmanager
async def raw(fake: FakeDiscord, http: aiohttp.ClientSession, shard: list[int] | None) -> AsyncIterator[RawSession]:
    async with http.ws_connect(fake.gateway_url) as ws:
        session = RawSession(ws)
        await session.identify(fake, shard)
        yield session


async def sync_ping(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    """A global /ping, usable in guilds and DMs, as a bot's sync would register it."""
    url = f"{fake.api_base}/applications/{fake.application_id}/commands"
    body = [{"name": "ping", "description": "ping", "type": 1, "contexts": [0, 1, 2], "integration_types": [0]}]
    async with http.put(url, json=body, headers={"Authorization": f"Bot {fake.token}"}) as r:
        assert r.status == 200, await r.text()


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as value:
        yield value


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def test_snowflake_on_shard_lands_on_that_shard() -> None:
    for count in (1, 2, 3, 16):
        for shard_id in range(count):
            ids = {snowflake_on_shard(shard_id, count) for _ in range(5)}
            assert len(ids) == 5
            assert {shard_of(i, count) for i in ids} == {shard_id}


async def test_get_gateway_bot_recommends_shards_and_counts_session_starts(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    headers = {"Authorization": f"Bot {fake.token}"}
    async with http.get(f"{fake.api_base}/gateway/bot", headers=headers) as r:
        first = await r.json()
    assert first["shards"] == 1
    assert first["url"] == fake.gateway_url
    assert first["session_start_limit"] == {
        "total": 1000,
        "remaining": 1000,
        "reset_after": 86_400_000,
        "max_concurrency": 1,
    }
    fake.recommended_shards = 4
    async with raw(fake, http, [0, 4]) as session:
        await session.until("READY")
        async with http.get(f"{fake.api_base}/gateway/bot", headers=headers) as r:
            second = await r.json()
    assert second["shards"] == 4
    assert second["session_start_limit"]["remaining"] == 999
    fake.assert_clean()


async def test_each_shard_gets_only_its_guilds_and_their_events(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    even = fake.add_guild(snowflake_on_shard(0, 2), name="even")
    odd = fake.add_guild(snowflake_on_shard(1, 2), name="odd")
    async with raw(fake, http, [0, 2]) as zero, raw(fake, http, [1, 2]) as one:
        ready0, ready1 = await zero.until("READY"), await one.until("READY")
        assert [g["id"] for g in ready0["d"]["guilds"]] == [str(even.id)]
        assert [g["id"] for g in ready1["d"]["guilds"]] == [str(odd.id)]
        assert ready0["d"]["shard"] == [0, 2]
        assert ready1["d"]["shard"] == [1, 2]
        assert (await zero.until("GUILD_CREATE"))["d"]["id"] == str(even.id)
        assert (await one.until("GUILD_CREATE"))["d"]["id"] == str(odd.id)
        await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], what="both shards")

        # a guild event reaches only its shard's session: the next event each sees is its own
        fake.add_role(odd.id, "Odd role")
        fake.add_role(even.id, "Even role")
        created = await zero.until("GUILD_ROLE_CREATE")
        assert created["d"]["guild_id"] == str(even.id)
        created = await one.until("GUILD_ROLE_CREATE")
        assert created["d"]["guild_id"] == str(odd.id)

        # a guild added later: GUILD_CREATE to its shard only
        late = fake.add_guild(snowflake_on_shard(1, 2), name="late")
        assert (await one.until("GUILD_CREATE"))["d"]["id"] == str(late.id)

        # interactions: a guild's to its shard, a DM's to shard 0
        alice = fake.add_member(odd.id, name="alice")
        fake.add_member(even.id, alice.id)
        await sync_ping(fake, http)
        record = await fake.invoke(odd.id, alice.id, "ping", wait=False)
        assert (await one.until("INTERACTION_CREATE"))["d"]["id"] == str(record.id)
        dm = await fake.invoke(None, alice.id, "ping", wait=False)
        assert (await zero.until("INTERACTION_CREATE"))["d"]["id"] == str(dm.id)
        assert [e["d"]["guild_id"] for e in zero.events if e["t"] == "GUILD_MEMBER_ADD"] == [str(even.id)]

        # op 8 for a guild of the other shard gets nothing; for its own, the chunk. The fake writes
        # in order, so whatever shard 1 got before that chunk is all it got of the above.
        await one.ws.send_json({"op": 8, "d": {"guild_id": str(even.id), "query": "", "limit": 0}})
        await one.ws.send_json({"op": 8, "d": {"guild_id": str(odd.id), "query": "", "limit": 0}})
        chunk = await one.until("GUILD_MEMBERS_CHUNK")
        assert chunk["d"]["guild_id"] == str(odd.id)
        assert [e["d"]["guild_id"] for e in one.events if e["t"] == "GUILD_MEMBER_ADD"] == [str(odd.id)]
        assert [e["d"]["id"] for e in one.events if e["t"] == "INTERACTION_CREATE"] == [str(record.id)]
        assert not [e for e in one.events if e["t"] == "GUILD_ROLE_CREATE" and e["d"]["guild_id"] == str(even.id)]
        assert [c["guild_id"] for c in fake.gateway.chunks_sent] == [odd.id]


async def test_an_interaction_for_a_shard_nobody_serves_is_refused(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    odd = fake.add_guild(snowflake_on_shard(1, 2), name="odd")
    alice = fake.add_member(odd.id, name="alice")
    await sync_ping(fake, http)
    async with raw(fake, http, [0, 2]) as zero:
        await zero.until("READY")
        await fake.wait_until_ready()
        with pytest.raises(RuntimeError, match="no connected session serves"):
            await fake.invoke(odd.id, alice.id, "ping", wait=False)


@pytest.mark.parametrize(
    "shard",
    [[2, 2], [-1, 2], [0, 0], [1], "0,2", [0, 3]],  # [0, 3] differs from the live [0, 2]
)
async def test_an_invalid_shard_is_closed_with_4010(fake: FakeDiscord, http: aiohttp.ClientSession, shard: Any) -> None:
    async with raw(fake, http, [0, 2]) as live:
        await live.until("READY")
        async with raw(fake, http, shard) as session:
            assert await session.closed_with() == INVALID_SHARD
        assert fake.gateway.identify_count == 1
        assert fake.gateway.ready_shards == [0]


async def test_too_many_guilds_on_one_session_is_closed_with_4011(
    fake: FakeDiscord, http: aiohttp.ClientSession
) -> None:
    fake.max_guilds_per_shard = 2
    for shard_id in (0, 0, 1):
        fake.add_guild(snowflake_on_shard(shard_id, 2))
    async with raw(fake, http, None) as unsharded:
        assert await unsharded.closed_with() == SHARDING_REQUIRED
    async with raw(fake, http, [0, 2]) as zero, raw(fake, http, [1, 2]) as one:
        assert len((await zero.until("READY"))["d"]["guilds"]) == 2
        assert len((await one.until("READY"))["d"]["guilds"]) == 1


async def test_one_shard_disconnecting_leaves_the_other_ready(fake: FakeDiscord, http: aiohttp.ClientSession) -> None:
    async with raw(fake, http, [0, 2]) as zero:
        await zero.until("READY")
        async with raw(fake, http, [1, 2]) as one:
            await one.until("READY")
            await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], what="both shards")
        await fake.wait_for(lambda: fake.gateway.ready_shards == [0], what="shard 1 to go")
        assert fake.gateway.ready.is_set()
    await fake.wait_for(lambda: not fake.gateway.ready.is_set(), what="shard 0 to go")


async def test_discord_py_auto_sharded_bot_runs_the_recommended_shards(
    fake: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no shard_count, discord.py asks GET /gateway/bot and runs every shard it recommends;
    each guild lands in the cache with its shard id."""
    fake.recommended_shards = 2
    guilds = [fake.add_guild(snowflake_on_shard(i % 2, 2), name=f"g{i}") for i in range(4)]
    monkeypatch.setattr(discord.http.Route, "BASE", fake.api_base)
    monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(fake.gateway_url))
    # the 5 s pause discord.py makes before each IDENTIFY but the first (Discord's 1 per 5 s)
    monkeypatch.setattr(commands.AutoShardedBot, "before_identify_hook", _no_pause)
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents(guilds=True))
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    try:
        await fake.wait_for(lambda: fake.gateway.ready_shards == [0, 1], what="both shards")
        await fake.wait_for(lambda: len(bot.guilds) == 4, what="every guild")
        assert bot.shard_count == 2
        assert {g.id: g.shard_id for g in bot.guilds} == {g.id: shard_of(g.id, 2) for g in guilds}
        shards = [m["d"]["shard"] for m in fake.gateway.received if m["op"] == 2]
        assert sorted(shards) == [[0, 2], [1, 2]]
    finally:
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
    fake.assert_clean()


async def _no_pause(self: commands.AutoShardedBot, shard_id: int | None, *, initial: bool = False) -> None:
    return None
