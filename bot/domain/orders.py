"""Purchases: what an order may be, what it costs, and that Confirm applies what Preview showed."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.allocation import allocate
from bot.domain.errors import Conflict, InvalidInput, PlanChanged
from bot.domain.fulfilment import check_code_quantity
from bot.domain.models import (
    Allocation,
    CheckoutPreview,
    Lot,
    LotUse,
    PurchasePlan,
    ShopItem,
)
from bot.domain.money import Currency, format_amount

MAX_QUANTITY = 100


def check_purchase(item: ShopItem, quantity: int, already_bought: int) -> int:
    """Refuse an impossible purchase before any money moves; return the total price."""
    if isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput("quantity_out_of_range", "Quantity must be between 1 and {most}.", most=MAX_QUANTITY)
    check_code_quantity(item.delivery, quantity, item.name)
    if not item.active:
        raise Conflict("item_not_sold", "{item:b} is no longer sold here.", item=item.name)
    if item.stock is not None and item.stock < quantity:
        if item.stock == 0:
            raise Conflict("item_sold_out", "{item:b} is sold out.", item=item.name)
        raise Conflict("item_low_stock", "Only {stock} of {item:b} left in stock.", stock=item.stock, item=item.name)
    if item.per_member_limit is not None and already_bought + quantity > item.per_member_limit:
        left = max(item.per_member_limit - already_bought, 0)
        if left:
            raise Conflict(
                "item_limit_left",
                "{item:b} is limited to {limit} per member; you can buy {left} more.",
                item=item.name,
                limit=item.per_member_limit,
                left=left,
            )
        raise Conflict(
            "item_limit_reached",
            "{item:b} is limited to {limit} per member; you have reached that limit.",
            item=item.name,
            limit=item.per_member_limit,
        )
    total = item.price * quantity
    if total > 10**12:
        raise InvalidInput("order_too_large", "That order is too large.")
    return total


def preview_purchase(
    item: ShopItem,
    quantity: int,
    already_bought: int,
    lots: Sequence[Lot],
    excluded: Sequence[str],
    now: int,
    currency: Currency,
) -> tuple[CheckoutPreview, Allocation]:
    """The purchase as it would be now: what `/buy` previews and what checkout applies, one rule."""
    total = check_purchase(item, quantity, already_bought)
    allocation = allocate(lots, total, item.category, excluded, now, currency)
    plan = PurchasePlan(
        item_id=item.id,
        quantity=quantity,
        unit_price=item.price,
        total=total,
        takes=tuple(LotUse(lot.id, lot.kind, amount) for lot, amount in allocation.takes),
        forfeits=tuple(LotUse(lot.id, lot.kind, amount) for lot, amount in allocation.forfeits),
    )
    before = sum(lot.remaining for lot in lots if lot.is_usable_at(now))
    return CheckoutPreview(item, plan, before, before - total - plan.forfeited), allocation


def check_plan_unchanged(expected: PurchasePlan, now: CheckoutPreview, currency: Currency) -> None:
    """Confirm applies exactly the plan its preview showed, or nothing (SPEC §3): any other way of
    paying (another lot used first, a lot gone or expired, a price change, promo newly excluded)
    raises `PlanChanged` with the purchase as it would be now, and what changed in words."""
    if now.plan == expected:
        return
    plan = now.plan

    def fmt(amount: int) -> str:
        return format_amount(amount, currency)

    params = {"item": now.item.name, "now_price": fmt(plan.unit_price), "was_price": fmt(expected.unit_price)}
    if plan.unit_price != expected.unit_price:
        head = "The price of {item:b} changed since the preview: now {now_price} each instead of {was_price}. "
    else:
        head = "Your credit changed since the preview: "
    uses = [
        f"{fmt(new)} of {what} instead of {fmt(old)}"
        for what, old, new in (
            ("promotional credit", expected.promo_applied, plan.promo_applied),
            ("gift balance", expected.gift_applied, plan.gift_applied),
        )
        if old != new
    ]
    doing = [f"use {' and '.join(uses)}"] if uses else []
    if plan.forfeited != expected.forfeited:
        doing.append(
            f"forfeit {fmt(plan.forfeited) + ' of one-time credit' if plan.forfeited else 'nothing'} "
            f"instead of {fmt(expected.forfeited) if expected.forfeited else 'nothing'}"
        )
    if doing:
        detail = "this purchase would now " + ", and ".join(doing)
    else:
        detail = "the same amounts would now come from other lots of your credit"
    if head.endswith(". "):
        detail = detail[0].upper() + detail[1:]
    raise PlanChanged(head + "{detail}.", preview=now, detail=detail, **params)
