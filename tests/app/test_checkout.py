"""The shop: items, checkout (allocation order, eligibility, one-time forfeits, refusals) and refunds."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.domain.errors import Conflict, InsufficientBalance, InvalidInput, NotFound, PlanChanged
from bot.domain.models import LotUse, PurchasePlan
from tests.app._support import (
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
        GUILD,
        " VIP role ",
        "250",
        "Roles",
        actor_id=MOD,
        key=key(),
        stock=5,
        role_id=77,
        limit=1,
        description="Shiny",
    )
    assert (item.name, item.price, item.category, item.stock, item.role_id, item.per_member_limit, item.active) == (
        "VIP role",
        250,
        "Roles",
        5,
        77,
        1,
        True,
    )
    assert item.description == "Shiny"
    assert await ledger.items(GUILD) == [item]
    assert await ledger.items(GUILD, category="roles") == [item]
    assert await ledger.items(GUILD, category="games") == []
    assert await ledger.item(GUILD, item.id) == item
    assert await ledger.categories(GUILD) == ["Roles"]


async def test_add_item_refuses_bad_prices_and_writes_nothing(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        BAD_AMOUNTS_DECIMALS_0,
        lambda price: ledger.add_item(GUILD, "Thing", price, "merch", actor_id=MOD, key=key()),
    )
    await use_decimals(ledger, 2)
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        BAD_AMOUNTS_DECIMALS_2,
        lambda price: ledger.add_item(GUILD, "Thing", price, "merch", actor_id=MOD, key=key()),
    )
    assert (await ledger.add_item(GUILD, "Thing", "12.50", "merch", actor_id=MOD, key=key())).price == 1250


@pytest.mark.parametrize(
    "options",
    [
        {"name": "  "},
        {"name": "x" * 101},
        {"category": " "},
        {"category": "c" * 51},
        {"stock": -1},
        {"limit": 0},
        {"limit": -2},
        {"description": "d" * 501},
    ],
    ids=repr,
)
async def test_add_item_refuses_bad_fields(ledger, store, key, options):
    args = {"name": "Thing", "price": 10, "category": "merch", **options}
    await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.add_item(
            GUILD, args.pop("name"), args.pop("price"), args.pop("category"), actor_id=MOD, key=key(), **args
        ),
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
        ALICE,
        item.id,
        "Sticker",
        3,
        20,
        60,
    )
    assert (order.promo_applied, order.gift_applied, order.forfeited, order.role_id, order.status) == (
        30,
        30,
        0,
        55,
        "completed",
    )
    assert await remaining(ledger, promo, gift) == [0, 20]
    assert (await ledger.get_lot(GUILD, promo)).status == "spent"
    assert (await ledger.item(GUILD, item.id)).stock == 7
    spends = [e for e in (await ledger.history(GUILD, ALICE)).items if e.type == "spend"]
    assert sorted((e.lot_id, e.amount, e.order_id) for e in spends) == [(promo, -30, order.id), (gift, -30, order.id)]
    assert [name for name, _ in events] == ["credit_spent"]
    payload = events[0][1]
    assert (payload["order_id"], payload["total"], payload["promo_applied"], payload["gift_applied"]) == (
        order.id,
        60,
        30,
        30,
    )
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
    assert "of which 20 credits can be used on books items" in str(info.value)
    assert info.value.code == "balance_insufficient_in_category"
    assert (info.value.params["available"], info.value.params["category"]) == ("20 credits", "books")
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
    assert "160 credits" in message
    assert "of which 80 credits can be used on subscriptions items" in message
    assert (info.value.params["available"], info.value.params["category"]) == ("80 credits", "subscriptions")
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
    entries = sorted(
        (e.type, e.amount, e.lot_id, e.order_id)
        for e in (await ledger.history(GUILD, ALICE)).items
        if e.order_id is not None
    )
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
    assert "Only 2 of Rare left" in str(info.value)
    assert (info.value.code, info.value.params) == ("item_low_stock", {"stock": 2, "item": "Rare"})
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
        ledger,
        store,
        ["0", "-1", "1e99", "", "12.5", 10**12 + 1],
        lambda price: ledger.edit_item(GUILD, item.id, price=price, actor_id=MOD, key=key()),
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key()), InvalidInput, "Nothing"
    )
    edited = await ledger.edit_item(
        GUILD, item.id, price="15", clear_stock=True, clear_limit=True, clear_role=True, actor_id=MOD, key=key()
    )
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
    assert result.order.status == "refunded"
    assert result.order.refunded_at == NOW
    assert await remaining(ledger, promo, gift) == [30, 50]
    assert (await ledger.get_lot(GUILD, promo)).status == "active"
    assert (await ledger.item(GUILD, item.id)).stock == 5
    refunds = sorted(
        (e.lot_id, e.amount, e.order_id, e.reason)
        for e in (await ledger.history(GUILD, ALICE)).items
        if e.type == "refund"
    )
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
    assert ("refund", 20) in newest
    assert ("expire", -20) in newest
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


# --- Confirm applies exactly the preview's plan, or nothing (SPEC §3) --------------------------------


async def confirm(ledger, key, preview, user=ALICE, quantity=None):
    """Checkout as the Confirm button does: with the plan the member saw."""
    return await ledger.checkout(
        GUILD, user, preview.item.id, quantity or preview.quantity, key=key(), expected=preview.plan
    )


async def plan_changed(ledger, store, key, preview) -> PlanChanged:
    """Confirm of a stale preview: refused with the new preview, and nothing at all written."""
    info = await assert_refused_writes_nothing(ledger, store, lambda: confirm(ledger, key, preview), PlanChanged)
    return info.value


def order_entries(store, order_id):
    return db_rows(store, "SELECT type, lot_id, amount FROM entries WHERE order_id = ? ORDER BY id", (order_id,))


def applies_exactly(store, order, plan) -> None:
    """The order took what the plan says from each lot, and forfeited what it says."""
    assert (order.total, order.promo_applied, order.gift_applied, order.forfeited) == (
        plan.total,
        plan.promo_applied,
        plan.gift_applied,
        plan.forfeited,
    )
    assert (order.item_id, order.quantity, order.unit_price) == (plan.item_id, plan.quantity, plan.unit_price)
    assert order_entries(store, order.id) == (
        [("spend", u.lot_id, -u.amount) for u in plan.takes] + [("forfeit", u.lot_id, -u.amount) for u in plan.forfeits]
    )


async def test_the_preview_is_a_plan_of_lots_and_amounts_that_confirm_applies(ledger, store, key):
    soon = await lot_of(ledger, key, 30, expires="1d", one_time=True)
    later = await lot_of(ledger, key, 20, expires="5d")
    gift = await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id, quantity=2)
    assert preview.plan == PurchasePlan(
        item_id=item.id,
        quantity=2,
        unit_price=20,
        total=40,
        takes=(LotUse(soon, "promo", 30), LotUse(later, "promo", 10)),
        forfeits=(),
    )
    assert (preview.total, preview.promo_applied, preview.gift_applied, preview.forfeited) == (40, 40, 0, 0)
    small = await ledger.preview(GUILD, ALICE, item.id)  # touches the one-time lot without using it up
    assert (small.plan.takes, small.plan.forfeits) == ((LotUse(soon, "promo", 20),), (LotUse(soon, "promo", 10),))
    order = await confirm(ledger, key, preview)
    applies_exactly(store, order, preview.plan)
    assert await remaining(ledger, soon, later, gift) == [0, 10, 100]


async def test_a_one_time_promo_lot_granted_after_the_preview_is_not_used_unseen(ledger, store, key):
    """The case of issue 8: the preview says "gift 10, no forfeit"; a one-time promo lot granted
    before Confirm would be used first and 40 of it forfeited."""
    gift = await lot_of(ledger, key, 10, kind="gift")
    item = await item_of(ledger, key, 10, name="Sticker")
    preview = await ledger.preview(GUILD, ALICE, item.id)
    assert preview.plan.takes == (LotUse(gift, "gift", 10),)
    assert preview.plan.forfeits == ()
    once = await lot_of(ledger, key, 50, one_time=True, expires="30d")
    changed = await plan_changed(ledger, store, key, preview)
    assert str(changed) == (
        "Your credit changed since the preview: this purchase would now use 10 credits of promotional credit "
        "instead of 0 credits and 0 credits of gift balance instead of 10 credits, and forfeit 40 credits of "
        "one-time credit instead of nothing."
    )
    new = changed.preview
    assert (new.plan.takes, new.plan.forfeits) == ((LotUse(once, "promo", 10),), (LotUse(once, "promo", 40),))
    assert (new.item, new.balance_before, new.balance_after) == (item, 60, 10)
    order = await confirm(ledger, key, new)  # the new preview, confirmed, buys exactly what it shows
    applies_exactly(store, order, new.plan)
    assert await remaining(ledger, gift, once) == [10, 0]


async def test_a_lot_spent_elsewhere_since_the_preview(ledger, store, key):
    promo = await lot_of(ledger, key, 30)
    gift = await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    await ledger.checkout(GUILD, ALICE, item.id, key=key())  # another /buy, confirmed first
    changed = await plan_changed(ledger, store, key, preview)
    assert (
        "use 10 credits of promotional credit instead of 20 credits and 10 credits of gift balance instead "
        "of 0 credits." in str(changed)
    )
    assert changed.preview.plan.takes == (LotUse(promo, "promo", 10), LotUse(gift, "gift", 10))
    applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)


async def test_a_lot_that_expired_since_the_preview_even_before_the_sweep(ledger, store, key, clock):
    promo = await lot_of(ledger, key, 30, expires="1h")
    gift = await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    assert preview.plan.takes == (LotUse(promo, "promo", 20),)
    clock.advance(hours=2)
    changed = await plan_changed(ledger, store, key, preview)
    assert changed.preview.plan.takes == (LotUse(gift, "gift", 20),)
    assert changed.preview.balance_before == 100  # the expired lot counts no more
    applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)


async def test_a_price_change_since_the_preview(ledger, store, key):
    promo = await lot_of(ledger, key, 100)
    item = await item_of(ledger, key, 20, name="Sword")
    preview = await ledger.preview(GUILD, ALICE, item.id, quantity=2)
    for price, total in ((90, 180), (10, 20)):  # dearer is refused, and so is cheaper: it must be shown
        await ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key(), price=price)
        if total > 100:
            await assert_refused_writes_nothing(
                ledger, store, lambda: confirm(ledger, key, preview), InsufficientBalance
            )
            continue
        changed = await plan_changed(ledger, store, key, preview)
        assert str(changed) == (
            "The price of Sword changed since the preview: now 10 credits each instead of 20 credits. "
            "This purchase would now use 20 credits of promotional credit instead of 40 credits."
        )
        assert changed.preview.plan == PurchasePlan(item.id, 2, 10, 20, (LotUse(promo, "promo", 20),), ())
        applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)


async def test_promo_excluded_from_the_category_since_the_preview(ledger, store, key):
    await lot_of(ledger, key, 50)
    gift = await lot_of(ledger, key, 100, kind="gift")
    item = await item_of(ledger, key, 30, category="Subscriptions")
    preview = await ledger.preview(GUILD, ALICE, item.id)
    assert preview.promo_applied == 30
    await ledger.set_category_excluded(GUILD, "subscriptions", True, actor_id=MOD, key=key())
    changed = await plan_changed(ledger, store, key, preview)
    assert changed.preview.plan.takes == (LotUse(gift, "gift", 30),)
    applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)


async def test_the_same_split_from_another_lot_is_a_change_too(ledger, store, key):
    never = await lot_of(ledger, key, 50)
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    soon = await lot_of(ledger, key, 50, expires="1d")  # expires sooner: now used first
    changed = await plan_changed(ledger, store, key, preview)
    assert str(changed) == (
        "Your credit changed since the preview: the same amounts would now come from other lots of your credit."
    )
    assert changed.preview.plan.takes == (LotUse(soon, "promo", 20),)
    applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)
    assert await remaining(ledger, never, soon) == [50, 30]


async def test_a_one_time_lot_partly_revoked_forfeits_less(ledger, store, key):
    once = await lot_of(ledger, key, 50, one_time=True)
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    await ledger.revoke(GUILD, ALICE, lot_id=None, amount=10, reason="typo", actor_id=MOD, key=key())
    changed = await plan_changed(ledger, store, key, preview)
    assert str(changed) == (
        "Your credit changed since the preview: this purchase would now forfeit 20 credits of one-time credit "
        "instead of 30 credits."
    )
    assert changed.preview.plan.forfeits == (LotUse(once, "promo", 20),)
    applies_exactly(store, await confirm(ledger, key, changed.preview), changed.preview.plan)


async def test_what_the_plan_does_not_touch_may_change(ledger, store, key):
    """Credit the purchase does not use, stock that still suffices, a used lot with more left or a
    later expiry: the member pays exactly as shown, so Confirm buys."""
    promo = await lot_of(ledger, key, 30, expires="2d")
    item = await item_of(ledger, key, 20, stock=5)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    await lot_of(ledger, key, 100, kind="gift")  # gift comes after promo: unused
    await lot_of(ledger, key, 40)  # never expires: after the previewed lot, unused
    await ledger.extend(GUILD, promo, "5d", actor_id=MOD, key=key())
    await ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key(), stock=1)
    order = await confirm(ledger, key, preview)
    applies_exactly(store, order, preview.plan)


async def test_a_purchase_no_longer_possible_is_refused_with_the_reason_not_a_new_plan(ledger, store, key, clock):
    await lot_of(ledger, key, 30, expires="1h")
    item = await item_of(ledger, key, 20, name="Rare", stock=2, limit=1)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    await ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key(), stock=0)
    await assert_refused_writes_nothing(ledger, store, lambda: confirm(ledger, key, preview), Conflict, "sold out")
    await ledger.edit_item(GUILD, item.id, actor_id=MOD, key=key(), stock=2)
    clock.advance(hours=2)  # the only credit expired
    await assert_refused_writes_nothing(
        ledger, store, lambda: confirm(ledger, key, preview), InsufficientBalance, "you have 0 credits"
    )
    await ledger.remove_item(GUILD, item.id, actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: confirm(ledger, key, preview), Conflict, "no longer sold"
    )


async def test_a_replayed_confirm_returns_the_first_order_whatever_changed_since(ledger, store, key):
    """Confirming twice buys once: the second delivery of a committed Confirm is its first result,
    not a plan check against credit granted after it."""
    await lot_of(ledger, key, 50, kind="gift")
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    first = await ledger.checkout(GUILD, ALICE, item.id, key="confirm", expected=preview.plan)
    await lot_of(ledger, key, 50, one_time=True)  # would change the plan of a new purchase
    before = dump(store)
    again = await ledger.checkout(GUILD, ALICE, item.id, key="confirm", expected=preview.plan)
    assert again == first
    assert dump(store) == before


async def test_a_refused_confirm_keeps_its_key_free_for_the_new_preview(ledger, store, key):
    """The new preview is confirmed under the same key as the old one (one /buy, one order)."""
    await lot_of(ledger, key, 50, kind="gift")
    item = await item_of(ledger, key, 20)
    preview = await ledger.preview(GUILD, ALICE, item.id)
    await lot_of(ledger, key, 50, one_time=True)
    with pytest.raises(PlanChanged) as info:
        await ledger.checkout(GUILD, ALICE, item.id, key="buy:1", expected=preview.plan)
    order = await ledger.checkout(GUILD, ALICE, item.id, key="buy:1", expected=info.value.preview.plan)
    applies_exactly(store, order, info.value.preview.plan)
    assert await ledger.checkout(GUILD, ALICE, item.id, key="buy:1", expected=preview.plan) == order
    assert len((await ledger.orders(GUILD, ALICE)).items) == 1
