"""The ledger's rules as pure functions: eligibility, allocation order, balances, codes, reminders.

Everything here is deterministic and side-effect free, so the store can run it inside its
transaction and tests (and the hypothesis model) can check it without a database.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from bot.ledger import limits
from bot.ledger.errors import Conflict, Forbidden, InsufficientBalance, InvalidInput, PlanChanged, RateLimited
from bot.ledger.models import (
    Allocation,
    Balance,
    CheckoutPreview,
    Lot,
    LotUse,
    MemberFacts,
    PromoCode,
    PurchasePlan,
    ShopItem,
)
from bot.ledger.money import Currency, format_amount
from bot.ledger.timeparse import discord_timestamp, from_unix

NEVER = math.inf
RATE_LIMIT_FAILURES = 5
RATE_LIMIT_WINDOW = 15 * 60
MAX_QUANTITY = 100


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


def promo_allowed_on(category: str, lot: Lot, excluded: Iterable[str]) -> bool:
    """Whether a promotional lot may pay for an item of `category` (gift lots pay for anything)."""
    if category.casefold() in {c.casefold() for c in excluded}:
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
        fmt = currency
        if held == available:
            message = (
                f"That costs {format_amount(total, fmt)} and you have {format_amount(held, fmt)}."
            )
        else:
            message = (
                f"That costs {format_amount(total, fmt)}. You have {format_amount(held, fmt)}, "
                f"of which {format_amount(available, fmt)} can be used on `{category}` items."
            )
        raise InsufficientBalance(message)
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
            f"Only {format_amount(available, currency)} of usable credit is there to revoke; "
            "name a smaller amount or a lot."
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


def check_purchase(item: ShopItem, quantity: int, already_bought: int) -> int:
    """Refuse an impossible purchase before any money moves; return the total price."""
    if isinstance(quantity, bool) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidInput(f"Quantity must be between 1 and {MAX_QUANTITY}.")
    if not item.active:
        raise Conflict(f"**{item.name}** is no longer sold here.")
    if item.stock is not None and item.stock < quantity:
        if item.stock == 0:
            raise Conflict(f"**{item.name}** is sold out.")
        raise Conflict(f"Only {item.stock} of **{item.name}** left in stock.")
    if item.per_member_limit is not None and already_bought + quantity > item.per_member_limit:
        left = max(item.per_member_limit - already_bought, 0)
        raise Conflict(
            f"**{item.name}** is limited to {item.per_member_limit} per member; "
            + (f"you can buy {left} more." if left else "you have reached that limit.")
        )
    total = item.price * quantity
    if total > 10**12:
        raise InvalidInput("That order is too large.")
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
        item_id=item.id, quantity=quantity, unit_price=item.price, total=total,
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

    if plan.unit_price != expected.unit_price:
        head = (
            f"The price of **{now.item.name}** changed since the preview: now {fmt(plan.unit_price)} each "
            f"instead of {fmt(expected.unit_price)}. "
        )
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
    raise PlanChanged(f"{head}{detail}.", now)


def check_promo_redeemable(
    promo: PromoCode, member_uses: int, member: MemberFacts, now: int
) -> None:
    """Every rule of a promo code but the global use cap (checked atomically by the store)."""
    if not promo.active:
        raise Conflict("That code is no longer active.")
    if promo.redeem_by is not None and now > promo.redeem_by:
        raise Conflict(f"That code could be redeemed until {discord_timestamp(from_unix(promo.redeem_by), 'f')}.")
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise Conflict("That code has been used up.")
    if member_uses >= promo.per_member:
        times = "once" if promo.per_member == 1 else f"{promo.per_member} times"
        raise Conflict(f"You have already redeemed that code (it can be used {times} per member).")
    if promo.role_id is not None and promo.role_id not in member.role_ids:
        raise Forbidden(f"That code is only for members with the <@&{promo.role_id}> role.")
    if promo.min_member_days:
        joined = member.joined_at
        if joined is None or now - joined < promo.min_member_days * 86400:
            eligible_at = None if joined is None else joined + promo.min_member_days * 86400
            when = f" You can redeem it {discord_timestamp(from_unix(eligible_at), 'R')}." if eligible_at else ""
            raise Forbidden(
                f"That code is for members who joined at least {promo.min_member_days} days ago.{when}"
            )


def promo_credit_expiry(promo: PromoCode, now: int) -> int | None:
    if promo.credit_days is not None:
        return now + promo.credit_days * 86400
    return promo.credit_expires


def rate_limit_until(failures: Sequence[int], now: int) -> int | None:
    """After 5 wrong codes within 15 minutes the member waits until the oldest of them ages out."""
    recent = sorted(t for t in failures if t > now - RATE_LIMIT_WINDOW)
    if len(recent) < RATE_LIMIT_FAILURES:
        return None
    return recent[-RATE_LIMIT_FAILURES] + RATE_LIMIT_WINDOW


def raise_if_rate_limited(failures: Sequence[int], now: int) -> None:
    until = rate_limit_until(failures, now)
    if until is not None:
        raise RateLimited(
            f"Too many wrong codes. You can try again {discord_timestamp(from_unix(until), 'R')}.",
            from_unix(until),
        )


def pending_claim(claimed_by: str | None, run_id: str, claimed_at: int, now: int, resend_window: int) -> str:
    """What a reminder claim still 'pending' (claimed, never settled) is, seen by run `run_id`.

    'wait': this run claimed it, so its send is this run's own (in progress, or its outcome failed
    to be recorded): it is never sent again by this run. 'resend': an earlier run claimed it and
    died while sending (one bot process per database, so that run is over), recently enough that
    the same nonce makes Discord drop a second copy. 'unknown': too late for the nonce to protect a
    resend, or this run's own claim that long ago: give it up rather than risk a double DM.
    """
    if now - claimed_at > resend_window:
        return "unknown"
    return "wait" if claimed_by == run_id else "resend"


def reminder_lead_due(expires_at: int, leads: Sequence[int], now: int) -> int | None:
    """The most urgent lead window `now` is in (smallest lead >= time left), if any."""
    left = expires_at - now
    if left <= 0:
        return None
    return min((lead for lead in leads if lead >= left), default=None)


def next_reminder_at(
    expires_at: int | None, leads: Sequence[int], now: int, after_lead: int | None = None
) -> int | None:
    """When the lot's next reminder falls due: the next lead window to open (or now if one is open).

    `after_lead` is the lead just reminded: only shorter leads remain. None = no reminder left.
    """
    if expires_at is None or expires_at <= now:
        return None
    remaining = [lead for lead in leads if after_lead is None or lead < after_lead]
    if not remaining:
        return None
    open_now = reminder_lead_due(expires_at, remaining, now)
    if open_now is not None:
        return now
    return expires_at - max(remaining)


def page_count(total: int, per_page: int) -> int:
    return max(1, -(-total // per_page))


def clamp_page(page: int, total: int, per_page: int) -> int:
    return min(max(page, 1), page_count(total, per_page))


def normalise_categories(values: Iterable[str] | None) -> tuple[str, ...] | None:
    """Categories are case-insensitive labels; keep the first spelling, drop blanks and repeats."""
    if values is None:
        return None
    seen: dict[str, str] = {}
    for raw in values:
        name = raw.strip()
        if not name:
            continue
        if len(name) > limits.CATEGORY:
            raise InvalidInput(f"A category name can be at most {limits.CATEGORY} characters.")
        seen.setdefault(name.casefold(), name)
    if len(seen) > limits.CATEGORIES_PER_LIST:
        raise InvalidInput(f"At most {limits.CATEGORIES_PER_LIST} categories, separated by commas.")
    return tuple(seen.values()) or None


def parse_categories(text: str | None) -> tuple[str, ...] | None:
    """`"games, gear"` -> ("games", "gear"); empty or None -> None (any category)."""
    if text is None or not text.strip():
        return None
    return normalise_categories(text.split(","))
