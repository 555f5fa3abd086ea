"""The ledger service: what every command (and the CLI) calls. No Discord import.

It parses and validates what users typed (amounts in the guild's currency, durations and dates in
the guild's timezone, codes), calls the store's units of work, and tells listeners what happened
(`credit_granted`, `credit_spent`, `credit_expired`, `code_redeemed`, …) with plain data.
Every mutation takes an idempotency key: the Discord layer passes the interaction id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.domain import codes, limits
from bot.domain import delivery as deliveries
from bot.domain.allocation import balance_of
from bot.domain.categories import normalise_categories, parse_categories
from bot.domain.errors import InvalidInput
from bot.domain.export import write_csv
from bot.domain.models import (
    LOT_KINDS,
    AuditRecord,
    Balance,
    CheckoutPreview,
    Delivery,
    DeliveryFailure,
    DueReminder,
    Entry,
    ExpiredLot,
    ExtendResult,
    GiftCard,
    GrantResult,
    GuildSettings,
    IssuedGiftCards,
    Lot,
    LotKind,
    LotSpec,
    MemberFacts,
    Order,
    Page,
    PromoCode,
    PurchasePlan,
    Redemption,
    RefundResult,
    ReminderClaim,
    Report,
    RevokeResult,
    Schedule,
    ShopItem,
)
from bot.domain.money import MAX_AMOUNT, check_amount, parse_amount, validate_currency
from bot.domain.recurrence import next_run
from bot.domain.timeparse import (
    parse_future,
    parse_lead_times,
    parse_when,
    to_unix,
    validate_timezone,
)
from bot.store.base import Store

log = logging.getLogger(__name__)

EventSink = Callable[[str, dict[str, Any]], None]
HISTORY_PAGE = 10
ORDERS_PAGE = 10
MAX_GIFT_CARDS = 500
MAX_TEXT = limits.REASON
MAX_NAME = limits.ITEM_NAME
KEEP_KEYS_SECONDS = 30 * 86400


def utc_now() -> datetime:
    return datetime.now(UTC)


def _text(value: str | None, what: str, limit: int = MAX_TEXT) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if len(value) > limit:
        raise InvalidInput(f"The {what} can be at most {limit} characters.")
    return value or None


def _kind(kind: str) -> LotKind:
    if kind not in LOT_KINDS:
        raise InvalidInput("Kind must be `promo` or `gift`.")
    return kind


def _positive_int(value: int | None, what: str, minimum: int = 1, maximum: int = MAX_AMOUNT) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not minimum <= value <= maximum:
        raise InvalidInput(f"The {what} must be between {minimum} and {maximum}.")
    return value


@dataclass
class Ledger:
    store: Store
    clock: Callable[[], datetime] = utc_now
    events: EventSink | None = None

    # plumbing ----------------------------------------------------------------------------------
    def now(self) -> int:
        return to_unix(self.clock())

    def emit(self, name: str, payload: dict[str, Any]) -> None:
        """Tell listeners (the bot's other cogs) what happened, after it was committed."""
        if self.events is None:
            return
        try:
            self.events(name, payload)
        except Exception:  # a listener's bug must not undo a committed write
            log.exception("listener of %s failed", name)

    async def committed_for_interaction(self, interaction_id: int) -> list[str]:
        """What an interaction's writes committed (operation names), for telling the truth about
        a write whose answer failed."""
        return await self.store.operations_of_interaction(interaction_id)

    async def _replayed_or(self, refusal: InvalidInput, key: str | None, operation: str) -> dict[str, Any]:
        """A check that depends on the time (an expiry typed as a date) can refuse a replay of a
        request that was valid when first made: return the first result then, else the refusal."""
        prior = await self.store.replayed(key, operation) if key is not None else None
        if prior is None:
            raise refusal
        return prior

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self.store.get_settings(guild_id)

    async def amount(self, guild_id: int, value: str | int, settings: GuildSettings | None = None) -> int:
        """An amount typed by a user in the guild's currency, or minor units given as an int."""
        if isinstance(value, int) and not isinstance(value, bool):
            return check_amount(value)
        if not isinstance(value, str):
            raise InvalidInput("Give the amount as a number, like 25.")
        settings = settings or await self.settings(guild_id)
        return parse_amount(value, settings.decimals, symbol=settings.currency_symbol)

    def _when(self, text: str | None, settings: GuildSettings, what: str, future: bool) -> int | None:
        if text is None or not text.strip():
            return None
        now = self.clock()
        if future:
            return to_unix(parse_future(text, now, settings.timezone, what=what))
        return to_unix(parse_when(text, now, settings.timezone, day_start=True))  # "usable from" a date

    # settings ----------------------------------------------------------------------------------
    async def update_settings(
        self, guild_id: int, *, actor_id: int, key: str | None, **changes: Any
    ) -> GuildSettings:
        """Change any of: currency_name, currency_symbol, decimals, timezone, reminder_leads (text like
        "7d,1d"), mod_role_id, audit_channel_id. Only the given (not None) values change."""
        values = {k: v for k, v in changes.items() if v is not None}
        if {"currency_name", "currency_symbol", "decimals"} & set(values):
            name, symbol, _ = validate_currency(
                values.get("currency_name"), values.get("currency_symbol"), values.get("decimals")
            )
            if name is not None:
                values["currency_name"] = name
            if symbol is not None:
                values["currency_symbol"] = symbol
        if "timezone" in values:
            values["timezone"] = validate_timezone(values["timezone"])
        if "reminder_leads" in values and isinstance(values["reminder_leads"], str):
            values["reminder_leads"] = parse_lead_times(values["reminder_leads"])
        if not values:
            raise InvalidInput("Nothing to change: give at least one option.")
        applied = await self.store.update_settings(
            guild_id, values, AuditRecord(actor_id, "settings", {k: str(v) for k, v in values.items()}),
            key, self.now(),
        )
        return applied.value

    async def set_category_excluded(
        self, guild_id: int, category: str, excluded: bool, *, actor_id: int, key: str | None
    ) -> GuildSettings:
        name = _text(category, "category", limits.CATEGORY)
        if not name:
            raise InvalidInput("Name a category.")
        current = (await self.settings(guild_id)).promo_excluded_categories
        kept = [c for c in current if c.casefold() != name.casefold()]
        if excluded:
            if len(kept) >= limits.EXCLUDED_CATEGORIES:
                raise InvalidInput(
                    f"At most {limits.EXCLUDED_CATEGORIES} categories can be excluded; include one again first."
                )
            kept.append(name)
        applied = await self.store.update_settings(
            guild_id, {"promo_excluded_categories": tuple(kept)},
            AuditRecord(actor_id, "exclude-category" if excluded else "include-category", {"category": name}),
            key, self.now(),
        )
        return applied.value

    async def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool) -> None:
        await self.store.set_reminders_enabled(guild_id, user_id, enabled, self.now())

    async def reminders_enabled(self, guild_id: int, user_id: int) -> bool:
        return await self.store.reminders_enabled(guild_id, user_id)

    # credit ------------------------------------------------------------------------------------
    async def _lot_spec(
        self, guild_id: int, amount: str | int, *, kind: str, expires: str | None, starts: str | None,
        categories: str | Sequence[str] | None, one_time: bool, reason: str | None,
    ) -> LotSpec:
        settings = await self.settings(guild_id)
        minor = await self.amount(guild_id, amount, settings)
        starts_at = self._when(starts, settings, "start", future=False)
        expires_at = self._when(expires, settings, "expiry", future=True)
        if starts_at is not None and expires_at is not None and expires_at <= starts_at:
            raise InvalidInput("The expiry must come after the start.")
        cats = parse_categories(categories) if isinstance(categories, str) or categories is None \
            else normalise_categories(categories)
        return LotSpec(
            amount=minor, kind=_kind(kind), starts_at=starts_at, expires_at=expires_at, categories=cats,
            one_time=bool(one_time), memo=_text(reason, "reason"),
        )

    async def grant(
        self, guild_id: int, user_id: int, amount: str | int, *, actor_id: int | None, key: str | None,
        kind: str = "promo", expires: str | None = None, starts: str | None = None,
        categories: str | Sequence[str] | None = None, one_time: bool = False, reason: str | None = None,
    ) -> GrantResult:
        return await self.grant_many(
            guild_id, [user_id], amount, actor_id=actor_id, key=key, kind=kind, expires=expires,
            starts=starts, categories=categories, one_time=one_time, reason=reason,
        )

    async def grant_many(
        self, guild_id: int, user_ids: Iterable[int], amount: str | int, *, actor_id: int | None,
        key: str | None, kind: str = "promo", expires: str | None = None, starts: str | None = None,
        categories: str | Sequence[str] | None = None, one_time: bool = False, reason: str | None = None,
        action: str = "grant",
    ) -> GrantResult:
        """One lot per member, all in one transaction."""
        # In user-id order: every index insert (accounts, lots_member, entries_member) then walks its
        # B-tree once instead of landing on a random page per member. Lot ids follow that order.
        members = sorted(set(user_ids))
        if not members:
            raise InvalidInput("There is nobody to grant credit to.")
        try:
            spec = await self._lot_spec(
                guild_id, amount, kind=kind, expires=expires, starts=starts, categories=categories,
                one_time=one_time, reason=reason,
            )
        except InvalidInput as refusal:
            return GrantResult.from_dict(await self._replayed_or(refusal, key, "grant"))
        details: dict[str, Any] = {"members": len(members), "amount": spec.amount, "kind": spec.kind}
        if len(members) == 1:
            details["user_id"] = members[0]
        if spec.memo:
            details["reason"] = spec.memo
        audit = AuditRecord(actor_id, action, details) if actor_id is not None else None
        applied = await self.store.grant(guild_id, members, spec, audit, key, self.now())
        result = applied.value
        if applied.fresh:
            self.emit("credit_granted", {
                "guild_id": guild_id, "user_ids": members, "amount": result.amount, "kind": result.kind,
                "starts_at": result.starts_at, "expires_at": result.expires_at,
                "first_lot_id": result.first_lot_id, "actor_id": actor_id,
            })
        return result

    async def revoke(
        self, guild_id: int, user_id: int, *, reason: str, actor_id: int, key: str | None,
        lot_id: int | None = None, amount: str | int | None = None,
    ) -> RevokeResult:
        why = _text(reason, "reason")
        if not why:
            raise InvalidInput("Give a reason for the revocation; the member will see it in their history.")
        minor = None if amount is None else await self.amount(guild_id, amount)
        if lot_id is None and minor is None:
            raise InvalidInput("Name a lot or an amount to revoke.")
        audit = AuditRecord(actor_id, "revoke", {"user_id": user_id, "lot_id": lot_id, "amount": minor,
                                                  "reason": why})
        applied = await self.store.revoke(guild_id, user_id, lot_id, minor, audit, key, self.now())
        return applied.value

    async def extend(
        self, guild_id: int, lot_id: int, expires: str, *, actor_id: int, key: str | None,
        reason: str | None = None,
    ) -> ExtendResult:
        settings = await self.settings(guild_id)
        try:
            expires_at = self._when(expires, settings, "expiry", future=True)
        except InvalidInput as refusal:
            return ExtendResult.from_dict(await self._replayed_or(refusal, key, "extend"))
        if expires_at is None:
            raise InvalidInput("Give the new expiry, like `30d` or `2026-12-31`.")
        audit = AuditRecord(actor_id, "extend", {"lot_id": lot_id, "expires_at": expires_at,
                                                  "reason": _text(reason, "reason")})
        applied = await self.store.extend(guild_id, lot_id, expires_at, audit, key, self.now())
        return applied.value

    async def balance(self, guild_id: int, user_id: int) -> Balance:
        lots = await self.store.member_lots(guild_id, user_id)
        return balance_of(guild_id, user_id, lots, self.now())

    async def lots(self, guild_id: int, user_id: int, active_only: bool = False) -> list[Lot]:
        return await self.store.member_lots(guild_id, user_id, active_only)

    async def get_lot(self, guild_id: int, lot_id: int) -> Lot | None:
        return await self.store.get_lot(guild_id, lot_id)

    async def history(self, guild_id: int, user_id: int, page: int = 1, per_page: int = HISTORY_PAGE) -> Page[Entry]:
        return await self.store.history(guild_id, user_id, page, per_page)

    # shop --------------------------------------------------------------------------------------
    async def _item_fields(self, guild_id: int, given: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if given.get("name") is not None:
            name = _text(given["name"], "item name", MAX_NAME)
            if not name:
                raise InvalidInput("Give the item a name.")
            fields["name"] = name
        if given.get("price") is not None:
            fields["price"] = await self.amount(guild_id, given["price"])
        if given.get("category") is not None:
            category = _text(given["category"], "category", limits.CATEGORY)
            if not category:
                raise InvalidInput("Give the item a category.")
            fields["category"] = category
        if given.get("description") is not None:
            fields["description"] = _text(given["description"], "description", limits.ITEM_DESCRIPTION) or ""
        if given.get("stock") is not None:
            fields["stock"] = _positive_int(given["stock"], "stock", 0, 10**9)
        if given.get("limit") is not None:
            fields["per_member_limit"] = _positive_int(given["limit"], "per-member limit", 1, 10**6)
        for key in ("role_id", "active"):
            if given.get(key) is not None:
                fields[key] = given[key]
        return fields

    async def add_item(
        self, guild_id: int, name: str, price: str | int, category: str, *, actor_id: int, key: str | None,
        stock: int | None = None, role_id: int | None = None, limit: int | None = None,
        description: str | None = None,
    ) -> ShopItem:
        fields = await self._item_fields(guild_id, {
            "name": name, "price": price, "category": category, "stock": stock, "role_id": role_id,
            "limit": limit, "description": description or "",
        })
        for required in ("name", "price", "category"):
            if required not in fields:
                raise InvalidInput(f"The item needs a {required}.")
        audit = AuditRecord(actor_id, "shop-add", {k: v for k, v in fields.items() if k != "description"})
        return (await self.store.add_item(guild_id, fields, audit, key, self.now())).value

    async def edit_item(
        self, guild_id: int, item_id: int, *, actor_id: int, key: str | None, clear_stock: bool = False,
        clear_limit: bool = False, clear_role: bool = False, **changes: Any,
    ) -> ShopItem:
        fields = await self._item_fields(guild_id, changes)
        if clear_stock:
            fields["stock"] = None
        if clear_limit:
            fields["per_member_limit"] = None
        if clear_role:
            fields["role_id"] = None
        if not fields:
            raise InvalidInput("Nothing to change: give at least one option.")
        audit = AuditRecord(actor_id, "shop-edit", {"item_id": item_id, **fields})
        return (await self.store.edit_item(guild_id, item_id, fields, audit, key, self.now())).value

    async def remove_item(self, guild_id: int, item_id: int, *, actor_id: int, key: str | None) -> ShopItem:
        """Items are retired, not deleted: past orders keep pointing at them."""
        audit = AuditRecord(actor_id, "shop-remove", {"item_id": item_id})
        return (await self.store.edit_item(guild_id, item_id, {"active": 0}, audit, key, self.now())).value

    async def items(self, guild_id: int, category: str | None = None, include_inactive: bool = False) -> list[ShopItem]:
        return await self.store.list_items(guild_id, category, include_inactive)

    async def item(self, guild_id: int, item_id: int) -> ShopItem | None:
        return await self.store.get_item(guild_id, item_id)

    async def categories(self, guild_id: int) -> list[str]:
        seen: dict[str, str] = {}
        for item in await self.items(guild_id):
            seen.setdefault(item.category.casefold(), item.category)
        return sorted(seen.values(), key=str.casefold)

    async def preview(self, guild_id: int, user_id: int, item_id: int, quantity: int = 1) -> CheckoutPreview:
        return await self.store.preview(guild_id, user_id, item_id, quantity, self.now())

    async def checkout(
        self, guild_id: int, user_id: int, item_id: int, quantity: int = 1, *, key: str | None,
        expected: PurchasePlan | None = None,
    ) -> Order:
        """Buy. `expected` is the plan the member agreed to in the preview: inside the purchase's
        transaction the plan is worked out again from the current lots, and any difference (the
        lots, the promo / gift split, a forfeit, the price) raises `PlanChanged` with the new
        preview and writes nothing, so the member never pays in a way the preview did not show."""
        applied = await self.store.checkout(guild_id, user_id, item_id, quantity, key, self.now(), expected)
        order = applied.value
        if applied.fresh:
            self.emit("credit_spent", {
                "guild_id": guild_id, "user_id": user_id, "order_id": order.id, "item_id": order.item_id,
                "item_name": order.item_name, "quantity": order.quantity, "total": order.total,
                "promo_applied": order.promo_applied, "gift_applied": order.gift_applied,
                "forfeited": order.forfeited, "role_id": order.role_id,
            })
        return order

    async def refund(
        self, guild_id: int, order_id: int, *, actor_id: int | None, key: str | None, reason: str | None = None
    ) -> RefundResult:
        audit = AuditRecord(actor_id, "refund", {"order_id": order_id, "reason": _text(reason, "reason")})
        return (await self.store.refund(guild_id, order_id, audit, key, self.now())).value

    async def orders(
        self, guild_id: int, user_id: int | None, page: int = 1, per_page: int = ORDERS_PAGE
    ) -> Page[Order]:
        return await self.store.orders(guild_id, user_id, page, per_page)

    async def order(self, guild_id: int, order_id: int) -> Order | None:
        return await self.store.get_order(guild_id, order_id)

    # deliveries: what an order must still do in Discord (bot/ledger/delivery.py) ---------------
    async def due_deliveries(self, limit: int = 100) -> list[Delivery]:
        return await self.store.due_deliveries(self.now(), limit)

    async def order_deliveries(self, guild_id: int, order_id: int) -> list[Delivery]:
        return await self.store.order_deliveries(guild_id, order_id)

    async def claim_delivery(self, delivery_id: int, worker: str) -> Delivery | None:
        return await self.store.claim_delivery(delivery_id, worker, self.now())

    async def release_deliveries(self, worker: str, resend_window: int) -> int:
        return await self.store.release_deliveries(worker, self.now(), resend_window)

    async def delivered(self, delivery: Delivery, worker: str) -> Delivery | None:
        return await self.store.settle_delivery(delivery.id, worker, "done", self.now())

    async def delivery_failed_for_now(self, delivery: Delivery, worker: str, error: str) -> Delivery | None:
        """A passing failure (rate limit, 5xx, network): try again after the backoff, or give up
        once it has failed for longer than GIVE_UP_AFTER (then it is impossible)."""
        now = self.now()
        if deliveries.gives_up(delivery.created_at, now):
            failure = await self.delivery_impossible(delivery, worker, deliveries.GAVE_UP, error)
            return failure.delivery if failure else None
        return await self.store.settle_delivery(
            delivery.id, worker, "pending", now, retry_at=now + deliveries.backoff(delivery.attempts), error=error
        )

    async def delivery_impossible(
        self, delivery: Delivery, worker: str, reason: str, error: str | None = None
    ) -> DeliveryFailure | None:
        """Discord will not do it. A removal whose role or member is gone is done; a role that
        cannot be given refunds its order (once, with the DM that tells the member, in the same
        transaction); anything else is recorded as failed. None: the claim was not ours any more."""
        now = self.now()
        if deliveries.nothing_left_to_do(delivery.action, reason):
            settled = await self.store.settle_delivery(delivery.id, worker, "done", now, reason=reason, error=error)
            return None if settled is None else DeliveryFailure(settled, None)
        refund = deliveries.refunds_order(delivery.action)
        audit = AuditRecord(None, "refund", {
            "order_id": delivery.order_id, "reason": f"automatic refund: {deliveries.describe(reason)}",
        })
        applied = await self.store.fail_delivery(
            delivery, worker, reason, refund, audit, f"delivery:{delivery.id}:failed", now
        )
        return applied.value

    # promo codes -------------------------------------------------------------------------------
    async def create_promo(
        self, guild_id: int, code: str, amount: str | int, *, actor_id: int, key: str | None,
        uses: int | None = None, per_member: int = 1, redeem_by: str | None = None,
        credit_days: int | None = None, credit_expires: str | None = None,
        categories: str | Sequence[str] | None = None, one_time: bool = False, role_id: int | None = None,
        min_member_days: int | None = None,
    ) -> PromoCode:
        settings = await self.settings(guild_id)
        display, code_key = codes.validate_promo_code(code)
        if codes.gift_code_key(code_key) is not None:
            raise InvalidInput("That code has the shape of a gift card code; choose another.")
        if credit_days is not None and credit_expires:
            raise InvalidInput("Give either `credit_days` or `credit_expires`, not both.")
        fields = {
            "code": display, "code_key": code_key, "amount": await self.amount(guild_id, amount, settings),
            "max_uses": _positive_int(uses, "number of uses", 1, 10**9),
            "per_member": _positive_int(per_member, "uses per member", 1, 1000),
            "credit_days": _positive_int(credit_days, "credit validity in days", 1, 36500),
            "categories": parse_categories(categories) if isinstance(categories, str) or categories is None
            else normalise_categories(categories),
            "one_time": int(bool(one_time)), "role_id": role_id,
            "min_member_days": _positive_int(min_member_days, "minimum membership age", 0, 3650),
        }
        try:
            fields["redeem_by"] = self._when(redeem_by, settings, "redeem-by date", future=True)
            fields["credit_expires"] = self._when(credit_expires, settings, "credit expiry", future=True)
        except InvalidInput as refusal:
            return PromoCode.from_dict(await self._replayed_or(refusal, key, "create_promo"))
        audit = AuditRecord(actor_id, "promo-create", {k: v for k, v in fields.items() if k != "code_key"})
        return (await self.store.create_promo(guild_id, fields, audit, key, self.now())).value

    async def promos(self, guild_id: int) -> list[PromoCode]:
        return await self.store.list_promos(guild_id)

    async def disable_promo(self, guild_id: int, code: str, *, actor_id: int, key: str | None) -> PromoCode:
        audit = AuditRecord(actor_id, "promo-disable", {"code": code.strip().upper()})
        applied = await self.store.set_promo_active(
            guild_id, codes.normalise_code(code), False, audit, key, self.now()
        )
        return applied.value

    # gift cards --------------------------------------------------------------------------------
    async def issue_gift_cards(
        self, guild_id: int, amount: str | int, count: int = 1, *, actor_id: int, key: str | None,
        claim_by: str | None = None,
    ) -> IssuedGiftCards:
        settings = await self.settings(guild_id)
        minor = await self.amount(guild_id, amount, settings)
        _positive_int(count, "number of cards", 1, MAX_GIFT_CARDS)
        try:
            claim_at = self._when(claim_by, settings, "claim-by date", future=True)
        except InvalidInput as refusal:
            return IssuedGiftCards.from_dict(await self._replayed_or(refusal, key, "issue_gift_cards"))
        plain = [codes.generate_gift_code() for _ in range(count)]
        hashes = []
        for code in plain:
            canonical = codes.gift_code_key(code)
            assert canonical is not None
            hashes.append((codes.hash_gift_code(canonical), codes.gift_code_last4(canonical)))
        audit = AuditRecord(actor_id, "giftcard-issue", {"count": count, "amount": minor, "claim_by": claim_at})
        applied = await self.store.issue_gift_cards(guild_id, hashes, minor, claim_at, audit, key, self.now())
        if not applied.fresh:  # the codes of the first request were shown once and are gone
            return applied.value
        return IssuedGiftCards(
            applied.value.card_ids, applied.value.last4s, minor, claim_at, codes=tuple(plain)
        )

    async def gift_cards(self, guild_id: int, status: str | None = None) -> list[GiftCard]:
        return await self.store.list_gift_cards(guild_id, status)

    async def void_gift_card(
        self, guild_id: int, last4: str, *, actor_id: int, key: str | None, card_id: int | None = None
    ) -> GiftCard:
        tail = codes.gift_last4_key(last4)
        if tail is None:
            raise InvalidInput("Give the last 4 characters of the card, like `7KQ2`.")
        audit = AuditRecord(actor_id, "giftcard-void", {"last4": tail, "card_id": card_id})
        return (await self.store.void_gift_card(guild_id, tail, audit, key, self.now(), card_id)).value

    # redemption --------------------------------------------------------------------------------
    async def redeem(
        self, guild_id: int, user_id: int, code: str, *, key: str | None, member: MemberFacts | None = None
    ) -> Redemption:
        """One box for both kinds of code, like Amazon's "Gift Cards & Promotional Codes"."""
        if not isinstance(code, str) or not code.strip():
            raise InvalidInput("Type the code you received.")
        if len(code) > limits.REDEEM_INPUT:
            raise InvalidInput("That is too long to be a code.")
        promo_key = codes.normalise_code(code)
        if not promo_key:
            raise InvalidInput("Type the code you received.")
        canonical = codes.gift_code_key(code)
        gift_hash = codes.hash_gift_code(canonical) if canonical is not None else None
        applied = await self.store.redeem(
            guild_id, user_id, promo_key, gift_hash, member or MemberFacts(), key, self.now()
        )
        redemption = applied.value
        if applied.fresh:
            self.emit("code_redeemed", {
                "guild_id": guild_id, "user_id": user_id, "kind": redemption.kind,
                "code_label": redemption.code_label, "lot_id": redemption.lot.id,
                "amount": redemption.lot.original, "expires_at": redemption.lot.expires_at,
            })
            self.emit("credit_granted", {
                "guild_id": guild_id, "user_ids": [user_id], "amount": redemption.lot.original,
                "kind": redemption.lot.kind, "starts_at": redemption.lot.starts_at,
                "expires_at": redemption.lot.expires_at, "first_lot_id": redemption.lot.id, "actor_id": None,
            })
        return redemption

    # recurring grants --------------------------------------------------------------------------
    async def add_schedule(
        self, guild_id: int, role_id: int, amount: str | int, rule: str, *, actor_id: int, key: str | None,
        valid_days: int | None = None, categories: str | Sequence[str] | None = None, kind: str = "promo",
    ) -> Schedule:
        settings = await self.settings(guild_id)
        fields = {
            "role_id": role_id, "amount": await self.amount(guild_id, amount, settings),
            "rule": " ".join(rule.split()), "valid_days": _positive_int(valid_days, "validity in days", 1, 36500),
            "categories": parse_categories(categories) if isinstance(categories, str) or categories is None
            else normalise_categories(categories),
            "kind": _kind(kind), "next_run_at": next_run(rule, settings.timezone, self.now()),
        }
        audit = AuditRecord(actor_id, "schedule-add", {k: v for k, v in fields.items() if k != "categories"})
        return (await self.store.add_schedule(guild_id, fields, audit, key, self.now())).value

    async def schedules(self, guild_id: int) -> list[Schedule]:
        return await self.store.list_schedules(guild_id)

    async def remove_schedule(self, guild_id: int, schedule_id: int, *, actor_id: int, key: str | None) -> Schedule:
        audit = AuditRecord(actor_id, "schedule-remove", {"schedule_id": schedule_id})
        return (await self.store.remove_schedule(guild_id, schedule_id, audit, key, self.now())).value

    async def due_schedules(self) -> list[Schedule]:
        return await self.store.due_schedules(self.now())

    async def run_schedule(self, schedule: Schedule, user_ids: Iterable[int]) -> GrantResult | None:
        """Grant a due run to the role's members; a run missed during downtime runs once, now.

        The next due time is computed from now, so a week of downtime gives one run, not seven."""
        settings = await self.settings(schedule.guild_id)
        now = self.now()
        members = list(dict.fromkeys(user_ids))
        result = await self.store.run_schedule(
            schedule, members, next_run(schedule.rule, settings.timezone, now), now
        )
        if result is not None:
            self.emit("credit_granted", {
                "guild_id": schedule.guild_id, "user_ids": members, "amount": result.amount, "kind": result.kind,
                "starts_at": result.starts_at, "expires_at": result.expires_at,
                "first_lot_id": result.first_lot_id, "actor_id": None, "schedule_id": schedule.id,
            })
        return result

    # time-driven work --------------------------------------------------------------------------
    async def sweep_expired(self) -> list[ExpiredLot]:
        expired = await self.store.sweep_expired(self.now())
        for lot in expired:
            self.emit("credit_expired", lot.to_dict())
        return expired

    async def prune_idempotency(self) -> int:
        """Forget idempotency keys older than KEEP_KEYS_SECONDS: Discord lets an interaction be
        answered for 15 minutes, so a month-old key can never come back."""
        return await self.store.prune_idempotency(self.now() - KEEP_KEYS_SECONDS)

    async def due_reminders(self, limit: int = 10_000) -> list[DueReminder]:
        return await self.store.due_reminders(self.now(), limit)

    async def claim_reminder(
        self, due: DueReminder, nonce: str, resend_window: int, *, run_id: str
    ) -> ReminderClaim:
        """Claim `due` for the run `run_id` (one start of the bot): see pending_claim."""
        return await self.store.claim_reminder(due, nonce, resend_window, self.now(), run_id)

    async def settle_reminder(
        self, lot_ids: Sequence[int], lead_seconds: int, status: str, retry_at: int | None = None
    ) -> None:
        await self.store.settle_reminder(lot_ids, lead_seconds, status, self.now(), retry_at)

    async def mark_dm_closed(self, guild_id: int, user_id: int) -> None:
        await self.store.mark_dm_closed(guild_id, user_id, self.now())

    # reading the books -------------------------------------------------------------------------
    async def report(self, guild_id: int) -> Report:
        return await self.store.report(guild_id, self.now())

    async def audit_log(self, guild_id: int, page: int = 1, per_page: int = 10) -> Page[dict[str, Any]]:
        return await self.store.audit_log(guild_id, page, per_page)

    async def verify(self) -> list[str]:
        return await self.store.verify(self.now())

    async def export_csv(self, guild_id: int, out: TextIO, batch: int = 5000) -> int:
        """Write the guild's whole ledger as CSV, reading it in batches; returns the row count."""
        rows = 0
        after = 0
        header = True
        while True:
            entries = await self.store.export_entries(guild_id, after, batch)
            rows += write_csv(entries, out, header=header)
            header = False
            if len(entries) < batch:
                return rows
            after = entries[-1].id
