"""The shop: items, checkout (allocation order, eligibility, one-time forfeits, refusals) and refunds."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.ledger.errors import Conflict, InsufficientBalance, InvalidInput, NotFound
from tests.ledger._support import (
    ALICE,
    BAD_AMOUNTS_DECIMALS_0,
    BAD_AMOUNTS_DECIMALS_2,
    BOB,
    CAROL,
    GUILD,
    MOD,
    NOW,
    assert_each_refused_writes_nothing,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    db_rows,
    dump,
    healthy,
    use_decimals,
)


async def lot_of(ledger, key, amount, **options) -> int:
    options.setdefault("actor_id", MOD)
    return (await ledger.grant(GUILD, options.pop("user", ALICE), amount, key=key(), **options)).first_lot_id


async def remaining(ledger, *lot_ids: int) -> list[int]:
    return [(await ledger.get_lot(GUILD, lot_id)).remaining for lot_id in lot_ids]


async def item_of(ledger, key, price, category="merch", name=None, **options):
    name = name or f"Item {key.n + 1}"
    return await ledger.add_item(GUILD, name, price, category, actor_id=MOD, key=key(), **options)


# --- items -------------------------------------------------------------------------------------------


async def test_add_item_and_list_the_shop(ledger, key):
    item = await ledger.add_item(
        GUILD, " VIP role ", "250", "Roles", actor_id=MOD, key=key(), stock=5, role_id=77, limit=1,
        description="Shiny",
    )
    assert (item.name, item.price, item.category, item.stock, item.role_id, item.per_member_limit, item.active) == (
        "VIP role", 250, "Roles", 5, 77, 1, True)
    assert item.description == "Shiny"
    assert await ledger.items(GUILD) == [item]
    assert await ledger.items(GUILD, category="roles") == [item]
    assert await ledger.items(GUILD, category="games") == []
    assert await ledger.item(GUILD, item.id) == item
    assert await ledger.categories(GUILD) == ["Roles"]


async def test_add_item_refuses_bad_prices_and_writes_nothing(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger, store, BAD_AMOUNTS_DECIMALS_0,
        lambda price: ledger.add_item(GUILD, "Thing", price, "merch", actor_id=MOD, key=key()),
    )
    await use_decimals(ledger, 2)
    await assert_each_refused_writes_nothing(
        ledger, store, BAD_AMOUNTS_DECIMALS_2,
        lambda price: ledger.add_item(GUILD, "Thing", price, "merch", actor_id=MOD, key=key()),
    )
    assert (await ledger.add_item(GUILD, "Thing", "12.50", "merch", actor_id=MOD, key=key())).price == 1250


@pytest.mark.parametrize(
    "options",
    [
        {"name": "  "}, {"name": "x" * 101}, {"category": " "}, {"category": "c" * 51}, {"stock": -1},
        {"limit": 0}, {"limit": -2}, {"description": "d" * 501},
    ],
    ids=repr,
)
async def test_add_item_refuses_bad_fields(ledger, store, key, options):
    args = {"name": "Thing", "price": 10, "category": "merch", **options}
    await assert_refused_writes_nothing(
        ledger, store,
        lambda: ledger.add_item(GUILD, args.pop("name"), args.pop("price"), args.pop("category"), actor_id=MOD,
                                key=key(), **args),
    )


async def test_item_names_are_unique_per_guild_ignoring_case(ledger, store, key):
    await ledger.add_item(GUILD, "Sticker", 10, "merch", actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.add_item(GUILD, "STICKER", 20, "other", actor_id=MOD, key=key()), Conflict
    )
    other = await ledger.add_item(GUILD, "Poster", 10, "merch", actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.edit_item(GUILD, other.id, name="sticker", actor_id=MOD, key=key()), Conflict
    )


# --- a purchase ----------------------------------------------------------------------------------------


async def test_checkout_spends_promo_then_gift_and_records_the_order(ledger, key, events):
    promo = await lot_of(ledger, key, 30)
    gift = await lot_of(ledger, key, 50, kind="gift")
    item = await item_of(ledger, key, 20, name="Sticker", stock=10, role_id=55)
    preview = await ledger.preview(GUILD, ALICE, item.id, quantity=3)
    assert (preview.total, preview.promo_applied, preview.gift_applied, preview.forfeited) == (60, 30, 30, 0)
    assert (preview.balance_before, preview.balance_after) == (80, 20)
    events.clear()
    order = await ledger.checkout(GUILD, ALICE, item.id, 3, key=key())
    assert (order.user_id, order.item_id, order.item_name, order.quantity, order.unit_price, order.total) == (
        ALICE, item.id, "Sticker", 3, 20, 60)
    assert (order.promo_applied, order.gift_applied, order.forfeited, order.role_id, order.status) == (
        30, 30, 0, 55, "completed")
    assert await remaining(ledger, promo, gift) == [0, 20]
    assert (await ledger.get_lot(GUILD, promo)).status == "spent"
    assert (await ledger.item(GUILD, item.id)).stock == 7
    spends = [e for e in (await ledger.history(GUILD, ALICE)).items if e.type == "spend"]
    assert sorted((e.lot_id, e.amount, e.order_id) for e in spends) == [(promo, -30, order.id), (gift, -30, order.id)]
    assert [name for name, _ in events] == ["credit_spent"]
    payload = events[0][1]
    assert (payload["order_id"], payload["total"], payload["promo_applied"], payload["gift_applied"]) == (
        order.id, 60, 30, 30)
    json.dumps(payload)
    assert await ledger.order(GUILD, order.id) == order
    listed = await ledger.orders(GUILD, ALICE)
    assert listed.items == (order,)
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.gift) == (0, 20)
    await healthy(ledger)


async def test_preview_writes_nothing(ledger, store, key):
    await lot_of(ledger, key, 50, one_time=True)
    item = await item_of(ledger, key, 20)
    before = dump(store)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    assert (preview.promo_applied, preview.forfeited, preview.balance_after) == (20, 30, 0)
    assert dump(store) == before


async def test_allocation_soonest_expiry_first_never_expiring_last(ledger, key):
    never = await lot_of(ledger, key, 10)
    late = await lot_of(ledger, key, 10, expires="20d")
    soon = await lot_of(ledger, key, 10, expires="10d")
    gift_soonest = await lot_of(ledger, key, 10, kind="gift", expires="1d")
    item = await item_of(ledger, key, 5)
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert await remaining(ledger, soon, late, never, gift_soonest) == [5, 10, 10, 10]
    await ledger.checkout(GUILD, ALICE, item.id, 3, key=key())
    assert await remaining(ledger, soon, late, never, gift_soonest) == [0, 0, 10, 10]
    await ledger.checkout(GUILD, ALICE, item.id, 3, key=key())
    assert await remaining(ledger, soon, late, never, gift_soonest) == [0, 0, 0, 5]
    await healthy(ledger)


async def test_allocation_then_oldest_then_lowest_id(ledger, key, clock):
    same_expiry = {"expires": "2026-12-31"}
    newer = await lot_of(ledger, key, 10, **same_expiry)
    clock.advance(hours=-1)  # a later id but an older lot
    older = await lot_of(ledger, key, 10, **same_expiry)
    twin_a = await lot_of(ledger, key, 10, **same_expiry)
    twin_b = await lot_of(ledger, key, 10, **same_expiry)  # same expiry and age as twin_a: lower id first
    clock.advance(hours=2)
    item = await item_of(ledger, key, 5)
    order = []
    for _ in range(4):
        await ledger.checkout(GUILD, ALICE, item.id, 2, key=key())
        left = await remaining(ledger, newer, older, twin_a, twin_b)
        order.append([lot for lot, r in zip((newer, older, twin_a, twin_b), left, strict=True) if r == 0])
    assert order == [[older], [older, twin_a], [older, twin_a, twin_b], [newer, older, twin_a, twin_b]]
    await healthy(ledger)


async def test_promo_categories_are_an_allow_list(ledger, store, key):
    games_only = await lot_of(ledger, key, 30, categories="Games", expires="1d")
    anything = await lot_of(ledger, key, 30, expires="5d")
    book = await item_of(ledger, key, 10, category="books")
    game = await item_of(ledger, key, 10, category="games")
    await ledger.checkout(GUILD, ALICE, book.id, key=key())
    assert await remaining(ledger, games_only, anything) == [30, 20]  # the sooner lot can't pay for books
    await ledger.checkout(GUILD, ALICE, game.id, key=key())
    assert await remaining(ledger, games_only, anything) == [20, 20]  # case-insensitive, soonest first
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, book.id, 3, key=key()), InsufficientBalance
    )
    assert "of which 20 credits can be used on `books` items" in str(info.value)
    await healthy(ledger)


async def test_excluded_categories_take_no_promo_but_gift_pays(ledger, store, key):
    await ledger.set_category_excluded(GUILD, "Subscriptions", True, actor_id=MOD, key=key())
    promo = await lot_of(ledger, key, 40)
    listed = await lot_of(ledger, key, 40, categories="subscriptions")  # listing it does not beat the exclusion
    gift = await lot_of(ledger, key, 80, kind="gift")
    nitro = await item_of(ledger, key, 120, category="subscriptions", name="Nitro")
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, nitro.id, key=key()), InsufficientBalance
    )
    message = str(info.value)
    assert "160 credits" in message and "of which 80 credits can be used on `subscriptions` items" in message
    cheaper = await item_of(ledger, key, 60, category="subscriptions")
    order = await ledger.checkout(GUILD, ALICE, cheaper.id, key=key())
    assert (order.promo_applied, order.gift_applied) == (0, 60)
    assert await remaining(ledger, promo, listed, gift) == [40, 40, 20]
    await ledger.set_category_excluded(GUILD, "SUBSCRIPTIONS", False, actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, cheaper.id, key=key())
    assert (order.promo_applied, order.gift_applied) == (60, 0)
    await healthy(ledger)


async def test_one_time_lot_partly_used_forfeits_the_rest(ledger, key, events):
    once = await lot_of(ledger, key, 50, one_time=True, expires="1d")
    other = await lot_of(ledger, key, 10, kind="gift")
    item = await item_of(ledger, key, 20)
    events.clear()
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert (order.promo_applied, order.gift_applied, order.forfeited, order.total) == (20, 0, 30, 20)
    lot = await ledger.get_lot(GUILD, once)
    assert (lot.remaining, lot.status) == (0, "forfeited")
    entries = sorted((e.type, e.amount, e.lot_id, e.order_id) for e in (await ledger.history(GUILD, ALICE)).items
                     if e.order_id is not None)
    assert entries == [("forfeit", -30, once, order.id), ("spend", -20, once, order.id)]
    assert events[0][1]["forfeited"] == 30
    assert await remaining(ledger, other) == [10]
    assert (await ledger.balance(GUILD, ALICE)).total == 10
    await healthy(ledger)


async def test_one_time_lot_used_up_or_untouched_forfeits_nothing(ledger, key):
    first = await lot_of(ledger, key, 10, expires="1d")
    once = await lot_of(ledger, key, 30, one_time=True, expires="2d")
    after = await lot_of(ledger, key, 100, kind="gift")
    small = await item_of(ledger, key, 10)
    order = await ledger.checkout(GUILD, ALICE, small.id, key=key())  # paid by `first` alone
    assert order.forfeited == 0
    assert await remaining(ledger, first, once, after) == [0, 30, 100]
    big = await item_of(ledger, key, 45)
    order = await ledger.checkout(GUILD, ALICE, big.id, key=key())  # uses `once` up, the rest from gift
    assert (order.promo_applied, order.gift_applied, order.forfeited) == (30, 15, 0)
    assert (await ledger.get_lot(GUILD, once)).status == "spent"
    await healthy(ledger)


async def test_not_enough_balance_is_refused_with_the_amounts(ledger, store, key):
    await lot_of(ledger, key, 60)
    await lot_of(ledger, key, 40, kind="gift")
    item = await item_of(ledger, key, 120)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), InsufficientBalance
    )
    assert str(info.value) == "That costs 120 credits and you have 100 credits."
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, BOB, item.id, key=key()), InsufficientBalance, "have 0"
    )
    with pytest.raises(InsufficientBalance):
        await ledger.preview(GUILD, ALICE, item.id)


async def test_stock_runs_out(ledger, store, key):
    await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 1, name="Rare", stock=2)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, 3, key=key()), Conflict
    )
    assert "Only 2 of **Rare** left" in str(info.value)
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert (await ledger.item(GUILD, item.id)).stock == 0
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict, "sold out"
    )
    await healthy(ledger)


async def test_concurrent_buyers_cannot_oversell(ledger, key):
    item = await item_of(ledger, key, 10, stock=2)
    buyers = [100 + n for n in range(6)]
    await ledger.grant_many(GUILD, buyers, 10, actor_id=MOD, key=key())
    results = await asyncio.gather(
        *(ledger.checkout(GUILD, b, item.id, key=key()) for b in buyers), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert (await ledger.item(GUILD, item.id)).stock == 0
    await healthy(ledger)


async def test_concurrent_purchases_cannot_overspend(ledger, key):
    await lot_of(ledger, key, 25)
    item = await item_of(ledger, key, 10)
    results = await asyncio.gather(
        *(ledger.checkout(GUILD, ALICE, item.id, key=key()) for _ in range(5)), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 2
    assert (await ledger.balance(GUILD, ALICE)).total == 5
    await healthy(ledger)


async def test_per_member_limit(ledger, store, key):
    await lot_of(ledger, key, 100, kind="gift")
    await lot_of(ledger, key, 100, kind="gift", user=BOB)
    item = await item_of(ledger, key, 1, name="Badge", limit=3)
    await ledger.checkout(GUILD, ALICE, item.id, 2, key=key())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, 2, key=key()), Conflict
    )
    assert "you can buy 1 more" in str(info.value)
    last = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict, "reached that limit"
    )
    await ledger.checkout(GUILD, BOB, item.id, 3, key=key())  # each member has their own limit
    await ledger.refund(GUILD, last.id, actor_id=MOD, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())  # a refunded purchase does not count
    await healthy(ledger)


async def test_inactive_items_are_not_sold(ledger, store, key):
    await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 10, name="Old thing")
    retired = await ledger.remove_item(GUILD, item.id, actor_id=MOD, key=key())
    assert retired.active is False
    assert await ledger.items(GUILD) == []
    assert [i.id for i in await ledger.items(GUILD, include_inactive=True)] == [item.id]
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict
    )
    assert "no longer sold" in str(info.value)
    await ledger.edit_item(GUILD, item.id, active=True, actor_id=MOD, key=key())
    assert (await ledger.checkout(GUILD, ALICE, item.id, key=key())).total == 10
    await healthy(ledger)


@pytest.mark.parametrize("quantity", [0, -1, 101, 10**6])
async def test_quantity_bounds(ledger, store, key, quantity):
    await lot_of(ledger, key, 1000, kind="gift")
    item = await item_of(ledger, key, 1)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, quantity, key=key()), InvalidInput, "Quantity"
    )


async def test_largest_quantity_and_too_large_orders(ledger, store, key):
    await lot_of(ledger, key, 1000, kind="gift")
    item = await item_of(ledger, key, 1)
    assert (await ledger.checkout(GUILD, ALICE, item.id, 100, key=key())).total == 100
    huge = await item_of(ledger, key, 10**12)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, huge.id, 2, key=key()), InvalidInput, "too large"
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, 987654, key=key()), NotFound
    )
    await healthy(ledger)


async def test_edit_item_validates_and_clears(ledger, store, key):
    item = await item_of(ledger, key, 10, stock=3, limit=2, role_id=5)
    await assert_each_refused_writes_nothing(
        ledger, store, ["0", "-1", "1e99", "", "12.5", 10**12 + 1],
        lambda price: ledger.edit_item(GUILD, item.id, price=price, actor_id=MOD, key=key()),
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key()), InvalidInput, "Nothing"
    )
    edited = await ledger.edit_item(GUILD, item.id, price="15", clear_stock=True, clear_limit=True, clear_role=True,
                                    actor_id=MOD, key=key())
    assert (edited.price, edited.stock, edited.per_member_limit, edited.role_id) == (15, None, None, None)


# --- refunds ---------------------------------------------------------------------------------------


async def test_refund_returns_credit_to_the_original_lots(ledger, store, key):
    promo = await lot_of(ledger, key, 30, expires="10d")
    gift = await lot_of(ledger, key, 50, kind="gift")
    item = await item_of(ledger, key, 20, stock=5)
    order = await ledger.checkout(GUILD, ALICE, item.id, 3, key=key())
    assert await remaining(ledger, promo, gift) == [0, 20]
    result = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key(), reason="wrong item")
    assert (result.returned, result.expired_again) == (60, 0)
    assert result.order.status == "refunded" and result.order.refunded_at == NOW
    assert await remaining(ledger, promo, gift) == [30, 50]
    assert (await ledger.get_lot(GUILD, promo)).status == "active"
    assert (await ledger.item(GUILD, item.id)).stock == 5
    refunds = sorted((e.lot_id, e.amount, e.order_id, e.reason) for e in (await ledger.history(GUILD, ALICE)).items
                     if e.type == "refund")
    assert refunds == [(promo, 30, order.id, "wrong item"), (gift, 30, order.id, "wrong item")]
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.gift) == (30, 50)
    assert (await ledger.order(GUILD, order.id)).status == "refunded"
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.refund(GUILD, order.id, actor_id=MOD, key=key()), Conflict, "already refunded"
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.refund(GUILD, 4040, actor_id=MOD, key=key()), NotFound
    )
    await healthy(ledger)


async def test_refund_gives_back_forfeited_credit(ledger, key):
    once = await lot_of(ledger, key, 50, one_time=True)
    item = await item_of(ledger, key, 20)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    result = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert (result.returned, result.expired_again) == (50, 0)
    lot = await ledger.get_lot(GUILD, once)
    assert (lot.remaining, lot.status, lot.one_time) == (50, "active", True)
    await healthy(ledger)


async def test_refund_never_resurrects_credit_that_expired_after_the_sweep(ledger, key, clock):
    lot = await lot_of(ledger, key, 50, expires="1d")
    item = await item_of(ledger, key, 20, stock=1)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    clock.advance(days=2)
    [swept] = await ledger.sweep_expired()
    assert swept.amount == 30
    result = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert (result.returned, result.expired_again) == (0, 20)
    got = await ledger.get_lot(GUILD, lot)
    assert (got.remaining, got.status) == (0, "expired")
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    newest = sorted((e.type, e.amount) for e in (await ledger.history(GUILD, ALICE)).items if e.order_id)
    assert ("refund", 20) in newest and ("expire", -20) in newest
    assert (await ledger.item(GUILD, item.id)).stock == 1
    assert await ledger.sweep_expired() == []
    await healthy(ledger)


async def test_refund_never_resurrects_credit_expired_but_not_yet_swept(ledger, key, clock):
    spent_lot = await lot_of(ledger, key, 20, expires="1d")
    partly = await lot_of(ledger, key, 50, expires="1d")
    gift = await lot_of(ledger, key, 10, kind="gift")
    item = await item_of(ledger, key, 40)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())  # 20 from spent_lot, 20 from partly
    clock.advance(days=1)
    result = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert (result.returned, result.expired_again) == (0, 40)
    assert (await ledger.balance(GUILD, ALICE)).total == 10
    assert (await ledger.get_lot(GUILD, spent_lot)).status == "expired"
    await healthy(ledger)
    expired = await ledger.sweep_expired()
    assert [(e.lot_id, e.amount) for e in expired] == [(partly, 30)]
    assert await remaining(ledger, spent_lot, partly, gift) == [0, 0, 10]
    await healthy(ledger)


async def test_refund_splits_live_and_expired_credit_forfeits_included(ledger, key, clock):
    promo = await lot_of(ledger, key, 10)  # never expires
    once = await lot_of(ledger, key, 100, kind="gift", one_time=True, expires="1d")
    item = await item_of(ledger, key, 30)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert (order.promo_applied, order.gift_applied, order.forfeited) == (10, 20, 80)
    clock.advance(days=1)
    refund = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert (refund.returned, refund.expired_again) == (10, 100)
    assert await remaining(ledger, promo, once) == [10, 0]
    assert (await ledger.get_lot(GUILD, once)).status == "expired"
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.gift) == (10, 0)
    assert await ledger.sweep_expired() == []
    await healthy(ledger)


async def test_refund_does_not_bring_back_revoked_credit(ledger, key):
    lot = await lot_of(ledger, key, 50)
    item = await item_of(ledger, key, 20)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.revoke(GUILD, ALICE, lot_id=lot, reason="fraud", actor_id=MOD, key=key())
    result = await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    assert result.returned == 0
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    assert (await ledger.get_lot(GUILD, lot)).status == "voided"
    await healthy(ledger)


async def test_orders_are_listed_newest_first_per_member(ledger, key, clock):
    await lot_of(ledger, key, 100, kind="gift")
    await lot_of(ledger, key, 100, kind="gift", user=BOB)
    item = await item_of(ledger, key, 1)
    mine = []
    for _ in range(12):
        mine.append((await ledger.checkout(GUILD, ALICE, item.id, key=key())).id)
        clock.advance(minutes=1)
    bobs = await ledger.checkout(GUILD, BOB, item.id, key=key())
    page = await ledger.orders(GUILD, ALICE)
    assert (page.total, page.pages) == (12, 2)
    assert [o.id for o in page.items] == mine[::-1][:10]
    assert [o.id for o in (await ledger.orders(GUILD, ALICE, page=2)).items] == mine[1::-1]
    assert (await ledger.orders(GUILD, None)).total == 13
    assert (await ledger.orders(GUILD, BOB)).items[0].id == bobs.id
    assert (await ledger.orders(GUILD, CAROL)).total == 0
    assert db_rows(ledger.store, "SELECT COUNT(*) FROM orders WHERE status = 'completed'") == [(13,)]
