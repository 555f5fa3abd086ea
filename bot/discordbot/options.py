"""Slash-command options that more than one cog takes: amounts, moments, categories (with their
autocomplete), reasons, codes, page numbers, a shop item (the autocomplete sends its id, a member
may type its name), and two options that exclude each other."""

from __future__ import annotations

import discord
from discord import app_commands

from bot.discordbot import fit
from bot.discordbot.ui import guild_id_of, ledger_of
from bot.domain import limits
from bot.domain.errors import InvalidInput, NotFound
from bot.domain.models import ShopItem

# Text options as Discord bounds them; the ledger parses and checks what they hold.
#: An amount in the server's currency, as typed ("25", "12.50").
Amount = app_commands.Range[str, 1, limits.AMOUNT_INPUT]
#: A moment: a duration from now ("30d") or a date ("2026-12-31").
When = app_commands.Range[str, 1, limits.WHEN_INPUT]
#: One shop category.
Category = app_commands.Range[str, 1, limits.CATEGORY]
#: Shop categories, comma-separated.
Categories = app_commands.Range[str, 1, limits.CATEGORIES_INPUT]
#: Why, kept in the ledger and shown in the audit post.
Reason = app_commands.Range[str, 1, limits.REASON]
#: A gift card or promo code as typed (case and dashes don't matter).
CodeInput = app_commands.Range[str, 1, limits.REDEEM_INPUT]
#: A shop item: its id from an item autocomplete, or its name typed in full (resolve_item).
ItemInput = app_commands.Range[str, 1, limits.ITEM_NAME]
#: A page number of a member's own list (/history, /orders).
PageNumber = app_commands.Range[int, 1, 100000]


async def category_autocomplete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    needle = current.casefold().strip()
    categories = await ledger_of(interaction).categories(guild_id_of(interaction))
    return [
        # Categories are at most limits.CATEGORY (50) characters, well inside a choice's 100.
        app_commands.Choice(name=fit.clip(c, fit.CHOICE_NAME), value=fit.clip(c, fit.CHOICE_VALUE))
        for c in categories
        if needle in c.casefold()
    ][: fit.CHOICES]


async def resolve_item(interaction: discord.Interaction, value: str, include_inactive: bool = False) -> ShopItem:
    """The autocomplete sends the item id; a member who typed a name gets it matched too."""
    ledger = ledger_of(interaction)
    guild_id = guild_id_of(interaction)
    text = value.strip()
    if text.isdigit():
        item = await ledger.item(guild_id, int(text))
        if item is not None and (item.active or include_inactive):
            return item
    for item in await ledger.items(guild_id, include_inactive=include_inactive):
        if item.name.casefold() == text.casefold():
            return item
    raise NotFound(
        "no_item_named",
        "The shop has no item called {name:lit}. Pick one from the list as you type.",
        name=fit.clip(text, limits.ITEM_NAME),
    )


def one_of(given: object, clear: bool, what: str, clear_name: str) -> None:
    """Refuse a value together with the switch that clears it (`role` and `no_role`): Discord
    never sends an empty option, so clearing needs a switch of its own."""
    if given is not None and clear:
        raise InvalidInput(
            "options_exclusive", "Give either {option:lit} or {clear:lit}, not both.", option=what, clear=clear_name
        )
