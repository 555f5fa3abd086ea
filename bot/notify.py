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
# Discord refuses an embed description over 4096 characters (and a whole embed over 6000): a member
# with many lots in one window gets the soonest ones listed and a summary line for the rest, instead
# of a DM that is refused on every attempt and never arrives.
DESCRIPTION_BUDGET = 3800
LINE_LIMIT = 300


async def reminder_embed(ledger: Ledger, guild_name: str, due: DueReminder, lots: Sequence[Lot]) -> discord.Embed:
    settings = await ledger.settings(due.guild_id)
    total = sum(lot.remaining for lot in lots)
    lines: list[str] = []
    used = 0
    tail = f"\n\nSpend it with `/shop` and `/buy` in **{guild_name}** before it's gone."
    ordered = sorted(lots, key=lambda lot: (lot.expires_at or 0, lot.id))
    for index, lot in enumerate(ordered):
        when = discord_timestamp(from_unix(lot.expires_at or 0), "R")
        exact = discord_timestamp(from_unix(lot.expires_at or 0), "f")
        kind = "gift" if lot.kind == "gift" else "promotional"
        only = f" (only: {', '.join(lot.categories)})" if lot.categories else ""
        amount = format_amount(lot.remaining, settings.currency)
        line = f"• **{amount}** {kind} credit expires {when} ({exact}){only}"
        if len(line) > LINE_LIMIT:
            line = line[: LINE_LIMIT - 2] + "…)"
        if used + len(line) + len(tail) + 100 > DESCRIPTION_BUDGET:  # 100: room for the summary line
            rest = ordered[index:]
            amount = format_amount(sum(lot.remaining for lot in rest), settings.currency)
            lines.append(f"• …and {len(rest)} more, **{amount}** in all: see `/balance`")
            break
        lines.append(line)
        used += len(line) + 1
    embed = discord.Embed(
        title=f"Your credit in {guild_name} expires soon",
        description="\n".join(lines) + tail,
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
        if guild is None and not self.client.is_ready():
            # The scheduler's first tick runs at start, before the gateway has delivered the guilds:
            # wait for them instead of DMing "your credit in your server". (A close meanwhile cancels
            # the tick; the claim then stays 'pending' and is resent under its nonce or settled.)
            await self.client.wait_until_ready()
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
