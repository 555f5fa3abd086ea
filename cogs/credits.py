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

from bot.discordbot import fit
from bot.discordbot.charts import weekly_chart_png
from bot.discordbot.lines import entry_line, lot_line
from bot.discordbot.options import Amount, Categories, Reason, When, category_autocomplete
from bot.discordbot.render import BLUE, GREEN, money, ts
from bot.discordbot.roles import credit_holders
from bot.discordbot.ui import (
    ModeratorCog,
    answer_committed,
    bot_of,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
    moderator_predicate,
    page_of_lines,
    post_audit,
    send_paged,
)
from bot.domain import limits
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.models import GuildSettings, Lot, Schedule
from bot.domain.timeparse import from_unix

Kind = Literal["promo", "gift"]
INSPECT_PAGE = 10
#: Recurring grants on one page of /credits schedule list (fewer when their lines are long).
SCHEDULE_PAGE = 10
#: Promo codes listed in /credits report, most redeemed first.
REPORT_CODES = 15
#: How much of a revocation's answer its lot numbers may take: whole numbers, then "… and N more".
REVOKED_LOTS_SHOWN = 600
CATEGORIES_HELP = f"comma-separated (up to {limits.CATEGORIES_PER_LIST})"
#: The name of an embed field that goes on with the one above it.
BLANK = "\u200b"


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
            choices.append(app_commands.Choice(name=fit.clip(label, fit.CHOICE_NAME), value=lot.id))
            if len(choices) == fit.CHOICES:
                break
    return choices


