"""/shop and /buy (preview, then Confirm / Cancel). /orders and /cancel: cogs/orders.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot import orders as order_text
from bot.discordbot.errors import record_committed, report_error
from bot.discordbot.lines import item_line
from bot.discordbot.options import Category, ItemInput, category_autocomplete, resolve_item
from bot.discordbot.render import BLUE, GREEN, ORANGE, error_text, money, ts
from bot.discordbot.roles import grant_refusal
from bot.discordbot.ui import bot_of, delivery_of, guild_id_of, key_of, ledger_of, send_paged
from bot.domain import delivery as deliveries
from bot.domain import limits
from bot.domain.errors import Conflict, PlanChanged, UserError
from bot.domain.models import CheckoutPreview, GuildSettings, Order
from bot.domain.orders import MAX_QUANTITY

log = logging.getLogger(__name__)
PREVIEW_SECONDS = 120
#: At most this many items on one /shop page; fewer when their texts would not fit one embed.
ITEMS_PER_PAGE = 10
ITEM_SEPARATOR = "\n\n"
#: What the preview says of an item the bot does not deliver at once.
DELIVERY_NOTES = {
    "staff": "By the staff: your order waits until a moderator fulfils it, and you get a DM then.",
    "code": "A code, shown only to you as soon as you confirm (and in /orders).",
}
STAFF_NOTE = (
    "Your order waits for the staff: you get a DM once a moderator fulfils it. Changed your mind? "
    "`/cancel` it while it waits, for a full refund."
)


def choice_label(name: str, price: str, category: str, sold_out: bool) -> str:
    """`Name — price (category) · sold out` in Discord's 100 characters: the price and "sold out"
    always show; a long name and category are cut with "…", the name keeping the larger share."""
    price_part = f" — {price}"
    sold = " · sold out" if sold_out else ""
    room = fit.CHOICE_NAME - len(price_part) - len(sold) - len(" ()")  # for the name and the category
    category_room = max(room - len(name), min(len(category), room // 3))
    name_room = room - min(len(category), category_room)
    return f"{fit.clip(name, name_room)}{price_part} ({fit.clip(category, category_room)}){sold}"


async def item_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    settings = await ledger.settings(guild_id)
    needle = current.casefold().strip()
    choices = []
    for item in await ledger.items(guild_id):
        if needle and needle not in item.name.casefold() and needle not in item.category.casefold():
            continue
        label = choice_label(item.name, money(settings, item.price), item.category, item.stock == 0)
        choices.append(app_commands.Choice(name=fit.clip(label, fit.CHOICE_NAME), value=str(item.id)))
        if len(choices) == fit.CHOICES:
            break
    return choices


def preview_embed(preview: CheckoutPreview, settings: GuildSettings, lapses_at: int) -> discord.Embed:
    item = preview.item
    embed = discord.Embed(title=fit.clip(f"Buy {preview.quantity} × {item.name}?", fit.TITLE), colour=ORANGE)
    embed.add_field(name="Price", value=money(settings, preview.total))
    embed.add_field(name="Promotional credit applied", value=money(settings, preview.promo_applied))
    embed.add_field(name="Gift balance applied", value=money(settings, preview.gift_applied))
    if preview.forfeited:
        embed.add_field(
            name="Forfeited",
            value=f"{money(settings, preview.forfeited)} of one-time credit this purchase touches but does not use",
            inline=False,
        )
    embed.add_field(name="Balance after", value=money(settings, preview.balance_after), inline=False)
    if item.role_id:
        embed.add_field(name="You get the role", value=f"<@&{item.role_id}>", inline=False)
    if item.delivery in DELIVERY_NOTES:
        embed.add_field(name="Delivery", value=DELIVERY_NOTES[item.delivery], inline=False)
    embed.set_footer(text="Nothing is charged until you confirm.")
    embed.description = f"This preview lapses {ts(lapses_at)}."
    return embed


def receipt_embed(order: Order, settings: GuildSettings, note: str = "", code: str | None = None) -> discord.Embed:
    """The receipt; ``code`` is the code a code item's purchase took, for the buyer's eyes only
    (the receipt replaces the ephemeral preview)."""
    refunded = order.status == "refunded"
    status = f" ({order_text.status_word(order)})" if order.status in ("refunded", "pending") else ""
    title = f"Order #{order.id}{status}: {order.quantity} × {order.item_name}"
    embed = discord.Embed(title=fit.clip(title, fit.TITLE), colour=ORANGE if refunded else GREEN)
    embed.add_field(name="Paid", value=money(settings, order.total))
    embed.add_field(name="Promotional credit", value=money(settings, order.promo_applied))
    embed.add_field(name="Gift balance", value=money(settings, order.gift_applied))
    if order.forfeited:
        embed.add_field(name="Forfeited", value=money(settings, order.forfeited))
    if code is not None:
        embed.add_field(name="Your code", value=order_text.code_text(code), inline=False)
        embed.set_footer(text="Only you can see this. /orders shows your code again.")
    if note:
        embed.description = fit.clip(note, fit.DESCRIPTION)
    return embed


def purchase_summary(order: Order, settings: GuildSettings) -> str:
    """What a committed purchase did, in words fit for a followup or a DM (SPEC §7)."""
    bought = f"{order.quantity} × {order.item_name}"
    if order.status == "refunded":
        return fit.clip(
            f"Order #{order.id} ({bought}) was paid and then refunded automatically: "
            f"{money(settings, order.total)} is back in your balance. See /orders.",
            fit.CONTENT,
        )
    if order.status == "pending":
        return fit.clip(
            f"You ordered {bought} for {money(settings, order.total)} (order #{order.id}); it waits for the "
            "staff. See /orders.",
            fit.CONTENT,
        )
    return fit.clip(
        f"You bought {bought} for {money(settings, order.total)} (order #{order.id}). See /orders.", fit.CONTENT
    )


async def role_note(interaction: discord.Interaction, order: Order) -> tuple[Order, str]:
    """Wait briefly for the order's role, which the delivery worker gives from the database (the
    purchase recorded it), and say what happened: given, on its way, or refunded because it
    cannot be given (the order as it is now comes back with the words)."""
    assert order.role_id is not None
    role = f"<@&{order.role_id}>"
    grant = await delivery_of(interaction, order.guild_id, order.id, deliveries.ADD_ROLE)
    if grant is None or grant.status == "done":
        return order, f"You now have {role}."
    if grant.status == "pending":
        return order, (
            f"{role} is on its way: Discord is slow right now. If it cannot be given, your order is "
            "refunded automatically and you get a DM."
        )
    current = await ledger_of(interaction).order(order.guild_id, order.id) or order
    if current.status == "refunded":
        why = deliveries.describe(grant.reason)
        return current, f"Your order was refunded automatically because {why}. Please tell a moderator."
    return current, ""


class ConfirmPurchase(discord.ui.View):
    """Confirm / Cancel under a preview. Only the buyer may press. Confirm twice buys once: clicks
    are handled one at a time and a later click shows the first click's outcome; across restarts
    the purchase's idempotency key (the /buy interaction's id) still makes it apply once.

    Confirm applies exactly the preview's plan (SPEC §3). When the member's credit or the item
    changed since, nothing is charged and the message becomes a new preview with fresh buttons
    (`revision` 2, 3, …): a click already on its way to the old buttons shows the new preview and
    never confirms it unseen."""

    LAPSED = "This preview lapsed and nothing was charged. Run `/buy` again."

    def __init__(
        self, origin: discord.Interaction, preview: CheckoutPreview, lapses_at: int, revision: int = 1
    ) -> None:
        super().__init__(timeout=PREVIEW_SECONDS)
        self.origin = origin
        self.item_id = preview.item.id
        self.quantity = preview.quantity
        self.plan = preview.plan  # what the member agreed to: these lots, this split, these forfeits
        self.lapses_at = lapses_at
        self.revision = revision
        self.key = key_of(origin, "buy")
        self._lock = asyncio.Lock()
        self._outcome: dict[str, Any] | None = None  # what the preview became, once decided
        self._committed: str | None = None  # what the purchase did, once it committed
        self._successor: ConfirmPurchase | None = None  # the new preview, when the plan changed
        # Stable ids per preview: readable in logs and tests, and never shared by two previews.
        suffix = "" if revision == 1 else f":{revision}"
        self.confirm.custom_id = f"buy:confirm:{origin.id}{suffix}"
        self.cancel.custom_id = f"buy:cancel:{origin.id}{suffix}"

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.origin.user.id:
            await interaction.response.send_message("Only the buyer can confirm this purchase.", ephemeral=True)
            return False
        return True

    async def _purchase(self, interaction: discord.Interaction) -> dict[str, Any]:
        """Buy, wait briefly for the role (refunded when it cannot be given) and return the message
        it leaves."""
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        if ledger.now() > self.lapses_at:
            return {"content": self.LAPSED, "embed": None}
        try:
            order = await ledger.checkout(
                guild_id, interaction.user.id, self.item_id, self.quantity, key=self.key, expected=self.plan
            )
        except PlanChanged as exc:
            # Nothing was written: show the purchase as it would be now, to confirm anew.
            lapses_at = ledger.now() + PREVIEW_SECONDS
            self._successor = ConfirmPurchase(self.origin, exc.preview, lapses_at, self.revision + 1)
            return {
                "content": fit.clip(
                    f"Nothing was charged. {error_text(exc)} Check the new preview below.", fit.CONTENT
                ),
                "embed": preview_embed(exc.preview, settings, lapses_at),
                "view": self._successor,
            }
        except UserError as exc:
            return {"content": fit.clip(f"Nothing was charged. {error_text(exc)}", fit.CONTENT), "embed": None}
        # Paid: from here on, an answer that fails must say so, not "nothing was changed" (SPEC §7).
        self._committed = purchase_summary(order, settings)
        record_committed(interaction, self._committed)
        note = ""
        code = None
        if order.role_id is not None and order.status == "completed":
            order, note = await role_note(interaction, order)
            self._committed = purchase_summary(order, settings)  # refunded meanwhile: says so
            record_committed(interaction, self._committed)
        elif order.status == "pending":
            bot_of(interaction).deliveries.kick(guild_id, order.id)  # the post to the staff goes out now
            note = STAFF_NOTE
        if order.delivery == "code" and order.status == "completed":
            code = await ledger.order_code(guild_id, interaction.user.id, order.id)
        if order.status == "completed":
            bot_of(interaction).dispatch("purchase_completed", order.to_dict())
        return {"content": None, "embed": receipt_embed(order, settings, note, code)}

    def _latest(self) -> ConfirmPurchase:
        """The preview whose outcome the message should show: this one, or the new preview it
        became (and so on) once that one was decided too."""
        view = self
        while view._successor is not None and view._successor._outcome is not None:
            view = view._successor
        return view

    async def _show_outcome(self, interaction: discord.Interaction) -> None:
        """Put the outcome on the preview. A click that shows a purchase (even another click's)
        records it first, so a failed edit tells the member what was bought, not "nothing"."""
        latest = self._latest()
        assert latest._outcome is not None
        if latest._committed is not None:
            record_committed(interaction, latest._committed)
        await interaction.edit_original_response(**{"view": None, **latest._outcome})
        if self._successor is not None:
            self.stop()  # the new preview is shown: these buttons are gone (till then they retry)

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        # Acknowledged first: waiting for the role can take a moment. If Discord refuses even
        # this, nothing is bought and the preview's buttons still work.
        await interaction.response.defer()
        async with self._lock:
            if self._outcome is None:
                self._outcome = await self._purchase(interaction)
                if self._successor is None:
                    self.stop()
        await self._show_outcome(interaction)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button[Any]) -> None:
        await interaction.response.defer()
        async with self._lock:  # a Confirm being handled wins; its outcome is shown instead
            if self._outcome is None:
                self._outcome = {"content": "Cancelled. Nothing was charged.", "embed": None}
                self.stop()
        await self._show_outcome(interaction)

    async def on_timeout(self) -> None:
        if self._outcome is not None or self._lock.locked():
            return
        with contextlib.suppress(discord.HTTPException):
            await self.origin.edit_original_response(content=self.LAPSED, embed=None, view=None)

    async def on_error(self, interaction: discord.Interaction, error: Exception, item: Any) -> None:
        await report_error(interaction, error)


class Shop(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot

    @app_commands.command(name="shop", description="What you can buy here with your credit.")
    @app_commands.describe(category=f"Only show items of this category (up to {limits.CATEGORY} characters).")
    @app_commands.autocomplete(category=category_autocomplete)
    @app_commands.guild_only()
    async def shop(self, interaction: discord.Interaction, category: Category | None = None) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        items = await ledger.items(guild_id, category)
        # Up to ITEMS_PER_PAGE items a page, fewer when their texts would pass one description
        # (500-character descriptions fit about five); every item whole, on some page.
        lines = [item_line(item, settings) for item in items]
        pages = fit.pack_pages(lines, fit.DESCRIPTION, separator=ITEM_SEPARATOR, per_page=ITEMS_PER_PAGE) or [""]
        shown_category = fit.clip(category, limits.CATEGORY) if category else ""

        async def render(page: int) -> tuple[discord.Embed, int]:
            page = min(max(page, 1), len(pages))
            shown = pages[page - 1]
            title = "Shop" + (f": {shown_category}" if category else "")
            embed = discord.Embed(title=fit.clip(title, fit.TITLE), colour=BLUE)
            if shown:
                embed.description = shown
            elif category:
                embed.description = f"No items in `{shown_category}`. Try `/shop` without a category."
            else:
                embed.description = "The shop is empty for now."
            embed.set_footer(text=f"Buy with /buy · page {page} of {len(pages)}")
            return embed, len(pages)

        await send_paged(interaction, render)

    @app_commands.command(name="buy", description="Buy an item with your credit (you confirm first).")
    @app_commands.describe(item="The item to buy: pick it as you type its name.", quantity="How many (default 1).")
    @app_commands.autocomplete(item=item_autocomplete)
    @app_commands.guild_only()
    async def buy(
        self,
        interaction: discord.Interaction,
        item: ItemInput,
        quantity: app_commands.Range[int, 1, MAX_QUANTITY] = 1,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        chosen = await resolve_item(interaction, item)
        settings = await ledger.settings(guild_id)
        preview = await ledger.preview(guild_id, interaction.user.id, chosen.id, quantity)
        guild = interaction.guild
        if chosen.role_id and guild is not None and grant_refusal(guild.get_role(chosen.role_id), guild.me) is not None:
            raise Conflict(
                "item_role_unassignable",
                "{item:b} gives a role the bot cannot assign right now. Please tell a moderator.",
                item=chosen.name,
            )
        lapses_at = ledger.now() + PREVIEW_SECONDS
        view = ConfirmPurchase(interaction, preview, lapses_at)
        await interaction.response.send_message(
            embed=preview_embed(preview, settings, lapses_at), view=view, ephemeral=True
        )


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Shop(bot))
