"""/giftcard issue | list | void: gift cards (moderators). Codes are shown once, to the issuer."""

from __future__ import annotations

import csv
import io

import discord
from discord import app_commands
from discord.ext import commands

from bot.ledger.timeparse import from_unix
from cogs._common import (
    BLUE,
    ModeratorCog,
    guild_id_of,
    key_of,
    ledger_of,
    moderator_commands,
    money,
    post_audit,
    ts,
)

INLINE_CODES = 5


class GiftCards(ModeratorCog):
    giftcard = moderator_commands("giftcard", "Gift cards members redeem with /redeem (moderators).")

    @giftcard.command(name="issue", description="Create gift cards; their codes are shown only to you, once.")
    @app_commands.describe(
        amount="Gift balance per card.",
        count="How many cards (default 1; more than 5 come as a CSV file).",
        claim_by="Last moment to redeem: a duration like 90d or a date. Empty: no limit.",
    )
    async def issue(
        self, interaction: discord.Interaction, amount: str, count: app_commands.Range[int, 1, 500] = 1,
        claim_by: str | None = None,
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
        if not cards.codes:
            await interaction.response.send_message(
                f"{summary} These were issued already and their codes were shown once; see `/giftcard list`.",
                ephemeral=True,
            )
        elif len(cards.codes) <= INLINE_CODES:
            listing = "\n".join(f"`{code}`" for code in cards.codes)
            await interaction.response.send_message(
                f"{summary}{claim} Copy the codes now: they are shown only this once.\n{listing}", ephemeral=True
            )
        else:
            # claim_by as ISO-8601 with its UTC offset, like the ledger export. The csv module quotes
            # amounts such as "1,250 credits".
            claim_by = "" if cards.claim_by is None else from_unix(cards.claim_by).isoformat()
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(("code", "amount", "claim_by"))
            writer.writerows((code, value, claim_by) for code in cards.codes)
            await interaction.response.send_message(
                f"{summary}{claim} The codes are in the file: it is shown only this once.",
                file=discord.File(io.BytesIO(out.getvalue().encode()), filename="gift-cards.csv"),
                ephemeral=True,
            )
        last4 = ", ".join(f"…{tail}" for tail in cards.last4s[:20])
        await post_audit(interaction, "Gift cards issued", f"{summary}{claim}\n{last4}")

    @giftcard.command(name="list", description="Gift cards of this server (only their last 4 characters).")
    async def list_cards(self, interaction: discord.Interaction) -> None:
        ledger = ledger_of(interaction)
        guild_id = guild_id_of(interaction)
        settings = await ledger.settings(guild_id)
        cards = await ledger.gift_cards(guild_id)
        lines = []
        for card in cards[:40]:
            state = {"unredeemed": "unredeemed", "voided": "voided"}.get(card.status, "redeemed")
            who = f" by <@{card.redeemed_by}> {ts(card.redeemed_at)}" if card.redeemed_by else ""
            claim = f" · claim by {ts(card.claim_by, 'd')}" if card.claim_by and card.status == "unredeemed" else ""
            lines.append(f"`#{card.id}` `…{card.last4}` {money(settings, card.amount)} · {state}{who}{claim}")
        if len(cards) > 40:
            lines.append(f"… and {len(cards) - 40} older cards")
        embed = discord.Embed(title="Gift cards", colour=BLUE, description="\n".join(lines) or "None issued yet.")
        await interaction.response.send_message(embed=embed, ephemeral=True)

    @giftcard.command(name="void", description="Cancel an unredeemed gift card.")
    @app_commands.describe(
        last4="The card's last 4 characters, as in /giftcard list.",
        card="The card's number (#) from /giftcard list, when several cards end alike.",
    )
    async def void(
        self, interaction: discord.Interaction, last4: app_commands.Range[str, 4, 9],
        card: app_commands.Range[int, 1] | None = None,
    ) -> None:
        voided = await ledger_of(interaction).void_gift_card(
            guild_id_of(interaction), last4, actor_id=interaction.user.id, key=key_of(interaction), card_id=card
        )
        text = f"Gift card `#{voided.id}` `…{voided.last4}` is voided; it can no longer be redeemed."
        await interaction.response.send_message(text, ephemeral=True)
        await post_audit(interaction, "Gift card voided", text)


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(GiftCards(bot))
