"""Delivery and fulfilment (SPEC §3, issue 10) on the real SQLite store: items delivered instant,
by staff or as codes; the staff queue (fulfil, deny) and a member's cancel, each one transaction
with its entries, audit record and deliveries; code uploads (limits, duplicates, stock); the code
of an order for its buyer only; the report's backlog and the export's order status."""

from __future__ import annotations

import csv
import io
import json
import logging

import pytest

from bot.domain import delivery as rules
from bot.domain import limits
from bot.domain.errors import Conflict, InvalidInput, NotFound
from tests.app._support import (
    ALICE,
    BOB,
    GUILD,
    MOD,
    OTHER_GUILD,
    assert_each_refused_writes_nothing,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    corrupts_db,
    count,
    db_execute_unchecked,
    db_rows,
    db_value,
    dump,
)

MOD2 = 10
CHANNEL = 4_000


async def credit(ledger, key, amount=1000, user=ALICE, **options):
    options.setdefault("kind", "gift")
    return await ledger.grant(GUILD, user, amount, actor_id=MOD, key=key(), **options)


async def staff_item(ledger, key, price=30, name="Custom emoji", **options):
    return await ledger.add_item(GUILD, name, price, "perks", actor_id=MOD, key=key(), delivery="staff", **options)


async def code_item(ledger, key, price=50, name="Game key", codes=("AAA-1", "BBB-2", "CCC-3")):
    item = await ledger.add_item(GUILD, name, price, "games", actor_id=MOD, key=key(), delivery="code")
    if codes:
        await ledger.upload_codes(GUILD, item.id, "\n".join(codes), actor_id=MOD, key=key())
    return await ledger.item(GUILD, item.id)


async def states(ledger, order_id):
    return [(d.action, d.status) for d in await ledger.order_deliveries(GUILD, order_id)]


async def set_channel(ledger, key, channel=CHANNEL):
    return await ledger.update_settings(GUILD, actor_id=MOD, key=key(), fulfilment_channel_id=channel)


def audit_actions(store):
    return [row[0] for row in db_rows(store, "SELECT action FROM audit_log ORDER BY id")]


# --- items and their delivery -------------------------------------------------------------------


async def test_an_item_is_instant_unless_told_otherwise_and_keeps_its_delivery(ledger, store, key):
    plain = await ledger.add_item(GUILD, "Sticker", 5, "merch", actor_id=MOD, key=key())
    staff = await staff_item(ledger, key)
    code = await ledger.add_item(GUILD, "Key", 5, "games", actor_id=MOD, key=key(), delivery=" Code ")
    assert (plain.delivery, staff.delivery, code.delivery) == ("instant", "staff", "code")
    assert (staff.stock, code.stock) == (None, 0)  # a code item's stock is its (no) codes
    assert await ledger.item(GUILD, code.id) == code
    for item in (plain, staff, code):
        await assert_refused_writes_nothing(
            ledger,
            store,
            lambda item=item: ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key(), delivery="staff"),
            InvalidInput,
            "delivery can't change",
        )
    # Other edits keep the delivery.
    edited = await ledger.edit_item(GUILD, staff.id, actor_id=MOD, key=key(), price=40)
    assert (edited.price, edited.delivery) == (40, "staff")


async def test_bad_deliveries_and_what_they_exclude_are_refused_and_write_nothing(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        ["", "instantly", "staf", "codes", "role"],
        lambda delivery: ledger.add_item(GUILD, "Thing", 5, "merch", actor_id=MOD, key=key(), delivery=delivery),
    )
    info = await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.add_item(GUILD, "Key", 5, "games", actor_id=MOD, key=key(), delivery="code", stock=3),
    )
    assert info.value.code == "code_item_stock"
    for delivery in ("staff", "code"):
        info = await assert_refused_writes_nothing(
            ledger,
            store,
            lambda d=delivery: ledger.add_item(
                GUILD, "VIP", 5, "roles", actor_id=MOD, key=key(), delivery=d, role_id=77
            ),
        )
        assert info.value.code == "role_needs_instant"
    staff, code = await staff_item(ledger, key), await code_item(ledger, key, codes=())
    for call in (
        lambda: ledger.edit_item(GUILD, code.id, actor_id=MOD, key=key(), stock=9),
        lambda: ledger.edit_item(GUILD, code.id, actor_id=MOD, key=key(), clear_stock=True),
        lambda: ledger.edit_item(GUILD, staff.id, actor_id=MOD, key=key(), role_id=77),
    ):
        await assert_refused_writes_nothing(ledger, store, call, InvalidInput)
    assert (await ledger.edit_item(GUILD, staff.id, actor_id=MOD, key=key(), stock=4)).stock == 4


