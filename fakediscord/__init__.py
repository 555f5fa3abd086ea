"""A fake Discord API (REST + websocket gateway) for end-to-end tests of the real discord.py client.

Usage::

    fake = FakeDiscord()
    await fake.start()
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)

See README.md in this folder. No pytest dependency: aiohttp (from discord.py) and jsonschema.
Every record list and lookup table keeps the newest ``max_records`` entries (default 10,000).
"""

from .commands import InvalidInvocation
from .errors import DiscordError
from .fake import FakeDiscord
from .models import Channel, ChannelType, Guild, Member, Perm, Role, User, shard_of, snowflake, snowflake_on_shard
from .records import (
    DEFAULT_MAX_RECORDS,
    BoundedDict,
    FileUpload,
    InteractionRecord,
    RecordLog,
    RequestRecord,
    SentMessage,
    SyncCall,
)
from .server import FailureRule
from .validation import Problem, Violation

__all__ = [
    "DEFAULT_MAX_RECORDS",
    "BoundedDict",
    "Channel",
    "ChannelType",
    "DiscordError",
    "FailureRule",
    "FakeDiscord",
    "FileUpload",
    "Guild",
    "InteractionRecord",
    "InvalidInvocation",
    "Member",
    "Perm",
    "Problem",
    "RecordLog",
    "RequestRecord",
    "Role",
    "SentMessage",
    "SyncCall",
    "User",
    "Violation",
    "shard_of",
    "snowflake",
    "snowflake_on_shard",
]
