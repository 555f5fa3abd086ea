"""/balance and /history: a member's own credit, privately."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.lines import entry_line, lot_line
from bot.discordbot.options import PageNumber
from bot.discordbot.render import BLUE, money, ts
from bot.discordbot.ui import guild_id_of, ledger_of, send_paged
from bot.domain.models import GuildSettings, Lot

MAX_LOT_LINES = 15


def lots_text(lots: Sequence[Lot], settings: GuildSettings, now: int) -> str:
    """The first lots, at most MAX_LOT_LINES and as many as fit in one embed field (1,024
    characters), then a line for the rest and what they hold: "… and 9 more, 1,250 credits in all"."""
    lines = [lot_line(lot, settings, now) for lot in lots[:MAX_LOT_LINES]]
    hidden = len(lots) - len(lines)  # past MAX_LOT_LINES: left out whatever the room
    # held[i]: what lots[i:] hold together.
    held = list(itertools.accumulate((lot.remaining for lot in reversed(lots)), initial=0))[::-1]

    def more(count: int) -> str:
        left = count + hidden
        return f"{fit.and_more(left)}, {money(settings, held[len(lots) - left])} in all"

    room = fit.FIELD_VALUE - (len(more(0)) + 1 if hidden else 0)
    text = fit.fit_lines(lines, room, more=more)
    if hidden and text == "\n".join(lines):  # every shown line fitted: the rest still needs its line
        text += "\n" + more(0)
    return text


class Balance(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="balance", description="Your gift and promotional credit in this server.")
    @app_commands.guild_only()
    async def balance(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        bal = await ledger.balance(guild_id, interaction.user.id)
        now = ledger.now()
        embed = discord.Embed(title="Your balance", colour=BLUE)
        embed.add_field(name="Gift balance", value=money(settings, bal.gift))
        embed.add_field(name="Promotional balance", value=money(settings, bal.promo))
        embed.add_field(name="Total", value=f"**{money(settings, bal.total)}**")
        if bal.upcoming:
            embed.add_field(name="Upcoming", value=f"{money(settings, bal.upcoming)} (not usable yet)", inline=False)
        if bal.next_expiry is not None:
            lot = bal.next_expiry
            embed.add_field(
                name="Expires next",
                value=f"{money(settings, lot.remaining)} {ts(lot.expires_at)} ({ts(lot.expires_at, 'f')})",
                inline=False,
            )
        if bal.lots:
            embed.add_field(
                name="Your credit, in the order it is spent", value=lots_text(bal.lots, settings, now), inline=False
            )
        else:
            embed.description = "You have no credit here yet. Redeem a code with `/redeem`."
        embed.set_footer(text="Promotional credit is spent first. Credit can't be transferred or cashed out.")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @app_commands.command(name="history", description="Your credit history, newest first.")
    @app_commands.describe(page="Which page to show (10 entries per page).")
    @app_commands.guild_only()
    async def history(self, interaction: discord.Interaction, page: PageNumber = 1) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        user_id = interaction.user.id
        settings = await ledger.settings(guild_id)

        async def render(number: int) -> tuple[discord.Embed, int]:
            result = await ledger.history(guild_id, user_id, number)
            embed = discord.Embed(title="Your credit history", colour=BLUE)
            lines = [entry_line(e, settings) for e in result.items]
            embed.description = fit.fit_lines(lines, fit.DESCRIPTION) or "Nothing here yet."
            embed.set_footer(text=f"Page {result.page} of {result.pages} · {result.total} entries")
            return embed, result.pages

        await send_paged(interaction, render, page)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Balance(bot))
