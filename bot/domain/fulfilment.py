"""Delivery and fulfilment (SPEC §3): how an item is delivered, which status an order may move to
and who may move it, and the reading of an upload of codes. Plain rules, no I/O.

An item is delivered `instant` (its order is complete at once, with the item's role if it has
one), by `staff` (its order waits, `pending`, until a moderator fulfils or denies it) or as a
`code` (each purchase takes one of the item's secret codes; the item's stock is its unused codes).

    completed  (instant, code) --moderator refund--> refunded
    pending    (staff) --moderator fulfil--> fulfilled --moderator refund--> refunded
                       --moderator deny---> refunded (a full refund, with the reason)
                       --buyer cancel----> cancelled (a full refund)

An order that is no longer where a move starts is refused with a `Conflict` whose parameters say
who acted and when (`acted_by`, `acted_at`), so the second of two moderators is told who was first.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

from bot.domain import limits
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.models import Order

Delivery = Literal["instant", "staff", "code"]
INSTANT: Delivery = "instant"
STAFF: Delivery = "staff"
CODE: Delivery = "code"
DELIVERIES: tuple[Delivery, ...] = (INSTANT, STAFF, CODE)

OrderStatus = Literal["completed", "pending", "fulfilled", "cancelled", "refunded"]
COMPLETED: OrderStatus = "completed"
PENDING: OrderStatus = "pending"
FULFILLED: OrderStatus = "fulfilled"
CANCELLED: OrderStatus = "cancelled"
REFUNDED: OrderStatus = "refunded"
ORDER_STATUSES: tuple[OrderStatus, ...] = (COMPLETED, PENDING, FULFILLED, CANCELLED, REFUNDED)
#: Orders that count as bought (the per-member limit) and hold their credit.
HELD: tuple[OrderStatus, ...] = (COMPLETED, PENDING, FULFILLED)
#: Orders whose credit went back to the member.
REVERSED: tuple[OrderStatus, ...] = (CANCELLED, REFUNDED)

Actor = Literal["staff", "buyer"]
#: Every move an order's status can make, and who may make it.
TRANSITIONS: dict[tuple[str, str], Actor] = {
    (PENDING, FULFILLED): "staff",
    (PENDING, REFUNDED): "staff",  # deny, or a refund of a pending order
    (PENDING, CANCELLED): "buyer",
    (COMPLETED, REFUNDED): "staff",
    (FULFILLED, REFUNDED): "staff",
}


def may_move(status: str, to: str, actor: Actor) -> bool:
    """Whether `actor` may move an order from `status` to `to` (the diagram above)."""
    return TRANSITIONS.get((status, to)) == actor


def check_delivery(value: str) -> Delivery:
    """A delivery as given to /shopadmin add (default instant)."""
    text = value.strip().casefold()
    for delivery in DELIVERIES:
        if text == delivery:
            return delivery
    raise InvalidInput(
        "unknown_delivery",
        "Delivery must be {instant:lit}, {staff:lit} or {code:lit}.",
        instant=INSTANT,
        staff=STAFF,
        code=CODE,
    )


def initial_status(delivery: str) -> OrderStatus:
    """A staff order waits for a moderator; any other order is complete at once."""
    return PENDING if delivery == STAFF else COMPLETED


def check_item_fields(delivery: str, fields: dict[str, object]) -> None:
    """What an item of this delivery may have: a code item's stock is its codes, and only an
    instant item gives a role (a staff order is fulfilled by hand, a code order by its code)."""
    if delivery == CODE and "stock" in fields:
        raise InvalidInput(
            "code_item_stock",
            "The stock of a code item is the number of its unused codes: upload codes instead of setting a stock.",
        )
    if delivery != INSTANT and fields.get("role_id") is not None:
        raise InvalidInput(
            "role_needs_instant", "Only an item with delivery {instant:lit} gives a role.", instant=INSTANT
        )


def check_code_quantity(delivery: str, quantity: int, item_name: str) -> None:
    if delivery == CODE and quantity != 1:
        raise InvalidInput(
            "code_item_one_at_a_time", "{item:b} is sold one at a time: each purchase takes one code.", item=item_name
        )


def _when(order: Order) -> int:
    return order.acted_at or order.refunded_at or order.created_at


def _params(order: Order) -> dict[str, object]:
    return {"order": order.id, "status": order.status, "acted_by": order.acted_by, "acted_at": _when(order)}


def check_staff_can_act(order: Order) -> None:
    """A moderator fulfils or denies only a pending order; otherwise say who was first, and when."""
    if order.status == PENDING:
        return
    params = _params(order)
    if order.status == FULFILLED:
        if order.acted_by is None:
            raise Conflict("order_fulfilled_already", "Order #{order} was already fulfilled {acted_at:R}.", **params)
        raise Conflict(
            "order_already_fulfilled", "Order #{order} was already fulfilled by {acted_by:user} {acted_at:R}.", **params
        )
    if order.status == CANCELLED:
        raise Conflict(
            "order_already_cancelled", "Order #{order} was already cancelled by its buyer {acted_at:R}.", **params
        )
    if order.status == REFUNDED:
        if order.acted_by is None:
            raise Conflict(
                "order_refunded_automatically", "Order #{order} was already refunded {acted_at:R}.", **params
            )
        raise Conflict(
            "order_already_refunded", "Order #{order} was already refunded by {acted_by:user} {acted_at:R}.", **params
        )
    raise Conflict(
        "order_not_for_staff", "Order #{order} was delivered at once: it is not waiting for staff.", **params
    )


def check_buyer_can_cancel(order: Order | None, order_id: int, user_id: int) -> Order:
    """A member cancels only their own pending staff order; otherwise say why not."""
    if order is None or order.user_id != user_id:  # another member's order is none of theirs
        raise NotFound("no_order_of_yours", "You have no order #{order} in this server.", order=order_id)
    if order.status == PENDING:
        return order
    params = _params(order)
    if order.status == FULFILLED:
        raise Conflict(
            "cancel_fulfilled", "Order #{order} can't be cancelled: it was fulfilled {acted_at:R}.", **params
        )
    if order.status == CANCELLED:
        raise Conflict("cancel_cancelled", "You already cancelled order #{order} {acted_at:R}.", **params)
    if order.status == REFUNDED:
        raise Conflict(
            "cancel_refunded",
            "Order #{order} can't be cancelled: it was refunded {acted_at:R}, and its credit is back in your balance.",
            **params,
        )
    raise Conflict(
        "cancel_completed",
        "Order #{order} can't be cancelled: it was delivered at once. Ask a moderator if something is wrong.",
        **params,
    )


def check_refundable(order: Order) -> None:
    """A moderator refunds any order whose credit it still holds."""
    if order.status == REFUNDED:
        raise Conflict(
            "already_refunded", "Order #{order} was already refunded {at:R}.", order=order.id, at=_when(order)
        )
    if order.status == CANCELLED:
        raise Conflict(
            "refund_cancelled",
            "Order #{order} was cancelled by its buyer {at:R}: its credit went back then.",
            order=order.id,
            at=_when(order),
        )


def order_event(order: Order, **extra: object) -> dict[str, object]:
    """An order's part of the events `order_pending`, `order_fulfilled` and `order_cancelled`:
    plain data, never a code."""
    return {
        "guild_id": order.guild_id,
        "user_id": order.user_id,
        "order_id": order.id,
        "item_id": order.item_id,
        "item_name": order.item_name,
        "quantity": order.quantity,
        "total": order.total,
        "status": order.status,
        "acted_by": order.acted_by,
        "acted_at": order.acted_at,
        **extra,
    }


# --- codes of a code item ------------------------------------------------------------------------


class ItemCodes(tuple[str, ...]):
    """Secret codes on their way to the store: a tuple whose repr and str never show them, so a
    log line, a traceback or a debug print of the arguments (aiosqlite logs each call at DEBUG)
    says how many there are and nothing else."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<{len(self)} codes>"

    __str__ = __repr__


