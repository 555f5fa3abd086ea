"""/fulfil queue | done | deny, and the Fulfil / Deny buttons on the fulfilment channel's posts and
on the queue's pages (moderators).

The buttons are DynamicItems, registered in setup: their custom ids carry the order id, so a post
made weeks ago, by an earlier run of the bot, still works. Every click checks again that the
clicker is a moderator (Manage Server or the moderator role, as now). Two moderators acting at
once act once: the ledger moves a pending order only, and the second is told who was first and
when (the Conflict's parameters). Deny asks for the reason in a modal; the member is refunded in
full and told why. The post is edited by the delivery worker (the `edit_post` delivery recorded
with the change), and every action goes to the audit trail and the audit channel.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot import orders as order_text
from bot.discordbot.errors import record_committed, report_error
from bot.discordbot.options import PageNumber, Reason
from bot.discordbot.render import ORANGE, money
from bot.discordbot.ui import (
    ModeratorCog,
    NotModerator,
    answer_committed,
    delivery_of,
    guild_id_of,
    is_moderator,
    key_of,
    ledger_of,
    moderator_commands,
    moderator_predicate,
    send_paged,
)
from bot.domain import delivery as deliveries
from bot.domain import fulfilment, limits
from bot.domain.errors import NotFound
from bot.domain.models import Order, RefundResult

log = logging.getLogger(__name__)

#: Orders on one page of /fulfil queue: one row of Fulfil / Deny each, the fifth row for the pages.
QUEUE_PAGE = 4
#: Pending orders the order autocomplete looks through (oldest first), besides an order typed by id.
AUTOCOMPLETE_SCAN = 100
#: Seconds a moderator has to write the reason of a denial.
MODAL_TIMEOUT = 600
Note = app_commands.Range[str, 1, limits.ORDER_NOTE]


# Autocomplete skips command and cog checks: without its own, anyone could list these.
@app_commands.check(moderator_predicate)
async def pending_order_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[int]]:
    """Pending staff orders, oldest first, matching the typed id, item or member."""
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    settings = await ledger.settings(guild_id)
    needle = current.strip().lstrip("#").casefold()
    found: list[Order] = []
    if needle.isdigit():
        typed = await ledger.order(guild_id, int(needle))
        if typed is not None and typed.status == fulfilment.PENDING:
            found.append(typed)
    page = await ledger.pending_orders(guild_id, page=1, per_page=AUTOCOMPLETE_SCAN)
    guild = interaction.guild
    choices: list[app_commands.Choice[int]] = []
    for order in [*found, *(o for o in page.items if o not in found)]:
        member = guild.get_member(order.user_id) if guild else None
        name = member.display_name if member else ""
        if needle and not any(needle in text.casefold() for text in (str(order.id), order.item_name, name)):
            continue
        choices.append(app_commands.Choice(name=order_text.choice_label(order, settings, name), value=order.id))
        if len(choices) == fit.CHOICES:
            break
    return choices


async def told(interaction: discord.Interaction, order: Order, action: str) -> str:
    """Wait briefly for the DM that tells the member (the delivery worker sends it, and edits the
    post meanwhile) and say how it went."""
    dm = await delivery_of(interaction, order.guild_id, order.id, action)
    if dm is None or dm.status == "cancelled":
        return ""
    if dm.status == "done":
        return " They were told by DM."
    if dm.status == "pending":
        return " They get a DM about it shortly."
    return f" They could not be told by DM ({deliveries.describe(dm.reason)}): please let them know."


def refund_words(result: RefundResult, settings: Any) -> str:
    kept = ""
    if result.expired_again:
        kept += f" {money(settings, result.expired_again)} had expired meanwhile and stays expired."
    if result.revoked_again:
        kept += f" {money(settings, result.revoked_again)} came from revoked credit and stays revoked."
    return f"{money(settings, result.returned)} back to their balance.{kept}"


async def fulfil_order(interaction: discord.Interaction, order_id: int, note: str | None) -> None:
    """Fulfil a pending order (a command or a click) and answer the moderator privately."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    ledger = ledger_of(interaction)
    order = await ledger.fulfil(
        guild_id_of(interaction), order_id, actor_id=interaction.user.id, key=key_of(interaction, "fulfil"), note=note
    )
    text = f"Order `#{order.id}` ({order_text.bought(order)}) of <@{order.user_id}> is fulfilled."
    record_committed(interaction, text)  # fulfilled: a failed answer must not say "nothing changed"
    text += await told(interaction, order, deliveries.DM_FULFILLED)
    await answer_committed(
        interaction,
        fit.clip(text, fit.CONTENT),
        audit="Order fulfilled",
        audit_fields={"Order": f"#{order.id}", "Member": f"<@{order.user_id}>", "Note": note or "—"},
    )


async def deny_order(interaction: discord.Interaction, order_id: int, reason: str) -> None:
    """Deny a pending order with its reason: a full refund; the member is told why."""
    if not interaction.response.is_done():
        await interaction.response.defer(ephemeral=True, thinking=True)
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    result = await ledger.deny(
        guild_id, order_id, reason, actor_id=interaction.user.id, key=key_of(interaction, "deny")
    )
    settings = await ledger.settings(guild_id)
    order = result.order
    text = (
        f"Order `#{order.id}` ({order_text.bought(order)}) of <@{order.user_id}> is denied: "
        f"{refund_words(result, settings)}"
    )
    record_committed(interaction, text)
    text += await told(interaction, order, deliveries.DM_DENIED)
    await answer_committed(
        interaction,
        fit.clip(text, fit.CONTENT),
        audit="Order denied",
        audit_fields={"Order": f"#{order.id}", "Member": f"<@{order.user_id}>", "Reason": reason},
    )


