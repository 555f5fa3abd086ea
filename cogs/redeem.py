"""/redeem: gift cards and promo codes in one box."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.errors import record_committed
from bot.discordbot.options import CodeInput
from bot.discordbot.render import GREEN, money, ts
from bot.discordbot.ui import guild_id_of, key_of, ledger_of, member_facts


class Redeem(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="redeem", description="Redeem a gift card or promotional code into your balance.")
    @app_commands.describe(code="The code, e.g. ABCD-EFGH-JKMN-PQRS or SUMMER-25 (case and dashes don't matter).")
    @app_commands.guild_only()
    async def redeem(self, interaction: discord.Interaction, code: CodeInput) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        redemption = await ledger.redeem(
            guild_id, interaction.user.id, code, key=key_of(interaction), member=member_facts(interaction.user)
        )
        lot = redemption.lot
        kind = "gift balance" if lot.kind == "gift" else "promotional balance"
        added = f"**+{money(settings, lot.original)}** added to your {kind} from {redemption.code_label}."
        # Committed: if anything below fails, the member is told this, never "nothing was changed".
        record_committed(interaction, added)
        balance = await ledger.balance(guild_id, interaction.user.id)
        embed = discord.Embed(title="Code redeemed", description=added, colour=GREEN)
        if lot.expires_at is not None:
            embed.add_field(name="Expires", value=f"{ts(lot.expires_at)} ({ts(lot.expires_at, 'f')})")
        if lot.categories:
            # At most limits.CATEGORIES_PER_LIST names of limits.CATEGORY characters: this fits already.
            embed.add_field(name="Usable on", value=fit.fit_lines(lot.categories, fit.FIELD_VALUE, separator=", "))
        if lot.one_time:
            embed.add_field(name="One-time", value="Whatever one purchase leaves of it is forfeited.")
        embed.add_field(name="Your balance", value=money(settings, balance.total), inline=False)
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Redeem(bot))
