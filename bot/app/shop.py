"""The shop: items, checkout (preview, then confirm exactly what it showed), orders and refunds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.app.credits import debit
from bot.app.reminders import advance_reminder
from bot.app.service import Service, bounded_int, bounded_text
from bot.domain import delivery as deliveries
from bot.domain import fulfilment, limits
from bot.domain.errors import Conflict, IntegrityError, InvalidInput, NotFound
from bot.domain.fulfilment import check_item_fields, initial_status
from bot.domain.models import (
    Allocation,
    AuditRecord,
    CheckoutPreview,
    GuildSettings,
    Order,
    Page,
    PurchasePlan,
    RefundResult,
    ShopItem,
)
from bot.domain.orders import check_plan_unchanged, preview_purchase
from bot.domain.paging import clamp_page, page_count
from bot.store.ports import DuplicateKey, Tx

ORDERS_PAGE = 10


def _duplicate_name(name: object) -> Conflict:
    return Conflict("item_name_taken", "The shop already has an item named {name:b}.", name=name)


def add_item(tx: Tx, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, now: int) -> ShopItem:
    try:
        item_id = tx.items.insert(guild_id, fields, now)
    except DuplicateKey as exc:
        raise _duplicate_name(fields["name"]) from exc
    tx.audit.add(guild_id, audit, now)
    item = tx.items.by_id(guild_id, item_id)
    assert item is not None
    return item


def edit_item(
    tx: Tx, guild_id: int, item_id: int, changes: Mapping[str, Any], audit: AuditRecord, now: int
) -> ShopItem:
    item = tx.items.by_id(guild_id, item_id)
    if item is None:
        raise NotFound("no_such_item", "There is no such item in this server's shop.")
    check_item_fields(item.delivery, {k: v for k, v in changes.items() if k != "active"})
    try:
        tx.items.update(item_id, changes)
    except DuplicateKey as exc:
        raise _duplicate_name(changes.get("name")) from exc
    tx.audit.add(guild_id, audit, now)
    edited = tx.items.by_id(guild_id, item_id)
    assert edited is not None
    return edited


def plan_purchase(
    tx: Tx, guild_id: int, user_id: int, item_id: int, quantity: int, now: int
) -> tuple[CheckoutPreview, Allocation, GuildSettings]:
    """The purchase as it would be now, from the item, what the member bought and their lots."""
    settings = tx.settings.get(guild_id)
    item = tx.items.by_id(guild_id, item_id)
    if item is None:
        raise NotFound("no_such_item", "There is no such item in this server's shop.")
    preview, allocation = preview_purchase(
        item,
        quantity,
        tx.orders.bought(item.id, user_id),
        tx.lots.of_member(guild_id, user_id),
        settings.promo_excluded_categories,
        now,
        settings.currency,
    )
    return preview, allocation, settings


def preview(tx: Tx, guild_id: int, user_id: int, item_id: int, quantity: int, now: int) -> CheckoutPreview:
    return plan_purchase(tx, guild_id, user_id, item_id, quantity, now)[0]


def check_out(
    tx: Tx,
    guild_id: int,
    user_id: int,
    item_id: int,
    quantity: int,
    key: str | None,
    now: int,
    expected: PurchasePlan | None,
) -> Order:
    """Buy: stock, the order, its spend and forfeit entries, and what it owes in Discord (the role
    of an instant item, the post of a staff order); a code item's order takes one unused code."""
    purchase, allocation, settings = plan_purchase(tx, guild_id, user_id, item_id, quantity, now)
    if expected is not None:
        check_plan_unchanged(expected, purchase, settings.currency)
    item = purchase.item
    if item.stock is not None:
        tx.items.change_stock(item.id, -quantity)
    status = initial_status(item.delivery)
    order_id = tx.orders.insert(
        guild_id,
        user_id,
        item,
        quantity,
        purchase.total,
        allocation.promo_applied,
        allocation.gift_applied,
        allocation.forfeited,
        status,
        now,
    )
    debit(
        tx,
        allocation.takes + allocation.forfeits,
        "spend",
        order_id,
        user_id,
        f"{quantity} × {item.name}",
        key,
        now,
        forfeits=len(allocation.takes),
    )
    if item.delivery == fulfilment.CODE and not tx.item_codes.take(item.id, order_id):
        # The stock said there was a code: the item's stock and codes disagree (a hand edit).
        raise IntegrityError(f"item {item.id} has stock {item.stock} but no unused code")
    order = tx.orders.by_id(guild_id, order_id)
    assert order is not None
    if order.role_id is not None:  # given by the delivery worker, from this record (SPEC §3)
        tx.deliveries.add(order, deliveries.ADD_ROLE, order.role_id, now)
    if status == fulfilment.PENDING and settings.fulfilment_channel_id is not None:
        tx.deliveries.add(order, deliveries.POST_ORDER, None, now, channel_id=settings.fulfilment_channel_id)
    return order