# --- staff orders -------------------------------------------------------------------------------


async def test_a_staff_order_waits_pending_and_is_posted_when_a_channel_is_set(ledger, store, key, events):
    await credit(ledger, key)
    item = await staff_item(ledger, key)
    events.clear()
    quiet = await ledger.checkout(GUILD, ALICE, item.id, 2, key=key())
    assert (quiet.status, quiet.delivery, quiet.total, quiet.acted_by, quiet.note) == (
        "pending",
        "staff",
        60,
        None,
        None,
    )
    assert await ledger.order_deliveries(GUILD, quiet.id) == []  # no channel: the queue only
    assert [name for name, _ in events] == ["credit_spent", "order_pending"]
    assert events[1][1] == {
        "guild_id": GUILD,
        "user_id": ALICE,
        "order_id": quiet.id,
        "item_id": item.id,
        "item_name": item.name,
        "quantity": 2,
        "total": 60,
        "status": "pending",
        "acted_by": None,
        "acted_at": None,
    }
    await set_channel(ledger, key)
    posted = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, posted.id)
    assert (post.action, post.channel_id, post.user_id, post.status) == ("post_order", CHANNEL, ALICE, "pending")
    assert (await ledger.balance(GUILD, ALICE)).total == 910

    assert await ledger.record_order_post(GUILD, posted.id, CHANNEL, 777) is True
    assert await ledger.record_order_post(OTHER_GUILD, posted.id, CHANNEL, 777) is False
    again = await ledger.order(GUILD, posted.id)
    assert (again.post_channel_id, again.post_message_id) == (CHANNEL, 777)


async def test_fulfil_is_one_transaction_with_its_dm_post_edit_and_audit(ledger, store, key, events, clock):
    await credit(ledger, key)
    await set_channel(ledger, key)
    item = await staff_item(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, order.id)
    assert await ledger.claim_delivery(post.id, "w") is not None  # posted ...
    await ledger.delivered(post, "w")
    await ledger.record_order_post(GUILD, order.id, CHANNEL, 888)
    clock.advance(hours=2)
    events.clear()

    done = await ledger.fulfil(GUILD, order.id, actor_id=MOD, key=key(), note="  Emoji added: :party:  ")
    assert (done.status, done.acted_by, done.acted_at, done.note) == (
        "fulfilled",
        MOD,
        ledger.now(),
        "Emoji added: :party:",
    )
    assert (done.post_channel_id, done.post_message_id) == (CHANNEL, 888)
    assert await states(ledger, order.id) == [
        ("post_order", "done"),
        ("edit_post", "pending"),
        ("dm_fulfilled", "pending"),
    ]
    assert audit_actions(store)[-1] == "fulfil"
    assert [name for name, _ in events] == ["order_fulfilled"]
    assert events[0][1]["note"] == "Emoji added: :party:"
    assert events[0][1]["acted_by"] == MOD
    assert (await ledger.balance(GUILD, ALICE)).total == 970  # paid, and kept
    assert (await ledger.pending_orders(GUILD)).total == 0
    # The same click again (same key) is the same answer; another moderator's is refused, by name.
    assert await ledger.fulfil(GUILD, order.id, actor_id=MOD, key=f"k{key.n}", note="Emoji added: :party:") == done
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.fulfil(GUILD, order.id, actor_id=MOD2, key=key()), Conflict
    )
    assert info.value.code == "order_already_fulfilled"
    assert (info.value.params["acted_by"], info.value.params["acted_at"]) == (MOD, ledger.now())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.deny(GUILD, order.id, "too late", actor_id=MOD2, key=key()), Conflict
    )
    assert info.value.code == "order_already_fulfilled"
    assert f"by user {MOD}" in str(info.value)


async def test_a_post_not_made_yet_is_dropped_when_the_order_is_handled_first(ledger, key):
    await credit(ledger, key)
    await set_channel(ledger, key)
    item = await staff_item(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.fulfil(GUILD, order.id, actor_id=MOD, key=key())
    assert await states(ledger, order.id) == [("post_order", "cancelled"), ("dm_fulfilled", "pending")]
    # A post being made (claimed) is followed by its edit, which waits for it.
    second = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, second.id)
    assert await ledger.claim_delivery(post.id, "w") is not None
    await ledger.deny(GUILD, second.id, "out of stock", actor_id=MOD, key=key())
    assert await states(ledger, second.id) == [
        ("post_order", "pending"),
        ("edit_post", "pending"),
        ("dm_denied", "pending"),
    ]
    assert [d.action for d in await ledger.due_deliveries()] == ["dm_fulfilled"]  # the edit waits for its post