def lots_field(lots: Sequence[Lot], settings: GuildSettings, now: int, limit: int = fit.FIELD_VALUE) -> str:
    """As many lot lines as fit in an embed field, then how many more there are."""
    if not lots:
        return "No active lots."
    return fit.fit_lines([lot_line(lot, settings, now) for lot in lots], limit)


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
        categories=f"Only usable on these shop categories, {CATEGORIES_HELP}. Empty: any.",
        one_time="Whatever one purchase leaves of it is forfeited.",
        kind="promo (default; spent first, can be restricted) or gift (pays for anything).",
        reason=f"Shown to the member in their history (up to {limits.REASON} characters).",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        amount: Amount,
        expires: When | None = None,
        starts: When | None = None,
        categories: Categories | None = None,
        one_time: bool = False,
        kind: Kind = "promo",
        reason: Reason | None = None,
    ) -> None:
        if member.bot:
            raise InvalidInput("bot_member", "Bots can't hold credit.")
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.grant(
            guild_id,
            member.id,
            amount,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            kind=kind,
            expires=expires,
            starts=starts,
            categories=categories,
            one_time=one_time,
            reason=reason,
        )
        settings = await ledger.settings(guild_id)
        lot = await ledger.get_lot(guild_id, result.first_lot_id)
        line = lot_line(lot, settings, ledger.now()) if lot else ""
        text = f"Granted {money(settings, result.amount)} of {kind} credit to {member.mention}.\n{line}"
        await answer_committed(
            interaction, fit.clip(text, fit.CONTENT), audit="Credit granted", audit_fields={"Reason": reason or "—"}
        )

    @credits.command(name="grant-role", description="Give every member of a role credit, all at once.")
    @app_commands.describe(
        role="Everyone with this role gets the credit.",
        amount="How much each member gets.",
        expires="When it expires: a duration like 30d, or a date. Empty: never.",
        starts="When it becomes usable. Empty: now.",
        categories=f"Only usable on these shop categories, {CATEGORIES_HELP}.",
        one_time="Whatever one purchase leaves of it is forfeited.",
        kind="promo (default) or gift.",
        reason=f"Shown to members in their history (up to {limits.REASON} characters).",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def grant_role(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        amount: Amount,
        expires: When | None = None,
        starts: When | None = None,
        categories: Categories | None = None,
        one_time: bool = False,
        kind: Kind = "promo",
        reason: Reason | None = None,
    ) -> None:
        bot = bot_of(interaction)
        if not bot.members_intent:
            raise Conflict(
                "members_intent_off",
                "I can't see role members: the Server Members intent is off. The bot's owner can turn it on "
                "in the Discord developer portal (Bot → Privileged Gateway Intents → Server Members Intent).",
            )
        # Right after a start Discord is still sending the member list: a role would look smaller
        # than it is. Grant to all of it or to nobody.
        if not bot.member_list_complete(interaction.guild):
            await interaction.response.defer(ephemeral=True, thinking=True)
            if not await bot.complete_member_list(interaction.guild):
                raise Conflict(
                    "members_loading",
                    "This server's members are still loading (Discord sends them in batches after the bot "
                    "starts): try again in a minute. Nothing was granted.",
                )
        members = credit_holders(role)
        if not members:
            raise InvalidInput("role_has_no_members", "Nobody (apart from bots) has {role:role}.", role=role.id)
        if not interaction.response.is_done():
            await interaction.response.defer(ephemeral=True, thinking=True)
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.grant_many(
            guild_id,
            members,
            amount,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            kind=kind,
            expires=expires,
            starts=starts,
            categories=categories,
            one_time=one_time,
            reason=reason,
            action="grant-role",
        )
        settings = await ledger.settings(guild_id)
        expiry = f", expiring {ts(result.expires_at)}" if result.expires_at else ""
        text = (
            f"Granted {money(settings, result.amount)} of {kind} credit to each of the {result.count} members "
            f"of {role.mention}{expiry}."
        )
        await answer_committed(
            interaction, text, audit="Credit granted to a role", audit_fields={"Reason": reason or "—"}
        )

    @credits.command(name="revoke", description="Take back credit: a whole lot, or an amount in spending order.")
    @app_commands.describe(
        member="Whose credit.",
        reason=f"Why; shown to the member in their history (up to {limits.REASON} characters).",
        lot="The lot to void (see /credits inspect). Empty: take the amount in spending order.",
        amount="How much. Empty with a lot: all that is left of it.",
    )
    @app_commands.autocomplete(lot=lot_autocomplete)
    async def revoke(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        reason: Reason,
        lot: app_commands.Range[int, 1] | None = None,
        amount: Amount | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.revoke(
            guild_id,
            member.id,
            reason=reason,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            lot_id=lot,
            amount=amount,
        )
        settings = await ledger.settings(guild_id)
        lots = fit.fit_lines(
            [f"`#{lot_id}`" for lot_id in dict.fromkeys(c.lot_id for c in result.changes)],
            REVOKED_LOTS_SHOWN,
            separator=", ",
        )
        text = f"Revoked {money(settings, result.amount)} from {member.mention} (lots {lots})."
        await answer_committed(interaction, text, audit="Credit revoked", audit_fields={"Reason": reason})

    @credits.command(name="extend", description="Change when a lot expires.")
    @app_commands.describe(
        lot="The lot (see /credits inspect).",
        expires="The new expiry: a duration from now like 30d, or a date like 2026-12-31.",
        reason=f"Why; kept in the ledger (up to {limits.REASON} characters).",
        member="Whose lot (helps the lot list as you type).",
    )
    @app_commands.autocomplete(lot=lot_autocomplete)
    async def extend(
        self,
        interaction: discord.Interaction,
        lot: app_commands.Range[int, 1],
        expires: When,
        reason: Reason | None = None,
        member: discord.Member | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        if member is not None:
            chosen = await ledger.get_lot(guild_id, lot)
            if chosen is not None and chosen.user_id != member.id:
                raise NotFound(
                    "lot_of_another_member", "Lot #{lot} is not one of {member:user}'s lots.", lot=lot, member=member.id
                )
        result = await ledger.extend(
            guild_id, lot, expires, actor_id=interaction.user.id, key=key_of(interaction), reason=reason
        )
        text = (
            f"Lot `#{result.lot_id}` of <@{result.user_id}> now expires {ts(result.new_expires_at, 'f')} "
            f"({ts(result.new_expires_at)}); it was {ts(result.old_expires_at, 'f')}."
        )
        await answer_committed(interaction, text, audit="Expiry changed", audit_fields={"Reason": reason or "—"})

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
            embed = discord.Embed(title=fit.clip(f"Credit of {member.display_name}", fit.TITLE), colour=BLUE)
            embed.add_field(name="Gift", value=money(settings, balance.gift))
            embed.add_field(name="Promotional", value=money(settings, balance.promo))
            embed.add_field(name="Upcoming", value=money(settings, balance.upcoming))
            embed.set_footer(text=f"Member id {member.id}")
            # A page of the ledger is ten whole entries, in as many fields as their reasons need; the
            # lots get what that leaves of a message's 6,000 characters (never more than a field).
            ledger_name = f"Ledger (page {history.page} of {history.pages})"
            entries = fit.pack_pages([entry_line(e, settings) for e in history.items], fit.FIELD_VALUE)
            entries = entries or ["No entries."]
            names = [ledger_name] + [BLANK] * (len(entries) - 1)
            room = fit.EMBEDS_TOTAL - len(embed) - len("Active lots") - sum(map(len, names + entries))
            lots = lots_field(balance.lots, settings, now, min(fit.FIELD_VALUE, room))
            embed.add_field(name="Active lots", value=lots, inline=False)
            for name, value in zip(names, entries, strict=True):
                embed.add_field(name=name, value=value, inline=False)
            return embed, history.pages

        await send_paged(interaction, render, check=moderator_predicate)

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
        embed.add_field(name=BLANK, value=BLANK)
        embed.add_field(name="Expiring in 7 days", value=money(settings, report.expiring_7d))
        embed.add_field(name="Expiring in 30 days", value=money(settings, report.expiring_30d))
        embed.add_field(name="Gift cards redeemed", value=str(report.gift_cards_redeemed))
        backlog = (
            f"{report.pending_orders} order{'' if report.pending_orders == 1 else 's'}, "
            f"{money(settings, report.pending_value)} paid: see /fulfil queue"
            if report.pending_orders
            else "none"
        )
        embed.add_field(name="Staff orders waiting", value=backlog, inline=False)
        last = report.weeks[-4:]
        weekly = "\n".join(
            f"{ts(w.week_start, 'd')}: +{money(settings, w.granted)} granted, {money(settings, w.spent)} spent, "
            f"{money(settings, w.expired)} expired"
            for w in last
        )
        embed.add_field(name="Last 4 weeks", value=weekly or "—", inline=False)
        codes = [f"`{code}`: {count}" for code, count in report.redemptions_per_code]
        if len(codes) > REPORT_CODES:  # the most redeemed first; the rest are in /promo list
            codes[REPORT_CODES:] = [f"{fit.and_more(len(codes) - REPORT_CODES)}: see /promo list"]
        codes_text = fit.clip("\n".join(codes), fit.FIELD_VALUE) or "No promo codes yet."
        embed.add_field(name="Redemptions per promo code", value=codes_text, inline=False)
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
        categories=f"Only usable on these shop categories, {CATEGORIES_HELP}.",
        kind="promo (default) or gift.",
    )
    @app_commands.autocomplete(categories=category_autocomplete)
    async def schedule_add(
        self,
        interaction: discord.Interaction,
        role: discord.Role,
        amount: Amount,
        rule: app_commands.Range[str, 1, limits.CRON_RULE],
        valid_days: app_commands.Range[int, 1, 36500] | None = None,
        categories: Categories | None = None,
        kind: Kind = "promo",
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        schedule = await ledger.add_schedule(
            guild_id,
            role.id,
            amount,
            rule,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            valid_days=valid_days,
            categories=categories,
            kind=kind,
        )
        settings = await ledger.settings(guild_id)
        text = "Recurring grant created: " + schedule_line(schedule, settings)
        await answer_committed(interaction, fit.clip(text, fit.CONTENT), audit="Recurring grant created")

    @schedule.command(name="list", description="This server's recurring grants.")
    async def schedule_list(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)

        async def render(page: int) -> tuple[discord.Embed, int]:
            settings = await ledger.settings(guild_id)
            schedules = await ledger.schedules(guild_id)
            embed = discord.Embed(title="Recurring grants", colour=GREEN)
            page, pages = page_of_lines(
                embed,
                [schedule_line(s, settings) for s in schedules],
                page,
                empty="None yet. Add one with `/credits schedule add`.",
                per_page=SCHEDULE_PAGE,
            )
            if pages > 1:
                embed.set_footer(text=f"Page {page} of {pages} · {len(schedules)} recurring grants")
            return embed, pages

        await send_paged(interaction, render, check=moderator_predicate)

    @schedule.command(name="remove", description="Stop a recurring grant.")
    @app_commands.describe(id="The recurring grant's number, from /credits schedule list.")
    async def schedule_remove(self, interaction: discord.Interaction, id: app_commands.Range[int, 1]) -> None:
        ledger = ledger_of(interaction)
        schedule = await ledger.remove_schedule(
            guild_id_of(interaction), id, actor_id=interaction.user.id, key=key_of(interaction)
        )
        text = f"Recurring grant `#{schedule.id}` to <@&{schedule.role_id}> stopped."
        await answer_committed(interaction, text, audit="Recurring grant removed")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Credits(bot))