def refund_order(
    tx: Tx,
    guild_id: int,
    order_id: int,
    audit: AuditRecord,
    key: str | None,
    now: int,
    dm: str | None = deliveries.DM_REFUNDED,
) -> RefundResult:
    """A moderator's refund of an order (or the automatic one of an undeliverable order, which
    tells the member itself: `dm` None): see `reverse_order`."""
    order = tx.orders.by_id(guild_id, order_id)
    if order is None:
        raise NotFound("no_such_order", "There is no order #{order} in this server.", order=order_id)
    fulfilment.check_refundable(order)
    reason = audit.details.get("reason") or f"refund of order #{order_id}"
    return reverse_order(tx, order, fulfilment.REFUNDED, audit, reason, None, dm, key, now)


def reverse_order(
    tx: Tx,
    order: Order,
    status: str,
    audit: AuditRecord,
    reason: str,
    note: str | None,
    dm: str | None,
    key: str | None,
    now: int,
) -> RefundResult:
    """Reverse an order entirely and move it to `status` (refunded, or cancelled by its buyer), in
    one transaction: spends and forfeits back to their lots, stock back (not a code's: it was
    shown), its role taken back, its post edited, the DM `dm` to the member, and the audit record.

    A refund never revives expired credit (it is expired again at once), and a lot a moderator
    revoked as a whole stays revoked (a revoke of an amount only took what was there then: credit
    of such a lot does come back)."""
    guild_id, order_id = order.guild_id, order.id
    leads = tx.settings.get(guild_id).reminder_leads
    returned = expired_again = revoked_again = 0
    for lot_id, amount in tx.entries.taken_by_order(order_id):
        lot = tx.lots.by_id(guild_id, lot_id)
        assert lot is not None
        tx.entries.add(lot, "refund", amount, order_id, audit.actor_id, reason, key, now)
        if lot.status == "expired" or lot.is_expired_at(now):
            tx.entries.add(lot, "expire", -amount, order_id, audit.actor_id, reason, key, now)
            if lot.status in ("spent", "forfeited", "voided"):
                tx.lots.set_status(lot_id, "expired")
            expired_again += amount
        elif tx.lots.revoked_at(lot_id) is not None:
            tx.entries.add(lot, "void", -amount, order_id, audit.actor_id, reason, key, now)
            revoked_again += amount
        else:
            tx.lots.put_back(lot_id, amount)
            advance_reminder(tx, lot_id, leads, now)
            returned += amount
    if order.delivery != fulfilment.CODE:  # a code was revealed to its buyer: it never comes back
        tx.items.change_stock(order.item_id, order.quantity)
    moved = tx.orders.reverse(order_id, order.status, status, audit.actor_id, now, reason, note)
    assert moved, f"order {order_id} changed under its transaction"
    take_back_role(tx, order, now)
    if order.status == fulfilment.PENDING:
        edit_post(tx, order, now)
    if dm is not None:
        tx.deliveries.add(order, dm, None, now)
    tx.audit.add(guild_id, audit, now)
    reversed_order = tx.orders.by_id(guild_id, order_id)
    assert reversed_order is not None
    return RefundResult(reversed_order, returned, expired_again, revoked_again)


def edit_post(tx: Tx, order: Order, now: int) -> None:
    """Someone acted on a staff order: its post in the fulfilment channel is edited to say who and
    when. A post not made yet (and never tried) is cancelled instead: the order is no longer for
    the queue. A post being made, or made, is followed by the edit, which the worker carries out
    once the post has settled (and which has nothing to do if the post failed)."""
    post = tx.deliveries.of_action(order.id, deliveries.POST_ORDER)
    if post is None:
        return
    delivery_id, status, attempts, claimed_by, _ = post
    if status in ("cancelled", "failed"):
        return
    if status == "pending" and claimed_by is None and attempts == 0:
        tx.deliveries.cancel(delivery_id, now)
        return
    tx.deliveries.add(order, deliveries.EDIT_POST, None, now)