async def test_deny_refunds_fully_with_the_reason_and_returns_stock(ledger, store, key, events, clock):
    promo = await credit(ledger, key, 20, kind="promo", expires="1d")
    await credit(ledger, key, 100)
    item = await staff_item(ledger, key, price=50, stock=3)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert (order.promo_applied, order.gift_applied) == (20, 30)
    assert (await ledger.item(GUILD, item.id)).stock == 2
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.deny(GUILD, order.id, "   ", actor_id=MOD, key=key()), InvalidInput
    )
    await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.deny(GUILD, order.id, "x" * (limits.REASON + 1), actor_id=MOD, key=key()),
        InvalidInput,
    )
    clock.advance(days=2)  # the promo lot expired meanwhile: its credit is expired again at once
    events.clear()
    result = await ledger.deny(GUILD, order.id, "We don't make that emoji", actor_id=MOD, key=key())
    assert (result.returned, result.expired_again) == (30, 20)
    assert (result.order.status, result.order.acted_by, result.order.note) == (
        "refunded",
        MOD,
        "We don't make that emoji",
    )
    assert result.order.refunded_at == ledger.now()
    assert (await ledger.balance(GUILD, ALICE)).total == 100
    assert (await ledger.get_lot(GUILD, promo.first_lot_id)).status == "expired"
    assert (await ledger.item(GUILD, item.id)).stock == 3
    assert await states(ledger, order.id) == [("dm_denied", "pending")]
    assert audit_actions(store)[-1] == "deny"
    assert [name for name, _ in events] == ["order_cancelled"]
    assert (events[0][1]["status"], events[0][1]["denied"], events[0][1]["reason"]) == (
        "refunded",
        True,
        "We don't make that emoji",
    )
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.fulfil(GUILD, order.id, actor_id=MOD2, key=key()), Conflict
    )
    assert info.value.code == "order_already_refunded"
    assert info.value.params["acted_by"] == MOD
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.refund(GUILD, order.id, actor_id=MOD2, key=key()), Conflict
    )
    assert info.value.code == "already_refunded"


async def test_a_member_cancels_only_their_own_pending_order_and_is_told_why_not(ledger, store, key, events):
    await credit(ledger, key)
    await credit(ledger, key, user=BOB)
    await set_channel(ledger, key)
    item = await staff_item(ledger, key, stock=5)
    instant = await ledger.add_item(GUILD, "Sticker", 5, "merch", actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    for user, order_id in ((BOB, order.id), (ALICE, 99_999)):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda u=user, o=order_id: ledger.cancel(GUILD, u, o, key=key()), NotFound
        )
        assert info.value.code == "no_order_of_yours"
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.cancel(OTHER_GUILD, ALICE, order.id, key=key()), NotFound
    )
    events.clear()
    result = await ledger.cancel(GUILD, ALICE, order.id, key=key())
    assert (result.returned, result.order.status, result.order.acted_by) == (30, "cancelled", ALICE)
    assert (await ledger.balance(GUILD, ALICE)).total == 1000
    assert (await ledger.item(GUILD, item.id)).stock == 5
    assert await states(ledger, order.id) == [("post_order", "cancelled"), ("dm_cancelled", "pending")]
    assert audit_actions(store)[-1] == "cancel"
    assert [name for name, _ in events] == ["order_cancelled"]
    assert events[0][1]["denied"] is False

    fulfilled = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.fulfil(GUILD, fulfilled.id, actor_id=MOD, key=key())
    denied = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.deny(GUILD, denied.id, "no", actor_id=MOD, key=key())
    bought = await ledger.checkout(GUILD, ALICE, instant.id, key=key())
    for order_id, code in (
        (order.id, "cancel_cancelled"),
        (fulfilled.id, "cancel_fulfilled"),
        (denied.id, "cancel_refunded"),
        (bought.id, "cancel_completed"),
    ):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda o=order_id: ledger.cancel(GUILD, ALICE, o, key=key()), Conflict
        )
        assert info.value.code == code
        assert info.value.params["order"] == order_id
    # Staff can't act on a cancelled order, nor on one that was never waiting for them.
    for order_id, code in ((order.id, "order_already_cancelled"), (bought.id, "order_not_for_staff")):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda o=order_id: ledger.fulfil(GUILD, o, actor_id=MOD, key=key()), Conflict
        )
        assert info.value.code == code
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.refund(GUILD, order.id, actor_id=MOD, key=key()), Conflict
    )
    assert info.value.code == "refund_cancelled"


async def test_pending_staff_orders_count_toward_the_limit_and_cancelled_ones_do_not(ledger, store, key):
    await credit(ledger, key)
    item = await staff_item(ledger, key, limit=2)
    first = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    second = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict
    )
    await ledger.fulfil(GUILD, first.id, actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict
    )
    await ledger.cancel(GUILD, ALICE, second.id, key=key())
    assert (await ledger.checkout(GUILD, ALICE, item.id, key=key())).status == "pending"


