"""/reminders and /terms: a member's reminder preference and this server's credit terms."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.render import BLUE
from bot.discordbot.ui import answer_committed, guild_id_of, ledger_of

UNITS = (("day", 86400), ("hour", 3600), ("minute", 60))


def human_duration(seconds: int) -> str:
    """86400 -> "1 day", 43200 -> "12 hours", 5400 -> "90 minutes"."""
    for unit, size in UNITS:
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} seconds"


def human_leads(leads: tuple[int, ...]) -> str:
    """(604800, 86400) -> "7 days and 1 day"."""
    words = [human_duration(lead) for lead in sorted(leads, reverse=True)] or ["shortly"]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


class Member(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="reminders", description="Turn the DMs before your credit expires on or off.")
    @app_commands.describe(enabled="True to get reminder DMs, False to stop them.")
    @app_commands.guild_only()
    async def reminders(self, interaction: discord.Interaction, enabled: bool) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        await ledger.set_reminders_enabled(guild_id, interaction.user.id, enabled)
        if enabled:
            message = (
                f"Reminders are on: I'll DM you {human_leads(settings.reminder_leads)} before "
                "credit of yours in this server expires."
            )
        else:
            message = "Reminders are off for this server. Turn them back on any time with `/reminders enabled:True`."
        await answer_committed(interaction, message)

    @app_commands.command(name="terms", description="This server's credit terms.")
    @app_commands.guild_only()
    async def terms(self, interaction: discord.Interaction) -> None:
        settings = await ledger_of(interaction).settings(guild_id_of(interaction))
        excluded = ", ".join(f"`{c}`" for c in settings.promo_excluded_categories)
        lines = [
            f"**Credit is store credit for this server's shop**, counted in {settings.currency_name}. "
            "It is not money: it can't be cashed out, sold or exchanged for cash.",
            "**Non-transferable.** Credit belongs to the member it was given to; there is no way to send it "
            "to someone else.",
            "**Two kinds.** Gift balance (from gift cards and gifts) pays for anything in the shop. "
            "Promotional credit (from promo codes and grants) is spent first, and may be limited to some "
            "categories.",
            (
                f"**Promotional credit can't be used on** {excluded} items."
                if excluded
                else "**Promotional credit** can be used on every category unless a grant says otherwise."
            ),
            "**Expiry.** Some credit expires; `/balance` shows when. Expired credit is gone for good, and a "
            "refund never brings it back.",
            f"**Reminders.** I DM you {human_leads(settings.reminder_leads)} before credit expires. "
            "Turn them off with `/reminders enabled:False`.",
            "**One-time credit** is used by a single purchase; whatever that purchase leaves of it is forfeited.",
        ]
        # At most limits.EXCLUDED_CATEGORIES names and a 20-character currency: about 2,500
        # characters at the most; the clip keeps the promise whatever the settings hold.
        embed = discord.Embed(
            title="Credit terms", description=fit.clip("\n\n".join(lines), fit.DESCRIPTION), colour=BLUE
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Member(bot))
