"""The Discord side of reminder DMs: render one DM per member per guild and lead, and send it."""

from __future__ import annotations

from collections.abc import Sequence

import discord

from bot.ledger.models import DueReminder, Lot
from bot.ledger.money import format_amount
from bot.ledger.service import Ledger
from bot.ledger.timeparse import discord_timestamp, format_lead_times, from_unix
from bot.reminders import DmClosed, SendFailed

CLOSED_DMS = 50007
UNKNOWN_USER = 10013


async def reminder_embed(ledger: Ledger, guild_name: str, due: DueReminder, lots: Sequence[Lot]) -> discord.Embed:
    settings = await ledger.settings(due.guild_id)
    total = sum(lot.remaining for lot in lots)
    lines = []
    for lot in sorted(lots, key=lambda lot: (lot.expires_at or 0, lot.id)):
        when = discord_timestamp(from_unix(lot.expires_at or 0), "R")
        exact = discord_timestamp(from_unix(lot.expires_at or 0), "f")
        kind = "gift" if lot.kind == "gift" else "promotional"
        only = f" (only: {', '.join(lot.categories)})" if lot.categories else ""
        amount = format_amount(lot.remaining, settings.currency)
        lines.append(f"• **{amount}** {kind} credit expires {when} ({exact}){only}")
    embed = discord.Embed(
        title=f"Your credit in {guild_name} expires soon",
        description="\n".join(lines)
        + f"\n\nSpend it with `/shop` and `/buy` in **{guild_name}** before it's gone.",
        colour=discord.Colour(0xE67E22),
    )
    embed.add_field(name="Expiring", value=format_amount(total, settings.currency))
    embed.set_footer(
        text=f"Reminders come {format_lead_times(settings.reminder_leads)} before expiry. "
        "Turn them off in that server with /reminders enabled:False."
    )
    return embed


class DiscordReminderSender:
    def __init__(self, client: discord.Client, ledger: Ledger) -> None:
        self.client = client
        self.ledger = ledger

    async def __call__(self, due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        guild = self.client.get_guild(due.guild_id)
        try:
            user = self.client.get_user(due.user_id) or await self.client.fetch_user(due.user_id)
            embed = await reminder_embed(self.ledger, guild.name if guild else "your server", due, lots)
            await user.send(embed=embed, nonce=nonce)
        except discord.Forbidden as exc:
            if exc.code == CLOSED_DMS:
                raise DmClosed(str(exc)) from exc
            raise SendFailed(str(exc)) from exc
        except discord.NotFound as exc:
            if exc.code == UNKNOWN_USER:  # the account is gone: there is nobody to retry for
                raise DmClosed(str(exc)) from exc
            raise SendFailed(str(exc)) from exc
        except discord.HTTPException as exc:
            raise SendFailed(str(exc)) from exc
