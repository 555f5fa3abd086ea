"""Rows to the domain's records and back: the column lists every query selects."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.models import Delivery, Entry, GiftCard, GuildSettings, Lot, Order, PromoCode, Schedule, ShopItem

LOT_COLUMNS = (
    "id, guild_id, user_id, kind, original, remaining, starts_at, expires_at, categories,"
    " one_time, source, source_ref, memo, created_by, created_at, status"
)
ITEM_COLUMNS = "id, guild_id, name, description, price, category, stock, role_id, per_member_limit, active, delivery"
ORDER_COLUMNS = (
    "id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,"
    " gift_applied, forfeited, role_id, status, created_at, refunded_at, delivery, acted_by, acted_at, note,"
    " post_channel_id, post_message_id"
)
PROMO_COLUMNS = (
    "id, guild_id, code, amount, max_uses, uses, per_member, redeem_by, credit_days, credit_expires,"
    " categories, one_time, role_id, min_member_days, active, created_at"
)
SCHEDULE_COLUMNS = "id, guild_id, role_id, amount, rule, valid_days, categories, kind, next_run_at, active, created_at"
DELIVERY_COLUMNS = (
    "id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, reason, last_error,"
    " created_at, settled_at, channel_id"
)
CARD_COLUMNS = "id, guild_id, last4, amount, claim_by, status, created_at, redeemed_by, redeemed_at"
ENTRY_SELECT = (
    "SELECT e.id, e.guild_id, e.user_id, e.lot_id, l.kind, e.type, e.amount, e.order_id, e.actor_id,"
    " e.reason, e.created_at, e.idempotency_key, o.status FROM entries e JOIN lots l ON l.id = e.lot_id"
    " LEFT JOIN orders o ON o.id = e.order_id"
)
SETTINGS_SELECT = (
    "SELECT currency_name, currency_symbol, decimals, timezone, reminder_leads, mod_role_id,"
    " audit_channel_id, promo_excluded_categories, fulfilment_channel_id FROM guild_settings WHERE guild_id = ?"
)


def categories_of(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(raw))


def categories_json(values: Iterable[str] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def settings_of(guild_id: int, row: Sequence[Any] | None) -> GuildSettings:
    if row is None:
        return GuildSettings(guild_id)
    return GuildSettings(
        guild_id,
        row[0],
        row[1],
        row[2],
        row[3],
        tuple(int(s) for s in row[4].split(",") if s),
        row[5],
        row[6],
        tuple(json.loads(row[7])),
        row[8],
    )


def settings_values(values: dict[str, Any]) -> dict[str, Any]:
    """Settings as their columns hold them."""
    if "reminder_leads" in values:
        values["reminder_leads"] = ",".join(str(s) for s in values["reminder_leads"])
    if "promo_excluded_categories" in values:
        values["promo_excluded_categories"] = json.dumps(list(values["promo_excluded_categories"]))
    return values


def lot_of(row: Sequence[Any]) -> Lot:
    return Lot(
        id=row[0],
        guild_id=row[1],
        user_id=row[2],
        kind=row[3],
        original=row[4],
        remaining=row[5],
        starts_at=row[6],
        expires_at=row[7],
        categories=categories_of(row[8]),
        one_time=bool(row[9]),
        source=row[10],
        source_ref=row[11],
        memo=row[12],
        created_by=row[13],
        created_at=row[14],
        status=row[15],
    )


def item_of(row: Sequence[Any]) -> ShopItem:
    return ShopItem(
        id=row[0],
        guild_id=row[1],
        name=row[2],
        description=row[3],
        price=row[4],
        category=row[5],
        stock=row[6],
        role_id=row[7],
        per_member_limit=row[8],
        active=bool(row[9]),
        delivery=row[10],
    )


def order_of(row: Sequence[Any]) -> Order:
    return Order(*row)


def promo_of(row: Sequence[Any]) -> PromoCode:
    return PromoCode(
        id=row[0],
        guild_id=row[1],
        code=row[2],
        amount=row[3],
        max_uses=row[4],
        uses=row[5],
        per_member=row[6],
        redeem_by=row[7],
        credit_days=row[8],
        credit_expires=row[9],
        categories=categories_of(row[10]),
        one_time=bool(row[11]),
        role_id=row[12],
        min_member_days=row[13],
        active=bool(row[14]),
        created_at=row[15],
    )


def delivery_of(row: Sequence[Any]) -> Delivery:
    return Delivery(*row)


def card_of(row: Sequence[Any]) -> GiftCard:
    return GiftCard(*row)


def schedule_of(row: Sequence[Any]) -> Schedule:
    return Schedule(
        id=row[0],
        guild_id=row[1],
        role_id=row[2],
        amount=row[3],
        rule=row[4],
        valid_days=row[5],
        categories=categories_of(row[6]),
        kind=row[7],
        next_run_at=row[8],
        active=bool(row[9]),
        created_at=row[10],
    )


def entry_of(row: Sequence[Any]) -> Entry:
    return Entry(*row)
