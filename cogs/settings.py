"""/settings …: this server's currency, reminders, moderator role, audit and fulfilment channels,
promo exclusions and timezone (moderators)."""

from __future__ import annotations

import zoneinfo
from functools import cache
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.options import Category, category_autocomplete, one_of
from bot.discordbot.render import BLUE
from bot.discordbot.ui import (
    ModeratorCog,
    answer_committed,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
)
from bot.domain import limits
from bot.domain.errors import InvalidInput
from bot.domain.models import GuildSettings
from bot.domain.money import MAX_NAME_LENGTH, MAX_SYMBOL_LENGTH
from bot.domain.timeparse import MAX_LEAD_TIMES, format_lead_times


@cache
def zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


async def timezone_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    needle = current.casefold().replace(" ", "_")
    return [app_commands.Choice(name=z, value=z) for z in zone_names() if needle in z.casefold()][: fit.CHOICES]


def settings_embed(settings: GuildSettings) -> discord.Embed:
    embed = discord.Embed(title="Promo Balance settings", colour=BLUE)
    symbol = f" ({settings.currency_symbol})" if settings.currency_symbol else ""
    embed.add_field(name="Currency", value=f"{settings.currency_name}{symbol}, {settings.decimals} decimals")
    embed.add_field(name="Timezone", value=settings.timezone)
    embed.add_field(name="Reminder lead times", value=format_lead_times(settings.reminder_leads))
    embed.add_field(name="Moderator role", value=f"<@&{settings.mod_role_id}>" if settings.mod_role_id else "—")
    embed.add_field(name="Audit channel", value=f"<#{settings.audit_channel_id}>" if settings.audit_channel_id else "—")
    fulfilment = settings.fulfilment_channel_id
    embed.add_field(name="Fulfilment channel", value=f"<#{fulfilment}>" if fulfilment else "—")
    # Up to limits.EXCLUDED_CATEGORIES (25) names of 50 characters: 1,348 characters, more than one
    # field holds, so the list goes on in a second field rather than being cut.
    excluded = [f"`{c}`" for c in settings.promo_excluded_categories]
    chunks = fit.pack_pages(excluded, fit.FIELD_VALUE, separator=", ") or ["none"]
    for number, chunk in enumerate(chunks):
        name = "Promo credit excluded on" + (" (continued)" if number else "")
        embed.add_field(name=name, value=chunk, inline=False)
    return embed


def writable(channel: discord.TextChannel) -> bool:
    """Whether the bot can post its embeds there: refused now, before any post goes missing."""
    perms = channel.permissions_for(channel.guild.me)
    return perms.view_channel and perms.send_messages and perms.embed_links


