"""The Discord side of reminder DMs: render one DM per member per guild and lead, and send it."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import discord

from bot.ledger.models import DueReminder, Lot
from bot.ledger.money import Currency, format_amount
from bot.ledger.service import Ledger
from bot.ledger.timeparse import discord_timestamp, format_lead_times, from_unix
from bot.reminders import DmClosed, SendFailed
from cogs import _fit

CLOSED_DMS = 50007
UNKNOWN_USER = 10013
#: How much of one lot's line its categories may take: whole names, then "… and N more".
CATEGORIES_SHOWN = 120
ORANGE = discord.Colour(0xE67E22)


def reminder_line(lot: Lot, currency: Currency) -> str:
    """One lot of the DM, at most about 250 characters whatever the lot."""
    when = discord_timestamp(from_unix(lot.expires_at or 0), "R")
    exact = discord_timestamp(from_unix(lot.expires_at or 0), "f")
    kind = "gift" if lot.kind == "gift" else "promotional"
    only = f" (only: {_fit.fit_lines(lot.categories, CATEGORIES_SHOWN, separator=', ')})" if lot.categories else ""
    return f"• **{format_amount(lot.remaining, currency)}** {kind} credit expires {when} ({exact}){only}"


async def reminder_embed(ledger: Ledger, guild_name: str, due: DueReminder, lots: Sequence[Lot]) -> discord.Embed:
    """Discord refuses a description over 4,096 characters (and a message's embeds over 6,000): a
    member with many lots in one window gets the soonest ones listed and a line for the rest, with
    what they add up to, instead of a DM that is refused on every attempt and never arrives."""
    settings = await ledger.settings(due.guild_id)
    currency = settings.currency
    total = sum(lot.remaining for lot in lots)
    tail = f"\n\nSpend it with `/shop` and `/buy` in **{guild_name}** before it's gone."
    ordered = sorted(lots, key=lambda lot: (lot.expires_at or 0, lot.id))
    # held[i]: what ordered[i:] hold together; the lots left out are always the last ones.
    held = list(itertools.accumulate((lot.remaining for lot in reversed(ordered)), initial=0))[::-1]

    def more(count: int) -> str:
        amount = format_amount(held[len(ordered) - count], currency)
        return f"• …and {count} more, **{amount}** in all: see `/balance`"

    lines = [reminder_line(lot, currency) for lot in ordered]
    embed = discord.Embed(
        title=_fit.clip(f"Your credit in {guild_name} expires soon", _fit.TITLE),
        description=_fit.fit_lines(lines, _fit.DESCRIPTION - len(tail), more=more) + tail,
        colour=ORANGE,
    )
    embed.add_field(name="Expiring", value=format_amount(total, currency))
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