async def test_a_moderator_refund_of_any_order_dms_the_member(ledger, key):
    await credit(ledger, key)
    staff = await staff_item(ledger, key)
    instant = await ledger.add_item(GUILD, "Sticker", 5, "merch", actor_id=MOD, key=key())
    fulfilled = await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    await ledger.fulfil(GUILD, fulfilled.id, actor_id=MOD, key=key(), note="done")
    pending = await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    bought = await ledger.checkout(GUILD, ALICE, instant.id, key=key())
    for order in (fulfilled, pending, bought):
        result = await ledger.refund(GUILD, order.id, actor_id=MOD2, key=key(), reason="sorry")
        assert (result.order.status, result.order.acted_by) == ("refunded", MOD2)
        assert (await states(ledger, order.id))[-1] == ("dm_refunded", "pending")
    assert (await ledger.order(GUILD, fulfilled.id)).note == "done"  # the fulfil note stays
    assert (await ledger.balance(GUILD, ALICE)).total == 1000


async def test_the_queue_is_oldest_first_and_a_members_pending_orders_newest_first(ledger, key):
    await credit(ledger, key)
    await credit(ledger, key, user=BOB)
    item = await staff_item(ledger, key, price=1)
    instant = await ledger.add_item(GUILD, "Sticker", 1, "merch", actor_id=MOD, key=key())
    orders = []
    for n in range(12):
        orders.append(await ledger.checkout(GUILD, (ALICE, BOB)[n % 2], item.id, key=key()))
    await ledger.checkout(GUILD, ALICE, instant.id, key=key())
    await ledger.fulfil(GUILD, orders[0].id, actor_id=MOD, key=key())
    first = await ledger.pending_orders(GUILD)
    assert (first.total, first.pages, first.page) == (11, 2, 1)
    assert [o.id for o in first.items] == [o.id for o in orders[1:11]]
    last = await ledger.pending_orders(GUILD, page=99, per_page=10)
    assert (last.page, [o.id for o in last.items]) == (2, [orders[11].id])
    assert (await ledger.pending_orders(OTHER_GUILD)).total == 0
    mine = await ledger.member_orders_pending(GUILD, ALICE)
    assert [o.id for o in mine] == [o.id for o in reversed(orders[2::2])]
    assert len(await ledger.member_orders_pending(GUILD, BOB, limit=3)) == 3


# --- code items -----------------------------------------------------------------------------------


async def test_an_upload_adds_new_codes_to_stock_and_counts_duplicates(ledger, store, key, events):
    item = await code_item(ledger, key, codes=())
    events.clear()
    text = "\ufeffAAA-1\r\n\r\n  BBB-2  \n\tCCC-3\nAAA-1\n\n   \nbbb-2\n"  # BOM, CRLF, blanks, a repeat
    result = await ledger.upload_codes(GUILD, item.id, text, actor_id=MOD, key=key())
    assert (result.item_id, result.added, result.duplicates, result.stock) == (item.id, 4, 1, 4)
    assert (await ledger.item(GUILD, item.id)).stock == 4
    await credit(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    # Codes already in the item, sold or unsold, are duplicates too.
    again = await ledger.upload_codes(GUILD, item.id, "AAA-1\nBBB-2\nDDD-4", actor_id=MOD, key=key())
    assert (again.added, again.duplicates, again.stock) == (1, 2, 4)
    assert await ledger.code_counts(GUILD, item.id) == (4, 1)
    assert await ledger.order_code(GUILD, ALICE, order.id) == "AAA-1"  # the oldest first
    assert events == [("credit_granted", events[0][1]), ("credit_spent", events[1][1])]
    details = db_rows(store, "SELECT details FROM audit_log WHERE action = 'shop-codes' ORDER BY id")
    assert [json.loads(d) for (d,) in details] == [
        {"item_id": item.id, "item": "Game key", "added": 4, "duplicates": 1, "stock": 4},
        {"item_id": item.id, "item": "Game key", "added": 1, "duplicates": 2, "stock": 4},
    ]
    replay = await ledger.upload_codes(GUILD, item.id, "AAA-1\nBBB-2\nDDD-4", actor_id=MOD, key=f"k{key.n}")
    assert replay == again
    assert count(store, "item_codes") == 5


async def test_an_upload_that_breaks_a_limit_adds_nothing(ledger, store, key):
    item = await code_item(ledger, key, codes=())
    just_too_many = "\n".join(f"CODE-{n}" for n in range(limits.CODES_PER_UPLOAD + 1))
    too_long = "OK-1\n" + "X" * (limits.ITEM_CODE + 1) + "\nOK-2"
    for text, code in (
        (just_too_many, "too_many_codes"),
        (too_long, "item_code_too_long"),
        ("", "no_codes"),
        ("\n  \n\t\n", "no_codes"),
        ("OK\nBAD\x00CODE", "code_unprintable"),
        ("ZERO\u200bWIDTH", "code_unprintable"),
        ("A\u00a0B", "code_unprintable"),
        ("x" * (limits.CODE_FILE_BYTES + 1), "code_file_too_large"),
    ):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda t=text: ledger.upload_codes(GUILD, item.id, t, actor_id=MOD, key=key())
        )
        assert info.value.code == code
        assert "X" * 20 not in str(info.value)
        assert "CODE-" not in str(info.value)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.upload_codes(GUILD, item.id, too_long, actor_id=MOD, key=key())
    )
    assert info.value.params == {"line": 2, "length": limits.ITEM_CODE + 1, "limit": limits.ITEM_CODE}
    # At the limits exactly: accepted, never cut short.
    longest = "Y" * limits.ITEM_CODE
    many = "\n".join([longest, *(f"CODE-{n}" for n in range(limits.CODES_PER_UPLOAD - 1))])
    result = await ledger.upload_codes(GUILD, item.id, many, actor_id=MOD, key=key())
    assert (result.added, result.duplicates, result.stock) == (limits.CODES_PER_UPLOAD, 0, limits.CODES_PER_UPLOAD)
    assert db_value(store, "SELECT code FROM item_codes ORDER BY id LIMIT 1") == longest
    # Spaces inside a code are part of it; only the ends are stripped.
    inner = await ledger.upload_codes(GUILD, item.id, "  AB CD  ", actor_id=MOD, key=key())
    assert inner.added == 1
    assert db_value(store, "SELECT code FROM item_codes ORDER BY id DESC LIMIT 1") == "AB CD"


