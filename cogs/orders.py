"""/orders and /cancel: a member's orders with their status (and the code of a code item, which
only its buyer ever sees), and cancelling a staff order while it waits (a full refund).

Pending staff orders on a page of /orders have a Cancel button: a DynamicItem registered in setup,
so it works however long ago the page was opened. The ledger cancels only the clicker's own
pending order; one that was fulfilled, denied or cancelled meanwhile is refused, saying why.
"""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot import orders as order_text
from bot.discordbot.errors import record_committed, report_error
from bot.discordbot.options import PageNumber
from bot.discordbot.render import BLUE, money
from bot.discordbot.ui import answer_committed, bot_of, guild_id_of, key_of, ledger_of, send_paged
from bot.domain import fulfilment
from bot.domain.models import Order

#: Orders on one page of /orders. With the longest names and amounts, a refund's reason and a code
#: (limits.ITEM_CODE) on each, six still fit one description (4,096) whole.
ORDERS_PAGE = 6


async def own_pending_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    """The member's own pending staff orders, matching the typed id or item."""
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    settings = await ledger.settings(guild_id)
    needle = current.strip().lstrip("#").casefold()
    waiting = await ledger.member_orders_pending(guild_id, interaction.user.id)
    return [
        app_commands.Choice(name=order_text.choice_label(order, settings), value=order.id)
        for order in waiting
        if not needle or needle in str(order.id) or needle in order.item_name.casefold()
    ][: fit.CHOICES]


async def cancel_order(interaction: discord.Interaction, order_id: int) -> None:
    """Cancel the member's own pending order (a command or a click) and say what came back."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    result = await ledger.cancel(guild_id, interaction.user.id, order_id, key=key_of(interaction, "cancel"))
    settings = await ledger.settings(guild_id)
    order = result.order
    kept = (
        f" {money(settings, result.expired_again)} of it had expired meanwhile and stays expired."
        if result.expired_again
        else ""
    )
    text = (
        f"Order `#{order.id}` ({order_text.bought(order)}) is cancelled: {money(settings, result.returned)} "
        f"is back in your balance.{kept}"
    )
    record_committed(interaction, text)
    bot_of(interaction).deliveries.kick(guild_id, order.id)  # the staff's post says so, and the DM goes
    await answer_committed(interaction, fit.clip(text, fit.CONTENT))


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=order_text.CANCEL_TEMPLATE):
    def __init__(self, order_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Cancel #{order_id}",
                style=discord.ButtonStyle.secondary,
                custom_id=order_text.CANCEL_ID.format(order_id=order_id),
            )
        )
        self.order_id = order_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CancelButton:
        return cls(int(match["order_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py only logs what a DynamicItem raises: the member gets the answer here.
        try:
            await cancel_order(interaction, self.order_id)
        except Exception as error:
            await report_error(interaction, error)


class Orders(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="orders", description="Your orders in this server's shop, with their status.")
    @app_commands.describe(page="Which page to show.")
    @app_commands.guild_only()
    async def orders(self, interaction: discord.Interaction, page: PageNumber = 1) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        user_id = interaction.user.id
        settings = await ledger.settings(guild_id)
        shown: list[Order] = []

        async def render(number: int) -> tuple[discord.Embed, int]:
            result = await ledger.orders(guild_id, user_id, number, per_page=ORDERS_PAGE)
            shown[:] = result.items
            embed = discord.Embed(title="Your orders", colour=BLUE)
            # The buyer's own codes: this answer is ephemeral, and only ever shown to them.
            code_orders = [order.id for order in result.items if order.delivery == fulfilment.CODE]
            codes = await ledger.order_codes(guild_id, user_id, code_orders) if code_orders else {}
            lines = [order_text.member_line(order, settings, codes.get(order.id)) for order in result.items]
            embed.description = fit.fit_lines(lines, fit.DESCRIPTION) or "No orders yet. Browse `/shop`."
            waiting = any(order.status == fulfilment.PENDING for order in result.items)
            hint = " · cancel a waiting order with its button or /cancel" if waiting else ""
            embed.set_footer(text=f"Page {result.page} of {result.pages}{hint}")
            return embed, result.pages

        await send_paged(interaction, render, page, buttons=lambda: order_text.cancel_rows(shown))

    @app_commands.command(name="cancel", description="Cancel one of your staff orders while it waits: a full refund.")
    @app_commands.describe(order="The order: pick one of your waiting orders as you type.")
    @app_commands.autocomplete(order=own_pending_autocomplete)
    @app_commands.guild_only()
    async def cancel(self, interaction: discord.Interaction, order: app_commands.Range[int, 1]) -> None:
        await cancel_order(interaction, order)


async def setup(bot: commands.Bot) -> None:
    # Registered for good: the Cancel button of every page of /orders, whenever it was opened.
    bot.add_dynamic_items(CancelButton)
    await bot.add_cog(Orders(bot))