@dataclass(frozen=True)
class ParsedCodes:
    codes: ItemCodes  # each once, in file order
    duplicates: int  # lines that repeated a code earlier in the file

    def __repr__(self) -> str:
        return f"ParsedCodes({len(self.codes)} codes, {self.duplicates} duplicates)"


def parse_codes(text: str) -> ParsedCodes:
    """An uploaded file's codes: one per line, each stripped, blank lines ignored. All or nothing:
    more than CODES_PER_UPLOAD codes, a code longer than ITEM_CODE characters (never cut short),
    or one with a control character refuses the upload. The refusals name lines, never codes."""
    if len(text) > limits.CODE_FILE_BYTES:
        raise InvalidInput(
            "code_file_too_large", "The file can be at most {limit:,} bytes.", limit=limits.CODE_FILE_BYTES
        )
    lines = text.removeprefix("\ufeff").splitlines()
    found: list[tuple[int, str]] = [(n, line.strip()) for n, line in enumerate(lines, 1)]
    found = [(n, code) for n, code in found if code]
    if not found:
        raise InvalidInput("no_codes", "The file holds no codes: put one code on each line.")
    if len(found) > limits.CODES_PER_UPLOAD:
        raise InvalidInput(
            "too_many_codes",
            "An upload can hold at most {limit:,} codes; this file has {count:,}. Split it and upload each part.",
            limit=limits.CODES_PER_UPLOAD,
            count=len(found),
        )
    for n, code in found:
        if len(code) > limits.ITEM_CODE:
            raise InvalidInput(
                "item_code_too_long",
                "The code on line {line} has {length} characters; a code can have at most {limit}. Nothing was added.",
                line=n,
                length=len(code),
                limit=limits.ITEM_CODE,
            )
        if not _printable(code):
            raise InvalidInput(
                "code_unprintable",
                "The code on line {line} holds an invisible or control character. Nothing was added.",
                line=n,
            )
    unique = dict.fromkeys(code for _, code in found)
    return ParsedCodes(ItemCodes(unique), len(found) - len(unique))


def _printable(code: str) -> bool:
    """Visible characters and plain spaces only: no control, format (zero-width), private-use or
    unassigned characters, and no other kind of space or line break."""
    return all(ch == " " or unicodedata.category(ch)[0] not in "CZ" for ch in code)


def duplicates_of(parsed: ParsedCodes, added: int) -> int:
    """The duplicates of an upload that added `added` of its codes: lines that repeated a code
    of the file, and codes the item had already (sold or unsold)."""
    return parsed.duplicates + len(parsed.codes) - added
