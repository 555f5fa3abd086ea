"""Which guilds this process's gateway shards carry. A bot split across processes by shards (SPEC §7)
has in its cache only the guilds of its own shards; the scheduler's lease holder still runs the jobs
of every guild (SPEC §5), over REST for the others."""

from __future__ import annotations

import discord


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's rule for the shard that carries a guild."""
    return (guild_id >> 22) % shard_count


def serves_guild(client: discord.Client, guild_id: int) -> bool:
    """Whether ``guild_id`` is on one of ``client``'s shards: it is in the cache, or will be once
    the gateway has delivered it. Without shard ids (an unsharded client, or an AutoShardedClient
    running every shard) the process serves every guild."""
    shard_ids = getattr(client, "shard_ids", None)
    if client.shard_count is None or shard_ids is None:
        return True
    return shard_of(guild_id, client.shard_count) in shard_ids
