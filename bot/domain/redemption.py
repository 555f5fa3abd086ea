"""Redeeming codes: a promo code's rules and the wrong-code rate limit."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.errors import Conflict, Forbidden, RateLimited
from bot.domain.models import (
    MemberFacts,
    PromoCode,
)
from bot.domain.timeparse import from_unix

RATE_LIMIT_FAILURES = 5


RATE_LIMIT_WINDOW = 15 * 60


def check_promo_redeemable(promo: PromoCode, member_uses: int, member: MemberFacts, now: int) -> None:
    """Every rule of a promo code but the global use cap (checked atomically by the store)."""
    if not promo.active:
        raise Conflict("promo_inactive", "That code is no longer active.")
    if promo.redeem_by is not None and now > promo.redeem_by:
        raise Conflict("promo_expired", "That code could be redeemed until {until:f}.", until=promo.redeem_by)
    if promo.max_uses is not None and promo.uses >= promo.max_uses:
        raise Conflict("promo_used_up", "That code has been used up.")
    if member_uses >= promo.per_member:
        if promo.per_member == 1:
            raise Conflict(
                "promo_already_redeemed",
                "You have already redeemed that code (it can be used once per member).",
            )
        raise Conflict(
            "promo_member_uses_spent",
            "You have already redeemed that code (it can be used {uses} times per member).",
            uses=promo.per_member,
        )
    if promo.role_id is not None and promo.role_id not in member.role_ids:
        raise Forbidden(
            "promo_role_required",
            "That code is only for members with the {role:role} role.",
            role=promo.role_id,
        )
    if promo.min_member_days:
        joined = member.joined_at
        if joined is None or now - joined < promo.min_member_days * 86400:
            eligible_at = None if joined is None else joined + promo.min_member_days * 86400
            if eligible_at:
                raise Forbidden(
                    "promo_member_too_new",
                    "That code is for members who joined at least {days} days ago. You can redeem it {eligible_at:R}.",
                    days=promo.min_member_days,
                    eligible_at=eligible_at,
                )
            raise Forbidden(
                "promo_member_joined_unknown",
                "That code is for members who joined at least {days} days ago.",
                days=promo.min_member_days,
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
        raise RateLimited(from_unix(until))