async def test_only_code_items_of_this_server_take_codes(ledger, store, key):
    staff = await staff_item(ledger, key)
    instant = await ledger.add_item(GUILD, "Sticker", 5, "merch", actor_id=MOD, key=key())
    for item_id in (staff.id, instant.id):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda i=item_id: ledger.upload_codes(GUILD, i, "A", actor_id=MOD, key=key()), Conflict
        )
        assert info.value.code == "item_takes_no_codes"
    code = await code_item(ledger, key, codes=())
    for guild, item_id in ((OTHER_GUILD, code.id), (GUILD, 99_999)):
        await assert_refused_writes_nothing(
            ledger, store, lambda g=guild, i=item_id: ledger.upload_codes(g, i, "A", actor_id=MOD, key=key()), NotFound
        )


async def test_a_code_purchase_takes_one_code_shown_to_its_buyer_only(ledger, store, key, events):
    await credit(ledger, key)
    await credit(ledger, key, user=BOB)
    item = await code_item(ledger, key)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, 2, key=key()), InvalidInput
    )
    await assert_refused_writes_nothing(ledger, store, lambda: ledger.preview(GUILD, ALICE, item.id, 2), InvalidInput)
    events.clear()
    mine = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    theirs = await ledger.checkout(GUILD, BOB, item.id, key=key())
    assert (mine.status, mine.delivery) == ("completed", "code")
    assert await ledger.order_code(GUILD, ALICE, mine.id) == "AAA-1"
    assert await ledger.order_code(GUILD, BOB, theirs.id) == "BBB-2"
    assert await ledger.order_code(GUILD, BOB, mine.id) is None  # not Bob's
    assert await ledger.order_code(OTHER_GUILD, ALICE, mine.id) is None
    assert await ledger.order_codes(GUILD, ALICE, [mine.id, theirs.id, 424242]) == {mine.id: "AAA-1"}
    assert (await ledger.item(GUILD, item.id)).stock == 1
    assert await ledger.order_deliveries(GUILD, mine.id) == []
    # The code is in no result, event, idempotency record or audit record.
    everything = json.dumps([repr(mine), repr(theirs), events, dump(store)["idempotency"], dump(store)["audit_log"]])
    assert "AAA-1" not in everything
    assert "BBB-2" not in everything

    # A refund does not return the code (it was shown) nor its stock; the buyer still sees it.
    result = await ledger.refund(GUILD, mine.id, actor_id=MOD, key=key(), reason="didn't work")
    assert result.returned == 50
    assert result.order.status == "refunded"
    assert (await ledger.item(GUILD, item.id)).stock == 1
    assert await ledger.code_counts(GUILD, item.id) == (1, 2)
    assert await ledger.order_code(GUILD, ALICE, mine.id) == "AAA-1"
    last = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert await ledger.order_code(GUILD, ALICE, last.id) == "CCC-3"
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict
    )
    assert info.value.code == "item_sold_out"
    assert (await ledger.upload_codes(GUILD, item.id, "AAA-1\nEEE-5", actor_id=MOD, key=key())).stock == 1


