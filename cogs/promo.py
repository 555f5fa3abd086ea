"""/promo create | list | disable: promotional codes (moderators)."""

from __future__ import annotations

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.options import Amount, Categories, CodeInput, When, category_autocomplete
from bot.discordbot.render import BLUE, money, ts
from bot.discordbot.ui import (
    ModeratorCog,
    answer_committed,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
    moderator_predicate,
    page_of_lines,
    send_paged,
)
from bot.domain import codes, limits
from bot.domain.codes import normalise_code
from bot.domain.models import GuildSettings, PromoCode

#: Room for one /promo list page: its description. A code's line is at most about 800 characters (a
#: 32-character code, 10 categories of 50), so every page holds at least four whole lines.


def promo_line(promo: PromoCode, settings: GuildSettings) -> str:
    uses = f"{promo.uses}/{promo.max_uses}" if promo.max_uses else f"{promo.uses}/∞"
    parts = [f"`{promo.code}`", f"**{money(settings, promo.amount)}**", f"used {uses}"]
    if promo.per_member != 1:
        parts.append(f"{promo.per_member} per member")
    if promo.redeem_by:
        parts.append(f"redeem by {ts(promo.redeem_by, 'd')}")
    if promo.credit_days:
        parts.append(f"credit lasts {promo.credit_days}d")
    elif promo.credit_expires:
        parts.append(f"credit expires {ts(promo.credit_expires, 'd')}")
    if promo.categories:
        parts.append("only: " + ", ".join(promo.categories))
    if promo.one_time:
        parts.append("one-time")
    if promo.role_id:
        parts.append(f"for <@&{promo.role_id}>")
    if promo.min_member_days:
        parts.append(f"members of {promo.min_member_days}+ days")
    if not promo.active:
        parts.append("**disabled**")
    return " · ".join(parts)


# Autocomplete skips command and cog checks: without its own, anyone could list these.
@app_commands.check(moderator_predicate)
async def promo_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    needle = normalise_code(current)  # "summer 25" finds SUMMER-25, as /promo disable would
    promos = await ledger_of(interaction).promos(guild_id_of(interaction))
    return [
        app_commands.Choice(name=p.code, value=p.code) for p in promos if p.active and needle in normalise_code(p.code)
    ][: fit.CHOICES]


class Promo(ModeratorCog):
    promo = moderator_commands("promo", "Promotional codes members redeem with /redeem (moderators).")

    @promo.command(name="create", description="Create a promo code.")
    @app_commands.describe(
        code=f"{codes.PROMO_MIN_LENGTH}–{codes.PROMO_MAX_LENGTH} letters, digits or dashes, e.g. SUMMER-25.",
        amount="Promotional credit per redemption.",
        uses="How many redemptions in total. Empty: unlimited.",
        per_member="How often one member may redeem it (default 1).",
        redeem_by="Last moment to redeem: a duration like 14d or a date. Empty: no limit.",
        credit_days="The credit expires this many days after redemption.",
        credit_expires="Or: the credit expires at this date.",
        categories=f"Only usable on these shop categories, comma-separated (up to {limits.CATEGORIES_PER_LIST}).",
        one_time="Whatever one purchase leaves of the credit is forfeited.",
        role="Only members with this role may redeem it.",
        min_member_days="Only members who joined at least this many days ago (against alt accounts).",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def create(
        self,
        interaction: discord.Interaction,
        code: app_commands.Range[str, codes.PROMO_MIN_LENGTH, codes.PROMO_MAX_LENGTH],
        amount: Amount,
        uses: app_commands.Range[int, 1] | None = None,
        per_member: app_commands.Range[int, 1, 1000] = 1,
        redeem_by: When | None = None,
        credit_days: app_commands.Range[int, 1, 36500] | None = None,
        credit_expires: When | None = None,
        categories: Categories | None = None,
        one_time: bool = False,
        role: discord.Role | None = None,
        min_member_days: app_commands.Range[int, 0, 3650] | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        promo = await ledger.create_promo(
            guild_id,
            code,
            amount,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            uses=uses,
            per_member=per_member,
            redeem_by=redeem_by,
            credit_days=credit_days,
            credit_expires=credit_expires,
            categories=categories,
            one_time=one_time,
            role_id=role.id if role else None,
            min_member_days=min_member_days,
        )
        settings = await ledger.settings(guild_id)
        text = fit.clip("Promo code created: " + promo_line(promo, settings), fit.CONTENT)
        await answer_committed(interaction, text, audit="Promo code created")

    @promo.command(name="list", description="This server's promo codes and their use.")
    async def list_codes(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)

        async def render(page: int) -> tuple[discord.Embed, int]:
            settings = await ledger.settings(guild_id)
            promos = await ledger.promos(guild_id)
            embed = discord.Embed(title="Promo codes", colour=BLUE)
            page, pages = page_of_lines(
                embed,
                [promo_line(p, settings) for p in promos],
                page,
                empty="No promo codes yet. Create one with `/promo create`.",
            )
            if promos:
                active = sum(p.active for p in promos)
                embed.set_footer(text=f"Page {page} of {pages} · {len(promos)} codes, {active} active")
            return embed, pages

        await send_paged(interaction, render, check=moderator_predicate)

    @promo.command(name="disable", description="Stop a promo code from being redeemed.")
    @app_commands.describe(code="The code to disable.")
    @app_commands.autocomplete(code=promo_autocomplete)
    async def disable(self, interaction: discord.Interaction, code: CodeInput) -> None:
        promo = await ledger_of(interaction).disable_promo(
            guild_id_of(interaction), code, actor_id=interaction.user.id, key=key_of(interaction)
        )
        text = f"Promo code `{promo.code}` is disabled; credit already redeemed stays."
        await answer_committed(interaction, text, audit="Promo code disabled")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Promo(bot))
