"""REST route handlers: what each Discord endpoint the bot uses does to the fake's state."""

from __future__ import annotations

import asyncio
import copy
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from . import errors, payloads
from .errors import DiscordError
from .models import Channel, ChannelType, Guild, Member, Perm, Role, iso, snowflake
from .records import EPHEMERAL, LOADING, FileUpload, InteractionRecord, RecordLog, SentMessage, SyncCall
from .server import ApiRequest, Server, Upload

if TYPE_CHECKING:
    from .fake import FakeDiscord

SUPPRESS_EMBEDS = 1 << 2
SUPPRESS_NOTIFICATIONS = 1 << 12
IS_COMPONENTS_V2 = 1 << 15
_CHANNEL_FLAGS = SUPPRESS_EMBEDS | SUPPRESS_NOTIFICATIONS | IS_COMPONENTS_V2

# Message types
DEFAULT, REPLY, CHAT_INPUT_COMMAND = 0, 19, 20

# Interaction types and which initial callback types each accepts
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE, MODAL_SUBMIT = 2, 3, 4, 5
_ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {4, 5, 9},
    MESSAGE_COMPONENT: {4, 5, 6, 7, 9},
    AUTOCOMPLETE: {8},
    MODAL_SUBMIT: {4, 5, 6, 7},
}