# --- report and export ----------------------------------------------------------------------------


async def test_the_report_counts_the_pending_backlog(ledger, key):
    await credit(ledger, key)
    item = await staff_item(ledger, key, price=25)
    empty = await ledger.report(GUILD)
    assert (empty.pending_orders, empty.pending_value) == (0, 0)
    orders = [await ledger.checkout(GUILD, ALICE, item.id, quantity, key=key()) for quantity in (1, 2, 3)]
    await ledger.fulfil(GUILD, orders[0].id, actor_id=MOD, key=key())
    report = await ledger.report(GUILD)
    assert (report.pending_orders, report.pending_value) == (2, 125)
    await ledger.cancel(GUILD, ALICE, orders[1].id, key=key())
    report = await ledger.report(GUILD)
    assert (report.pending_orders, report.pending_value) == (1, 75)
    assert report.weeks[-1].spent == 25 + 75  # a cancelled order was not spending, like a refunded one
    assert (await ledger.report(OTHER_GUILD)).pending_orders == 0


async def test_the_export_holds_each_orders_current_status_and_never_a_code(ledger, key):
    await credit(ledger, key)
    staff = await staff_item(ledger, key)
    code = await code_item(ledger, key)
    pending = await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    bought = await ledger.checkout(GUILD, ALICE, code.id, key=key())
    cancelled = await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    await ledger.cancel(GUILD, ALICE, cancelled.id, key=key())
    out = io.StringIO()
    await ledger.export_csv(GUILD, out)
    assert "AAA-1" not in out.getvalue()
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert list(rows[0])[:11] == [
        "entry_id",
        "created_at",
        "guild_id",
        "user_id",
        "lot_id",
        "lot_kind",
        "type",
        "amount",
        "order_id",
        "actor_id",
        "reason",
    ]
    assert list(rows[0])[11:] == ["order_status"]
    status = {(r["order_id"], r["type"]): r["order_status"] for r in rows}
    assert status == {
        ("", "grant"): "",
        (str(pending.id), "spend"): "pending",
        (str(bought.id), "spend"): "completed",
        (str(cancelled.id), "spend"): "cancelled",
        (str(cancelled.id), "refund"): "cancelled",  # the current status, on every entry of the order
    }
    assert (await ledger.history(GUILD, ALICE)).items[0].order_status == "cancelled"


# --- the day's work, end to end in the ledger --------------------------------------------------


