"""/giftcard issue | list | void: gift cards (moderators). Codes are shown once, to the issuer."""

from __future__ import annotations

import io
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.app.ledger import MAX_GIFT_CARDS
from bot.discordbot import fit
from bot.discordbot.errors import record_committed
from bot.discordbot.options import Amount, When
from bot.discordbot.render import BLUE, money, ts
from bot.discordbot.ui import (
    ModeratorCog,
    answer_committed,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
    moderator_predicate,
    post_audit,
    send_paged,
)
from bot.domain import csvsafe, limits
from bot.domain.models import GiftCard, GuildSettings
from bot.domain.paging import clamp_page, page_count
from bot.domain.timeparse import from_unix

INLINE_CODES = 5
#: Last 4s listed in the audit post of an issue; the rest are counted ("… and 480 more").
AUDIT_LAST4S = 20
#: Cards per /giftcard list page. A card's line is at most ~120 characters (a 38-character amount,
#: a member mention and a timestamp), so a page stays far below the 4,096 of a description.
LIST_PAGE = 20


def card_line(card: GiftCard, settings: GuildSettings) -> str:
    state = {"unredeemed": "unredeemed", "voided": "voided"}.get(card.status, "redeemed")
    who = f" by <@{card.redeemed_by}> {ts(card.redeemed_at)}" if card.redeemed_by else ""
    claim = f" · claim by {ts(card.claim_by, 'd')}" if card.claim_by and card.status == "unredeemed" else ""
    return f"`#{card.id}` `…{card.last4}` {money(settings, card.amount)} · {state}{who}{claim}"


class GiftCards(ModeratorCog):
    giftcard = moderator_commands("giftcard", "Gift cards members redeem with /redeem (moderators).")

    @giftcard.command(name="issue", description="Create gift cards; their codes are shown only to you, once.")
    @app_commands.describe(
        amount="Gift balance per card.",
        count=f"How many cards (default 1, up to {MAX_GIFT_CARDS}; more than {INLINE_CODES} come as a CSV file).",
        claim_by="Last moment to redeem: a duration like 90d or a date. Empty: no limit.",
    )
    async def issue(
        self,
        interaction: discord.Interaction,
        amount: Amount,
        count: app_commands.Range[int, 1, MAX_GIFT_CARDS] = 1,
        claim_by: When | None = None,
    ) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        cards = await ledger.issue_gift_cards(
            guild_id, amount, count, actor_id=interaction.user.id, key=key_of(interaction), claim_by=claim_by
        )
        settings = await ledger.settings(guild_id)
        value = money(settings, cards.amount)
        claim = f" Redeem by {ts(cards.claim_by, 'f')}." if cards.claim_by else ""
        summary = f"{len(cards.card_ids)} gift card(s) of {value}."
        tails = [f"…{tail}" for tail in cards.last4s]
        last4 = ", ".join(tails[:AUDIT_LAST4S])
        if len(tails) > AUDIT_LAST4S:
            last4 += ", " + fit.and_more(len(tails) - AUDIT_LAST4S)
        message: dict[str, Any] = {}
        if not cards.codes:  # the same interaction again: its codes were shown the first time
            content = f"{summary} These were issued already and their codes were shown once; see `/giftcard list`."
            failed = content
        else:
            # What the error handler says if this answer fails: the codes were never shown and can't
            # be shown again (only their hashes are stored), so the cards must be voided.
            failed = (
                f"{summary}{claim} They were issued, but their codes could not be shown to you and can't be "
                f"shown again: void them with `/giftcard void` (last 4: {last4})."
            )
            if len(cards.codes) <= INLINE_CODES:
                listing = "\n".join(f"`{code}`" for code in cards.codes)
                content = f"{summary}{claim} Copy the codes now: they are shown only this once.\n{listing}"
            else:
                # claim_by as ISO-8601 with its UTC offset, like the ledger export. The csv module quotes
                # amounts such as "1,250 credits"; csvsafe defuses every cell like the export's (an
                # amount shown with a symbol such as "=A" would start with "=").
                claim_iso = "" if cards.claim_by is None else from_unix(cards.claim_by).isoformat()
                out = io.StringIO()
                writer = csvsafe.writer(out)
                writer.writerow(("code", "amount", "claim_by"))
                writer.writerows((code, value, claim_iso) for code in cards.codes)
                content = f"{summary}{claim} The codes are in the file: it is shown only this once."
                message["file"] = discord.File(io.BytesIO(out.getvalue().encode()), filename="gift-cards.csv")
        record_committed(interaction, fit.clip(failed, fit.CONTENT))
        try:
            await interaction.response.send_message(content, ephemeral=True, **message)
        finally:
            await post_audit(interaction, "Gift cards issued", f"{summary}{claim}\n{last4}")

    @giftcard.command(name="list", description="Gift cards of this server (only their last 4 characters).")
    async def list_cards(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)

        async def render(page: int) -> tuple[discord.Embed, int]:
            settings = await ledger.settings(guild_id)
            cards = await ledger.gift_cards(guild_id)  # newest first
            pages = page_count(len(cards), LIST_PAGE)
            page = clamp_page(page, len(cards), LIST_PAGE)
            shown = cards[(page - 1) * LIST_PAGE : page * LIST_PAGE]
            lines = [card_line(card, settings) for card in shown]
            description = fit.fit_lines(lines, fit.DESCRIPTION) or "None issued yet."
            embed = discord.Embed(title="Gift cards", colour=BLUE, description=description)
            if cards:
                unredeemed = sum(card.status == "unredeemed" for card in cards)
                embed.set_footer(
                    text=f"Page {page} of {pages} · {len(cards)} cards, {unredeemed} unredeemed · newest first"
                )
            return embed, pages

        await send_paged(interaction, render, check=moderator_predicate)

    @giftcard.command(name="void", description="Cancel an unredeemed gift card.")
    @app_commands.describe(
        last4="The card's last 4 characters, as in /giftcard list.",
        card="The card's number (#) from /giftcard list, when several cards end alike.",
    )
    async def void(
        self,
        interaction: discord.Interaction,
        last4: app_commands.Range[str, 4, limits.GIFT_LAST4_INPUT],
        card: app_commands.Range[int, 1] | None = None,
    ) -> None:
        voided = await ledger_of(interaction).void_gift_card(
            guild_id_of(interaction), last4, actor_id=interaction.user.id, key=key_of(interaction), card_id=card
        )
        text = f"Gift card `#{voided.id}` `…{voided.last4}` is voided; it can no longer be redeemed."
        await answer_committed(interaction, text, audit="Gift card voided")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(GiftCards(bot))
