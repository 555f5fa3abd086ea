"""Fulfilment (SPEC §3): the staff queue (fulfil, deny), a member's cancellation of their pending
order, the codes of code items (upload, and the one code of an order, for its buyer only), and
where an order was posted in the fulfilment channel.

Each change of an order's status is one transaction with its ledger entries, its audit record and
what it owes in Discord (bot/domain/delivery.py). The rules of who may move an order where are in
bot/domain/fulfilment.py; the refund they share with `/shopadmin refund` is `reverse_order`
(bot/app/shop.py).

Codes are secrets: they travel from the upload to the store as `ItemCodes` (whose repr shows a
count), are stored in `item_codes`, and leave it only through `order_code(s)` to the buyer. No
result, event, audit record, log line or idempotency record holds one.
"""

from __future__ import annotations

from collections.abc import Sequence

from bot.app.service import Service, bounded_text
from bot.app.shop import edit_post, reverse_order
from bot.domain import delivery as deliveries
from bot.domain import fulfilment, limits
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.fulfilment import ParsedCodes, check_buyer_can_cancel, check_staff_can_act, parse_codes
from bot.domain.models import AuditRecord, CodeUpload, Order, Page, RefundResult
from bot.domain.paging import clamp_page, page_count
from bot.store.ports import Tx

QUEUE_PAGE = 10
#: Pending orders of one member offered by /cancel's autocomplete (Discord shows 25).
MEMBER_PENDING = 25


def _order(tx: Tx, guild_id: int, order_id: int) -> Order:
    order = tx.orders.by_id(guild_id, order_id)
    if order is None:
        raise NotFound("no_such_order", "There is no order #{order} in this server.", order=order_id)
    return order


def upload_codes(
    tx: Tx, guild_id: int, item_id: int, parsed: ParsedCodes, actor_id: int | None, now: int
) -> CodeUpload:
    """Add an upload's new codes to a code item, and as many to its stock; duplicates skipped."""
    item = tx.items.by_id(guild_id, item_id)
    if item is None:
        raise NotFound("no_such_item", "There is no such item in this server's shop.")
    if item.delivery != fulfilment.CODE:
        raise Conflict(
            "item_takes_no_codes",
            "{item:b} takes no codes: only an item with delivery {code:lit} does.",
            item=item.name,
            code=fulfilment.CODE,
        )
    added = tx.item_codes.add(guild_id, item.id, parsed.codes, now)
    if added:
        tx.items.change_stock(item.id, added)
    result = CodeUpload(item.id, added, fulfilment.duplicates_of(parsed, added), (item.stock or 0) + added)
    details = {"item_id": item.id, "item": item.name, "added": added, "duplicates": result.duplicates}
    tx.audit.add(guild_id, AuditRecord(actor_id, "shop-codes", {**details, "stock": result.stock}), now)
    return result


def fulfil_order(tx: Tx, guild_id: int, order_id: int, actor_id: int, note: str | None, now: int) -> Order:
    """A moderator marks a pending staff order fulfilled (with a note for the member)."""
    order = _order(tx, guild_id, order_id)
    check_staff_can_act(order)
    assert fulfilment.may_move(order.status, fulfilment.FULFILLED, "staff")
    moved = tx.orders.move(order.id, order.status, fulfilment.FULFILLED, actor_id, now, note)
    assert moved, f"order {order.id} changed under its transaction"
    edit_post(tx, order, now)
    tx.deliveries.add(order, deliveries.DM_FULFILLED, None, now)
    tx.audit.add(guild_id, AuditRecord(actor_id, "fulfil", {"order_id": order.id, "note": note}), now)
    return _order(tx, guild_id, order.id)


def deny_order(
    tx: Tx, guild_id: int, order_id: int, reason: str, audit: AuditRecord, key: str | None, now: int
) -> RefundResult:
    """A moderator denies a pending staff order: a full refund, with the reason for the member."""
    order = _order(tx, guild_id, order_id)
    check_staff_can_act(order)
    assert fulfilment.may_move(order.status, fulfilment.REFUNDED, "staff")
    return reverse_order(tx, order, fulfilment.REFUNDED, audit, reason, reason, deliveries.DM_DENIED, key, now)


def cancel_order(tx: Tx, guild_id: int, user_id: int, order_id: int, key: str | None, now: int) -> RefundResult:
    """A member cancels their own pending staff order: a full refund."""
    order = check_buyer_can_cancel(tx.orders.by_id(guild_id, order_id), order_id, user_id)
    assert fulfilment.may_move(order.status, fulfilment.CANCELLED, "buyer")
    audit = AuditRecord(user_id, "cancel", {"order_id": order.id})
    reason = f"cancellation of order #{order.id}"
    return reverse_order(tx, order, fulfilment.CANCELLED, audit, reason, None, deliveries.DM_CANCELLED, key, now)


def pending_page(tx: Tx, guild_id: int, page: int, per_page: int) -> Page[Order]:
    total = tx.orders.count_pending(guild_id, None)
    page_no = clamp_page(page, total, per_page)
    orders = tx.orders.pending(guild_id, None, (page_no - 1) * per_page, per_page, newest_first=False)
    return Page(tuple(orders), page_no, page_count(total, per_page), total)