class Settings(ModeratorCog):
    settings = moderator_commands("settings", "This server's Promo Balance settings (moderators).")

    async def _changed(self, interaction: discord.Interaction, what: str, settings: GuildSettings) -> None:
        await answer_committed(
            interaction, fit.clip(what, fit.CONTENT), audit="Settings changed", embed=settings_embed(settings)
        )

    async def _set_excluded(self, interaction: discord.Interaction, category: str, excluded: bool) -> None:
        updated = await ledger_of(interaction).set_category_excluded(
            guild_id_of(interaction), category, excluded, actor_id=interaction.user.id, key=key_of(interaction)
        )
        what = f"can no longer be spent on `{category}`" if excluded else f"can be spent on `{category}` again"
        await self._changed(interaction, f"Promotional credit {what}.", updated)

    @settings.command(name="currency", description="Name, symbol and decimals of this server's credit.")
    @app_commands.describe(
        name=f"e.g. credits, coins, gems (up to {MAX_NAME_LENGTH} characters).",
        symbol=f"Shown before amounts instead of the name, e.g. $ (up to {MAX_SYMBOL_LENGTH} characters).",
        decimals="0 for whole credits, 2 for cents. Only before any credit exists.",
        no_symbol="True: show the name instead of a symbol again.",
    )
    async def currency(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, MAX_NAME_LENGTH] | None = None,
        symbol: app_commands.Range[str, 1, MAX_SYMBOL_LENGTH] | None = None,
        decimals: Literal[0, 2] | None = None,
        no_symbol: bool = False,
    ) -> None:
        # Discord never sends an empty option, so removing the symbol needs its own switch.
        one_of(symbol, no_symbol, "symbol", "no_symbol")
        if no_symbol:
            symbol = ""
        updated = await ledger_of(interaction).update_settings(
            guild_id_of(interaction),
            actor_id=interaction.user.id,
            key=key_of(interaction),
            currency_name=name,
            currency_symbol=symbol,
            decimals=decimals,
        )
        await self._changed(interaction, "Currency updated.", updated)

    @settings.command(name="reminders", description="When members get DMs before their credit expires.")
    @app_commands.describe(
        lead_times=f"Comma-separated durations before expiry, e.g. 7d,1d (up to {MAX_LEAD_TIMES}, each at least 1m)."
    )
    async def reminders(
        self,
        interaction: discord.Interaction,
        lead_times: app_commands.Range[str, 1, limits.LEAD_TIMES_INPUT] | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        if lead_times is None:
            current = await ledger.settings(guild_id)
            await interaction.response.send_message(
                f"Reminders go out {format_lead_times(current.reminder_leads)} before expiry. "
                "Change with `/settings reminders lead_times:7d,1d`.",
                ephemeral=True,
            )
            return
        updated = await ledger.update_settings(
            guild_id, actor_id=interaction.user.id, key=key_of(interaction), reminder_leads=lead_times
        )
        await self._changed(interaction, f"Reminder lead times: {format_lead_times(updated.reminder_leads)}.", updated)

    @settings.command(name="modrole", description="Members with this role may use the moderator commands.")
    @app_commands.describe(role="The moderator role.")
    async def modrole(self, interaction: discord.Interaction, role: discord.Role) -> None:
        if role.is_default():
            raise InvalidInput(
                "mod_role_everyone", "That would make everyone a moderator: pick a role only moderators have."
            )
        updated = await ledger_of(interaction).update_settings(
            guild_id_of(interaction), actor_id=interaction.user.id, key=key_of(interaction), mod_role_id=role.id
        )
        await self._changed(interaction, f"Moderator role: {role.mention}.", updated)

    @settings.command(name="auditlog", description="Post every moderator action to this channel.")
    @app_commands.describe(channel="The audit channel.")
    async def auditlog(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        if not writable(channel):
            raise InvalidInput(
                "audit_channel_unwritable",
                "I can't post in {channel:channel}: give me View Channel, Send Messages and Embed Links there.",
                channel=channel.id,
            )
        updated = await ledger_of(interaction).update_settings(
            guild_id_of(interaction),
            actor_id=interaction.user.id,
            key=key_of(interaction),
            audit_channel_id=channel.id,
        )
        await self._changed(interaction, f"Audit channel: {channel.mention}.", updated)

    @settings.command(name="fulfilment", description="Post new staff orders to this channel, with Fulfil / Deny.")
    @app_commands.describe(channel="The fulfilment channel, where moderators see what members ordered.")
    async def fulfilment(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        if not writable(channel):
            raise InvalidInput(
                "fulfilment_channel_unwritable",
                "I can't post staff orders in {channel:channel}: give me View Channel, Send Messages and "
                "Embed Links there.",
                channel=channel.id,
            )
        updated = await ledger_of(interaction).update_settings(
            guild_id_of(interaction),
            actor_id=interaction.user.id,
            key=key_of(interaction),
            fulfilment_channel_id=channel.id,
        )
        await self._changed(
            interaction,
            f"Fulfilment channel: {channel.mention}. New staff orders are posted there with Fulfil and Deny "
            "buttons; `/fulfil queue` lists those waiting.",
            updated,
        )

    @settings.command(name="exclude-category", description="Promotional credit can't be spent on this category.")
    @app_commands.describe(category=f"A shop category (up to {limits.EXCLUDED_CATEGORIES} can be excluded).")
    @app_commands.autocomplete(category=category_autocomplete)
    async def exclude_category(self, interaction: discord.Interaction, category: Category) -> None:
        await self._set_excluded(interaction, category, True)

    @settings.command(name="include-category", description="Promotional credit can be spent on this category again.")
    @app_commands.describe(category="A category excluded before.")
    @app_commands.autocomplete(category=category_autocomplete)
    async def include_category(self, interaction: discord.Interaction, category: Category) -> None:
        await self._set_excluded(interaction, category, False)

    @settings.command(name="timezone", description="The timezone dates like 2026-12-31 are read in.")
    @app_commands.describe(tz="An IANA timezone, e.g. Europe/Berlin or America/New_York.")
    @app_commands.autocomplete(tz=timezone_autocomplete)
    async def timezone(self, interaction: discord.Interaction, tz: app_commands.Range[str, 1, limits.TIMEZONE]) -> None:
        updated = await ledger_of(interaction).update_settings(
            guild_id_of(interaction), actor_id=interaction.user.id, key=key_of(interaction), timezone=tz
        )
        await self._changed(interaction, f"Timezone: {updated.timezone}.", updated)

    @settings.command(name="show", description="This server's current settings.")
    async def show(self, interaction: discord.Interaction) -> None:
        settings = await ledger_of(interaction).settings(guild_id_of(interaction))
        await interaction.response.send_message(embed=settings_embed(settings), ephemeral=True)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Settings(bot))
