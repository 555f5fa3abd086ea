"""FakeDiscord: the public face of the fake - world building, interactions, inspection."""

# The public API takes `timeout=` arguments on purpose (tests read better than with
# asyncio.timeout blocks around every call).
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import commands, payloads
from .commands import InvalidInvocation
from .gateway import Gateway
from .models import (
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    Channel,
    ChannelType,
    Guild,
    Intent,
    Member,
    Perm,
    Role,
    User,
    snowflake,
)
from .records import (
    DEFAULT_MAX_RECORDS,
    DEFAULT_TIMEOUT,
    BoundedDict,
    FileUpload,
    InteractionRecord,
    RecordLog,
    RequestRecord,
    SentMessage,
    SyncCall,
)
from .rest import RestApi
from .server import API_PREFIX, FailureRule, Server, redact
from .validation import Violation

if TYPE_CHECKING:
    from .gateway import Session

_log = logging.getLogger(__name__)

#: GATEWAY_GUILD_MEMBERS_LIMITED | GATEWAY_MESSAGE_CONTENT_LIMITED, as a small verified-less bot has.
DEFAULT_APPLICATION_FLAGS = (1 << 15) | (1 << 19)

_SELECT_TYPES = (3, 5, 6, 7, 8)
#: ``listener(event, message)``: event is "create", "edit" or "delete".
MessageListener = Callable[[str, SentMessage], None]
#: The largest file a member may attach (Discord's limit without boosts), sent in every interaction.
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024
_POLL_INTERVAL = 0.01


def _id_of(value: Any) -> int:
    """An id from an int, a digit string, or anything with an ``id`` (models, discord.py objects)."""
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if hasattr(value, "id"):
        return int(value.id)
    raise TypeError(f"not an id: {value!r}")


