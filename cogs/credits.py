"""/credits …: moderators grant, revoke, extend, inspect, export and report credit, and schedule
recurring grants."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.ledger.errors import Conflict, InvalidInput, NotFound
from bot.ledger.models import GuildSettings, Lot, Schedule
from bot.ledger.timeparse import from_unix
from cogs._common import (
    BLUE,
    GREEN,
    ModeratorCog,
    bot_of,
    guild_id_of,
    key_of,
    ledger_of,
    lot_line,
    moderator_commands,
    moderator_predicate,
    money,
    post_audit,
    send_paged,
    ts,
)
from cogs.balance import entry_line
from cogs.charts import weekly_chart_png
from cogs.shop import category_autocomplete

Kind = Literal["promo", "gift"]
INSPECT_PAGE = 10


# Autocomplete skips command and cog checks: without its own, anyone could list these.
@app_commands.check(moderator_predicate)
async def lot_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    """Usable and upcoming lots of the member chosen in the same command (none until one is chosen)."""
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    settings = await ledger.settings(guild_id)
    member = getattr(interaction.namespace, "member", None)
    if member is None:
        return []
    now = ledger.now()
    typed = current.strip().lstrip("#")
    choices = []
    for lot in await ledger.lots(guild_id, member.id, active_only=True):
        label = f"#{lot.id} · {money(settings, lot.remaining)} {lot.kind}"
        if lot.expires_at:
            label += f" · expires {from_unix(lot.expires_at):%Y-%m-%d}"  # choices can't render timestamps
        if typed and typed not in str(lot.id):
            continue
        if lot.is_usable_at(now) or lot.is_upcoming_at(now):
            choices.append(app_commands.Choice(name=label[:100], value=lot.id))
    return choices[:25]


def lots_field(lots: Sequence[Lot], settings: GuildSettings, now: int, limit: int = 1024) -> str:
    """As many lot lines as fit in an embed field, then how many more there are."""
    lines = [lot_line(lot, settings, now) for lot in lots]
    if not lines:
        return "No active lots."
    for count in range(len(lines), 0, -1):
        rest = len(lines) - count
        text = "\n".join(lines[:count]) + (f"\n… and {rest} more" if rest else "")
        if len(text) <= limit:
            return text
    return lines[0][: limit - 1] + "…"


def schedule_line(schedule: Schedule, settings: GuildSettings) -> str:
    validity = f", valid {schedule.valid_days} days" if schedule.valid_days else ""
    cats = f", only: {', '.join(schedule.categories)}" if schedule.categories else ""
    return (
        f"`#{schedule.id}` <@&{schedule.role_id}> gets **{money(settings, schedule.amount)}** {schedule.kind}"
        f"{validity}{cats} on `{schedule.rule}` ({settings.timezone}) · next {ts(schedule.next_run_at)}"
    )


class Credits(ModeratorCog):
    credits = moderator_commands("credits", "Grant, revoke and review members' credit (moderators).")
    schedule = app_commands.Group(name="schedule", description="Recurring grants to a role.", parent=credits)

    @credits.command(name="grant", description="Give a member credit.")
    @app_commands.describe(
        member="Who gets the credit.",
        amount="How much, in this server's currency (e.g. 25 or 12.50).",
        expires="When it expires: a duration like 30d, or a date like 2026-12-31. Empty: never.",
        starts="When it becomes usable: a duration or date. Empty: now.",
        categories="Only usable on these shop categories, comma-separated. Empty: any.",
        one_time="Whatever one purchase leaves of it is forfeited.",
        kind="promo (default; spent first, can be restricted) or gift (pays for anything).",
        reason="Shown to the member in their history.",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def grant(
        self, interaction: discord.Interaction, member: discord.Member, amount: str, expires: str | None = None,
        starts: str | None = None, categories: str | None = None, one_time: bool = False, kind: Kind = "promo",
        reason: str | None = None,
    ) -> None:
        if member.bot:
            raise InvalidInput("Bots can't hold credit.")
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.grant(
            guild_id, member.id, amount, actor_id=interaction.user.id, key=key_of(interaction), kind=kind,
            expires=expires, starts=starts, categories=categories, one_time=one_time, reason=reason,
        )
        settings = await ledger.settings(guild_id)
        lot = await ledger.get_lot(guild_id, result.first_lot_id)
        line = lot_line(lot, settings, ledger.now()) if lot else ""
        text = f"Granted {money(settings, result.amount)} of {kind} credit to {member.mention}.\n{line}"
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Credit granted", text, {"Reason": reason or "—"})

    @credits.command(name="grant-role", description="Give every member of a role credit, all at once.")
    @app_commands.describe(
        role="Everyone with this role gets the credit.",
        amount="How much each member gets.",
        expires="When it expires: a duration like 30d, or a date. Empty: never.",
        starts="When it becomes usable. Empty: now.",
        categories="Only usable on these shop categories, comma-separated.",
        one_time="Whatever one purchase leaves of it is forfeited.",
        kind="promo (default) or gift.",
        reason="Shown to members in their history.",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def grant_role(
        self, interaction: discord.Interaction, role: discord.Role, amount: str, expires: str | None = None,
        starts: str | None = None, categories: str | None = None, one_time: bool = False, kind: Kind = "promo",
        reason: str | None = None,
    ) -> None:
        if not bot_of(interaction).members_intent:
            raise Conflict(
                "I can't see role members: the Server Members intent is off. The bot's owner can turn it on "
                "in the Discord developer portal (Bot → Privileged Gateway Intents → Server Members Intent)."
            )
        members = [m.id for m in role.members if not m.bot]
        if not members:
            raise InvalidInput(f"Nobody (apart from bots) has {role.mention}.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.grant_many(
            guild_id, members, amount, actor_id=interaction.user.id, key=key_of(interaction), kind=kind,
            expires=expires, starts=starts, categories=categories, one_time=one_time, reason=reason,
            action="grant-role",
        )
        settings = await ledger.settings(guild_id)
        expiry = f", expiring {ts(result.expires_at)}" if result.expires_at else ""
        text = (
            f"Granted {money(settings, result.amount)} of {kind} credit to each of the {result.count} members "
            f"of {role.mention}{expiry}."
        )
        await interaction.followup.send(text, ephemeral=True)
        await post_audit(interaction, "Credit granted to a role", text, {"Reason": reason or "—"})

    @credits.command(name="revoke", description="Take back credit: a whole lot, or an amount in spending order.")
    @app_commands.describe(
        member="Whose credit.",
        reason="Why; shown to the member in their history.",
        lot="The lot to void (see /credits inspect). Empty: take the amount in spending order.",
        amount="How much. Empty with a lot: all that is left of it.",
    )
    @app_commands.autocomplete(lot=lot_autocomplete)
    async def revoke(
        self, interaction: discord.Interaction, member: discord.Member, reason: str,
        lot: app_commands.Range[int, 1] | None = None, amount: str | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.revoke(
            guild_id, member.id, reason=reason, actor_id=interaction.user.id, key=key_of(interaction),
            lot_id=lot, amount=amount,
        )
        settings = await ledger.settings(guild_id)
        lots = ", ".join(f"`#{c.lot_id}`" for c in result.changes)
        text = f"Revoked {money(settings, result.amount)} from {member.mention} (lots {lots})."
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Credit revoked", text, {"Reason": reason})

    @credits.command(name="extend", description="Change when a lot expires.")
    @app_commands.describe(
        lot="The lot (see /credits inspect).",
        expires="The new expiry: a duration from now like 30d, or a date like 2026-12-31.",
        reason="Why; kept in the ledger.",
        member="Whose lot (helps the lot list as you type).",
    )
    @app_commands.autocomplete(lot=lot_autocomplete)
    async def extend(
        self, interaction: discord.Interaction, lot: app_commands.Range[int, 1], expires: str,
        reason: str | None = None, member: discord.Member | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        if member is not None:
            chosen = await ledger.get_lot(guild_id, lot)
            if chosen is not None and chosen.user_id != member.id:
                raise NotFound(f"Lot #{lot} is not one of {member.mention}'s lots.")
        result = await ledger.extend(
            guild_id, lot, expires, actor_id=interaction.user.id, key=key_of(interaction), reason=reason
        )
        text = (
            f"Lot `#{result.lot_id}` of <@{result.user_id}> now expires {ts(result.new_expires_at, 'f')} "
            f"({ts(result.new_expires_at)}); it was {ts(result.old_expires_at, 'f')}."
        )
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Expiry changed", text, {"Reason": reason or "—"})

    @credits.command(name="inspect", description="A member's lots and ledger.")
    @app_commands.describe(member="Whose credit to show.")
    async def inspect(self, interaction: discord.Interaction, member: discord.Member) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)

        async def render(page: int) -> tuple[discord.Embed, int]:
            now = ledger.now()
            balance = await ledger.balance(guild_id, member.id)
            history = await ledger.history(guild_id, member.id, page, INSPECT_PAGE)
            embed = discord.Embed(title=f"Credit of {member.display_name}", colour=BLUE)
            embed.add_field(name="Gift", value=money(settings, balance.gift))
            embed.add_field(name="Promotional", value=money(settings, balance.promo))
            embed.add_field(name="Upcoming", value=money(settings, balance.upcoming))
            embed.add_field(name="Active lots", value=lots_field(balance.lots, settings, now), inline=False)
            ledger_lines = "\n".join(entry_line(e, settings) for e in history.items) or "No entries."
            embed.add_field(name=f"Ledger (page {history.page} of {history.pages})", value=ledger_lines[:1024],
                            inline=False)
            embed.set_footer(text=f"Member id {member.id}")
            return embed, history.pages

        await send_paged(interaction, render)

    @credits.command(name="export", description="This server's whole ledger as a CSV file.")
    async def export(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        guild_id = guild_id_of(interaction)
        buffer = io.StringIO()
        rows = await ledger_of(interaction).export_csv(guild_id, buffer)
        data = io.BytesIO(buffer.getvalue().encode("utf-8"))
        name = f"ledger-{guild_id}.csv"
        await interaction.followup.send(
            f"The ledger of this server: {rows} entries.", file=discord.File(data, filename=name), ephemeral=True
        )
        await post_audit(interaction, "Ledger exported", f"{rows} entries")

    @credits.command(name="report", description="Outstanding credit, expiries, weekly totals and code use.")
    async def report(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        report = await ledger.report(guild_id)
        embed = discord.Embed(title="Credit report", colour=BLUE)
        embed.add_field(name="Outstanding promotional", value=money(settings, report.outstanding_promo))
        embed.add_field(name="Outstanding gift", value=money(settings, report.outstanding_gift))
        embed.add_field(name="\u200b", value="\u200b")
        embed.add_field(name="Expiring in 7 days", value=money(settings, report.expiring_7d))
        embed.add_field(name="Expiring in 30 days", value=money(settings, report.expiring_30d))
        embed.add_field(name="Gift cards redeemed", value=str(report.gift_cards_redeemed))
        last = report.weeks[-4:]
        weekly = "\n".join(
            f"{ts(w.week_start, 'd')}: +{money(settings, w.granted)} granted, {money(settings, w.spent)} spent, "
            f"{money(settings, w.expired)} expired"
            for w in last
        )
        embed.add_field(name="Last 4 weeks", value=weekly or "—", inline=False)
        codes = "\n".join(f"`{code}`: {count}" for code, count in report.redemptions_per_code[:15])
        embed.add_field(name="Redemptions per promo code", value=codes or "No promo codes yet.", inline=False)
        png = await asyncio.to_thread(weekly_chart_png, report.weeks, settings.currency_name)
        embed.set_image(url="attachment://report.png")
        await interaction.followup.send(
            embed=embed, file=discord.File(io.BytesIO(png), filename="report.png"), ephemeral=True
        )

    @schedule.command(name="add", description="Grant credit to a role on a recurring rule.")
    @app_commands.describe(
        role="Everyone with this role at each run gets the credit.",
        amount="How much each member gets per run.",
        rule="Cron rule in the server's timezone: minute hour day month weekday, e.g. `0 12 1 * *`.",
        valid_days="Each run's credit expires this many days after it is granted. Empty: never.",
        categories="Only usable on these shop categories, comma-separated.",
        kind="promo (default) or gift.",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def schedule_add(
        self, interaction: discord.Interaction, role: discord.Role, amount: str, rule: str,
        valid_days: app_commands.Range[int, 1, 36500] | None = None, categories: str | None = None,
        kind: Kind = "promo",
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        schedule = await ledger.add_schedule(
            guild_id, role.id, amount, rule, actor_id=interaction.user.id, key=key_of(interaction),
            valid_days=valid_days, categories=categories, kind=kind,
        )
        settings = await ledger.settings(guild_id)
        text = "Recurring grant created: " + schedule_line(schedule, settings)
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Recurring grant created", text)

    @schedule.command(name="list", description="This server's recurring grants.")
    async def schedule_list(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        schedules = await ledger.schedules(guild_id)
        embed = discord.Embed(title="Recurring grants", colour=GREEN)
        embed.description = "\n".join(schedule_line(s, settings) for s in schedules)[:4000] or (
            "None yet. Add one with `/credits schedule add`."
        )
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @schedule.command(name="remove", description="Stop a recurring grant.")
    @app_commands.describe(id="The recurring grant's number, from /credits schedule list.")
    async def schedule_remove(self, interaction: discord.Interaction, id: app_commands.Range[int, 1]) -> None:
        ledger = ledger_of(interaction)
        schedule = await ledger.remove_schedule(
            guild_id_of(interaction), id, actor_id=interaction.user.id, key=key_of(interaction)
        )
        text = f"Recurring grant `#{schedule.id}` to <@&{schedule.role_id}> stopped."
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Recurring grant removed", text)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Credits(bot))
