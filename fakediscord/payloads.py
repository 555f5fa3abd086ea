"""JSON payload builders: models to the dicts Discord sends (snowflakes as strings)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from .models import Channel, ChannelType, Guild, Member, Role, User, iso
from .records import FileUpload


def user(u: User) -> dict[str, Any]:
    return {
        "id": str(u.id),
        "username": u.username,
        "discriminator": "0",
        "global_name": u.global_name,
        "avatar": u.avatar,
        "bot": u.bot,
        "system": False,
        "public_flags": 0,
        "flags": 0,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
    }


def role(r: Role) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": str(r.id),
        "name": r.name,
        "color": r.color,
        "colors": {"primary_color": r.color, "secondary_color": None, "tertiary_color": None},
        "hoist": r.hoist,
        "icon": None,
        "unicode_emoji": None,
        "position": r.position,
        "permissions": str(r.permissions),
        "managed": r.managed,
        "mentionable": r.mentionable,
        "flags": 0,
    }
    if r.bot_id is not None:
        data["tags"] = {"bot_id": str(r.bot_id)}
    return data


def member(m: Member, *, with_user: bool = True, permissions: int | None = None) -> dict[str, Any]:
    """A guild member; ``permissions`` is only present inside interactions."""
    data: dict[str, Any] = {
        "roles": [str(r) for r in m.roles if r != m.guild_id],
        "joined_at": iso(m.joined_at),
        "nick": m.nick,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "communication_disabled_until": None,
    }
    if with_user:
        data["user"] = user(m.user)
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def channel(c: Channel, *, permissions: int | None = None, recipients: list[User] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {"id": str(c.id), "type": c.type, "flags": 0, "last_message_id": None}
    if c.type == ChannelType.DM:
        data["recipients"] = [user(u) for u in recipients or []]
    else:
        data.update(
            {
                "guild_id": str(c.guild_id),
                "name": c.name,
                "position": c.position,
                "permission_overwrites": [],
                "parent_id": None if c.parent_id is None else str(c.parent_id),
                "nsfw": False,
                "rate_limit_per_user": 0,
                "topic": c.topic,
            }
        )
    if permissions is not None:
        data["permissions"] = str(permissions)
    return data


def guild_create(g: Guild, *, members: list[Member], large: bool) -> dict[str, Any]:
    """GUILD_CREATE: the full guild with roles, channels and the given members (``member_count``
    counts them all)."""
    return {
        "id": str(g.id),
        "name": g.name,
        "icon": None,
        "splash": None,
        "discovery_splash": None,
        "owner_id": str(g.owner_id),
        "afk_channel_id": None,
        "afk_timeout": 300,
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "roles": [role(r) for r in g.roles.values()],
        "emojis": [],
        "stickers": [],
        "features": [],
        "mfa_level": 0,
        "system_channel_id": None,
        "system_channel_flags": 0,
        "rules_channel_id": None,
        "vanity_url_code": None,
        "description": None,
        "banner": None,
        "premium_tier": 0,
        "premium_subscription_count": 0,
        "preferred_locale": "en-US",
        "public_updates_channel_id": None,
        "nsfw_level": 0,
        "premium_progress_bar_enabled": False,
        "joined_at": iso(datetime.now(UTC)),
        "large": large,
        "unavailable": False,
        "member_count": len(g.members),
        "voice_states": [],
        "members": [member(m) for m in members],
        "channels": [channel(c) for c in g.channels.values()],
        "threads": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
    }


def attachment(f: FileUpload, url: str) -> dict[str, Any]:
    return {
        "id": str(f.id),
        "filename": f.filename,
        "size": len(f.data),
        "url": url,
        "proxy_url": url,
        "content_type": f.content_type,
        "description": f.description,
    }


def dm_channel(c: Channel, recipient: User) -> dict[str, Any]:
    return channel(c, recipients=[recipient])