def member_pending(tx: Tx, guild_id: int, user_id: int, limit: int) -> list[Order]:
    return tx.orders.pending(guild_id, user_id, 0, limit, newest_first=True)


def set_order_post(tx: Tx, guild_id: int, order_id: int, channel_id: int, message_id: int) -> bool:
    return tx.orders.set_post(guild_id, order_id, channel_id, message_id)


def codes_of_buyer(tx: Tx, guild_id: int, user_id: int, order_ids: Sequence[int]) -> dict[int, str]:
    """The codes of these orders that `user_id` bought; anyone else's are left out."""
    return tx.item_codes.of_orders(guild_id, user_id, order_ids)


def code_counts(tx: Tx, guild_id: int, item_id: int) -> tuple[int, int]:
    item = tx.items.by_id(guild_id, item_id)
    if item is None:
        raise NotFound("no_such_item", "There is no such item in this server's shop.")
    return tx.item_codes.counts(item.id)


class FulfilmentService(Service):
    async def upload_codes(
        self, guild_id: int, item_id: int, text: str, *, actor_id: int | None, key: str | None
    ) -> CodeUpload:
        """Add the codes of an uploaded text (one per line, blank lines ignored, each stripped) to a
        code item. All or nothing where it breaks a limit (more than 1,000 codes, a code over 200
        characters); a code the item already has, sold or unsold, or twice in the text, is
        skipped and counted. The result holds counts only."""
        parsed = parse_codes(text)
        now = self.now()
        applied = await self.unit(
            "upload_codes", CodeUpload.from_dict, key, guild_id, now, upload_codes, guild_id, item_id, parsed,
            actor_id, now,
        )  # fmt: skip
        return applied.value

    async def fulfil(
        self, guild_id: int, order_id: int, *, actor_id: int, key: str | None, note: str | None = None
    ) -> Order:
        """Mark a pending staff order fulfilled. Not pending: a `Conflict` naming who acted, and when."""
        text = bounded_text(note, "note", limits.ORDER_NOTE)
        now = self.now()
        applied = await self.unit(
            "fulfil", Order.from_dict, key, guild_id, now, fulfil_order, guild_id, order_id, actor_id, text, now
        )
        order = applied.value
        if applied.fresh:
            self.emit("order_fulfilled", fulfilment.order_event(order, note=order.note))
        return order

    async def deny(self, guild_id: int, order_id: int, reason: str, *, actor_id: int, key: str | None) -> RefundResult:
        """Deny a pending staff order: refunded in full, like `refund`, and the member told why."""
        text = bounded_text(reason, "reason", limits.REASON)
        if text is None:
            raise InvalidInput("deny_needs_reason", "Give a reason: the member is told why their order was denied.")
        audit = AuditRecord(actor_id, "deny", {"order_id": order_id, "reason": text})
        now = self.now()
        applied = await self.unit(
            "deny", RefundResult.from_dict, key, guild_id, now, deny_order, guild_id, order_id, text, audit, key, now
        )
        result = applied.value
        if applied.fresh:
            self.emit("order_cancelled", fulfilment.order_event(result.order, denied=True, reason=text))
        return result

    async def cancel(self, guild_id: int, user_id: int, order_id: int, *, key: str | None) -> RefundResult:
        """A member cancels their own pending staff order: refunded in full, like `refund`. Not
        pending: a `Conflict` that says why (fulfilled, refunded, cancelled already)."""
        now = self.now()
        applied = await self.unit(
            "cancel", RefundResult.from_dict, key, guild_id, now, cancel_order, guild_id, user_id, order_id, key, now
        )
        result = applied.value
        if applied.fresh:
            self.emit("order_cancelled", fulfilment.order_event(result.order, denied=False, reason=None))
        return result

    async def pending_orders(self, guild_id: int, page: int = 1, per_page: int = QUEUE_PAGE) -> Page[Order]:
        """The fulfilment queue: pending staff orders, oldest first."""
        return await self.store.read(pending_page, guild_id, page, per_page)

    async def member_orders_pending(self, guild_id: int, user_id: int, limit: int = MEMBER_PENDING) -> list[Order]:
        """A member's pending orders, newest first (what /cancel offers)."""
        return await self.store.read(member_pending, guild_id, user_id, limit)

    async def record_order_post(self, guild_id: int, order_id: int, channel_id: int, message_id: int) -> bool:
        """Where a staff order was posted (by the delivery worker), so that it can be edited later."""
        return await self.store.write(set_order_post, guild_id, order_id, channel_id, message_id)

    async def order_code(self, guild_id: int, user_id: int, order_id: int) -> str | None:
        """The code a code order took, for its buyer only: None for anyone else, or no code."""
        return (await self.order_codes(guild_id, user_id, (order_id,))).get(order_id)

    async def order_codes(self, guild_id: int, user_id: int, order_ids: Sequence[int]) -> dict[int, str]:
        """`order_code` for several orders at once (a page of /orders)."""
        return await self.store.read(codes_of_buyer, guild_id, user_id, tuple(order_ids))

    async def code_counts(self, guild_id: int, item_id: int) -> tuple[int, int]:
        """(unused, sold) codes of an item: counts only, never the codes."""
        return await self.store.read(code_counts, guild_id, item_id)