class FakeDiscord:
    """A fake Discord API (REST + gateway) on 127.0.0.1 for the real discord.py client.

    Build the world (guilds, roles, members, channels) before or after the client
    connects; changes made through these methods reach a connected client as gateway
    events. Then drive the bot with :meth:`invoke`, :meth:`autocomplete`, :meth:`click`
    and :meth:`submit_modal`, and read what it did from the returned records,
    :meth:`dms`, :meth:`channel_messages`, :attr:`requests` and :meth:`synced_commands`.
    """

    def __init__(
        self,
        *,
        application_id: int | None = None,
        bot_user_id: int | None = None,
        bot_name: str = "Promo Balance",
        token: str = "fake-bot-token",  # noqa: S107 - the fake's own token, not a secret
        owner_id: int | None = None,
        application_flags: int = DEFAULT_APPLICATION_FLAGS,
        interaction_timeout: float = 3.0,
        heartbeat_interval: float = 41.25,
        privileged_members_intent: bool = True,
        strict: bool = True,
        max_records: int | None = DEFAULT_MAX_RECORDS,
    ) -> None:
        self.application_id: int = application_id or snowflake()
        #: Modern bots share their application's id.
        self.bot_user_id: int = bot_user_id or self.application_id
        self.token = token
        self.application_flags = application_flags
        #: Seconds the bot has to send the initial response before Discord answers 10062.
        self.interaction_timeout = interaction_timeout
        #: Seconds an interaction token works for followups and edits (Discord: 15 minutes); after
        #: that they get 401 50027 "Invalid Webhook Token".
        self.interaction_token_lifetime: float = 15 * 60.0
        #: False: the Server Members intent is off in the developer portal, so an IDENTIFY asking
        #: for GUILD_MEMBERS is closed with 4014 "Disallowed intent(s)", as Discord does.
        self.privileged_members_intent = privileged_members_intent
        #: Check every request body against Discord's OpenAPI description and documented limits,
        #: answering a violation with 400 50035 as Discord does (validation.py).
        self.strict = strict
        #: How many entries each record list and lookup table keeps, oldest dropped first, so a
        #: long-running fake (the playground) stays bounded; None keeps everything (a benchmark
        #: counting all its requests). A message, file or interaction dropped from its table is
        #: unknown from then on, as if Discord had deleted it.
        self.max_records = max_records

        self.users: dict[int, User] = {}
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}  # guild channels and DM channels
        self.bot_user = self.add_user(self.bot_user_id, bot_name, bot=True)
        self.owner_user = self.add_user(owner_id, "app-owner")

        # Every list below keeps the newest ``max_records`` entries (RecordLog: reads like a list).
        #: Every REST request, in order (``path`` relative to ``/api/v10``).
        self.requests: RecordLog[RequestRecord] = RecordLog(max_records)
        #: Requests no route answered (they got 404 code 0); tests should assert this is empty.
        self.unhandled: RecordLog[RequestRecord] = RecordLog(max_records)
        #: Requests refused with 400 50035 because Discord would refuse them (see validation.py).
        self.violations: RecordLog[Violation] = RecordLog(max_records)
        #: Every interaction sent to the bot, in order.
        self.interactions: RecordLog[InteractionRecord] = RecordLog(max_records)
        #: Every application command bulk overwrite (``PUT``), in order.
        self.sync_log: RecordLog[SyncCall] = RecordLog(max_records)

        self._global_commands: list[dict[str, Any]] = []
        self._guild_commands: dict[int, list[dict[str, Any]]] = {}
        self._interactions_by_id: BoundedDict[int, InteractionRecord] = BoundedDict(max_records)
        self._interactions_by_token: BoundedDict[str, InteractionRecord] = BoundedDict(max_records)
        self._messages: BoundedDict[int, SentMessage] = BoundedDict(max_records)
        self._channel_log: dict[int, RecordLog[SentMessage]] = {}  # one per channel: bounded by the world
        self._files: BoundedDict[int, FileUpload] = BoundedDict(max_records)
        self._dm_channels: dict[int, int] = {}  # user id -> DM channel id
        self._closed_dms: set[int] = set()
        #: Seconds in which a repeated ``nonce`` sent with ``enforce_nonce`` returns the first message
        #: instead of creating another (Discord: "in the past few minutes").
        self.nonce_window: float = 300.0
        # (channel, nonce) -> first
        self._nonces: BoundedDict[tuple[int, str], tuple[SentMessage, float]] = BoundedDict(max_records)
        #: Seconds between two GUILD_MEMBERS_CHUNK events (Discord sends a big guild's members in
        #: batches of 1000 over a while); 0: all chunks of a request at once.
        self.member_chunk_delay: float = 0.0
        #: ``GET /gateway/bot``'s ``shards``: the shard count Discord recommends (discord.py's
        #: AutoShardedClient runs that many when given no shard_count).
        self.recommended_shards: int = 1
        #: More guilds than this on one session (one shard, or an unsharded bot) and IDENTIFY is
        #: closed with 4011 "Sharding required" (Discord: 2,500).
        self.max_guilds_per_shard: int = 2500
        #: ``session_start_limit.total``; ``remaining`` counts down with every IDENTIFY.
        self.session_start_total: int = 1000
        self._changed = asyncio.Event()
        #: Called as ``listener(event, message)`` whenever the bot creates ("create"), edits ("edit")
        #: or deletes ("delete") a message, ephemeral ones included: a front end shows them live.
        self._message_listeners: list[MessageListener] = []

        self.gateway = Gateway(self, heartbeat_interval=heartbeat_interval)
        self._server = Server(self)
        RestApi(self, self._server)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Serve REST and the gateway on 127.0.0.1, on a free port."""
        if self._runner is not None:
            raise RuntimeError("FakeDiscord is already started")
        runner = web.AppRunner(self._server.build_app(), access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        _log.info("fakediscord listening on 127.0.0.1:%s", self._port)

    async def stop(self) -> None:
        """Close gateway connections and the server. Close the client first."""
        if self._runner is None:
            return
        await self.gateway.close_all()
        await self._runner.cleanup()
        self._runner = None
        _log.info("fakediscord stopped")

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def problems(self) -> list[str]:
        """What Discord would have refused or not known: empty after a clean run."""
        found = [f"refused by Discord's rules: {v}" for v in self.violations]
        found += [f"unhandled route: {r.method} {redact(r.path)}" for r in self.unhandled]
        return found

    def assert_clean(self) -> None:
        """Fail listing every violating request and every unhandled route."""
        if found := self.problems():
            raise AssertionError("the bot sent requests Discord would refuse:\n  " + "\n  ".join(found))

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        """For ``discord.http.Route.BASE``."""
        return f"{self.base_url}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        """For ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (as a ``yarl.URL``)."""
        return f"ws://127.0.0.1:{self.port}/"

    # ------------------------------------------------------------------ waiting
    def _notify(self) -> None:
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    async def wait_for(
        self, predicate: Callable[[], bool], timeout: float = DEFAULT_TIMEOUT, what: str = "a condition"
    ) -> None:
        """Wait until ``predicate()`` is true.

        Re-checked after every request and gateway message, and every 10 ms (so predicates
        on the bot's own state work too).
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    if predicate():
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(changed.wait(), _POLL_INTERVAL)
        except TimeoutError:
            hint = ""
            if self.unhandled:
                hint = f"; unhandled routes: {[(r.method, r.path) for r in self.unhandled]}"
            raise TimeoutError(f"fakediscord: timed out after {timeout}s waiting for {what}{hint}") from None

    async def wait_until_ready(self, timeout: float = 10.0) -> None:
        """Wait until a client identified and was sent READY and every GUILD_CREATE (or RESUMED)."""
        await self.wait_for(self.gateway.ready.is_set, timeout, "the client to connect and identify")

    async def flush(self) -> None:
        """Wait until every gateway payload queued so far was written to the client."""
        await self.gateway.flush()

    # ------------------------------------------------------------------ building the world
    def add_user(
        self, user_id: int | None = None, name: str = "user", *, bot: bool = False, global_name: str | None = None
    ) -> User:
        """A user (not necessarily in any guild, e.g. for DMs). Returns the existing one for a known id."""
        if user_id is not None and user_id in self.users:
            return self.users[user_id]
        user = User(id=user_id or snowflake(), username=name, global_name=global_name, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        guild_id: int | None = None,
        name: str = "Test",
        owner_id: int | None = None,
        *,
        bot_permissions: int = DEFAULT_BOT_PERMISSIONS,
        bot_role_position: int = 100,
        default_channel: bool = True,
    ) -> Guild:
        """A guild with its @everyone role (id == guild id), the bot as a member with a managed
        bot role (``bot_permissions`` at ``bot_role_position``) and, by default, a ``#general``
        text channel. ``owner_id`` defaults to a new user who is not a member."""
        guild = Guild(id=guild_id or snowflake(), name=name, owner_id=owner_id or snowflake())
        guild.roles[guild.id] = Role(
            id=guild.id, guild_id=guild.id, name="@everyone", permissions=DEFAULT_EVERYONE_PERMISSIONS, position=0
        )
        bot_role = Role(
            id=snowflake(),
            guild_id=guild.id,
            name=self.bot_user.username,
            permissions=bot_permissions,
            position=bot_role_position,
            managed=True,
            bot_id=self.bot_user_id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user_id] = Member(guild.id, self.bot_user, roles=[bot_role.id])
        if owner_id is not None and owner_id in self.users:
            guild.members[owner_id] = Member(guild.id, self.users[owner_id])
        self.guilds[guild.id] = guild
        if default_channel:
            channel = Channel(id=snowflake(), type=ChannelType.GUILD_TEXT, name="general", guild_id=guild.id)
            guild.channels[channel.id] = channel
            self.channels[channel.id] = channel
        for session in self.gateway.sessions.values():
            if session.serves(guild.id):
                session.emit("GUILD_CREATE", self._guild_create_payload(guild.id, session))
        return guild

    def add_role(
        self,
        guild_id: int,
        name: str,
        permissions: int = 0,
        position: int = 1,
        *,
        role_id: int | None = None,
        color: int = 0,
        managed: bool = False,
    ) -> Role:
        guild = self.guilds[guild_id]
        role = Role(
            id=role_id or snowflake(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=position,
            color=color,
            managed=managed,
        )
        guild.roles[role.id] = role
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild_id), "role": payloads.role(role)})
        return role

    def update_role(self, guild_id: int, role_id: int, **changes: Any) -> Role:
        """Change role fields (``name``, ``permissions``, ``position`` ...) and tell the client."""
        role = self.guilds[guild_id].roles[role_id]
        for key, value in changes.items():
            if not hasattr(role, key) or key in ("id", "guild_id"):
                raise AttributeError(f"Role has no editable field {key!r}")
            setattr(role, key, value)
        self.gateway.dispatch("GUILD_ROLE_UPDATE", {"guild_id": str(guild_id), "role": payloads.role(role)})
        return role

    def delete_role(self, guild_id: int, role_id: int) -> None:
        """Delete a role, as a server admin does in Server Settings: every member loses it, the
        client gets GUILD_ROLE_DELETE (Discord sends no member updates for it), and role
        requests for it answer 404 10011 "Unknown Role"."""
        guild = self.guilds[guild_id]
        del guild.roles[role_id]
        for member in guild.members.values():
            if role_id in member.roles:
                member.roles = [r for r in member.roles if r != role_id]
        self.gateway.dispatch("GUILD_ROLE_DELETE", {"guild_id": str(guild_id), "role_id": str(role_id)})

    def bot_role(self, guild_id: int) -> Role:
        """The managed role Discord gives the bot in ``guild_id``."""
        return next(r for r in self.guilds[guild_id].roles.values() if r.bot_id == self.bot_user_id)

    def add_member(
        self,
        guild_id: int,
        user_id: int | None = None,
        name: str = "alice",
        roles: Iterable[int | Role] = (),
        joined_at: datetime | None = None,
        *,
        bot: bool = False,
        nick: str | None = None,
        global_name: str | None = None,
    ) -> Member:
        """Add a user (created if new) to a guild; a connected client gets GUILD_MEMBER_ADD."""
        guild = self.guilds[guild_id]
        user = self.add_user(user_id, name, bot=bot, global_name=global_name)
        member = Member(
            guild_id=guild_id,
            user=user,
            roles=[_id_of(r) for r in roles],
            joined_at=joined_at or datetime.now(UTC),
            nick=nick,
        )
        unknown = [r for r in member.roles if r not in guild.roles]
        if unknown:
            raise KeyError(f"roles {unknown} are not in guild {guild_id}")
        guild.members[user.id] = member
        self.gateway.dispatch("GUILD_MEMBER_ADD", {**payloads.member(member), "guild_id": str(guild_id)})
        return member

    def remove_member(self, guild_id: int, user_id: int) -> None:
        member = self.guilds[guild_id].members.pop(user_id)
        self.gateway.dispatch("GUILD_MEMBER_REMOVE", {"guild_id": str(guild_id), "user": payloads.user(member.user)})

    def member(self, guild_id: int, user_id: int) -> Member:
        return self.guilds[guild_id].members[user_id]

    def set_member_roles(self, guild_id: int, user_id: int, roles: Iterable[int | Role]) -> Member:
        """Replace a member's roles (the bot's too) and send GUILD_MEMBER_UPDATE."""
        guild = self.guilds[guild_id]
        member = guild.members[user_id]
        new_roles = list(dict.fromkeys(_id_of(r) for r in roles))
        unknown = [r for r in new_roles if r not in guild.roles]
        if unknown:
            raise KeyError(f"roles {unknown} are not in guild {guild_id}")
        member.roles = new_roles
        self._member_updated(guild_id, member)
        return member

    def set_bot_roles(self, guild_id: int, roles: Iterable[int | Role]) -> Member:
        return self.set_member_roles(guild_id, self.bot_user_id, roles)

    def _member_updated(self, guild_id: int, member: Member) -> None:
        self.gateway.dispatch("GUILD_MEMBER_UPDATE", {**payloads.member(member), "guild_id": str(guild_id)})

    def add_channel(
        self,
        guild_id: int,
        name: str = "general",
        type: int = ChannelType.GUILD_TEXT,
        *,
        channel_id: int | None = None,
        position: int | None = None,
        topic: str | None = None,
        parent_id: int | None = None,
    ) -> Channel:
        guild = self.guilds[guild_id]
        channel = Channel(
            id=channel_id or snowflake(),
            type=int(type),
            name=name,
            guild_id=guild_id,
            position=len(guild.channels) if position is None else position,
            topic=topic,
            parent_id=parent_id,
        )
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self.gateway.dispatch("CHANNEL_CREATE", payloads.channel(channel))
        return channel

    def delete_channel(self, channel_id: int) -> None:
        """Delete a guild channel, as a server admin does: its messages go with it, the client
        gets CHANNEL_DELETE, and requests for it answer 404 10003 "Unknown Channel"."""
        channel = self.channels.pop(channel_id)
        if channel.guild_id is None:
            raise ValueError(f"channel {channel_id} is a DM; only guild channels can be deleted")
        del self.guilds[channel.guild_id].channels[channel_id]
        for message in self._channel_log.pop(channel_id, []):
            message.deleted = True
        self.gateway.dispatch("CHANNEL_DELETE", payloads.channel(channel))

    def delete_message(self, message_id: int) -> None:
        """Delete a message, as a moderator does by hand: from then on requests for it answer 404
        10008 "Unknown Message". Clients with the GUILD_MESSAGES (or, in a DM, DIRECT_MESSAGES)
        intent get MESSAGE_DELETE."""
        message = self._messages[message_id]
        message.deleted = True
        data = {"id": str(message.id), "channel_id": str(message.channel_id)}
        if message.guild_id is not None:
            data["guild_id"] = str(message.guild_id)
        self.gateway.dispatch("MESSAGE_DELETE", data)

    # ------------------------------------------------------------------ member chunks
    def hold_member_chunks(self) -> None:
        """From now on GUILD_MEMBERS_CHUNK events wait (op 8 is answered later): a test can act
        while a client's member list is still loading. Release them with release_member_chunks."""
        self.gateway.hold_member_chunks()

    def release_member_chunks(self, count: int | None = None) -> None:
        """Let ``count`` more held chunks go, oldest first; None: all of them, and stop holding."""
        self.gateway.release_member_chunks(count)

    @property
    def pending_member_chunks(self) -> int:
        """GUILD_MEMBERS_CHUNK events requested (op 8) and not sent yet."""
        return self.gateway.pending_member_chunks

    def close_dms(self, user_id: int) -> None:
        """From now on, messages to this user's DM answer 403 50007."""
        self._closed_dms.add(user_id)

    def open_dms(self, user_id: int) -> None:
        self._closed_dms.discard(user_id)

    # ------------------------------------------------------------------ inspection
    def dms(self, user_id: int) -> list[SentMessage]:
        """Messages the bot sent to ``user_id``'s DM channel (not deleted), oldest first."""
        channel_id = self._dm_channels.get(user_id)
        return [] if channel_id is None else self.channel_messages(channel_id)

    def channel_messages(self, channel_id: int) -> list[SentMessage]:
        """Non-ephemeral, non-deleted messages the bot posted in a channel, oldest first."""
        return [m for m in self._channel_log.get(channel_id, []) if not m.deleted]

    def message(self, message_id: int) -> SentMessage:
        """Any message the bot created (ephemeral and deleted ones included), among the newest
        ``max_records``."""
        return self._messages[message_id]

    def attachment(self, upload_id: int) -> FileUpload:
        """A file the bot uploaded (or an ATTACHMENT option carried), among the newest ``max_records``."""
        return self._files[upload_id]

    def interaction(self, interaction_id: int) -> InteractionRecord:
        """An interaction the fake sent, among the newest ``max_records``."""
        return self._interactions_by_id[interaction_id]

    def visible_commands(self, guild_id: int | None, user_id: int) -> list[dict[str, Any]]:
        """The synced slash commands ``user_id`` may use here, as Discord's client lists them when
        they type ``/``: the guild's commands, then the global ones, leaving out those the member's
        permissions (``default_member_permissions``) or the context (guild or DM) rule out.
        ``guild_id=None``: in the user's DM with the bot."""
        guild = None if guild_id is None else self.guilds[guild_id]
        candidates = [*self._guild_commands.get(guild_id or 0, []), *self._global_commands]
        visible = []
        for command in candidates:
            if command.get("type", 1) != 1:
                continue
            try:
                self._check_command_allowed(command, guild, user_id)
            except InvalidInvocation:
                continue
            visible.append(copy.deepcopy(command))
        return visible

    def add_message_listener(self, listener: MessageListener) -> Callable[[], None]:
        """Call ``listener(event, message)`` for every message the bot creates, edits or deletes
        from now on (ephemeral ones too); returns a function that removes it. A listener runs
        inside the request that changed the message: it must not block, and what it raises is
        logged and ignored."""
        self._message_listeners.append(listener)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._message_listeners.remove(listener)

        return remove

    def _message_event(self, event: str, message: SentMessage) -> None:
        for listener in list(self._message_listeners):
            try:
                listener(event, message)
            except Exception:  # a front end's bug must not break the bot's request
                _log.exception("message listener %r failed on %s of message %s", listener, event, message.id)

    def synced_commands(self, guild_id: int | None = None) -> list[dict[str, Any]]:
        """The command list the bot last PUT, globally or for ``guild_id`` (with ids)."""
        source = self._global_commands if guild_id is None else self._guild_commands.get(guild_id, [])
        return copy.deepcopy(source)

    @property
    def sync_count(self) -> int:
        """How many bulk command overwrites (global or guild) the bot made (dropped records too)."""
        return self.sync_log.total

    def requests_to(self, method: str, path_regex: str) -> list[RequestRecord]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if r.method == method and pattern.search(r.path)]

    # ------------------------------------------------------------------ error injection
    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int = 500,
        code: int = 0,
        message: str | None = None,
        times: int = 1,
        *,
        retry_after: float = 0.05,
    ) -> FailureRule:
        """Answer the next ``times`` matching requests with an error instead of handling them.

        ``path_regex`` is searched in the path after ``/api/v10``. A 429 carries
        ``retry_after`` (and the ``Via`` header discord.py requires to retry it).
        Note discord.py itself retries 500/502/504 after 1 s, 3 s ...
        """
        if message is None:
            message = "You are being rate limited." if status == 429 else f"{status}: fake failure"
        rule = FailureRule(
            method=method.upper(),
            path=re.compile(path_regex),
            status=status,
            code=code,
            message=message,
            times=times,
            retry_after=retry_after,
        )
        self._server.failures.append(rule)
        return rule

    # ------------------------------------------------------------------ gateway
    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send any gateway DISPATCH event (e.g. ``"MESSAGE_CREATE"``) to the connected client."""
        self.gateway.dispatch(event, data)

    def send_reconnect(self) -> None:
        """Send op 7 RECONNECT: the client reconnects and RESUMEs."""
        self.gateway.send_reconnect()

    # ------------------------------------------------------------------ interactions
    async def invoke(
        self,
        guild_id: int | None,
        user_id: int,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        channel_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
        locale: str = "en-US",
        enforce_permissions: bool = True,
    ) -> InteractionRecord:
        """Run a slash command as ``user_id`` (``guild_id=None``: in the user's DM with the bot).

        ``command`` is the full path (``"credits grant"``); ``options`` maps option names
        to values (strings, numbers, or ids / objects with ``.id`` for users, roles and
        channels; ``(filename, bytes)`` for attachments). With ``wait`` (default), returns
        once the bot attempted its initial response.
        """
        data = self._command_data(guild_id, user_id, command, options or {}, None, enforce_permissions)
        record = self._new_interaction(2, guild_id, user_id, channel_id, data, locale=locale)
        if wait:
            await record.wait_for_response(timeout)
        return record

    async def autocomplete(
        self,
        guild_id: int | None,
        user_id: int,
        command: str,
        options: Mapping[str, Any] | None = None,
        *,
        focused: str,
        channel_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        locale: str = "en-US",
        enforce_permissions: bool = True,
    ) -> list[dict[str, Any]]:
        """Send an autocomplete interaction; return the choices the bot answered (type 8).

        ``options[focused]`` is the text typed so far (default ``""``). The record is
        ``fake.interactions[-1]``. ``enforce_permissions=False`` skips the
        ``default_member_permissions`` check, as for :meth:`invoke`.
        """
        data = self._command_data(guild_id, user_id, command, options or {}, focused, enforce_permissions)
        record = self._new_interaction(4, guild_id, user_id, channel_id, data, locale=locale)
        await record.wait_for_response(timeout)
        if record.response_type != 8:
            raise AssertionError(f"autocomplete got no choices: {record!r}, rejections {record.rejections}")
        return record.choices

    async def click(
        self,
        target: SentMessage | InteractionRecord,
        custom_id: str,
        user_id: int,
        *,
        values: Iterable[str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
        skip_client_checks: bool = False,
    ) -> InteractionRecord:
        """Click a button (or pick ``values`` in a select) on a message the bot sent.

        ``target`` is the message, or an interaction record whose :attr:`message` has it.
        ``skip_client_checks`` sends the click even where Discord's client would not (a disabled
        component, another user's ephemeral message), to test the bot's own checks.
        """
        message = target.message if isinstance(target, InteractionRecord) else target
        if message is None:
            raise InvalidInvocation(f"{target!r} has no message to click on")
        if message.deleted:
            raise InvalidInvocation(f"message {message.id} was deleted")
        try:
            component = message.component(custom_id)
        except LookupError as exc:
            raise InvalidInvocation(str(exc)) from None
        if component.get("disabled") and not skip_client_checks:
            raise InvalidInvocation(f"component {custom_id!r} is disabled")
        if message.ephemeral and message.interaction_id is not None and not skip_client_checks:
            opened_by = self._interactions_by_id.get(message.interaction_id)
            # An interaction dropped from the records (max_records) still names its user on the message.
            owner = opened_by.user_id if opened_by else int(message.payload["interaction_metadata"]["user"]["id"])
            if owner != user_id:
                raise InvalidInvocation(f"only user {owner} can see ephemeral message {message.id}")
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component["type"]}
        if component["type"] in _SELECT_TYPES:
            data["values"] = [str(v) for v in values or []]
        record = self._new_interaction(3, message.guild_id, user_id, message.channel_id, data, message=message)
        record.source_message = message
        if wait:
            await record.wait_for_response(timeout)
        return record

    async def submit_modal(
        self,
        opened_by: InteractionRecord,
        values: Mapping[str, str | list[str]],
        *,
        user_id: int | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        wait: bool = True,
    ) -> InteractionRecord:
        """Submit the modal the bot opened in answer to ``opened_by`` (``values`` by custom_id)."""
        modal = opened_by.modal
        if modal is None:
            raise InvalidInvocation(f"{opened_by!r} did not open a modal")
        data = {
            "custom_id": modal["custom_id"],
            "components": [_submitted(c, values) for c in modal["components"]],
        }
        record = self._new_interaction(
            5,
            opened_by.guild_id,
            user_id or opened_by.user_id,
            opened_by.channel_id,
            data,
            message=opened_by.source_message,
        )
        record.source_message = opened_by.source_message
        if wait:
            await record.wait_for_response(timeout)
        return record

    async def redeliver(
        self, record: InteractionRecord, *, timeout: float = DEFAULT_TIMEOUT, wait: bool = True
    ) -> InteractionRecord:
        """Deliver ``record``'s INTERACTION_CREATE once more: the same payload, id and token.

        Discord can deliver one interaction more than once (a gateway session's events replayed
        after a reconnect), and the member still made one attempt. The bot's answers go to the same
        record, so a second initial response gets 40060, as on Discord. With ``wait`` (default),
        returns once the bot attempted an initial response to this delivery.
        """
        self._check_served(record.guild_id)
        attempts = record.attempts
        self.gateway.dispatch("INTERACTION_CREATE", copy.deepcopy(record.payload))
        if wait:
            await record.wait_until(lambda r: r.attempts > attempts, timeout)
        return record

    # ------------------------------------------------------------------ internals
    def _check_served(self, guild_id: int | None) -> None:
        """Refuse to send an interaction no connected client would get (Discord would time it out)."""
        if not self.gateway.live_sessions:
            raise RuntimeError("fakediscord: no client is connected to the gateway")
        if not self.gateway.serving(guild_id):
            where = "DMs (shard 0)" if guild_id is None else f"guild {guild_id}"
            raise RuntimeError(f"fakediscord: no connected session serves {where}: start its shard first")

    def _dm_channel(self, user_id: int) -> Channel:
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            channel = Channel(id=snowflake(), type=ChannelType.DM, recipient_id=user_id)
            self.channels[channel.id] = channel
            self._dm_channels[user_id] = channel.id
            return channel
        return self.channels[channel_id]

    def _record_message(self, channel_id: int, message: SentMessage) -> None:
        """Keep a non-ephemeral message in its channel's log (bounded by ``max_records``)."""
        log = self._channel_log.get(channel_id)
        if log is None:
            log = self._channel_log[channel_id] = RecordLog(self.max_records)
        log.append(message)

    def _file_url(self, upload: FileUpload) -> str:
        return f"{self.base_url}/attachments/{upload.id}/{upload.filename}"

    def _guild_create_payload(self, guild_id: int, session: Session) -> dict[str, Any]:
        """GUILD_CREATE as Discord sends it. Without the GUILD_PRESENCES intent its ``members`` hold
        only the bot and members in voice channels (the fake has no voice); with it, a guild of more
        than IDENTIFY's ``large_threshold`` members leaves out offline members (in the fake, with no
        presences, everyone but the bot). The client gets the rest by op 8 (GUILD_MEMBERS_CHUNK)."""
        guild = self.guilds[guild_id]
        large = len(guild.members) > session.large_threshold
        everyone = bool(session.intents & Intent.GUILD_PRESENCES) and not large
        members = list(guild.members.values()) if everyone else [guild.members[self.bot_user_id]]
        return payloads.guild_create(guild, members=members, large=large)

    def _query_members(
        self, guild_id: int, *, query: str, limit: int, user_ids: list[int], intents: int
    ) -> tuple[list[Member], list[int]]:
        guild = self.guilds.get(guild_id)
        if guild is None:
            return [], user_ids
        if user_ids:
            found = [guild.members[u] for u in user_ids if u in guild.members]
            return found, [u for u in user_ids if u not in guild.members]
        if not query and not intents & Intent.GUILD_MEMBERS:
            return [], []
        lowered = query.lower()
        matches = [
            m
            for m in guild.members.values()
            if m.user.username.lower().startswith(lowered) or (m.nick or "").lower().startswith(lowered)
        ]
        return (matches[:limit] if limit else matches), []

    def _command_data(
        self,
        guild_id: int | None,
        user_id: int,
        path: str,
        options: Mapping[str, Any],
        focused: str | None,
        enforce_permissions: bool,
    ) -> dict[str, Any]:
        parts = path.split()
        if not parts:
            raise InvalidInvocation("empty command path")
        candidates = [*self._guild_commands.get(guild_id or 0, []), *self._global_commands]
        command = commands.find_command(candidates, parts[0])
        guild = None if guild_id is None else self.guilds[guild_id]
        if enforce_permissions:
            self._check_command_allowed(command, guild, user_id)
        return commands.build_data(command, parts[1:], options, resolve=self._resolver(guild), focused=focused)

    def _check_command_allowed(self, command: dict[str, Any], guild: Guild | None, user_id: int) -> None:
        name = command["name"]
        contexts = command.get("contexts")
        if guild is None:
            if (
                command.get("guild_id")
                or command.get("dm_permission") is False
                or (contexts is not None and 1 not in contexts)
            ):
                raise InvalidInvocation(f"/{name} is not available in DMs")
            return
        if contexts is not None and 0 not in contexts:
            raise InvalidInvocation(f"/{name} is not available in guilds")
        member = guild.members.get(user_id)
        required = command.get("default_member_permissions")
        if member is None or required is None:
            return
        needed = int(required)
        have = guild.permissions_for(member)
        if have != Perm.ALL and (needed == 0 or have & needed != needed):
            raise InvalidInvocation(
                f"user {user_id} lacks default_member_permissions {needed} for /{name} (has {have})"
            )

    def _resolver(self, guild: Guild | None) -> commands.Resolver:
        def resolve(kind: int, raw: Any) -> tuple[str, dict[str, dict[str, Any]]]:
            if kind == commands.ATTACHMENT:
                return self._resolve_attachment(raw)
            ident = _id_of(raw)
            key = str(ident)
            if kind in (commands.USER, commands.MENTIONABLE) and ident in self.users:
                out: dict[str, dict[str, Any]] = {"users": {key: payloads.user(self.users[ident])}}
                if guild is not None and ident in guild.members:
                    member = guild.members[ident]
                    out["members"] = {
                        key: payloads.member(member, with_user=False, permissions=guild.permissions_for(member))
                    }
                return key, out
            if kind in (commands.ROLE, commands.MENTIONABLE) and guild is not None and ident in guild.roles:
                return key, {"roles": {key: payloads.role(guild.roles[ident])}}
            if kind == commands.CHANNEL and guild is not None and ident in guild.channels:
                channel = payloads.channel(guild.channels[ident], permissions=Perm.ALL)
                return key, {"channels": {key: channel}}
            raise ValueError(f"unknown id {ident}")

        return resolve

    def _resolve_attachment(self, raw: Any) -> tuple[str, dict[str, dict[str, Any]]]:
        if isinstance(raw, FileUpload):
            upload = raw
        else:
            filename, data, *rest = raw
            upload = FileUpload(snowflake(), filename, bytes(data), rest[0] if rest else None)
        if len(upload.data) > ATTACHMENT_SIZE_LIMIT:  # Discord's client refuses to upload it
            raise InvalidInvocation(f"attachment {upload.filename!r} is over {ATTACHMENT_SIZE_LIMIT} bytes")
        self._files[upload.id] = upload
        key = str(upload.id)
        return key, {"attachments": {key: payloads.attachment(upload, self._file_url(upload))}}

    def _new_interaction(
        self,
        kind: int,
        guild_id: int | None,
        user_id: int,
        channel_id: int | None,
        data: dict[str, Any],
        *,
        message: SentMessage | None = None,
        locale: str = "en-US",
    ) -> InteractionRecord:
        self._check_served(guild_id)
        user = self.users.get(user_id)
        if user is None:
            raise InvalidInvocation(f"unknown user {user_id}; add_user/add_member first")
        payload: dict[str, Any] = {
            "id": str(snowflake()),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": secrets.token_urlsafe(48),
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        }
        if guild_id is not None:
            guild = self.guilds[guild_id]
            member = guild.members.get(user_id)
            if member is None:
                raise InvalidInvocation(f"user {user_id} is not a member of guild {guild_id}")
            if channel_id is None:
                text = guild.text_channels()
                if not text:
                    raise InvalidInvocation(f"guild {guild_id} has no text channel; add_channel first")
                channel_id = text[0].id
            channel = guild.channels.get(channel_id)
            if channel is None:
                raise InvalidInvocation(f"channel {channel_id} is not in guild {guild_id}")
            permissions = guild.permissions_for(member)
            bot_permissions = guild.permissions_for(guild.members[self.bot_user_id])
            payload.update(
                {
                    "guild_id": str(guild_id),
                    "guild": {"id": str(guild_id), "features": [], "locale": "en-US"},
                    "guild_locale": "en-US",
                    "channel_id": str(channel.id),
                    "channel": payloads.channel(channel, permissions=permissions),
                    "member": payloads.member(member, permissions=permissions),
                    "app_permissions": str(bot_permissions),
                    "authorizing_integration_owners": {"0": str(guild_id)},
                    "context": 0,
                }
            )
        else:
            dm = self._dm_channel(user_id)
            payload.update(
                {
                    "channel_id": str(dm.id),
                    "channel": payloads.dm_channel(dm, user),
                    "user": payloads.user(user),
                    "app_permissions": str(DEFAULT_BOT_PERMISSIONS),
                    "authorizing_integration_owners": {"0": "0"},
                    "context": 1,
                }
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message.payload)
        record = InteractionRecord(
            payload, asyncio.get_running_loop().time(), self.wait_for, max_records=self.max_records
        )
        self.interactions.append(record)
        self._interactions_by_id[record.id] = record
        self._interactions_by_token[record.token] = record
        self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record


def _submitted(component: dict[str, Any], values: Mapping[str, str | list[str]]) -> dict[str, Any]:
    """A modal component as Discord submits it back, filled from ``values``."""
    kind = component["type"]
    if kind == 1:
        return {"type": 1, "components": [_submitted(c, values) for c in component.get("components", [])]}
    if kind == 18:
        return {"type": 18, "component": _submitted(component["component"], values)}
    custom_id = component.get("custom_id")
    if custom_id is None:
        return {"type": kind}
    if kind == 4:
        value = values.get(custom_id, component.get("value") or "")
        if not isinstance(value, str):
            raise InvalidInvocation(f"text input {custom_id!r} takes a string")
        if component.get("required", True) and not value:
            raise InvalidInvocation(f"text input {custom_id!r} is required")
        # Discord's client counts the typed text against the input's bounds before it submits.
        low, high = component.get("min_length"), component.get("max_length")
        if value and ((low is not None and len(value) < low) or (high is not None and len(value) > high)):
            raise InvalidInvocation(f"text input {custom_id!r}: length {len(value)} is outside [{low}, {high}]")
        return {"type": 4, "custom_id": custom_id, "value": value}
    picked = values.get(custom_id, [])
    return {"type": kind, "custom_id": custom_id, "values": [picked] if isinstance(picked, str) else list(picked)}