async def still_pending(interaction: discord.Interaction, order_id: int) -> Order:
    """The order, when a moderator may still act on it; else the refusal saying who was first."""
    order = await ledger_of(interaction).order(guild_id_of(interaction), order_id)
    if order is None:
        raise NotFound("no_such_order", "There is no order #{order} in this server.", order=order_id)
    fulfilment.check_staff_can_act(order)
    return order


async def check_moderator(interaction: discord.Interaction) -> None:
    """Every click and every modal checks again: a moderator may have lost the role meanwhile."""
    if not await is_moderator(interaction):
        raise NotModerator()


class DenyReason(discord.ui.Modal):
    """The reason of a denial, which the member reads in their DM."""

    def __init__(self, order: Order, opened_by: int) -> None:
        # Unique per opening: two moderators denying the same order each get their own modal.
        super().__init__(
            title=fit.clip(f"Deny order #{order.id}", 45),
            timeout=MODAL_TIMEOUT,
            custom_id=f"order:deny-reason:{order.id}:{opened_by}",
        )
        self.order_id = order.id
        self.reason: discord.ui.TextInput[DenyReason] = discord.ui.TextInput(
            label="Why? The member reads this in a DM.",
            style=discord.TextStyle.paragraph,
            min_length=1,
            max_length=limits.REASON,
            placeholder=fit.clip(f"{order.quantity} × {order.item_name}", 100),
            custom_id="reason",
        )
        self.add_item(self.reason)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await check_moderator(interaction)
        await deny_order(interaction, self.order_id, self.reason.value.strip() or self.reason.value)

    # Modal's own signature, which discord.py's stubs declare narrower than its base class's.
    async def on_error(self, interaction: discord.Interaction, error: Exception, /) -> None:  # type: ignore[override]
        await report_error(interaction, error)


class FulfilButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=order_text.FULFIL_TEMPLATE):
    def __init__(self, order_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Fulfil #{order_id}",
                style=discord.ButtonStyle.success,
                custom_id=order_text.FULFIL_ID.format(order_id=order_id),
            )
        )
        self.order_id = order_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> FulfilButton:
        return cls(int(match["order_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py only logs what a DynamicItem raises: the clicker gets the answer here.
        try:
            await check_moderator(interaction)
            await fulfil_order(interaction, self.order_id, None)
        except Exception as error:
            await report_error(interaction, error)


class DenyButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=order_text.DENY_TEMPLATE):
    def __init__(self, order_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=f"Deny #{order_id}",
                style=discord.ButtonStyle.danger,
                custom_id=order_text.DENY_ID.format(order_id=order_id),
            )
        )
        self.order_id = order_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> DenyButton:
        return cls(int(match["order_id"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        try:
            await check_moderator(interaction)
            # Already fulfilled or denied: say so now, not after the reason was written.
            order = await still_pending(interaction, self.order_id)
            await interaction.response.send_modal(DenyReason(order, interaction.id))
        except Exception as error:
            await report_error(interaction, error)


class Fulfil(ModeratorCog):
    fulfil = moderator_commands("fulfil", "Fulfil or deny the staff orders members placed (moderators).")

    @fulfil.command(name="queue", description="Pending staff orders, oldest first, with Fulfil / Deny buttons.")
    @app_commands.describe(page="Which page to show.")
    async def queue(self, interaction: discord.Interaction, page: PageNumber = 1) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        shown: list[Order] = []

        async def render(number: int) -> tuple[discord.Embed, int]:
            result = await ledger.pending_orders(guild_id, page=number, per_page=QUEUE_PAGE)
            shown[:] = result.items
            embed = discord.Embed(title="Fulfilment queue", colour=ORANGE)
            lines = [order_text.queue_line(order, settings) for order in result.items]
            # Four lines of at most ~200 characters: well inside one description.
            embed.description = (
                fit.fit_lines(lines, fit.DESCRIPTION) or "Nothing is waiting: every staff order is done."
            )
            total = f"{result.total} waiting" if result.total else "none waiting"
            embed.set_footer(text=f"{total} · oldest first · page {result.page} of {result.pages}")
            return embed, result.pages

        await send_paged(
            interaction, render, page, check=moderator_predicate, buttons=lambda: order_text.staff_rows(shown)
        )

    @fulfil.command(name="done", description="Mark a pending staff order fulfilled; the member gets a DM.")
    @app_commands.describe(
        order="The order number, as the queue and the post show it.",
        note=f"A note for the member, e.g. how to collect it (up to {limits.ORDER_NOTE} characters).",
    )
    @app_commands.autocomplete(order=pending_order_autocomplete)
    async def done(
        self, interaction: discord.Interaction, order: app_commands.Range[int, 1], note: Note | None = None
    ) -> None:
        await fulfil_order(interaction, order, note)

    @fulfil.command(name="deny", description="Deny a pending staff order: a full refund, and the member is told why.")
    @app_commands.describe(
        order="The order number, as the queue and the post show it.",
        reason=f"Why; the member reads it in a DM (up to {limits.REASON} characters).",
    )
    @app_commands.autocomplete(order=pending_order_autocomplete)
    async def deny(self, interaction: discord.Interaction, order: app_commands.Range[int, 1], reason: Reason) -> None:
        await deny_order(interaction, order, reason)


async def setup(bot: commands.Bot) -> None:
    # Registered for good: every post's and page's Fulfil / Deny, whenever it was sent.
    bot.add_dynamic_items(FulfilButton, DenyButton)
    await bot.add_cog(Fulfil(bot))
