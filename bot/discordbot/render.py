"""How the domain's values look in Discord: its sentences in Discord's markup (bold, code spans,
timestamps and mentions), amounts in a server's currency, times as Discord timestamps, and the
embed colours."""

from __future__ import annotations

from datetime import datetime

import discord

from bot.domain.errors import UserError
from bot.domain.models import GuildSettings
from bot.domain.money import format_amount
from bot.domain.text import TIME_STYLES
from bot.domain.timeparse import from_unix, to_unix

GREEN = discord.Colour(0x2ECC71)
BLUE = discord.Colour(0x3498DB)
ORANGE = discord.Colour(0xE67E22)
GREY = discord.Colour(0x95A5A6)


class DiscordMarkup:
    """`bot.domain.text.Markup` for Discord messages."""

    def strong(self, text: str) -> str:
        return f"**{text}**"

    def literal(self, text: str) -> str:
        return f"`{text}`"

    def time(self, unix: int, style: str) -> str:
        return f"<t:{unix}:{style}>"

    def mention(self, kind: str, target_id: int) -> str:
        return {"user": "<@{}>", "role": "<@&{}>", "channel": "<#{}>"}[kind].format(target_id)


DISCORD = DiscordMarkup()


def discord_timestamp(when: datetime, style: str = "R") -> str:
    """``<t:UNIX:R>``: Discord shows it in each reader's own timezone and language."""
    if style not in TIME_STYLES:
        raise ValueError(f"unknown Discord timestamp style {style!r}")
    return DISCORD.time(to_unix(when), style)


def error_text(error: UserError) -> str:
    """What a member reads for a refusal."""
    return error.render(DISCORD)


def money(settings: GuildSettings, amount: int) -> str:
    return format_amount(amount, settings.currency)


def ts(unix: int | None, style: str = "R") -> str:
    return "never" if unix is None else discord_timestamp(from_unix(unix), style)
