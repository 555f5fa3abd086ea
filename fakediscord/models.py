"""The fake's world: users, guilds, roles, members and channels, plus permission maths.

These are plain mutable dataclasses. Change them through :class:`FakeDiscord` methods
(``add_member``, ``set_member_roles``, ``update_role`` ...) when the connected client
should hear about the change over the gateway; direct edits are silent.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum

DISCORD_EPOCH_MS = 1_420_070_400_000

_increment = itertools.count()


def snowflake() -> int:
    """A new, unique, time-ordered Discord snowflake."""
    ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (1 << 17) | (next(_increment) & 0xFFF)


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard a guild's events go to: Discord's ``(guild_id >> 22) % num_shards``."""
    return (guild_id >> 22) % shard_count


def snowflake_on_shard(shard_id: int, shard_count: int) -> int:
    """A new, unique snowflake whose guild would be on shard ``shard_id`` of ``shard_count`` (its
    timestamp moved back by at most ``shard_count - 1`` milliseconds)."""
    value = snowflake()
    ms = (value >> 22) - ((shard_of(value, shard_count) - shard_id) % shard_count)
    return (ms << 22) | (value & ((1 << 22) - 1))


def snowflake_time(value: int) -> datetime:
    return datetime.fromtimestamp(((value >> 22) + DISCORD_EPOCH_MS) / 1000, tz=UTC)


def iso(value: datetime) -> str:
    """Discord's timestamp format (ISO 8601 with offset)."""
    return value.astimezone(UTC).isoformat()


class Perm:
    """Permission bits used by the fake (see Discord's permission table)."""

    CREATE_INSTANT_INVITE = 1 << 0
    KICK_MEMBERS = 1 << 1
    BAN_MEMBERS = 1 << 2
    ADMINISTRATOR = 1 << 3
    MANAGE_CHANNELS = 1 << 4
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    MENTION_EVERYONE = 1 << 17
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    MANAGE_NICKNAMES = 1 << 27
    MANAGE_ROLES = 1 << 28
    MANAGE_WEBHOOKS = 1 << 29
    USE_APPLICATION_COMMANDS = 1 << 31
    SEND_MESSAGES_IN_THREADS = 1 << 38
    MODERATE_MEMBERS = 1 << 40
    # The same mask discord.py's Permissions.all() uses.
    ALL = 0b0000_0000_0001_1111_0111_1111_1111_1111_1111_1111_1111_1111_1111_1111_1111_1111


DEFAULT_EVERYONE_PERMISSIONS = (
    Perm.CREATE_INSTANT_INVITE
    | Perm.ADD_REACTIONS
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_EXTERNAL_EMOJIS
    | Perm.CONNECT
    | Perm.SPEAK
    | Perm.CHANGE_NICKNAME
    | Perm.USE_APPLICATION_COMMANDS
    | Perm.SEND_MESSAGES_IN_THREADS
)

DEFAULT_BOT_PERMISSIONS = (
    Perm.MANAGE_ROLES
    | Perm.VIEW_CHANNEL
    | Perm.SEND_MESSAGES
    | Perm.EMBED_LINKS
    | Perm.ATTACH_FILES
    | Perm.READ_MESSAGE_HISTORY
    | Perm.USE_APPLICATION_COMMANDS
)


class ChannelType(IntEnum):
    GUILD_TEXT = 0
    DM = 1
    GUILD_VOICE = 2
    GUILD_CATEGORY = 4
    GUILD_ANNOUNCEMENT = 5
    GUILD_FORUM = 15


class Intent:
    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    DIRECT_MESSAGES = 1 << 12


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 1
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None

    def sort_key(self) -> tuple[int, int]:
        """Higher is above: position, then the older (lower id) role wins a tie, as in Discord."""
        return (self.position, -self.id)


@dataclass
class Member:
    guild_id: int
    user: User
    roles: list[int] = field(default_factory=list)
    joined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    nick: str | None = None

    @property
    def id(self) -> int:
        return self.user.id


@dataclass
class Channel:
    id: int
    type: int
    name: str | None = None
    guild_id: int | None = None
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    recipient_id: int | None = None  # DM channels only


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def member_roles(self, member: Member) -> list[Role]:
        return [self.roles[r] for r in member.roles if r in self.roles and r != self.id]

    def top_role(self, member: Member) -> Role:
        return max([self.everyone, *self.member_roles(member)], key=Role.sort_key)

    def permissions_for(self, member: Member) -> int:
        """Guild-level permissions: owner and ADMINISTRATOR get everything (no channel overwrites)."""
        if member.id == self.owner_id:
            return Perm.ALL
        value = self.everyone.permissions
        for role in self.member_roles(member):
            value |= role.permissions
        if value & Perm.ADMINISTRATOR:
            return Perm.ALL
        return value

    def text_channels(self) -> list[Channel]:
        return sorted(
            (c for c in self.channels.values() if c.type == ChannelType.GUILD_TEXT),
            key=lambda c: (c.position, c.id),
        )