def take_back_role(tx: Tx, order: Order, now: int) -> None:
    """A refund takes the order's role back. A grant not sent yet is cancelled instead (there is
    nothing to take back); a grant that was given, is being given or may have reached Discord (a
    passing failure, an order from before deliveries were recorded) is followed by a removal,
    which the worker carries out only after that grant has settled."""
    if order.role_id is None:
        return
    grant = tx.deliveries.of_action(order.id, deliveries.ADD_ROLE)
    if grant is not None:
        delivery_id, status, attempts, claimed_by, reason = grant
        if status == "cancelled" or (status == "failed" and reason != deliveries.GAVE_UP):
            return  # never given
        if status == "pending" and claimed_by is None:
            tx.deliveries.cancel(delivery_id, now)
            if attempts == 0:
                return  # never sent to Discord
    tx.deliveries.add(order, deliveries.REMOVE_ROLE, order.role_id, now)


def listed_items(tx: Tx, guild_id: int, category: str | None, include_inactive: bool) -> list[ShopItem]:
    return tx.items.listed(guild_id, category, include_inactive)


def item_by_id(tx: Tx, guild_id: int, item_id: int) -> ShopItem | None:
    return tx.items.by_id(guild_id, item_id)


def orders_page(tx: Tx, guild_id: int, user_id: int | None, page: int, per_page: int) -> Page[Order]:
    total = tx.orders.count(guild_id, user_id)
    page_no = clamp_page(page, total, per_page)
    orders = tx.orders.page(guild_id, user_id, (page_no - 1) * per_page, per_page)
    return Page(tuple(orders), page_no, page_count(total, per_page), total)


def order_by_id(tx: Tx, guild_id: int, order_id: int) -> Order | None:
    return tx.orders.by_id(guild_id, order_id)


