"""/shopadmin add | codes | edit | remove | refund: the server's shop (moderators)."""

from __future__ import annotations

import logging
from typing import Literal

import discord
from discord import app_commands
from discord.ext import commands

from bot.discordbot import fit
from bot.discordbot.errors import record_committed
from bot.discordbot.lines import item_line
from bot.discordbot.options import Amount, Category, ItemInput, Reason, category_autocomplete, one_of, resolve_item
from bot.discordbot.render import money
from bot.discordbot.roles import grant_refusal
from bot.discordbot.ui import (
    ModeratorCog,
    answer_committed,
    bot_of,
    delivery_of,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
    moderator_predicate,
)
from bot.domain import delivery as deliveries
from bot.domain import fulfilment, limits
from bot.domain.errors import InvalidInput

log = logging.getLogger(__name__)
REMOVED = " (removed)"
Delivery = Literal["instant", "staff", "code"]
#: What the answer of /shopadmin add says next, by delivery.
DELIVERY_NEXT = {
    "staff": "\nOrders of it wait in `/fulfil queue` (and are posted to the fulfilment channel) until a "
    "moderator fulfils or denies them.",
    "code": "\nIts stock is its codes: upload them with `/shopadmin codes` (until then it is sold out).",
}
NO_FULFILMENT_CHANNEL = (
    "\nOrders of it wait in `/fulfil queue`. Set `/settings fulfilment channel` to have each posted "
    "there too, with Fulfil and Deny buttons."
)


# Autocomplete skips command and cog checks: without its own, anyone could list these.
@app_commands.check(moderator_predicate)
async def any_item_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    needle = current.casefold().strip()
    items = await ledger.items(guild_id, include_inactive=True)
    return [
        app_commands.Choice(name=removed_label(item.name, item.active), value=str(item.id))
        for item in items
        if needle in item.name.casefold()
    ][: fit.CHOICES]


