"""The domain's sentences in Discord's markup: bold, code spans, timestamps and mentions."""

from __future__ import annotations

from bot.domain.errors import UserError


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


def error_text(error: UserError) -> str:
    """What a member reads for a refusal."""
    return error.render(DISCORD)
