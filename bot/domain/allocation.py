"""Which credit pays, in which order: allocation, eligibility and balances."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bot.domain.errors import Conflict, InsufficientBalance
from bot.domain.models import (
    Allocation,
    Balance,
    Lot,
)
from bot.domain.money import Currency, format_amount

NEVER = math.inf


def allocation_key(lot: Lot) -> tuple[int, float, int, int]:
    """Promo before gift; soonest expiry first (never-expiring last); then oldest; then lowest id."""
    return (
        0 if lot.kind == "promo" else 1,
        NEVER if lot.expires_at is None else lot.expires_at,
        lot.created_at,
        lot.id,
    )


def in_allocation_order(lots: Iterable[Lot]) -> list[Lot]:
    return sorted(lots, key=allocation_key)


def promo_excluded_on(category: str, excluded: Iterable[str]) -> bool:
    """Whether the server's settings keep all promotional credit off items of `category`."""
    return category.casefold() in {c.casefold() for c in excluded}


def promo_allowed_on(category: str, lot: Lot, excluded: Iterable[str]) -> bool:
    """Whether a promotional lot may pay for an item of `category` (gift lots pay for anything)."""
    if promo_excluded_on(category, excluded):
        return False
    return lot.categories is None or category.casefold() in {c.casefold() for c in lot.categories}


def is_eligible(lot: Lot, category: str, excluded: Iterable[str], now: int) -> bool:
    if not lot.is_usable_at(now):
        return False
    return lot.kind == "gift" or promo_allowed_on(category, lot, excluded)


def allocate(
    lots: Iterable[Lot],
    total: int,
    category: str,
    excluded: Sequence[str],
    now: int,
    currency: Currency,
) -> Allocation:
    """Pay `total` from the eligible lots in allocation order, or explain why it cannot be paid."""
    usable = [lot for lot in lots if lot.is_usable_at(now)]
    eligible = in_allocation_order(lot for lot in usable if is_eligible(lot, category, excluded, now))
    available = sum(lot.remaining for lot in eligible)
    if available < total:
        held = sum(lot.remaining for lot in usable)
        amounts = {
            "total": format_amount(total, currency),
            "held": format_amount(held, currency),
            "available": format_amount(available, currency),
        }
        if held == available:
            raise InsufficientBalance("balance_insufficient", "That costs {total} and you have {held}.", **amounts)
        raise InsufficientBalance(
            "balance_insufficient_in_category",
            "That costs {total}. You have {held}, of which {available} can be used on {category:lit} items.",
            category=category,
            **amounts,
        )
    takes: list[tuple[Lot, int]] = []
    forfeits: list[tuple[Lot, int]] = []
    left = total
    for lot in eligible:
        if left == 0:
            break
        take = min(lot.remaining, left)
        takes.append((lot, take))
        left -= take
        if lot.one_time and take < lot.remaining:
            forfeits.append((lot, lot.remaining - take))
    return Allocation(tuple(takes), tuple(forfeits))


def allocate_revoke(lots: Iterable[Lot], amount: int, now: int, currency: Currency) -> list[tuple[Lot, int]]:
    """Void `amount` across a member's usable lots in allocation order (no category filter)."""
    usable = in_allocation_order(lot for lot in lots if lot.is_usable_at(now))
    available = sum(lot.remaining for lot in usable)
    if amount > available:
        raise Conflict(
            "revoke_more_than_usable",
            "Only {available} of usable credit is there to revoke; name a smaller amount or a lot.",
            available=format_amount(available, currency),
        )
    out: list[tuple[Lot, int]] = []
    left = amount
    for lot in usable:
        if left == 0:
            break
        take = min(lot.remaining, left)
        out.append((lot, take))
        left -= take
    return out


def balance_of(guild_id: int, user_id: int, lots: Iterable[Lot], now: int) -> Balance:
    usable = in_allocation_order(lot for lot in lots if lot.is_usable_at(now))
    upcoming = sorted((lot for lot in lots if lot.is_upcoming_at(now)), key=lambda lot: lot.starts_at)
    expiring = [lot for lot in usable if lot.expires_at is not None]
    next_expiry = min(expiring, key=lambda lot: (lot.expires_at, lot.id)) if expiring else None
    return Balance(
        guild_id=guild_id,
        user_id=user_id,
        gift=sum(lot.remaining for lot in usable if lot.kind == "gift"),
        promo=sum(lot.remaining for lot in usable if lot.kind == "promo"),
        upcoming=sum(lot.remaining for lot in upcoming),
        lots=tuple(usable + upcoming),
        next_expiry=next_expiry,
    )
