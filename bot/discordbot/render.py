"""The domain's sentences in Discord's markup: bold, code spans, timestamps and mentions."""

from __future__ import annotations

from datetime import datetime

from bot.domain.errors import UserError
from bot.domain.text import TIME_STYLES
from bot.domain.timeparse import to_unix


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
