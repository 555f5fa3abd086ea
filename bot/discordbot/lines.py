"""One line of text per record, for the records more than one part of the bot shows: a lot of
credit (/balance, /credits, the reminder DM's categories), a ledger entry (/history, /credits
inspect) and a shop item (/shop, /shopadmin). Each is bounded, so a page of them fits a message."""

from __future__ import annotations

from collections.abc import Sequence

from bot.discordbot import fit
from bot.discordbot.render import money, ts
from bot.domain import limits
from bot.domain.allocation import promo_excluded_on
from bot.domain.models import Entry, GuildSettings, Lot, ShopItem

#: How much of one lot's line its categories may take: whole names, then "… and N more".
LOT_CATEGORIES_SHOWN = 120

ENTRY_LABELS = {
    "grant": "Credit added",
    "spend": "Spent",
    "forfeit": "Forfeited (one-time credit)",
    "expire": "Expired",
    "void": "Revoked",
    "refund": "Refunded",
    "expiry_change": "Expiry changed",
}


def lot_categories(categories: Sequence[str]) -> str:
    """`games, gear, … and 4 more`: the categories a lot is limited to, in LOT_CATEGORIES_SHOWN."""
    return fit.fit_lines(categories, LOT_CATEGORIES_SHOWN, separator=", ")


def lot_line(lot: Lot, settings: GuildSettings, now: int) -> str:
    """`#12 · 40 of 50 credits · promo · expires <t:…:R> · only: games · one-time`

    Bounded: at most about 300 characters, whatever the lot (ten 50-character categories are
    listed as far as LOT_CATEGORIES_SHOWN allows, then "… and N more")."""
    parts = [f"`#{lot.id}`", f"**{money(settings, lot.remaining)}**"]
    if lot.remaining != lot.original:
        parts[-1] += f" of {money(settings, lot.original)}"
    parts.append("gift" if lot.kind == "gift" else "promotional")
    if lot.starts_at > now:
        parts.append(f"usable {ts(lot.starts_at)}")
    if lot.expires_at is not None:
        parts.append(f"expires {ts(lot.expires_at)}")
    if lot.categories:
        parts.append("only: " + lot_categories(lot.categories))
    if lot.one_time:
        parts.append("one-time")
    return " · ".join(parts)


def entry_line(entry: Entry, settings: GuildSettings) -> str:
    label = ENTRY_LABELS.get(entry.type, entry.type)
    amount = "" if entry.amount == 0 else f" **{'+' if entry.amount > 0 else '−'}{money(settings, abs(entry.amount))}**"
    kind = "gift" if entry.lot_kind == "gift" else "promo"
    order = f" · order `#{entry.order_id}`" if entry.order_id else ""
    # The ledger refuses reasons over limits.REASON characters; the clip keeps a line bounded
    # whatever a row holds, so a page of ten lines always fits in one description (4,096).
    reason = f" · {fit.clip(entry.reason, limits.REASON)}" if entry.reason else ""
    return f"{ts(entry.created_at)} {label}{amount} ({kind}, lot `#{entry.lot_id}`){order}{reason}"


def promo_note(item: ShopItem, settings: GuildSettings) -> str:
    excluded = promo_excluded_on(item.category, settings.promo_excluded_categories)
    return "gift balance only" if excluded else "promo credit applies"


#: How /shop says an item is delivered (an instant item says nothing: it is the usual way).
DELIVERY_WORDS = {"staff": " · delivered by the staff", "code": " · you get a code"}


def item_line(item: ShopItem, settings: GuildSettings) -> str:
    stock = "" if item.stock is None else (" · **sold out**" if item.stock == 0 else f" · {item.stock} left")
    stock += DELIVERY_WORDS.get(item.delivery, "")
    limit = f" · max {item.per_member_limit} per member" if item.per_member_limit else ""
    role = f" · gives <@&{item.role_id}>" if item.role_id else ""
    description = f"\n{item.description}" if item.description else ""
    return (
        f"**{item.name}** — {money(settings, item.price)} · `{item.category}` · {promo_note(item, settings)}"
        f"{stock}{limit}{role}{description}"
    )