class RestApi:
    """Registers every supported route on ``server``."""

    def __init__(self, fake: FakeDiscord, server: Server) -> None:
        self.fake = fake
        app, tok = r"(\d+)", r"([^/]+)"
        add = server.add
        add("GET", "/users/@me", self.get_me)
        add("GET", r"/users/(\d+)", self.get_user)
        add("POST", "/users/@me/channels", self.create_dm)
        add("GET", "/gateway", self.get_gateway, auth=False)
        add("GET", "/gateway/bot", self.get_gateway_bot)
        add("GET", "/oauth2/applications/@me", self.get_application)
        add("GET", "/applications/@me", self.get_application)
        add("GET", rf"/applications/{app}/commands", self.get_commands)
        add("PUT", rf"/applications/{app}/commands", self.put_commands)
        add("GET", rf"/applications/{app}/guilds/(\d+)/commands", self.get_commands)
        add("PUT", rf"/applications/{app}/guilds/(\d+)/commands", self.put_commands)
        add("POST", rf"/interactions/(\d+)/{tok}/callback", self.interaction_callback, auth=False)
        add("POST", rf"/webhooks/{app}/{tok}", self.create_followup, auth=False)
        for method in ("GET", "PATCH", "DELETE"):
            add(method, rf"/webhooks/{app}/{tok}/messages/(@original|\d+)", self.webhook_message, auth=False)
        add("GET", r"/channels/(\d+)", self.get_channel)
        add("POST", r"/channels/(\d+)/messages", self.create_message)
        add("POST", r"/channels/(\d+)/typing", self.typing)
        for method in ("GET", "PATCH", "DELETE"):
            add(method, r"/channels/(\d+)/messages/(\d+)", self.channel_message)
        add("GET", r"/guilds/(\d+)", self.get_guild)
        add("GET", r"/guilds/(\d+)/channels", self.get_guild_channels)
        add("GET", r"/guilds/(\d+)/roles", self.get_roles)
        add("GET", r"/guilds/(\d+)/members", self.list_members)
        add("GET", r"/guilds/(\d+)/members/(\d+)", self.get_member)
        add("PATCH", r"/guilds/(\d+)/members/(\d+)", self.edit_member)
        add("PUT", r"/guilds/(\d+)/members/(\d+)/roles/(\d+)", self.add_member_role)
        add("DELETE", r"/guilds/(\d+)/members/(\d+)/roles/(\d+)", self.remove_member_role)

    # ------------------------------------------------------------------ users, login
    async def get_me(self, req: ApiRequest) -> Any:
        return {**payloads.user(self.fake.bot_user), "verified": True, "mfa_enabled": False}

    async def get_user(self, req: ApiRequest) -> Any:
        user = self.fake.users.get(req.int_arg(1))
        if user is None:
            raise errors.unknown_user()
        return payloads.user(user)

    async def create_dm(self, req: ApiRequest) -> Any:
        user_id = int(req.body().get("recipient_id", 0))
        if user_id not in self.fake.users:
            raise errors.unknown_user()
        channel = self.fake._dm_channel(user_id)
        return payloads.dm_channel(channel, self.fake.users[user_id])

    async def get_gateway(self, req: ApiRequest) -> Any:
        return {"url": self.fake.gateway_url}

    async def get_gateway_bot(self, req: ApiRequest) -> Any:
        fake = self.fake
        total = fake.session_start_total
        return {
            "url": fake.gateway_url,
            "shards": fake.recommended_shards,
            "session_start_limit": {
                "total": total,
                "remaining": max(0, total - fake.gateway.identify_count),
                "reset_after": 86_400_000,  # ms until remaining is back at total (Discord: a day)
                "max_concurrency": 1,
            },
        }

    async def get_application(self, req: ApiRequest) -> Any:
        fake = self.fake
        return {
            "id": str(fake.application_id),
            "name": fake.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": fake.application_flags,
            "owner": payloads.user(fake.owner_user),
            "team": None,
            "bot": payloads.user(fake.bot_user),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": len(fake.guilds),
        }

    # ------------------------------------------------------------------ application commands
    def _check_app(self, req: ApiRequest) -> int | None:
        if req.int_arg(1) != self.fake.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        if req.match.re.groups < 2:
            return None
        guild_id = req.int_arg(2)
        if guild_id not in self.fake.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id

    async def get_commands(self, req: ApiRequest) -> Any:
        return self.fake.synced_commands(self._check_app(req))

    async def put_commands(self, req: ApiRequest) -> Any:
        guild_id = self._check_app(req)
        body = req.json
        if not isinstance(body, list):  # the schema allows null: an empty list
            body = []
        previous = {(c["name"], c["type"]): c for c in self.fake.synced_commands(guild_id)}
        stored = []
        for command in body:
            kind = command.get("type", 1)
            old = previous.get((command["name"], kind))
            permissions = command.get("default_member_permissions")
            item = {
                **copy.deepcopy(command),
                "id": old["id"] if old else str(snowflake()),
                "application_id": str(self.fake.application_id),
                "version": str(snowflake()),
                "type": kind,
                "description": command.get("description", ""),
                "default_member_permissions": None if permissions is None else str(permissions),
                "nsfw": bool(command.get("nsfw", False)),
            }
            if guild_id is not None:
                item["guild_id"] = str(guild_id)
            stored.append(item)
        if guild_id is None:
            self.fake._global_commands = stored
        else:
            self.fake._guild_commands[guild_id] = stored
        self.fake.sync_log.append(SyncCall(guild_id, copy.deepcopy(stored)))
        return copy.deepcopy(stored)

    # ------------------------------------------------------------------ interactions
    def _interaction_by_token(self, req: ApiRequest) -> InteractionRecord:
        if req.int_arg(1) != self.fake.application_id:
            raise errors.unknown_webhook()
        record = self.fake._interactions_by_token.get(req.arg(2))
        if record is None:
            raise errors.unknown_webhook()
        req.interaction = record
        if asyncio.get_running_loop().time() - record.created_at > self.fake.interaction_token_lifetime:
            raise errors.invalid_webhook_token()
        return record

    async def interaction_callback(self, req: ApiRequest) -> Any:
        fake = self.fake
        record = fake._interactions_by_id.get(req.int_arg(1))
        if record is None or record.token != req.arg(2):
            raise errors.unknown_interaction()
        req.interaction = record
        record.attempts += 1
        if record.acknowledged:
            raise errors.already_acknowledged()
        if asyncio.get_running_loop().time() - record.created_at > fake.interaction_timeout:
            raise errors.unknown_interaction()

        body = req.body()
        kind = body.get("type")
        data = body.get("data") or {}
        if kind not in _ALLOWED_CALLBACKS.get(record.type, set()):
            raise errors.invalid_form(
                "type", "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is not valid."
            )
        if kind == 4:
            message_type = CHAT_INPUT_COMMAND if record.type == APPLICATION_COMMAND else REPLY
            record.original = self._new_message(
                fake.channels[record.channel_id],
                data,
                req.uploads,
                interaction=record,
                message_type=message_type,
                allow_ephemeral=True,
            )
        elif kind == 5:
            flags = LOADING | (int(data.get("flags") or 0) & EPHEMERAL)
            message_type = CHAT_INPUT_COMMAND if record.type == APPLICATION_COMMAND else REPLY
            record.original = self._new_message(
                fake.channels[record.channel_id],
                {"content": "", "flags": flags},
                [],
                interaction=record,
                message_type=message_type,
                allow_ephemeral=True,
                allow_empty=True,
            )
        elif kind == 7:
            if record.source_message is None:
                raise errors.unknown_message()
            self._edit_message(record.source_message, data, req.uploads)
        elif kind == 9:
            for key in ("custom_id", "title", "components"):
                if not data.get(key):
                    raise errors.invalid_form(f"data.{key}", "BASE_TYPE_REQUIRED", "This field is required")
        record.callback = copy.deepcopy(body)
        if not req.flag("with_response"):
            return None
        message = record.message if kind in (4, 5, 7) else None
        response: dict[str, Any] = {
            "interaction": {
                "id": str(record.id),
                "type": record.type,
                "activity_instance_id": None,
                "response_message_id": None if message is None else str(message.id),
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        if message is not None:
            response["resource"] = {"type": kind, "message": copy.deepcopy(message.payload)}
        return response

    async def create_followup(self, req: ApiRequest) -> Any:
        record = self._interaction_by_token(req)
        if not record.acknowledged:
            raise errors.unknown_webhook()
        original = record.original
        if record.response_type == 5 and original is not None and original.loading and not original.deleted:
            # The first followup after a deferred reply fills the "thinking..." message.
            self._edit_message(original, req.body(), req.uploads)
            message = original
        else:
            message = self._new_message(
                self.fake.channels[record.channel_id],
                req.body(),
                req.uploads,
                interaction=record,
                message_type=DEFAULT,
                allow_ephemeral=True,
            )
        record.followups.append(message)
        return copy.deepcopy(message.payload) if req.flag("wait") else None

    async def webhook_message(self, req: ApiRequest) -> Any:
        record = self._interaction_by_token(req)
        if not record.acknowledged:
            raise errors.unknown_webhook()
        target = req.arg(3)
        message: SentMessage | None
        if target == "@original":
            message = record.message
        else:
            candidates = [record.original, record.source_message, *record.followups]
            message = next((m for m in candidates if m is not None and m.id == int(target)), None)
        if message is None or message.deleted:
            raise errors.unknown_message()
        if req.method == "DELETE":
            message.deleted = True
            self.fake._message_event("delete", message)
            return None
        if req.method == "PATCH":
            self._edit_message(message, req.body(), req.uploads)
        return copy.deepcopy(message.payload)

    # ------------------------------------------------------------------ channels and messages
    def _channel(self, channel_id: int) -> Channel:
        channel = self.fake.channels.get(channel_id)
        if channel is None:
            raise errors.unknown_channel()
        return channel

    def _bot_permissions(self, guild_id: int | None) -> int:
        if guild_id is None:
            return Perm.ALL
        guild = self.fake.guilds[guild_id]
        return guild.permissions_for(guild.members[self.fake.bot_user_id])

    async def get_channel(self, req: ApiRequest) -> Any:
        channel = self._channel(req.int_arg(1))
        if channel.type == ChannelType.DM:
            assert channel.recipient_id is not None
            return payloads.dm_channel(channel, self.fake.users[channel.recipient_id])
        return payloads.channel(channel)

    async def typing(self, req: ApiRequest) -> Any:
        self._channel(req.int_arg(1))
        return None

    async def create_message(self, req: ApiRequest) -> Any:
        channel = self._channel(req.int_arg(1))
        if channel.type == ChannelType.DM:
            assert channel.recipient_id is not None
            recipient = self.fake.users[channel.recipient_id]
            if recipient.id in self.fake._closed_dms or recipient.bot:
                raise errors.cannot_dm()
        else:
            needed = Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES | (Perm.ATTACH_FILES if req.uploads else 0)
            if self._bot_permissions(channel.guild_id) & needed != needed:
                raise errors.missing_permissions()
        body = req.body()
        nonce = body.get("nonce")
        # Discord: with `enforce_nonce`, a nonce already used by the same author in this channel in
        # the past few minutes returns that message instead of creating a second one. (Every
        # message on this route is the bot's, so the author is implied.)
        key = (channel.id, str(nonce))
        if nonce is not None and body.get("enforce_nonce"):
            earlier = self.fake._nonces.get(key)
            if earlier is not None and time.monotonic() - earlier[1] <= self.fake.nonce_window:
                return copy.deepcopy(earlier[0].payload)
        message = self._new_message(channel, body, req.uploads, message_type=DEFAULT)
        if nonce is not None:
            message.payload["nonce"] = nonce
            self.fake._nonces[key] = (message, time.monotonic())
        return copy.deepcopy(message.payload)

    async def channel_message(self, req: ApiRequest) -> Any:
        channel = self._channel(req.int_arg(1))
        message = self.fake._messages.get(req.int_arg(2))
        if message is None or message.deleted or message.channel_id != channel.id or message.ephemeral:
            raise errors.unknown_message()
        if req.method == "DELETE":
            message.deleted = True
            self.fake._message_event("delete", message)
            return None
        if req.method == "PATCH":
            if int(message.payload["author"]["id"]) != self.fake.bot_user_id:
                raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
            self._edit_message(message, req.body(), req.uploads)
        return copy.deepcopy(message.payload)

    def _store_upload(self, upload: Upload, description: str | None = None) -> FileUpload:
        stored = FileUpload(
            id=snowflake(),
            filename=upload.filename,
            data=upload.data,
            content_type=upload.content_type,
            description=description,
        )
        self.fake._files[stored.id] = stored
        return stored

    def _uploads_to_files(self, body: dict[str, Any], uploads: list[Upload]) -> list[FileUpload]:
        descriptions = {
            str(a.get("id")): a.get("description") for a in body.get("attachments") or [] if isinstance(a, dict)
        }
        return [self._store_upload(u, descriptions.get(str(u.index))) for u in uploads]

    def _attachment_payloads(self, files: list[FileUpload]) -> list[dict[str, Any]]:
        return [payloads.attachment(f, self.fake._file_url(f)) for f in files]

    def _new_message(
        self,
        channel: Channel,
        body: dict[str, Any],
        uploads: list[Upload],
        *,
        message_type: int,
        interaction: InteractionRecord | None = None,
        allow_ephemeral: bool = False,
        allow_empty: bool = False,
    ) -> SentMessage:
        fake = self.fake
        _validate_content(body, has_files=bool(uploads), allow_empty=allow_empty)
        files = self._uploads_to_files(body, uploads)
        allowed = _CHANNEL_FLAGS | (EPHEMERAL | LOADING if allow_ephemeral else 0)
        flags = int(body.get("flags") or 0) & allowed
        message_id = snowflake()
        payload: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "author": payloads.user(fake.bot_user),
            "content": body.get("content") or "",
            "timestamp": iso(datetime.now(UTC)),
            "edited_timestamp": None,
            "tts": bool(body.get("tts", False)),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": self._attachment_payloads(files),
            "embeds": _embeds(body.get("embeds")),
            "components": copy.deepcopy(body.get("components") or []),
            "pinned": False,
            "type": message_type,
            "flags": flags,
        }
        if channel.guild_id is not None:
            payload["guild_id"] = str(channel.guild_id)
        if body.get("message_reference"):
            payload["message_reference"] = copy.deepcopy(body["message_reference"])
        if interaction is not None:
            payload["webhook_id"] = str(fake.application_id)
            payload["application_id"] = str(fake.application_id)
            payload["interaction_metadata"] = _interaction_metadata(interaction, fake)
        message = SentMessage(
            payload=payload,
            files=files,
            history=RecordLog(fake.max_records),
            edits=RecordLog(fake.max_records),
            interaction_id=None if interaction is None else interaction.id,
        )
        fake._messages[message_id] = message
        if not message.ephemeral:
            fake._record_message(channel.id, message)
        fake._message_event("create", message)
        return message

    def _edit_message(self, message: SentMessage, body: dict[str, Any], uploads: list[Upload]) -> None:
        new = copy.deepcopy(message.payload)
        was_loading = message.loading
        if "content" in body:
            new["content"] = body["content"] or ""
        if "embeds" in body:
            new["embeds"] = _embeds(body["embeds"])
        if "components" in body:
            new["components"] = copy.deepcopy(body["components"] or [])
        if "flags" in body and body["flags"] is not None:
            new["flags"] = (new["flags"] & EPHEMERAL) | (int(body["flags"]) & _CHANNEL_FLAGS)
        new["flags"] &= ~LOADING
        files = list(message.files)
        if "attachments" in body and body["attachments"] is not None:
            keep = {str(a.get("id")) for a in body["attachments"] if isinstance(a, dict)}
            files = [f for f in files if str(f.id) in keep]
        files += self._uploads_to_files(body, uploads)
        new["attachments"] = self._attachment_payloads(files)
        _validate_content(new, has_files=bool(files), allow_empty=False)
        if not was_loading:
            new["edited_timestamp"] = iso(datetime.now(UTC))
        message.history.append(message.payload)
        message.edits.append(copy.deepcopy(body))
        message.payload = new
        message.files = files
        self.fake._message_event("edit", message)

    # ------------------------------------------------------------------ guilds, roles, members
    def _guild(self, guild_id: int) -> Guild:
        guild = self.fake.guilds.get(guild_id)
        if guild is None:
            raise errors.unknown_guild()
        return guild

    def _member(self, guild: Guild, user_id: int) -> Member:
        member = guild.members.get(user_id)
        if member is None:
            raise errors.unknown_member()
        return member

    async def get_guild(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        data = payloads.guild_create(guild, members=[], large=False)
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at", "large"):
            data.pop(key, None)
        data["approximate_member_count"] = len(guild.members)
        return data

    async def get_guild_channels(self, req: ApiRequest) -> Any:
        return [payloads.channel(c) for c in self._guild(req.int_arg(1)).channels.values()]

    async def get_roles(self, req: ApiRequest) -> Any:
        return [payloads.role(r) for r in self._guild(req.int_arg(1)).roles.values()]

    async def list_members(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        limit = max(1, min(1000, int(req.query.get("limit", "1"))))
        after = int(req.query.get("after", "0"))
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return [payloads.member(m) for m in members[:limit]]

    async def get_member(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        return payloads.member(self._member(guild, req.int_arg(2)))

    def _check_can_manage(self, guild: Guild, role: Role) -> None:
        bot = guild.members[self.fake.bot_user_id]
        if guild.owner_id == bot.id:
            return
        if not guild.permissions_for(bot) & Perm.MANAGE_ROLES:
            raise errors.missing_permissions()
        if role.managed or role.id == guild.id or guild.top_role(bot).sort_key() <= role.sort_key():
            raise errors.missing_permissions()

    def _role(self, guild: Guild, role_id: int) -> Role:
        role = guild.roles.get(role_id)
        if role is None:
            raise errors.unknown_role()
        return role

    async def add_member_role(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        member = self._member(guild, req.int_arg(2))
        role = self._role(guild, req.int_arg(3))
        self._check_can_manage(guild, role)
        if role.id not in member.roles:
            self.fake.set_member_roles(guild.id, member.id, [*member.roles, role.id])
        return None

    async def remove_member_role(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        member = self._member(guild, req.int_arg(2))
        role = self._role(guild, req.int_arg(3))
        self._check_can_manage(guild, role)
        if role.id in member.roles:
            self.fake.set_member_roles(guild.id, member.id, [r for r in member.roles if r != role.id])
        return None

    async def edit_member(self, req: ApiRequest) -> Any:
        guild = self._guild(req.int_arg(1))
        member = self._member(guild, req.int_arg(2))
        body = req.body()
        if "nick" in body:
            bot = guild.members[self.fake.bot_user_id]
            if not guild.permissions_for(bot) & Perm.MANAGE_NICKNAMES and member.id != bot.id:
                raise errors.missing_permissions()
            member.nick = body["nick"] or None
        if "roles" in body and body["roles"] is not None:
            wanted = [int(r) for r in body["roles"]]
            for role_id in set(wanted) ^ set(member.roles):
                self._check_can_manage(guild, self._role(guild, role_id))
            self.fake.set_member_roles(guild.id, member.id, wanted)
        elif "nick" in body:
            self.fake._member_updated(guild.id, member)
        return payloads.member(member)


def _embeds(raw: Any) -> list[dict[str, Any]]:
    return [{"type": "rich", **copy.deepcopy(e)} for e in raw or [] if isinstance(e, dict)]


def _validate_content(body: dict[str, Any], *, has_files: bool, allow_empty: bool) -> None:
    """What the schema cannot say: a message needs something to show. (Every field's limits were
    checked against Discord's OpenAPI description before any handler ran: validation.py.)"""
    empty = not (body.get("content") or body.get("embeds") or body.get("components") or has_files or body.get("poll"))
    if empty and not allow_empty:
        raise errors.empty_message()


def _interaction_metadata(record: InteractionRecord, fake: FakeDiscord) -> dict[str, Any]:
    user_id = record.user_id
    owners = {"0": str(record.guild_id)} if record.guild_id else {"1": str(user_id)}
    data: dict[str, Any] = {
        "id": str(record.id),
        "type": record.type,
        "user": payloads.user(fake.users[user_id]),
        "authorizing_integration_owners": owners,
    }
    if record.original is not None:
        data["original_response_message_id"] = str(record.original.id)
    if record.source_message is not None:
        data["interacted_message_id"] = str(record.source_message.id)
    return data