# Autocomplete skips command and cog checks: without its own, anyone could list these.
@app_commands.check(moderator_predicate)
async def code_item_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Code items only (removed ones too: codes can be added before an item is back on sale)."""
    ledger = ledger_of(interaction)
    needle = current.casefold().strip()
    items = await ledger.items(guild_id_of(interaction), include_inactive=True)
    return [
        app_commands.Choice(name=removed_label(item.name, item.active), value=str(item.id))
        for item in items
        if item.delivery == fulfilment.CODE and needle in item.name.casefold()
    ][: fit.CHOICES]


def decode_codes(data: bytes) -> str:
    """The text of an uploaded file of codes: UTF-8 (a byte-order mark is fine), else refused."""
    if len(data) > limits.CODE_FILE_BYTES:  # Discord said less, but the file is what counts
        raise InvalidInput(
            "code_file_too_large", "The file can be at most {limit:,} bytes.", limit=limits.CODE_FILE_BYTES
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(
            "code_file_not_text", "The file must be plain text (UTF-8), one code per line. Nothing was added."
        ) from None


def removed_label(name: str, active: bool) -> str:
    """The item's name in a choice's 100 characters, still saying "(removed)" when cut."""
    suffix = "" if active else REMOVED
    return fit.clip(name, fit.CHOICE_NAME - len(suffix)) + suffix


def assignable(role: discord.Role | None) -> int | None:
    """The id of a role the bot can give buyers; refused now rather than on every purchase."""
    if role is None:
        return None
    refusal = grant_refusal(role, role.guild.me)
    if refusal == deliveries.ROLE_MANAGED:
        raise InvalidInput(
            "role_managed",
            "I can't give {role:role}: nobody can be given @everyone or a managed role.",
            role=role.id,
        )
    if refusal is not None:
        raise InvalidInput(
            "role_not_assignable",
            "I can't give {role:role}: I need the Manage Roles permission, and my highest role must be "
            "above it (Server Settings → Roles).",
            role=role.id,
        )
    return role.id


class ShopAdmin(ModeratorCog):
    shopadmin = moderator_commands("shopadmin", "Manage the shop and refund orders (moderators).")

    @shopadmin.command(name="add", description="Add an item to the shop.")
    @app_commands.describe(
        name=f"The item's name (unique in this shop, up to {limits.ITEM_NAME} characters).",
        price="Its price in this server's currency.",
        category=f"Its category, e.g. roles, games, subscriptions (up to {limits.CATEGORY} characters).",
        stock="How many can be sold. Empty: unlimited.",
        role="A role the buyer gets.",
        limit="How many one member may buy. Empty: no limit.",
        description=f"A line shown in /shop (up to {limits.ITEM_DESCRIPTION} characters).",
        delivery="instant (default): bought at once; staff: a moderator fulfils it; code: a code from its stock.",
    )
    @app_commands.autocomplete(category=category_autocomplete)
    async def add(
        self,
        interaction: discord.Interaction,
        name: app_commands.Range[str, 1, limits.ITEM_NAME],
        price: Amount,
        category: Category,
        stock: app_commands.Range[int, 0] | None = None,
        role: discord.Role | None = None,
        limit: app_commands.Range[int, 1] | None = None,
        description: app_commands.Range[str, 0, limits.ITEM_DESCRIPTION] | None = None,
        delivery: Delivery = "instant",
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        item = await ledger.add_item(
            guild_id,
            name,
            price,
            category,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            stock=stock,
            role_id=assignable(role),
            limit=limit,
            description=description,
            delivery=delivery,
        )
        settings = await ledger.settings(guild_id)
        after = DELIVERY_NEXT.get(item.delivery, "")
        if item.delivery == fulfilment.STAFF and settings.fulfilment_channel_id is None:
            after = NO_FULFILMENT_CHANNEL
        text = fit.clip("Added to the shop: " + item_line(item, settings), fit.CONTENT - len(after)) + after
        await answer_committed(interaction, text, audit="Shop item added", audit_fields={"Delivery": item.delivery})

    @shopadmin.command(name="codes", description="Add codes to a code item's stock: a text file, one code per line.")
    @app_commands.describe(
        item="The code item.",
        file=(
            f"A UTF-8 text file, one code per line (up to {limits.CODES_PER_UPLOAD:,}, "
            f"each up to {limits.ITEM_CODE} characters)."
        ),
    )
    @app_commands.autocomplete(item=code_item_autocomplete)
    async def codes(self, interaction: discord.Interaction, item: ItemInput, file: discord.Attachment) -> None:
        chosen = await resolve_item(interaction, item, include_inactive=True)
        if chosen.delivery != fulfilment.CODE:
            raise InvalidInput(
                "not_a_code_item",
                "{item:b} is not a code item: only an item added with delivery {code:lit} takes codes.",
                item=chosen.name,
                code=fulfilment.CODE,
            )
        if file.size > limits.CODE_FILE_BYTES:  # refused before downloading it
            raise InvalidInput(
                "code_file_too_large", "The file can be at most {limit:,} bytes.", limit=limits.CODE_FILE_BYTES
            )
        # Downloading and storing a thousand codes can pass Discord's 3 seconds.
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = decode_codes(await file.read())
        ledger = ledger_of(interaction)
        upload = await ledger.upload_codes(
            guild_id_of(interaction), chosen.id, text, actor_id=interaction.user.id, key=key_of(interaction)
        )
        duplicates = (
            f" {upload.duplicates:,} duplicate{'' if upload.duplicates == 1 else 's'} skipped (already in its "
            "stock, sold before, or twice in the file)."
            if upload.duplicates
            else ""
        )
        summary = (
            f"Added {upload.added:,} code{'' if upload.added == 1 else 's'} to **{chosen.name}**.{duplicates} "
            f"It has {upload.stock:,} unused now."
        )
        await answer_committed(
            interaction,
            fit.clip(summary, fit.CONTENT),
            audit="Codes uploaded",
            audit_fields={
                "Item": fit.clip(chosen.name, limits.ITEM_NAME),
                "Added": f"{upload.added:,}",
                "Duplicates": f"{upload.duplicates:,}",
                "Unused now": f"{upload.stock:,}",
            },
        )

    @shopadmin.command(name="edit", description="Change an item; only the options you give change.")
    @app_commands.describe(
        item="The item to change.",
        name=f"New name (up to {limits.ITEM_NAME} characters).",
        price="New price.",
        category=f"New category (up to {limits.CATEGORY} characters).",
        stock="New stock (how many can still be sold).",
        unlimited_stock="True: no stock limit any more.",
        role="New role the buyer gets.",
        no_role="True: buying gives no role any more.",
        limit="New per-member limit.",
        no_limit="True: no per-member limit any more.",
        description=f"New description (up to {limits.ITEM_DESCRIPTION} characters).",
        active="False hides the item from the shop; True brings it back.",
    )
    @app_commands.autocomplete(item=any_item_autocomplete, category=category_autocomplete)
    async def edit(
        self,
        interaction: discord.Interaction,
        item: ItemInput,
        name: app_commands.Range[str, 1, limits.ITEM_NAME] | None = None,
        price: Amount | None = None,
        category: Category | None = None,
        stock: app_commands.Range[int, 0] | None = None,
        unlimited_stock: bool = False,
        role: discord.Role | None = None,
        no_role: bool = False,
        limit: app_commands.Range[int, 1] | None = None,
        no_limit: bool = False,
        description: app_commands.Range[str, 0, limits.ITEM_DESCRIPTION] | None = None,
        active: bool | None = None,
    ) -> None:
        one_of(stock, unlimited_stock, "stock", "unlimited_stock")
        one_of(role, no_role, "role", "no_role")
        one_of(limit, no_limit, "limit", "no_limit")
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        chosen = await resolve_item(interaction, item, include_inactive=True)
        updated = await ledger.edit_item(
            guild_id,
            chosen.id,
            actor_id=interaction.user.id,
            key=key_of(interaction),
            name=name,
            price=price,
            category=category,
            stock=stock,
            role_id=assignable(role),
            limit=limit,
            description=description,
            active=None if active is None else int(active),
            clear_stock=unlimited_stock,
            clear_limit=no_limit,
            clear_role=no_role,
        )
        settings = await ledger.settings(guild_id)
        hidden = "" if updated.active else " (not in the shop)"
        text = fit.clip("Updated: " + item_line(updated, settings), fit.CONTENT - len(hidden)) + hidden
        await answer_committed(interaction, text, audit="Shop item edited")

    @shopadmin.command(name="remove", description="Take an item out of the shop (past orders keep it).")
    @app_commands.describe(item="The item to remove.")
    @app_commands.autocomplete(item=any_item_autocomplete)
    async def remove(self, interaction: discord.Interaction, item: ItemInput) -> None:
        ledger = ledger_of(interaction)
        chosen = await resolve_item(interaction, item)
        removed = await ledger.remove_item(
            guild_id_of(interaction), chosen.id, actor_id=interaction.user.id, key=key_of(interaction)
        )
        text = f"**{removed.name}** is no longer sold. Orders of it stay in the books and can still be refunded."
        await answer_committed(interaction, text, audit="Shop item removed")

    @shopadmin.command(name="refund", description="Refund an order entirely and take back its role.")
    @app_commands.describe(
        order="The order number, as shown by /orders and in the export.",
        reason=f"Why; kept with the refund in the ledger and the audit log (up to {limits.REASON} characters).",
    )
    async def refund(
        self,
        interaction: discord.Interaction,
        order: app_commands.Range[int, 1],
        reason: Reason | None = None,
    ) -> None:
        # Taking the role back is a Discord call that can be slow (rate limits): answer within 3 s first.
        await interaction.response.defer(ephemeral=True, thinking=True)
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        result = await ledger.refund(
            guild_id, order, actor_id=interaction.user.id, key=key_of(interaction), reason=reason
        )
        settings = await ledger.settings(guild_id)
        refunded = result.order
        kept = (
            f" {money(settings, result.expired_again)} had expired meanwhile and stays expired."
            if result.expired_again
            else ""
        ) + (
            f" {money(settings, result.revoked_again)} came from revoked credit and stays revoked."
            if result.revoked_again
            else ""
        )
        text = (
            f"Order `#{refunded.id}` ({refunded.quantity} × {refunded.item_name}) of <@{refunded.user_id}> refunded: "
            f"{money(settings, result.returned)} back to their balance.{kept}"
        )
        # Refunded: the error handler must say so if answering fails, not "nothing was changed"
        # (SPEC §7). The refund recorded taking the role back; the delivery worker does it.
        record_committed(interaction, text)
        if refunded.role_id is not None:
            text += await role_taken_back(interaction, refunded.guild_id, refunded.id, refunded.role_id)
        else:  # the DM that tells the member (and the edit of a staff order's post) go out now
            bot_of(interaction).deliveries.kick(refunded.guild_id, refunded.id)
        await answer_committed(
            interaction, fit.clip(text, fit.CONTENT), audit="Order refunded", audit_fields={"Reason": reason or "—"}
        )


async def role_taken_back(interaction: discord.Interaction, guild_id: int, order_id: int, role_id: int) -> str:
    """Wait briefly for the refund's removal of the role and say what happened."""
    role = f"<@&{role_id}>"
    removal = await delivery_of(interaction, guild_id, order_id, deliveries.REMOVE_ROLE)
    if removal is None:  # the role had not been given yet: its grant was cancelled instead
        return f" {role} had not been given yet and never will be."
    if removal.status == "pending":
        return f" {role} will be removed shortly (Discord is slow right now)."
    if removal.status == "done" and removal.reason == deliveries.MEMBER_LEFT:
        return " The member has left, so there was no role to remove."
    if removal.status == "done" and removal.reason is not None:
        return f" {role} is gone: {deliveries.describe(removal.reason)}."
    if removal.status == "done":
        return f" {role} removed."
    log.warning("could not remove role %s after the refund of order %s: %s", role_id, order_id, removal.reason)
    return f" I could not remove {role} ({deliveries.describe(removal.reason)}): please remove it by hand."


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(ShopAdmin(bot))