class ShopService(Service):
    async def _item_fields(self, guild_id: int, given: dict[str, Any]) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if given.get("name") is not None:
            name = bounded_text(given["name"], "item name", limits.ITEM_NAME)
            if not name:
                raise InvalidInput("item_needs_name", "Give the item a name.")
            fields["name"] = name
        if given.get("price") is not None:
            fields["price"] = await self.amount(guild_id, given["price"])
        if given.get("category") is not None:
            category = bounded_text(given["category"], "category", limits.CATEGORY)
            if not category:
                raise InvalidInput("item_needs_category", "Give the item a category.")
            fields["category"] = category
        if given.get("description") is not None:
            fields["description"] = bounded_text(given["description"], "description", limits.ITEM_DESCRIPTION) or ""
        if given.get("stock") is not None:
            fields["stock"] = bounded_int(given["stock"], "stock", 0, 10**9)
        if given.get("limit") is not None:
            fields["per_member_limit"] = bounded_int(given["limit"], "per-member limit", 1, 10**6)
        for key in ("role_id", "active"):
            if given.get(key) is not None:
                fields[key] = given[key]
        return fields

    async def add_item(
        self,
        guild_id: int,
        name: str,
        price: str | int,
        category: str,
        *,
        actor_id: int,
        key: str | None,
        stock: int | None = None,
        role_id: int | None = None,
        limit: int | None = None,
        description: str | None = None,
        delivery: str = fulfilment.INSTANT,
    ) -> ShopItem:
        """A new item. Its `delivery` (instant, staff or code) is fixed from now on; a code item's
        stock is its unused codes (none yet: upload them), and only an instant item gives a role."""
        kind = fulfilment.check_delivery(delivery)
        fields = await self._item_fields(
            guild_id,
            {
                "name": name,
                "price": price,
                "category": category,
                "stock": stock,
                "role_id": role_id,
                "limit": limit,
                "description": description or "",
            },
        )
        for required in ("name", "price", "category"):
            if required not in fields:
                raise InvalidInput("item_needs_field", "The item needs a {field}.", field=required)
        check_item_fields(kind, fields)
        fields["delivery"] = kind
        if kind == fulfilment.CODE:
            fields["stock"] = 0  # its unused codes
        audit = AuditRecord(actor_id, "shop-add", {k: v for k, v in fields.items() if k != "description"})
        now = self.now()
        return (
            await self.unit("add_item", ShopItem.from_dict, key, guild_id, now, add_item, guild_id, fields, audit, now)
        ).value

    async def _edit_item(
        self, guild_id: int, item_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None
    ) -> ShopItem:
        now = self.now()
        applied = await self.unit(
            "edit_item", ShopItem.from_dict, key, guild_id, now, edit_item, guild_id, item_id, fields, audit, now
        )
        return applied.value

    async def edit_item(
        self,
        guild_id: int,
        item_id: int,
        *,
        actor_id: int,
        key: str | None,
        clear_stock: bool = False,
        clear_limit: bool = False,
        clear_role: bool = False,
        **changes: Any,
    ) -> ShopItem:
        if "delivery" in changes:
            raise InvalidInput(
                "delivery_fixed", "An item's delivery can't change once it exists: add a new item instead."
            )
        fields = await self._item_fields(guild_id, changes)
        if clear_stock:
            fields["stock"] = None
        if clear_limit:
            fields["per_member_limit"] = None
        if clear_role:
            fields["role_id"] = None
        if not fields:
            raise InvalidInput("nothing_to_change", "Nothing to change: give at least one option.")
        return await self._edit_item(
            guild_id, item_id, fields, AuditRecord(actor_id, "shop-edit", {"item_id": item_id, **fields}), key
        )

    async def remove_item(self, guild_id: int, item_id: int, *, actor_id: int, key: str | None) -> ShopItem:
        """Items are retired, not deleted: past orders keep pointing at them."""
        audit = AuditRecord(actor_id, "shop-remove", {"item_id": item_id})
        return await self._edit_item(guild_id, item_id, {"active": 0}, audit, key)

    async def items(self, guild_id: int, category: str | None = None, include_inactive: bool = False) -> list[ShopItem]:
        return await self.store.read(listed_items, guild_id, category, include_inactive)

    async def item(self, guild_id: int, item_id: int) -> ShopItem | None:
        return await self.store.read(item_by_id, guild_id, item_id)

    async def categories(self, guild_id: int) -> list[str]:
        seen: dict[str, str] = {}
        for item in await self.items(guild_id):
            seen.setdefault(item.category.casefold(), item.category)
        return sorted(seen.values(), key=str.casefold)

    async def preview(self, guild_id: int, user_id: int, item_id: int, quantity: int = 1) -> CheckoutPreview:
        return await self.store.read(preview, guild_id, user_id, item_id, quantity, self.now())

    async def checkout(
        self,
        guild_id: int,
        user_id: int,
        item_id: int,
        quantity: int = 1,
        *,
        key: str | None,
        expected: PurchasePlan | None = None,
    ) -> Order:
        """Buy. `expected` is the plan the member agreed to in the preview: inside the purchase's
        transaction the plan is worked out again from the current lots, and any difference (the
        lots, the promo / gift split, a forfeit, the price) raises `PlanChanged` with the new
        preview and writes nothing, so the member never pays in a way the preview did not show."""
        now = self.now()
        applied = await self.unit(
            "checkout",
            Order.from_dict,
            key,
            guild_id,
            now,
            check_out,
            guild_id,
            user_id,
            item_id,
            quantity,
            key,
            now,
            expected,
        )
        order = applied.value
        if applied.fresh:
            self.emit(
                "credit_spent",
                {
                    "guild_id": guild_id,
                    "user_id": user_id,
                    "order_id": order.id,
                    "item_id": order.item_id,
                    "item_name": order.item_name,
                    "quantity": order.quantity,
                    "total": order.total,
                    "promo_applied": order.promo_applied,
                    "gift_applied": order.gift_applied,
                    "forfeited": order.forfeited,
                    "role_id": order.role_id,
                    "delivery": order.delivery,
                },
            )
            if order.status == fulfilment.PENDING:
                self.emit("order_pending", fulfilment.order_event(order))
        return order

    async def refund(
        self, guild_id: int, order_id: int, *, actor_id: int | None, key: str | None, reason: str | None = None
    ) -> RefundResult:
        audit = AuditRecord(actor_id, "refund", {"order_id": order_id, "reason": bounded_text(reason, "reason")})
        now = self.now()
        applied = await self.unit(
            "refund", RefundResult.from_dict, key, guild_id, now, refund_order, guild_id, order_id, audit, key, now
        )
        return applied.value

    async def orders(
        self, guild_id: int, user_id: int | None, page: int = 1, per_page: int = ORDERS_PAGE
    ) -> Page[Order]:
        return await self.store.read(orders_page, guild_id, user_id, page, per_page)

    async def order(self, guild_id: int, order_id: int) -> Order | None:
        return await self.store.read(order_by_id, guild_id, order_id)