@pytest.mark.parametrize("decision", ["fulfil", "deny", "cancel"])
async def test_every_change_of_status_is_one_transaction(ledger, store, key, decision):
    """Each change writes its status, its entries, its audit record and its deliveries together, or
    (refused) nothing at all."""
    await credit(ledger, key)
    await set_channel(ledger, key)
    item = await staff_item(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    before = dump(store)
    if decision == "fulfil":
        await ledger.fulfil(GUILD, order.id, actor_id=MOD, key=key(), note="n")
    elif decision == "deny":
        await ledger.deny(GUILD, order.id, "r", actor_id=MOD, key=key())
    else:
        await ledger.cancel(GUILD, ALICE, order.id, key=key())
    after = dump(store)
    changed = {table for table in after if after[table] != before[table]}
    money = {"entries", "lots"} if decision != "fulfil" else set()
    assert changed == {"orders", "audit_log", "deliveries", "idempotency", *money}
    assert await ledger.verify() == []
    assert rules.EDIT_POST not in {a for a, _ in await states(ledger, order.id)}  # never posted: nothing to edit


# --- verify ---------------------------------------------------------------------------------------


hand_edit = db_execute_unchecked


BROKEN: dict[str, tuple[str, str]] = {
    "stock above the unused codes": (
        "UPDATE shop_items SET stock = stock + 1 WHERE delivery = 'code'",
        "a code item with stock 2 but 1 unused",
    ),
    "a pending order with a note": (
        "UPDATE orders SET note = 'done?' WHERE status = 'pending'",
        "pending, but marked as acted on",
    ),
    "a code sold to a staff order": (
        "UPDATE item_codes SET order_id = (SELECT id FROM orders WHERE status = 'pending') WHERE order_id IS NULL",
        "which is no completed or refunded order of its item",
    ),
    "an order whose delivery is not its item's": (
        "UPDATE orders SET delivery = 'instant' WHERE delivery = 'code'",
        "delivery instant but its item's is code",
    ),
    "a code order without its code": (
        "UPDATE item_codes SET order_id = NULL WHERE order_id IS NOT NULL",
        "a code order of quantity 1 with 0 codes",
    ),
    "a fulfilled order nobody fulfilled": (
        "UPDATE orders SET status = 'fulfilled' WHERE status = 'pending'",
        "fulfilled, but its times say otherwise",
    ),
    "a staff order completed at once": (
        "UPDATE orders SET status = 'completed' WHERE status = 'pending'",
        "status completed is not one a staff order",
    ),
    "a cancelled order that kept its refund": (
        "UPDATE orders SET status = 'fulfilled', refunded_at = NULL WHERE status = 'cancelled'",
        "fulfilled, but it has refund entries",
    ),
    "a DM of a fulfilment that did not happen": (
        "INSERT INTO deliveries (guild_id, user_id, order_id, action, due_at, created_at)"
        " SELECT guild_id, user_id, id, 'dm_fulfilled', 0, 0 FROM orders WHERE status = 'pending'",
        "dm_fulfilled does not fit its order",
    ),
    "a code on a staff item": (
        f"INSERT INTO item_codes (guild_id, item_id, code, created_at)"
        f" SELECT {GUILD}, id, 'SECRET-Z', 0 FROM shop_items WHERE delivery = 'staff'",
        "codes, but it is not a code item",
    ),
}


@corrupts_db
@pytest.mark.parametrize("broken", sorted(BROKEN))
async def test_verify_finds_what_breaks_fulfilment_and_names_no_code(ledger, store, key, broken):
    await credit(ledger, key)
    staff = await staff_item(ledger, key)
    code = await code_item(ledger, key, codes=("AAA-1", "BBB-2"))
    await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    cancelled = await ledger.checkout(GUILD, ALICE, staff.id, key=key())
    await ledger.cancel(GUILD, ALICE, cancelled.id, key=key())
    await ledger.checkout(GUILD, ALICE, code.id, key=key())
    assert await ledger.verify() == []
    sql, problem = BROKEN[broken]
    hand_edit(store, sql)
    problems = await ledger.verify()
    assert any(problem in p for p in problems), problems
    assert not [p for p in problems if "AAA-1" in p or "BBB-2" in p or "SECRET" in p]


# --- no code in the logs ----------------------------------------------------------------------------


async def test_no_code_appears_in_any_log_record_at_debug(ledger, store, key, caplog):
    """Upload, purchase, the buyer's look at the code, a refund, verify and the export, with every
    logger at DEBUG (aiosqlite logs each call it runs, with its arguments, at DEBUG; psycopg's pool
    each connection it lends)."""
    secrets = [f"SECRET-{n:03d}-KEY" for n in range(5)]
    caplog.set_level(logging.DEBUG)
    for name in ("aiosqlite", "psycopg", "psycopg.pool", "bot", "asyncio"):  # (caplog restores each level)
        caplog.set_level(logging.DEBUG, logger=name)
    await credit(ledger, key)
    item = await ledger.add_item(GUILD, "Game key", 50, "games", actor_id=MOD, key=key(), delivery="code")
    upload = await ledger.upload_codes(GUILD, item.id, "\n".join([*secrets, secrets[0]]), actor_id=MOD, key=key())
    with pytest.raises(InvalidInput):  # a refused upload too
        await ledger.upload_codes(GUILD, item.id, secrets[1] + "\n" + "Q" * 300, actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert await ledger.order_code(GUILD, ALICE, order.id) == secrets[0]
    assert await ledger.order_codes(GUILD, ALICE, [order.id]) == {order.id: secrets[0]}
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key(), reason="refund")
    await ledger.export_csv(GUILD, io.StringIO())
    assert await ledger.verify() == []
    assert upload.added == 5
    records = caplog.records
    assert any(r.name.startswith(("aiosqlite", "psycopg")) for r in records)  # DEBUG really was on
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "") + str(record.__dict__)
        leaked = [s for s in secrets if s in text]
        assert not leaked, (record.name, text[:300])


# --- more refusals, replays and settings ----------------------------------------------------------


