"""Roles as the bot meets them: whether it can give (or take back) one, and who in one can hold
credit. One rule each, for every place that asks: /shopadmin when an item is given a role, /buy
before it charges, and the delivery sender before it calls Discord (bot/discordbot/notify.py)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import discord

from bot.domain import delivery as deliveries


def grant_refusal(role: discord.Role | None, me: discord.Member | None) -> str | None:
    """Why the bot cannot give or take back ``role`` now, as a reason of bot/domain/delivery.py,
    or None when, as far as this process can tell, it can. ``me`` is the bot's own member in the
    role's guild; None (not in the cache) leaves its permissions for Discord's answer to tell."""
    if role is None:
        return deliveries.ROLE_DELETED
    if role.is_default() or role.managed:  # @everyone, or a role an integration manages
        return deliveries.ROLE_MANAGED
    if me is None:
        return None
    if not me.guild_permissions.manage_roles:
        return deliveries.NO_MANAGE_ROLES
    if role >= me.top_role:
        return deliveries.ROLE_ABOVE_BOT
    return None


def credit_holders(role: discord.Role) -> list[int]:
    """The ids of the role's members who can hold credit: everyone but bots. Complete only once
    the guild's member list is (PromoBalanceBot.member_list_complete)."""
    return [member.id for member in role.members if not member.bot]


def rest_credit_holders(members: Iterable[Mapping[str, Any]], guild_id: int, role_id: int) -> list[int]:
    """:func:`credit_holders` for members as Discord's REST API lists them (GET
    /guilds/{id}/members): those with the role (everyone for @everyone, whose id is the guild's,
    as ``Role.members`` has it), bots left out."""
    return [
        int(m["user"]["id"])
        for m in members
        if not m["user"].get("bot") and (role_id == guild_id or str(role_id) in {str(r) for r in m.get("roles", [])})
    ]
