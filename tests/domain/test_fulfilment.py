"""The pure rules of delivery and fulfilment (bot/domain/fulfilment.py): which status an order may
move to and who may move it, the refusals that name who acted first, and the reading of a code
upload (lines, limits, duplicates) that never shows a code."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from bot.domain import delivery as rules
from bot.domain import fulfilment, limits
from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.fulfilment import (
    ItemCodes,
    check_buyer_can_cancel,
    check_delivery,
    check_refundable,
    check_staff_can_act,
    duplicates_of,
    may_move,
    parse_codes,
)
from bot.domain.models import Order, ShopItem
from bot.domain.orders import check_purchase

MOD, BUYER = 9, 11
ORDER = Order(7, 1, BUYER, 3, "Emoji", 1, 10, 10, 10, 0, 0, None, "pending", 100, delivery="staff")


def order(status: str, acted_by: int | None = MOD, **changes: object) -> Order:
    acted_at = None if status == "pending" else 500
    return replace(
        ORDER, status=status, acted_by=None if status == "pending" else acted_by, acted_at=acted_at, **changes
    )  # type: ignore[arg-type]


# --- moves ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", fulfilment.ORDER_STATUSES)
@pytest.mark.parametrize("to", fulfilment.ORDER_STATUSES)
def test_the_moves_of_an_order_are_exactly_those_of_the_spec(status: str, to: str):
    allowed = {
        ("pending", "fulfilled"): "staff",
        ("pending", "refunded"): "staff",
        ("pending", "cancelled"): "buyer",
        ("completed", "refunded"): "staff",
        ("fulfilled", "refunded"): "staff",
    }
    for actor in ("staff", "buyer"):
        assert may_move(status, to, actor) == (allowed.get((status, to)) == actor), (status, to, actor)


def test_only_a_staff_item_waits_for_staff():
    assert [fulfilment.initial_status(d) for d in fulfilment.DELIVERIES] == ["completed", "pending", "completed"]


@pytest.mark.parametrize(("typed", "delivery"), [("instant", "instant"), (" Staff ", "staff"), ("CODE", "code")])
def test_a_delivery_is_read_as_typed(typed: str, delivery: str):
    assert check_delivery(typed) == delivery


@pytest.mark.parametrize("typed", ["", "role", "codes", "instantly", "st aff"])
def test_another_delivery_is_refused_naming_the_three(typed: str):
    with pytest.raises(InvalidInput) as info:
        check_delivery(typed)
    assert info.value.code == "unknown_delivery"
    assert str(info.value) == "Delivery must be instant, staff or code."


# --- refusals that say who was first -------------------------------------------------------------


def test_staff_act_only_on_a_pending_order():
    check_staff_can_act(order("pending"))
    cases = {
        "fulfilled": ("order_already_fulfilled", "Order #7 was already fulfilled by user 9 1970-01-01 00:08 UTC."),
        "refunded": ("order_already_refunded", "Order #7 was already refunded by user 9 1970-01-01 00:08 UTC."),
        "cancelled": ("order_already_cancelled", "Order #7 was already cancelled by its buyer 1970-01-01 00:08 UTC."),
    }
    for status, (code, text) in cases.items():
        with pytest.raises(Conflict) as info:
            check_staff_can_act(order(status, acted_by=BUYER if status == "cancelled" else MOD))
        assert (info.value.code, str(info.value)) == (code, text)
        assert info.value.params["acted_at"] == 500
        assert info.value.params["status"] == status
    with pytest.raises(Conflict) as info:
        check_staff_can_act(order("refunded", acted_by=None))  # the bot refunded it (or an old release did)
    assert info.value.code == "order_refunded_automatically"
    assert info.value.params["acted_by"] is None
    with pytest.raises(Conflict) as info:
        check_staff_can_act(replace(ORDER, status="completed", delivery="instant"))
    assert info.value.code == "order_not_for_staff"
    assert info.value.params["acted_at"] == ORDER.created_at  # nobody acted: when it was bought


def test_a_member_cancels_only_their_own_pending_order_and_hears_why_not():
    assert check_buyer_can_cancel(order("pending"), 7, BUYER) == order("pending")
    for found, user in ((None, BUYER), (order("pending"), 12)):
        with pytest.raises(NotFound) as info:
            check_buyer_can_cancel(found, 7, user)
        assert info.value.code == "no_order_of_yours"
        assert info.value.params == {"order": 7}
    for status, code, words in (
        ("fulfilled", "cancel_fulfilled", "it was fulfilled"),
        ("refunded", "cancel_refunded", "its credit is back in your balance"),
        ("cancelled", "cancel_cancelled", "You already cancelled order #7"),
    ):
        with pytest.raises(Conflict) as info:
            check_buyer_can_cancel(order(status), 7, BUYER)
        assert info.value.code == code
        assert words in str(info.value)
    with pytest.raises(Conflict) as info:
        check_buyer_can_cancel(replace(ORDER, status="completed", delivery="code"), 7, BUYER)
    assert info.value.code == "cancel_completed"


def test_a_refund_needs_an_order_that_still_holds_its_credit():
    for status in ("pending", "fulfilled", "completed"):
        check_refundable(order(status))
    with pytest.raises(Conflict, match="already refunded"):
        check_refundable(order("refunded"))
    with pytest.raises(Conflict, match="cancelled by its buyer"):
        check_refundable(order("cancelled"))


# --- what an item of each delivery may be ------------------------------------------------------------


def test_a_code_item_has_no_stock_of_its_own_and_only_instant_items_give_roles():
    fulfilment.check_item_fields("code", {"price": 5})
    fulfilment.check_item_fields("instant", {"stock": 5, "role_id": 1})
    fulfilment.check_item_fields("staff", {"stock": 5, "role_id": None})
    with pytest.raises(InvalidInput, match="upload codes instead"):
        fulfilment.check_item_fields("code", {"stock": None})
    for delivery in ("staff", "code"):
        with pytest.raises(InvalidInput, match="Only an item with delivery instant gives a role"):
            fulfilment.check_item_fields(delivery, {"role_id": 5})


def test_a_code_item_is_bought_one_at_a_time():
    item = ShopItem(3, 1, "Key", "", 10, "games", 5, None, None, True, "code")
    assert check_purchase(item, 1, 0) == 10
    with pytest.raises(InvalidInput) as info:
        check_purchase(item, 2, 0)
    assert info.value.code == "code_item_one_at_a_time"
    assert check_purchase(replace(item, delivery="staff"), 2, 0) == 20


# --- code uploads --------------------------------------------------------------------------------


def test_codes_are_one_per_line_stripped_blank_lines_ignored_duplicates_counted():
    parsed = parse_codes("\ufeff A-1 \r\n\n\tB-2\nA-1\n  \nC 3\n\u2028a-1\n")
    assert tuple(parsed.codes) == ("A-1", "B-2", "C 3", "a-1")  # case matters; inner spaces stay
    assert parsed.duplicates == 1
    assert duplicates_of(parsed, added=3) == 2  # one repeated in the file, one the item had


def test_codes_never_show_in_a_repr_or_a_log(caplog: pytest.LogCaptureFixture):
    parsed = parse_codes("SECRET-ONE\nSECRET-TWO")
    caplog.set_level(logging.DEBUG)
    logging.getLogger("bot.test").debug("upload %s %r %s", parsed.codes, parsed.codes, parsed)
    shown = repr(parsed) + str(parsed.codes) + repr((parsed.codes,)) + caplog.text
    assert "SECRET" not in shown
    assert repr(parsed.codes) == "<2 codes>"
    assert isinstance(parsed.codes, tuple)
    assert list(parsed.codes) == ["SECRET-ONE", "SECRET-TWO"]
    assert ItemCodes(()) == ()


@pytest.mark.parametrize(
    ("text", "code", "params"),
    [
        ("", "no_codes", {}),
        ("\n \n\t\r\n", "no_codes", {}),
        ("\n".join(["C"] * (limits.CODES_PER_UPLOAD + 1)), "too_many_codes", {"count": limits.CODES_PER_UPLOAD + 1}),
        ("OK\n" + "L" * (limits.ITEM_CODE + 1), "item_code_too_long", {"line": 2, "length": limits.ITEM_CODE + 1}),
        ("\n\nA\tB", "code_unprintable", {"line": 3}),
        ("A\x07B", "code_unprintable", {"line": 1}),
        ("AB\u200d", "code_unprintable", {"line": 1}),
        ("A\u00a0B", "code_unprintable", {"line": 1}),
        ("A" * (limits.CODE_FILE_BYTES + 1), "code_file_too_large", {}),
    ],
    ids=["empty", "blank", "too-many", "too-long", "tab", "bell", "zero-width", "nbsp", "huge"],
)
def test_an_upload_breaking_a_limit_is_refused_whole_and_names_lines_not_codes(text: str, code: str, params: dict):
    with pytest.raises(InvalidInput) as info:
        parse_codes(text)
    assert info.value.code == code
    assert params.items() <= info.value.params.items()
    assert "LLLL" not in str(info.value)


def test_the_limits_themselves_are_accepted_and_a_code_is_never_cut():
    longest = "Z" * limits.ITEM_CODE
    parsed = parse_codes("\n".join([longest, *(str(n) for n in range(limits.CODES_PER_UPLOAD - 1))]) + "\n\n\n")
    assert len(parsed.codes) == limits.CODES_PER_UPLOAD
    assert parsed.codes[0] == longest
    # Duplicates count toward the limit: a file is refused by its lines, not by what is new.
    with pytest.raises(InvalidInput):
        parse_codes("\n".join(["SAME"] * (limits.CODES_PER_UPLOAD + 1)))
    assert parse_codes("ü-ñ-日本-🎮").codes == ("ü-ñ-日本-🎮",)  # any visible character


# --- deliveries ----------------------------------------------------------------------------------


def test_the_new_deliveries_and_what_an_impossible_one_does():
    assert set(rules.MESSAGES) == {
        "dm_refund",
        "post_order",
        "dm_fulfilled",
        "dm_denied",
        "dm_cancelled",
        "dm_refunded",
    }
    assert set(rules.ACTIONS) == set(rules.MESSAGES) | {"add_role", "remove_role", "edit_post"}
    assert [a for a in rules.ACTIONS if rules.refunds_order(a)] == ["add_role"]  # a DM or a post never refunds
    assert rules.nothing_left_to_do("edit_post", rules.POST_GONE)
    assert rules.nothing_left_to_do("edit_post", rules.CHANNEL_GONE)
    assert not rules.nothing_left_to_do("post_order", rules.CHANNEL_GONE)
    assert not rules.nothing_left_to_do("dm_fulfilled", rules.DM_CLOSED)
    assert rules.sends_message("post_order")
    assert not rules.sends_message("edit_post")
    for reason in (rules.CHANNEL_GONE, rules.NO_CHANNEL_ACCESS, rules.POST_GONE):
        assert rules.describe(reason) != reason


def test_order_events_are_plain_data_without_codes():
    event = fulfilment.order_event(order("fulfilled"), note="sent")
    assert event == {
        "guild_id": 1,
        "user_id": BUYER,
        "order_id": 7,
        "item_id": 3,
        "item_name": "Emoji",
        "quantity": 1,
        "total": 10,
        "status": "fulfilled",
        "acted_by": MOD,
        "acted_at": 500,
        "note": "sent",
    }
    assert all(isinstance(v, (int, str, type(None))) for v in event.values())


def test_results_stored_before_fulfilment_still_decode():
    """Idempotency results (JSON) written by the previous release lack the new fields."""
    old = {
        "id": 7,
        "guild_id": 1,
        "user_id": BUYER,
        "item_id": 3,
        "item_name": "Mug",
        "quantity": 1,
        "unit_price": 10,
        "total": 10,
        "promo_applied": 10,
        "gift_applied": 0,
        "forfeited": 0,
        "role_id": None,
        "status": "completed",
        "created_at": 100,
        "refunded_at": None,
    }
    decoded = Order.from_dict(old)
    assert (decoded.delivery, decoded.acted_by, decoded.note, decoded.post_message_id) == ("instant", None, None, None)
    assert Order.from_dict(decoded.to_dict()) == decoded
    item = ShopItem.from_dict(
        {
            "id": 3,
            "guild_id": 1,
            "name": "Mug",
            "description": "",
            "price": 10,
            "category": "merch",
            "stock": None,
            "role_id": None,
            "per_member_limit": None,
            "active": True,
        }
    )
    assert item.delivery == "instant"