async def test_staff_actions_refuse_bad_input_and_other_servers_orders_writing_nothing(ledger, store, key):
    await credit(ledger, key)
    item = await staff_item(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    too_long = "n" * (limits.ORDER_NOTE + 1)
    for call, error in (
        (lambda: ledger.fulfil(GUILD, order.id, actor_id=MOD, key=key(), note=too_long), InvalidInput),
        (lambda: ledger.fulfil(OTHER_GUILD, order.id, actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.fulfil(GUILD, 99_999, actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.deny(OTHER_GUILD, order.id, "no", actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.deny(GUILD, 99_999, "no", actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.refund(OTHER_GUILD, order.id, actor_id=MOD, key=key()), NotFound),
    ):
        await assert_refused_writes_nothing(ledger, store, call, error)
    # At the limit: accepted whole.
    note = "n" * limits.ORDER_NOTE
    assert (await ledger.fulfil(GUILD, order.id, actor_id=MOD, key=key(), note=note)).note == note


async def test_a_repeated_deny_or_cancel_returns_its_first_result(ledger, store, key, events):
    await credit(ledger, key)
    item = await staff_item(ledger, key)
    denied = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    cancelled = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    first_deny = await ledger.deny(GUILD, denied.id, "no", actor_id=MOD, key="deny-1")
    first_cancel = await ledger.cancel(GUILD, ALICE, cancelled.id, key="cancel-1")
    before, seen = dump(store), len(events)
    assert await ledger.deny(GUILD, denied.id, "no", actor_id=MOD, key="deny-1") == first_deny
    assert await ledger.cancel(GUILD, ALICE, cancelled.id, key="cancel-1") == first_cancel
    assert dump(store) == before
    assert len(events) == seen
    with pytest.raises(Conflict, match="another action"):
        await ledger.fulfil(GUILD, denied.id, actor_id=MOD, key="deny-1")


async def test_the_fulfilment_channel_is_a_setting_and_is_audited(ledger, store, key):
    assert (await ledger.settings(GUILD)).fulfilment_channel_id is None
    settings = await set_channel(ledger, key, 123)
    assert settings.fulfilment_channel_id == 123 == (await ledger.settings(GUILD)).fulfilment_channel_id
    assert (await ledger.settings(OTHER_GUILD)).fulfilment_channel_id is None
    assert audit_actions(store)[-1] == "settings"
    # A new channel applies to orders from now on; an order's post keeps the channel it was for.
    await credit(ledger, key)
    item = await staff_item(ledger, key)
    first = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await set_channel(ledger, key, 456)
    second = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    channels = [(await ledger.order_deliveries(GUILD, o.id))[0].channel_id for o in (first, second)]
    assert channels == [123, 456]


async def test_a_refund_of_a_posted_pending_order_edits_its_post(ledger, key):
    await credit(ledger, key)
    await set_channel(ledger, key)
    item = await staff_item(ledger, key)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, order.id)
    await ledger.claim_delivery(post.id, "w")
    await ledger.delivered(post, "w")
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key(), reason="changed my mind")
    assert await states(ledger, order.id) == [
        ("post_order", "done"),
        ("edit_post", "pending"),
        ("dm_refunded", "pending"),
    ]
    # A fulfilled order refunded later: its post was edited at the fulfilment already.
    second = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, second.id)
    await ledger.claim_delivery(post.id, "w")
    await ledger.delivered(post, "w")
    await ledger.fulfil(GUILD, second.id, actor_id=MOD, key=key())
    await ledger.refund(GUILD, second.id, actor_id=MOD, key=key())
    assert [a for a, _ in await states(ledger, second.id)] == ["post_order", "edit_post", "dm_fulfilled", "dm_refunded"]


async def test_a_restart_fails_a_post_or_dm_claimed_too_long_ago_but_retries_an_edit(ledger, key, clock):
    """A new message is resent only within Discord's nonce window; editing a post again is harmless."""
    await credit(ledger, key)
    item = await staff_item(ledger, key)
    quiet = await ledger.checkout(GUILD, ALICE, item.id, key=key())  # before the channel: never posted
    await ledger.deny(GUILD, quiet.id, "no", actor_id=MOD, key=key())
    await set_channel(ledger, key)
    posted = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    [post] = await ledger.order_deliveries(GUILD, posted.id)
    await ledger.claim_delivery(post.id, "w")
    await ledger.delivered(post, "w")
    await ledger.fulfil(GUILD, posted.id, actor_id=MOD, key=key())
    unposted = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    claimed = [d.action for d in await ledger.due_deliveries()]
    assert sorted(claimed) == ["dm_denied", "edit_post", "post_order"]  # the DM of the fulfil waits for its edit
    for delivery in await ledger.due_deliveries():
        assert await ledger.claim_delivery(delivery.id, "dead") is not None
    clock.advance(minutes=10)  # the process died; longer ago than the nonce window
    await ledger.release_deliveries("new", resend_window=300)
    assert [(d.order_id, d.action) for d in await ledger.due_deliveries()] == [(posted.id, "edit_post")]
    assert await states(ledger, quiet.id) == [("dm_denied", "failed")]
    assert await states(ledger, unposted.id) == [("post_order", "failed")]
    assert [d.reason for d in await ledger.order_deliveries(GUILD, unposted.id)] == [rules.UNKNOWN]
