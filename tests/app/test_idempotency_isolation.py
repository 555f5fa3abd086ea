"""Idempotency (the same key twice applies once and returns the first result) and guild isolation (SPEC §2)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from bot.domain.errors import Conflict, InsufficientBalance, NotFound
from tests.app._support import (
    ALICE,
    BOB,
    DAY,
    GUILD,
    MOD,
    NOW,
    OTHER_GUILD,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    count,
    dump,
    healthy,
)

SAME = "interaction-1"

# --- idempotency -------------------------------------------------------------------------------------

Setup = Callable[[Any, Any], Awaitable[Callable[[], Awaitable[Any]]]]


async def _grant(ledger, key):
    return lambda: ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=SAME, expires="30d")


async def _grant_many(ledger, key):
    return lambda: ledger.grant_many(GUILD, [ALICE, BOB], 10, actor_id=MOD, key=SAME, kind="gift")


async def _revoke(ledger, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())
    return lambda: ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=SAME)


async def _extend(ledger, key):
    lot = await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), expires="1d")
    return lambda: ledger.extend(GUILD, lot.first_lot_id, "30d", actor_id=MOD, key=SAME)


async def _checkout(ledger, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=key(), stock=5)
    return lambda: ledger.checkout(GUILD, ALICE, item.id, 2, key=SAME)


async def _refund(ledger, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=key(), stock=5)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    return lambda: ledger.refund(GUILD, order.id, actor_id=MOD, key=SAME)


async def _redeem_promo(ledger, key):
    await ledger.create_promo(GUILD, "HELLO", 25, actor_id=MOD, key=key(), per_member=5)
    return lambda: ledger.redeem(GUILD, ALICE, "hello", key=SAME)


async def _redeem_card(ledger, key):
    issued = await ledger.issue_gift_cards(GUILD, 40, 1, actor_id=MOD, key=key())
    return lambda: ledger.redeem(GUILD, ALICE, issued.codes[0], key=SAME)


async def _create_promo(ledger, key):
    return lambda: ledger.create_promo(GUILD, "HELLO", 25, actor_id=MOD, key=SAME, uses=3)


async def _disable_promo(ledger, key):
    await ledger.create_promo(GUILD, "HELLO", 25, actor_id=MOD, key=key())
    return lambda: ledger.disable_promo(GUILD, "HELLO", actor_id=MOD, key=SAME)


async def _void_card(ledger, key):
    issued = await ledger.issue_gift_cards(GUILD, 40, 1, actor_id=MOD, key=key())
    return lambda: ledger.void_gift_card(GUILD, issued.last4s[0], actor_id=MOD, key=SAME)


async def _add_item(ledger, key):
    return lambda: ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=SAME)


async def _edit_item(ledger, key):
    item = await ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=key())
    return lambda: ledger.edit_item(GUILD, item.id, price=30, actor_id=MOD, key=SAME)


async def _update_settings(ledger, key):
    return lambda: ledger.update_settings(GUILD, actor_id=MOD, key=SAME, currency_name="coins", reminder_leads="3d")


async def _exclude_category(ledger, key):
    return lambda: ledger.set_category_excluded(GUILD, "digital", True, actor_id=MOD, key=SAME)


MUTATIONS: dict[str, Setup] = {
    "grant": _grant,
    "grant_many": _grant_many,
    "revoke": _revoke,
    "extend": _extend,
    "checkout": _checkout,
    "refund": _refund,
    "redeem_promo": _redeem_promo,
    "redeem_card": _redeem_card,
    "create_promo": _create_promo,
    "disable_promo": _disable_promo,
    "void_gift_card": _void_card,
    "add_item": _add_item,
    "edit_item": _edit_item,
    "update_settings": _update_settings,
    "set_category_excluded": _exclude_category,
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
async def test_the_same_key_twice_applies_once_and_returns_the_first_result(ledger, store, key, clock, events, name):
    call = await MUTATIONS[name](ledger, key)
    first = await call()
    applied = dump(store)
    emitted = list(events)
    clock.advance(minutes=5)  # a retry comes a little later
    second = await call()
    assert second == first
    assert dump(store) == applied
    assert events == emitted
    assert count(store, "idempotency", "key = ?", (SAME,)) == 1
    await healthy(ledger)


async def test_repeated_revoke_applies_once(ledger, store, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())
    first = await ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=SAME)
    second = await ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=SAME)
    assert (second.user_id, second.amount) == (first.user_id, first.amount)
    assert (await ledger.balance(GUILD, ALICE)).promo == 40
    assert count(store, "entries", "type = 'void'") == 1


async def test_a_replayed_revoke_reports_its_lot_changes_like_the_first(ledger, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())
    first = await ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=SAME)
    second = await ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=SAME)
    assert second == first  # nested results (LotChange) survive the idempotency table's JSON round trip
    assert [(c.lot_id, c.type, c.amount) for c in second.changes] == [(1, "void", -10)]


async def test_repeated_grant_emits_one_event_and_one_lot(ledger, store, events):
    for _ in range(3):
        await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=SAME)
    assert [name for name, _ in events] == ["credit_granted"]
    assert (await ledger.balance(GUILD, ALICE)).promo == 10
    assert count(store, "lots") == 1
    assert count(store, "entries") == 1


async def test_repeated_checkout_returns_the_first_order_even_when_it_could_no_longer_be_paid(ledger, key, events):
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=key(), stock=1)
    first = await ledger.checkout(GUILD, ALICE, item.id, key=SAME)  # balance 0, stock 0 now
    again = await ledger.checkout(GUILD, ALICE, item.id, key=SAME)  # "Confirm" clicked twice
    assert again == first
    assert [name for name, _ in events].count("credit_spent") == 1
    assert (await ledger.orders(GUILD, ALICE)).total == 1
    with pytest.raises(Conflict, match="sold out"):
        await ledger.checkout(GUILD, ALICE, item.id, key=key())


async def test_repeated_redeem_emits_once_and_uses_the_code_once(ledger, key, events):
    await ledger.create_promo(GUILD, "HELLO", 25, actor_id=MOD, key=key(), uses=1)
    first = await ledger.redeem(GUILD, ALICE, "HELLO", key=SAME)
    second = await ledger.redeem(GUILD, ALICE, "HELLO", key=SAME)  # no "used up" for the retry
    assert second == first
    assert [name for name, _ in events] == ["code_redeemed", "credit_granted"]
    assert (await ledger.promos(GUILD))[0].uses == 1
    assert (await ledger.balance(GUILD, ALICE)).promo == 25


async def test_repeated_issue_returns_the_same_cards_without_their_codes(ledger, store, key):
    first = await ledger.issue_gift_cards(GUILD, 40, 3, actor_id=MOD, key=SAME)
    assert len(first.codes) == 3
    second = await ledger.issue_gift_cards(GUILD, 40, 3, actor_id=MOD, key=SAME)
    assert (second.card_ids, second.last4s, second.amount) == (first.card_ids, first.last4s, 40)
    assert second.codes == ()
    assert count(store, "gift_cards") == 3


async def test_a_retry_with_other_arguments_still_returns_the_first_result(ledger, key):
    first = await ledger.update_settings(GUILD, actor_id=MOD, key=SAME, currency_name="coins")
    second = await ledger.update_settings(GUILD, actor_id=MOD, key=SAME, currency_name="gems")
    assert second == first
    assert (await ledger.settings(GUILD)).currency_name == "coins"
    grant = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key="g")
    assert await ledger.grant(GUILD, BOB, 99, actor_id=MOD, key="g") == grant
    assert (await ledger.balance(GUILD, BOB)).total == 0


async def test_a_key_used_for_one_action_is_refused_for_another(ledger, store, key):
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=SAME)
    await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.revoke(GUILD, ALICE, amount=5, reason="r", actor_id=MOD, key=SAME),
        Conflict,
        "another action",
    )


async def test_a_refused_action_does_not_use_up_its_key(ledger, store, key):
    item = await ledger.add_item(GUILD, "Thing", 20, "merch", actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=SAME), InsufficientBalance
    )
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, item.id, key=SAME)
    assert order.total == 20
    await healthy(ledger)


async def test_no_key_means_no_deduplication(ledger, store):
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=None)
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=None)
    assert (await ledger.balance(GUILD, ALICE)).promo == 20
    assert count(store, "idempotency") == 0


# --- guild isolation -----------------------------------------------------------------------------------


async def _populate(ledger, key) -> dict[str, Any]:
    lot = await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="30d")
    gift = await ledger.grant(GUILD, ALICE, 50, kind="gift", actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Sticker", 10, "merch", actor_id=MOD, key=key(), stock=5)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.create_promo(GUILD, "ONLY-HERE", 25, actor_id=MOD, key=key())
    cards = await ledger.issue_gift_cards(GUILD, 30, 2, actor_id=MOD, key=key())
    await ledger.set_category_excluded(GUILD, "digital", True, actor_id=MOD, key=key())
    return {"lot": lot.first_lot_id, "gift": gift.first_lot_id, "item": item, "order": order, "cards": cards}


async def test_nothing_of_one_guild_is_visible_from_another(ledger, key):
    ours = await _populate(ledger, key)
    bal = await ledger.balance(OTHER_GUILD, ALICE)
    assert (bal.gift, bal.promo, bal.upcoming, bal.lots) == (0, 0, 0, ())
    assert (await ledger.history(OTHER_GUILD, ALICE)).total == 0
    assert await ledger.lots(OTHER_GUILD, ALICE) == []
    assert await ledger.get_lot(OTHER_GUILD, ours["lot"]) is None
    assert await ledger.items(OTHER_GUILD, include_inactive=True) == []
    assert await ledger.item(OTHER_GUILD, ours["item"].id) is None
    assert await ledger.categories(OTHER_GUILD) == []
    assert (await ledger.orders(OTHER_GUILD, None)).total == 0
    assert (await ledger.orders(OTHER_GUILD, ALICE)).total == 0
    assert await ledger.order(OTHER_GUILD, ours["order"].id) is None
    assert await ledger.promos(OTHER_GUILD) == []
    assert await ledger.gift_cards(OTHER_GUILD) == []
    assert (await ledger.audit_log(OTHER_GUILD)).total == 0
    assert (await ledger.settings(OTHER_GUILD)).promo_excluded_categories == ()
    report = await ledger.report(OTHER_GUILD)
    assert (report.outstanding_promo, report.outstanding_gift, report.redemptions_per_code) == (0, 0, ())
    # … while the owning guild sees it all
    assert (await ledger.balance(GUILD, ALICE)).total == 140
    assert len(await ledger.gift_cards(GUILD)) == 2


async def test_nothing_of_one_guild_can_be_changed_from_another(ledger, store, key):
    ours = await _populate(ledger, key)
    lot, item, order, cards = ours["lot"], ours["item"], ours["order"], ours["cards"]
    refusals = [
        (lambda: ledger.revoke(OTHER_GUILD, ALICE, lot_id=lot, reason="r", actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.revoke(OTHER_GUILD, ALICE, amount=1, reason="r", actor_id=MOD, key=key()), Conflict),
        (lambda: ledger.extend(OTHER_GUILD, lot, "90d", actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.checkout(OTHER_GUILD, ALICE, item.id, key=key()), NotFound),
        (lambda: ledger.preview(OTHER_GUILD, ALICE, item.id), NotFound),
        (lambda: ledger.edit_item(OTHER_GUILD, item.id, price=1, actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.remove_item(OTHER_GUILD, item.id, actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.refund(OTHER_GUILD, order.id, actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.disable_promo(OTHER_GUILD, "ONLY-HERE", actor_id=MOD, key=key()), NotFound),
        (lambda: ledger.void_gift_card(OTHER_GUILD, cards.last4s[0], actor_id=MOD, key=key()), NotFound),
    ]
    for call, error in refusals:
        await assert_refused_writes_nothing(ledger, store, call, error)
    # Codes typed into the wrong server are simply unknown there (and count as wrong codes there only).
    for code in ("ONLY-HERE", cards.codes[0]):
        with pytest.raises(NotFound):
            await ledger.redeem(OTHER_GUILD, BOB, code, key=key())
    assert (await ledger.balance(OTHER_GUILD, BOB)).total == 0
    assert (await ledger.promos(GUILD))[0].uses == 0
    assert {c.status for c in await ledger.gift_cards(GUILD)} == {"unredeemed"}
    assert (await ledger.redeem(GUILD, BOB, "only-here", key=key())).lot.original == 25  # not rate limited here
    assert (await ledger.redeem(GUILD, BOB, cards.codes[0], key=key())).lot.original == 30
    assert (await ledger.get_lot(GUILD, lot)).expires_at == NOW + 30 * DAY
    assert (await ledger.item(GUILD, item.id)).stock == 4
    assert (await ledger.order(GUILD, order.id)).status == "completed"
    await healthy(ledger)


async def test_credit_of_one_guild_cannot_be_spent_in_another(ledger, store, key):
    await ledger.grant(GUILD, ALICE, 100, kind="gift", actor_id=MOD, key=key())
    theirs = await ledger.add_item(OTHER_GUILD, "Sticker", 10, "merch", actor_id=MOD, key=key())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(OTHER_GUILD, ALICE, theirs.id, key=key()), InsufficientBalance
    )
    assert "have 0" in str(info.value)
    await ledger.grant(OTHER_GUILD, ALICE, 10, actor_id=MOD, key=key())
    order = await ledger.checkout(OTHER_GUILD, ALICE, theirs.id, key=key())
    assert order.promo_applied == 10
    assert (await ledger.balance(GUILD, ALICE)).gift == 100
    await healthy(ledger)


async def test_same_names_live_side_by_side_in_two_guilds(ledger, key):
    ours = await ledger.add_item(GUILD, "Sticker", 10, "merch", actor_id=MOD, key=key())
    theirs = await ledger.add_item(OTHER_GUILD, "sticker", 99, "merch", actor_id=MOD, key=key())
    assert ours.id != theirs.id
    await ledger.create_promo(GUILD, "SALE", 10, actor_id=MOD, key=key())
    await ledger.create_promo(OTHER_GUILD, "sale", 70, actor_id=MOD, key=key())
    assert (await ledger.redeem(GUILD, ALICE, "sale", key=key())).lot.original == 10
    assert (await ledger.redeem(OTHER_GUILD, ALICE, "sale", key=key())).lot.original == 70
    assert [(p.code, p.uses) for p in await ledger.promos(GUILD)] == [("SALE", 1)]
    assert (await ledger.balance(GUILD, ALICE)).promo == 10
    assert (await ledger.balance(OTHER_GUILD, ALICE)).promo == 70
    await healthy(ledger)


async def test_settings_and_exclusions_are_per_guild(ledger, key):
    await ledger.update_settings(
        GUILD, actor_id=MOD, key=key(), currency_name="coins", decimals=2, timezone="Asia/Tokyo"
    )
    await ledger.set_category_excluded(GUILD, "merch", True, actor_id=MOD, key=key())
    theirs = await ledger.settings(OTHER_GUILD)
    assert (theirs.currency_name, theirs.decimals, theirs.timezone, theirs.promo_excluded_categories) == (
        "credits",
        0,
        "UTC",
        (),
    )
    await ledger.grant(OTHER_GUILD, ALICE, "12", actor_id=MOD, key=key())  # whole credits there
    item = await ledger.add_item(OTHER_GUILD, "Sticker", 12, "merch", actor_id=MOD, key=key())
    assert (await ledger.checkout(OTHER_GUILD, ALICE, item.id, key=key())).promo_applied == 12
