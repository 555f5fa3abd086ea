"""Promo codes and gift cards: creating, listing and retiring them, and redeeming either in one box
(like Amazon's "Gift Cards & Promotional Codes")."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.app.credits import categories_input, insert_lots
from bot.app.service import Service, bounded_int
from bot.domain import codes, limits
from bot.domain.errors import Conflict, InvalidInput, LedgerError, NotFound
from bot.domain.models import (
    AuditRecord,
    GiftCard,
    GrantResult,
    IssuedGiftCards,
    LotSpec,
    MemberFacts,
    PromoCode,
    Redemption,
)
from bot.domain.redemption import (
    RATE_LIMIT_FAILURES,
    RATE_LIMIT_WINDOW,
    check_promo_redeemable,
    promo_credit_expiry,
    raise_if_rate_limited,
)
from bot.store.ports import CommitThenRaise, DuplicateKey, Tx

MAX_GIFT_CARDS = 500


def create_promo(tx: Tx, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, now: int) -> PromoCode:
    try:
        promo_id = tx.codes.insert_promo(guild_id, fields, audit.actor_id, now)
    except DuplicateKey as exc:
        raise Conflict(
            "promo_code_taken", "A code {code:lit} already exists in this server.", code=fields["code"]
        ) from exc
    tx.audit.add(guild_id, audit, now)
    return tx.codes.promo_by_id(promo_id)


def set_promo_active(tx: Tx, guild_id: int, code_key: str, active: bool, audit: AuditRecord, now: int) -> PromoCode:
    promo = tx.codes.promo_by_key(guild_id, code_key)
    if promo is None:
        raise NotFound("no_such_promo", "There is no such promo code in this server.")
    tx.codes.set_promo_active(promo.id, active)
    tx.audit.add(guild_id, audit, now)
    return tx.codes.promo_by_id(promo.id)


def issue_gift_cards(
    tx: Tx,
    guild_id: int,
    hashes: Sequence[tuple[str, str]],
    amount: int,
    claim_by: int | None,
    audit: AuditRecord,
    now: int,
) -> IssuedGiftCards:
    ids = tuple(
        tx.codes.insert_card(guild_id, code_hash, last4, amount, claim_by, audit.actor_id, now)
        for code_hash, last4 in hashes
    )
    tx.audit.add(guild_id, audit, now)
    return IssuedGiftCards(ids, tuple(last4 for _, last4 in hashes), amount, claim_by)


def void_gift_card(tx: Tx, guild_id: int, last4: str, card_id: int | None, audit: AuditRecord, now: int) -> GiftCard:
    """Void the unredeemed card ending in `last4` (or the card `card_id` when several do)."""
    cards = tx.codes.unredeemed_cards(guild_id, last4, card_id)
    if not cards:
        raise NotFound("no_such_card", "No unredeemed gift card ending in {last4:lit} in this server.", last4=last4)
    if len(cards) > 1:
        raise Conflict(
            "card_ambiguous",
            "{count} unredeemed cards end in {last4:lit} ({ids:lit}); give the card's number too, like {example:lit}.",
            count=len(cards),
            last4=last4,
            ids=tuple(f"#{card.id}" for card in cards[:10]),
            example=f"last4:{last4} card:{cards[0].id}",
        )
    card = cards[0]
    tx.codes.set_card_status(card.id, "voided")
    tx.audit.add(guild_id, audit, now)
    return GiftCard(**{**card.to_dict(), "status": "voided"})


def redeem_code(
    tx: Tx,
    guild_id: int,
    user_id: int,
    promo_key: str,
    gift_hash: str | None,
    member: MemberFacts,
    key: str | None,
    now: int,
) -> Redemption | CommitThenRaise:
    """Redeem a promo code or a gift card. A code that is neither is recorded as a failure (under
    the interaction's key: a second delivery of this attempt finds it recorded) and refused after
    the commit, so five wrong codes in 15 minutes make the member wait."""
    since = now - RATE_LIMIT_WINDOW
    raise_if_rate_limited(tx.codes.failures_since(guild_id, user_id, since), now)
    promo = tx.codes.promo_by_key(guild_id, promo_key) if promo_key else None
    if promo is not None:
        return redeem_promo(tx, promo, user_id, member, key, now)
    if gift_hash is not None:
        card = tx.codes.card_by_hash(guild_id, gift_hash)
        if card is not None:
            return redeem_card(tx, card, user_id, key, now)
    tx.codes.record_failure(guild_id, user_id, now, key)
    failures = tx.codes.failures_since(guild_id, user_id, since)
    try:
        raise_if_rate_limited(failures, now)
    except LedgerError as exc:
        return CommitThenRaise(exc)
    left = RATE_LIMIT_FAILURES - len(failures)
    return CommitThenRaise(
        NotFound(
            "no_such_code",
            "That code doesn't exist in this server. Check it for typos ({left} {tries} left before a short pause).",
            left=left,
            tries="try" if left == 1 else "tries",
        )
    )


def redeem_promo(tx: Tx, promo: PromoCode, user_id: int, member: MemberFacts, key: str | None, now: int) -> Redemption:
    check_promo_redeemable(promo, tx.codes.promo_uses_of(promo.id, user_id), member, now)
    expires_at = promo_credit_expiry(promo, now)
    if expires_at is not None and expires_at <= now:
        raise Conflict("promo_credit_expired", "The credit of that code has already expired.")
    if not tx.codes.use_promo(promo.id):
        raise Conflict("promo_used_up", "That code has been used up.")
    spec = LotSpec(
        amount=promo.amount,
        kind="promo",
        expires_at=expires_at,
        categories=promo.categories,
        one_time=promo.one_time,
        source="promo_code",
        source_ref=promo.code,
        memo=f"promo code {promo.code}",
    )
    lot_id = insert_lots(tx, promo.guild_id, (user_id,), spec, None, key, now)
    tx.codes.record_promo_redemption(promo, user_id, lot_id, now)
    lot = tx.lots.by_id(promo.guild_id, lot_id)
    assert lot is not None
    return Redemption("promo_code", lot, promo.code)


def redeem_card(tx: Tx, card: GiftCard, user_id: int, key: str | None, now: int) -> Redemption:
    if card.status == "redeemed":
        if card.redeemed_by == user_id:
            raise Conflict(
                "card_redeemed_by_you", "You already redeemed this gift card {at:R}.", at=card.redeemed_at or now
            )
        raise Conflict("card_redeemed", "That gift card has already been redeemed.")
    if card.status == "voided":
        raise Conflict("card_voided", "That gift card was cancelled by this server's moderators.")
    if card.claim_by is not None and now > card.claim_by:
        raise Conflict("card_claim_lapsed", "That gift card had to be claimed by {by:f}.", by=card.claim_by)
    label = f"gift card …{card.last4}"
    spec = LotSpec(amount=card.amount, kind="gift", source="gift_card", source_ref=str(card.id), memo=label)
    lot_id = insert_lots(tx, card.guild_id, (user_id,), spec, None, key, now)
    tx.codes.mark_card_redeemed(card.id, user_id, lot_id, now)
    lot = tx.lots.by_id(card.guild_id, lot_id)
    assert lot is not None
    return Redemption("gift_card", lot, label)


def promos(tx: Tx, guild_id: int) -> list[PromoCode]:
    return tx.codes.promos(guild_id)


def gift_cards(tx: Tx, guild_id: int, status: str | None) -> list[GiftCard]:
    return tx.codes.cards(guild_id, status)


class CodeService(Service):
    async def create_promo(
        self,
        guild_id: int,
        code: str,
        amount: str | int,
        *,
        actor_id: int,
        key: str | None,
        uses: int | None = None,
        per_member: int = 1,
        redeem_by: str | None = None,
        credit_days: int | None = None,
        credit_expires: str | None = None,
        categories: str | Sequence[str] | None = None,
        one_time: bool = False,
        role_id: int | None = None,
        min_member_days: int | None = None,
    ) -> PromoCode:
        settings = await self.settings(guild_id)
        display, code_key = codes.validate_promo_code(code)
        if codes.gift_code_key(code_key) is not None:
            raise InvalidInput("code_like_gift_card", "That code has the shape of a gift card code; choose another.")
        if credit_days is not None and credit_expires:
            raise InvalidInput(
                "credit_days_or_expires",
                "Give either {days:lit} or {expires:lit}, not both.",
                days="credit_days",
                expires="credit_expires",
            )
        fields = {
            "code": display,
            "code_key": code_key,
            "amount": await self.amount(guild_id, amount, settings),
            "max_uses": bounded_int(uses, "number of uses", 1, 10**9),
            "per_member": bounded_int(per_member, "uses per member", 1, 1000),
            "credit_days": bounded_int(credit_days, "credit validity in days", 1, 36500),
            "categories": categories_input(categories),
            "one_time": int(bool(one_time)),
            "role_id": role_id,
            "min_member_days": bounded_int(min_member_days, "minimum membership age", 0, 3650),
        }
        try:
            fields["redeem_by"] = self.when(redeem_by, settings, "redeem-by date", future=True)
            fields["credit_expires"] = self.when(credit_expires, settings, "credit expiry", future=True)
        except InvalidInput as refusal:
            return PromoCode.from_dict(await self.replayed_or(refusal, key, "create_promo"))
        audit = AuditRecord(actor_id, "promo-create", {k: v for k, v in fields.items() if k != "code_key"})
        now = self.now()
        applied = await self.unit(
            "create_promo", PromoCode.from_dict, key, guild_id, now, create_promo, guild_id, fields, audit, now
        )
        return applied.value

    async def promos(self, guild_id: int) -> list[PromoCode]:
        return await self.store.read(promos, guild_id)

    async def disable_promo(self, guild_id: int, code: str, *, actor_id: int, key: str | None) -> PromoCode:
        audit = AuditRecord(actor_id, "promo-disable", {"code": code.strip().upper()})
        now = self.now()
        applied = await self.unit(
            "set_promo_active",
            PromoCode.from_dict,
            key,
            guild_id,
            now,
            set_promo_active,
            guild_id,
            codes.normalise_code(code),
            False,
            audit,
            now,
        )
        return applied.value

    async def issue_gift_cards(
        self,
        guild_id: int,
        amount: str | int,
        count: int = 1,
        *,
        actor_id: int,
        key: str | None,
        claim_by: str | None = None,
    ) -> IssuedGiftCards:
        settings = await self.settings(guild_id)
        minor = await self.amount(guild_id, amount, settings)
        bounded_int(count, "number of cards", 1, MAX_GIFT_CARDS)
        try:
            claim_at = self.when(claim_by, settings, "claim-by date", future=True)
        except InvalidInput as refusal:
            return IssuedGiftCards.from_dict(await self.replayed_or(refusal, key, "issue_gift_cards"))
        plain = [codes.generate_gift_code() for _ in range(count)]
        hashes = []
        for code in plain:
            canonical = codes.gift_code_key(code)
            assert canonical is not None
            hashes.append((codes.hash_gift_code(canonical), codes.gift_code_last4(canonical)))
        audit = AuditRecord(actor_id, "giftcard-issue", {"count": count, "amount": minor, "claim_by": claim_at})
        now = self.now()
        applied = await self.unit(
            "issue_gift_cards",
            IssuedGiftCards.from_dict,
            key,
            guild_id,
            now,
            issue_gift_cards,
            guild_id,
            hashes,
            minor,
            claim_at,
            audit,
            now,
        )
        if not applied.fresh:  # the codes of the first request were shown once and are gone
            return applied.value
        return IssuedGiftCards(applied.value.card_ids, applied.value.last4s, minor, claim_at, codes=tuple(plain))

    async def gift_cards(self, guild_id: int, status: str | None = None) -> list[GiftCard]:
        return await self.store.read(gift_cards, guild_id, status)

    async def void_gift_card(
        self, guild_id: int, last4: str, *, actor_id: int, key: str | None, card_id: int | None = None
    ) -> GiftCard:
        tail = codes.gift_last4_key(last4)
        if tail is None:
            raise InvalidInput(
                "card_last4", "Give the last 4 characters of the card, like {example:lit}.", example="7KQ2"
            )
        audit = AuditRecord(actor_id, "giftcard-void", {"last4": tail, "card_id": card_id})
        now = self.now()
        applied = await self.unit(
            "void_gift_card",
            GiftCard.from_dict,
            key,
            guild_id,
            now,
            void_gift_card,
            guild_id,
            tail,
            card_id,
            audit,
            now,
        )
        return applied.value

    async def redeem(
        self, guild_id: int, user_id: int, code: str, *, key: str | None, member: MemberFacts | None = None
    ) -> Redemption:
        """One box for both kinds of code."""
        if not isinstance(code, str) or not code.strip():
            raise InvalidInput("no_code", "Type the code you received.")
        if len(code) > limits.REDEEM_INPUT:
            raise InvalidInput("code_too_long", "That is too long to be a code.")
        promo_key = codes.normalise_code(code)
        if not promo_key:
            raise InvalidInput("no_code", "Type the code you received.")
        canonical = codes.gift_code_key(code)
        gift_hash = codes.hash_gift_code(canonical) if canonical is not None else None
        now = self.now()
        applied = await self.unit(
            "redeem",
            Redemption.from_dict,
            key,
            guild_id,
            now,
            redeem_code,
            guild_id,
            user_id,
            promo_key,
            gift_hash,
            member or MemberFacts(),
            key,
            now,
        )
        redemption = applied.value
        if applied.fresh:
            self.emit(
                "code_redeemed",
                {
                    "guild_id": guild_id,
                    "user_id": user_id,
                    "kind": redemption.kind,
                    "code_label": redemption.code_label,
                    "lot_id": redemption.lot.id,
                    "amount": redemption.lot.original,
                    "expires_at": redemption.lot.expires_at,
                },
            )
            lot = redemption.lot
            self.emit_granted(
                guild_id, [user_id], GrantResult(lot.id, 1, lot.original, lot.kind, lot.starts_at, lot.expires_at), None
            )
        return redemption
