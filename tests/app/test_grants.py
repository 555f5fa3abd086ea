"""Granting, balances, expiry, the sweep, revoke and extend, through `Ledger` on a real SQLite file.

Also: the database guarding itself, and `verify` catching a hand-edited database.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bot.domain.errors import Conflict, InvalidInput, NotFound
from bot.domain.models import Balance
from tests.app._support import (
    ALICE,
    BAD_AMOUNTS_DECIMALS_0,
    BAD_AMOUNTS_DECIMALS_2,
    BOB,
    CAROL,
    DATABASE_ERRORS,
    DAY,
    GUILD,
    INTEGRITY_ERRORS,
    MOD,
    NOW,
    assert_each_refused_writes_nothing,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    corrupts_db,
    count,
    db_execute,
    db_rows,
    healthy,
    unix,
    use_decimals,
)

# --- granting --------------------------------------------------------------------------------------


async def test_grant_creates_a_lot_an_entry_and_an_event(ledger, store, key, events):
    result = await ledger.grant(GUILD, ALICE, "100", actor_id=MOD, key=key(), reason="welcome")
    assert (result.amount, result.kind, result.count, result.starts_at, result.expires_at) == (
        100,
        "promo",
        1,
        NOW,
        None,
    )
    lot = await ledger.get_lot(GUILD, result.first_lot_id)
    assert lot is not None
    assert (lot.user_id, lot.kind, lot.original, lot.remaining, lot.status) == (ALICE, "promo", 100, 100, "active")
    assert (lot.starts_at, lot.expires_at, lot.categories, lot.one_time) == (NOW, None, None, False)
    assert (lot.source, lot.memo, lot.created_by, lot.created_at) == ("grant", "welcome", MOD, NOW)
    history = await ledger.history(GUILD, ALICE)
    assert history.total == 1
    entry = history.items[0]
    assert (entry.type, entry.amount, entry.lot_id, entry.actor_id, entry.reason, entry.lot_kind) == (
        "grant",
        100,
        lot.id,
        MOD,
        "welcome",
        "promo",
    )
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.gift, bal.total, bal.upcoming) == (100, 0, 100, 0)
    assert db_rows(store, "SELECT guild_id, user_id FROM accounts") == [(GUILD, ALICE)]  # created on first use
    assert [name for name, _ in events] == ["credit_granted"]
    payload = events[0][1]
    assert payload["user_ids"] == [ALICE]
    assert payload["amount"] == 100
    assert payload["kind"] == "promo"
    json.dumps(payload)  # plain data, not database rows
    await healthy(ledger)


async def test_gift_and_promo_are_kept_apart(ledger, key):
    await ledger.grant(GUILD, ALICE, 70, kind="gift", actor_id=MOD, key=key())
    await ledger.grant(GUILD, ALICE, 30, kind="promo", actor_id=MOD, key=key())
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.gift, bal.promo, bal.total) == (70, 30, 100)
    assert [lot.kind for lot in bal.lots] == ["promo", "gift"]  # allocation order
    await healthy(ledger)


async def test_grant_refuses_bad_amounts_and_writes_nothing(ledger, store, key):
    await ledger.grant(GUILD, BOB, 5, actor_id=MOD, key=key())  # some existing state to keep intact
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        BAD_AMOUNTS_DECIMALS_0,
        lambda amount: ledger.grant(GUILD, ALICE, amount, actor_id=MOD, key=key()),
    )
    await healthy(ledger)


async def test_grant_refuses_bad_amounts_with_two_decimals(ledger, store, key):
    await use_decimals(ledger, 2)
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        BAD_AMOUNTS_DECIMALS_2,
        lambda amount: ledger.grant(GUILD, ALICE, amount, actor_id=MOD, key=key()),
    )


async def test_decimals_two_reads_12_50_as_1250_minor_units(ledger, key):
    await use_decimals(ledger, 2)
    result = await ledger.grant(GUILD, ALICE, "12.50", actor_id=MOD, key=key())
    assert result.amount == 1250
    await ledger.grant(GUILD, ALICE, "12", actor_id=MOD, key=key())
    assert (await ledger.balance(GUILD, ALICE)).promo == 2450
    await healthy(ledger)


async def test_amount_limits_are_inclusive(ledger, key):
    await ledger.grant(GUILD, ALICE, "1", actor_id=MOD, key=key())
    await ledger.grant(GUILD, ALICE, "1000000000000", actor_id=MOD, key=key())
    await ledger.grant(GUILD, ALICE, 10**12, actor_id=MOD, key=key())
    assert (await ledger.balance(GUILD, ALICE)).promo == 2 * 10**12 + 1
    await healthy(ledger)


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "cash"},
        {"kind": "PROMO"},
        {"reason": "x" * 201},
        {"categories": "y" * 51},
        {"expires": "soon"},
        {"starts": "someday"},
        {"expires": "3 months"},
        {"expires": "10d", "starts": "20d"},  # expiry before the start
        {"expires": "10d", "starts": "10d"},  # expiry at the start
    ],
    ids=repr,
)
async def test_grant_refuses_bad_options_and_writes_nothing(ledger, store, key, options):
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), **options)
    )


async def test_grant_many_gives_each_member_a_lot_in_one_go(ledger, key, events):
    result = await ledger.grant_many(GUILD, [ALICE, BOB, ALICE, CAROL], 25, actor_id=MOD, key=key(), kind="gift")
    assert result.count == 3  # ALICE once
    lots = [await ledger.get_lot(GUILD, lot_id) for lot_id in result.lot_ids]
    assert [lot.user_id for lot in lots if lot] == [ALICE, BOB, CAROL]
    for member in (ALICE, BOB, CAROL):
        assert (await ledger.balance(GUILD, member)).gift == 25
    assert len(events) == 1
    assert events[0][1]["user_ids"] == [ALICE, BOB, CAROL]
    await healthy(ledger)


async def test_grant_many_to_nobody_is_refused(ledger, store, key):
    await assert_refused_writes_nothing(ledger, store, lambda: ledger.grant_many(GUILD, [], 5, actor_id=MOD, key=key()))


async def test_grant_many_with_a_bad_amount_writes_nothing_for_anyone(ledger, store, key):
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.grant_many(GUILD, [ALICE, BOB], "0", actor_id=MOD, key=key())
    )


async def test_categories_and_one_time_are_kept_on_the_lot(ledger, key):
    result = await ledger.grant(
        GUILD, ALICE, 10, actor_id=MOD, key=key(), categories="Games, gear, games, ", one_time=True
    )
    lot = await ledger.get_lot(GUILD, result.first_lot_id)
    assert lot is not None
    assert lot.categories == ("Games", "gear")
    assert lot.one_time is True
    blank = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), categories="  ")
    lot = await ledger.get_lot(GUILD, blank.first_lot_id)
    assert lot is not None
    assert lot.categories is None


# --- dates and durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", NOW + 30 * DAY),
        ("12h", NOW + 12 * 3600),
        ("2w", NOW + 14 * DAY),
        ("90m", NOW + 90 * 60),
        ("1y", NOW + 365 * DAY),
        ("2026-12-31", unix(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))),
        ("2026-12-01T18:00Z", unix(datetime(2026, 12, 1, 18, 0, tzinfo=UTC))),
        ("2026-12-01T18:00:00+02:00", unix(datetime(2026, 12, 1, 16, 0, tzinfo=UTC))),
        ("2026-12-01T18:00", unix(datetime(2026, 12, 1, 18, 0, tzinfo=UTC))),  # guild tz (UTC)
    ],
)
async def test_expiry_forms(ledger, key, text, expected):
    result = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires=text)
    assert result.expires_at == expected
    lot = await ledger.get_lot(GUILD, result.first_lot_id)
    assert lot is not None
    assert lot.expires_at == expected


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Berlin", datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC)),
        ("America/New_York", datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC)),
        ("Asia/Tokyo", datetime(2026, 12, 31, 14, 59, 59, tzinfo=UTC)),
    ],
)
async def test_a_date_is_the_end_of_that_day_in_the_guild_timezone(ledger, key, tz, expected):
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), timezone=tz)
    result = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2026-12-31")
    assert result.expires_at == unix(expected)
    # A naive ISO datetime is read in the guild's timezone too.
    naive = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2026-12-31T23:59:59")
    assert naive.expires_at == unix(expected)


@pytest.mark.parametrize(
    "text",
    ["2026-11-25", "2026-01-01", "2026-11-26T11:59:59Z", "2026-11-26T12:00:00Z", "-1d", "0d", "1999-12-31"],
)
async def test_an_expiry_in_the_past_is_refused_and_writes_nothing(ledger, store, key, text):
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires=text)
    )
    assert str(info.value)


async def test_the_past_date_is_judged_in_the_guild_timezone(ledger, store, key, clock):
    # At 2026-11-26 23:30 UTC, "2026-11-26" still has 30 minutes left in UTC, but in Tokyo that day
    # ended at 14:59:59 UTC.
    clock.advance(hours=11, minutes=30)
    utc = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2026-11-26")
    assert utc.expires_at == unix(datetime(2026, 11, 26, 23, 59, 59, tzinfo=UTC))
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), timezone="Asia/Tokyo")
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2026-11-26")
    )


async def test_a_lot_that_starts_later_is_upcoming_and_not_spendable(ledger, store, key, clock):
    await ledger.grant(GUILD, ALICE, 50, kind="gift", actor_id=MOD, key=key(), starts="2d", expires="10d")
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.gift, bal.promo, bal.upcoming, bal.total) == (0, 0, 50, 0)
    assert bal.next_expiry is None  # only usable lots expire "next"
    assert [lot.original for lot in bal.lots] == [50]
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict, "costs 20"
    )
    clock.advance(days=2)
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.gift, bal.upcoming) == (50, 0)
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    assert order.gift_applied == 20
    await healthy(ledger)


async def test_a_lot_past_its_expiry_is_unusable_at_once_before_the_sweep(ledger, store, key, clock):
    granted = await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), expires="1h")
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    clock.advance(minutes=59, seconds=59)
    assert (await ledger.balance(GUILD, ALICE)).promo == 50
    clock.advance(seconds=1)  # exactly at expires_at
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.total, bal.upcoming, bal.lots) == (0, 0, 0, ())
    lot = await ledger.get_lot(GUILD, granted.first_lot_id)
    assert lot is not None
    assert lot.status == "active"  # the sweep has not run
    assert lot.remaining == 50
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), Conflict
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.revoke(GUILD, ALICE, amount=1, reason="r", actor_id=MOD, key=key()), Conflict
    )
    assert (await ledger.report(GUILD)).outstanding_promo == 0
    await healthy(ledger)


async def test_the_sweep_writes_expire_entries_and_events(ledger, key, clock, events):
    soon = await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), expires="1d")
    later = await ledger.grant(GUILD, ALICE, 30, kind="gift", actor_id=MOD, key=key(), expires="3d")
    forever = await ledger.grant(GUILD, BOB, 20, actor_id=MOD, key=key())
    events.clear()
    clock.advance(days=1)
    expired = await ledger.sweep_expired()
    assert [(e.lot_id, e.user_id, e.kind, e.amount) for e in expired] == [(soon.first_lot_id, ALICE, "promo", 50)]
    assert events == [("credit_expired", expired[0].to_dict())]
    assert events[0][1]["amount"] == 50
    assert events[0][1]["expires_at"] == NOW + DAY
    lot = await ledger.get_lot(GUILD, soon.first_lot_id)
    assert lot is not None
    assert (lot.status, lot.remaining) == ("expired", 0)
    newest = (await ledger.history(GUILD, ALICE)).items[0]
    assert (newest.type, newest.amount, newest.lot_id) == ("expire", -50, soon.first_lot_id)
    assert await ledger.sweep_expired() == []  # nothing twice
    assert len(events) == 1
    clock.advance(days=2)
    assert [e.lot_id for e in await ledger.sweep_expired()] == [later.first_lot_id]
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    assert (await ledger.balance(GUILD, BOB)).promo == 20
    assert (await ledger.get_lot(GUILD, forever.first_lot_id)).status == "active"
    await healthy(ledger)


async def test_a_partly_spent_lot_expires_only_its_remainder(ledger, key, clock):
    granted = await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), expires="1d")
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    clock.advance(days=1)
    [expired] = await ledger.sweep_expired()
    assert expired.amount == 30
    lot = await ledger.get_lot(GUILD, granted.first_lot_id)
    assert lot is not None
    assert (lot.remaining, lot.status) == (0, "expired")
    await healthy(ledger)


# --- balance ---------------------------------------------------------------------------------------


async def test_balance_splits_and_names_the_next_expiry(ledger, key, clock):
    g1 = await ledger.grant(GUILD, ALICE, 10, kind="gift", actor_id=MOD, key=key())
    p_late = await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="30d")
    g_soon = await ledger.grant(GUILD, ALICE, 40, kind="gift", actor_id=MOD, key=key(), expires="5d")
    p_soon = await ledger.grant(GUILD, ALICE, 30, actor_id=MOD, key=key(), expires="10d")
    upcoming = await ledger.grant(GUILD, ALICE, 5, actor_id=MOD, key=key(), starts="1d", expires="2d")
    await ledger.grant(GUILD, BOB, 1000, actor_id=MOD, key=key())  # someone else's
    bal = await ledger.balance(GUILD, ALICE)
    assert isinstance(bal, Balance)
    assert (bal.gift, bal.promo, bal.upcoming, bal.total) == (50, 50, 5, 100)
    assert bal.next_expiry is not None
    assert bal.next_expiry.id == g_soon.first_lot_id
    assert [lot.id for lot in bal.lots] == [
        p_soon.first_lot_id,
        p_late.first_lot_id,
        g_soon.first_lot_id,
        g1.first_lot_id,
        upcoming.first_lot_id,
    ]
    clock.advance(days=1)
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.upcoming) == (55, 0)
    assert bal.next_expiry is not None
    assert bal.next_expiry.id == upcoming.first_lot_id
    clock.advance(days=5)
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.gift, bal.promo) == (10, 50)
    assert bal.next_expiry is not None
    assert bal.next_expiry.id == p_soon.first_lot_id


async def test_an_unknown_member_has_an_empty_balance_and_history(ledger):
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.gift, bal.promo, bal.upcoming, bal.lots, bal.next_expiry) == (0, 0, 0, (), None)
    page = await ledger.history(GUILD, ALICE)
    assert (page.items, page.total, page.pages, page.page) == ((), 0, 1, 1)


async def test_history_is_newest_first_and_paged(ledger, key, clock):
    for amount in range(1, 13):
        await ledger.grant(GUILD, ALICE, amount, actor_id=MOD, key=key())
        clock.advance(minutes=1)
    first = await ledger.history(GUILD, ALICE)
    assert (first.total, first.pages, first.page) == (12, 2, 1)
    assert [e.amount for e in first.items] == list(range(12, 2, -1))
    second = await ledger.history(GUILD, ALICE, page=2)
    assert [e.amount for e in second.items] == [2, 1]
    beyond = await ledger.history(GUILD, ALICE, page=99)
    assert beyond.page == 2


# --- revoke ----------------------------------------------------------------------------------------


async def test_revoke_a_whole_lot(ledger, key):
    lot_id = (await ledger.grant(GUILD, ALICE, 40, actor_id=MOD, key=key())).first_lot_id
    await ledger.grant(GUILD, ALICE, 10, kind="gift", actor_id=MOD, key=key())
    result = await ledger.revoke(GUILD, ALICE, lot_id=lot_id, reason="abuse", actor_id=MOD, key=key())
    assert (result.user_id, result.amount) == (ALICE, 40)
    assert [(c.lot_id, c.type, c.amount) for c in result.changes] == [(lot_id, "void", -40)]
    lot = await ledger.get_lot(GUILD, lot_id)
    assert lot is not None
    assert (lot.status, lot.remaining) == ("voided", 0)
    newest = (await ledger.history(GUILD, ALICE)).items[0]
    assert (newest.type, newest.amount, newest.reason, newest.actor_id) == ("void", -40, "abuse", MOD)
    assert (await ledger.balance(GUILD, ALICE)).total == 10
    await healthy(ledger)


async def test_revoke_part_of_a_lot(ledger, key):
    lot_id = (await ledger.grant(GUILD, ALICE, 40, actor_id=MOD, key=key())).first_lot_id
    result = await ledger.revoke(GUILD, ALICE, lot_id=lot_id, amount="15", reason="oops", actor_id=MOD, key=key())
    assert result.amount == 15
    lot = await ledger.get_lot(GUILD, lot_id)
    assert lot is not None
    assert (lot.status, lot.remaining) == ("active", 25)
    await healthy(ledger)


async def test_revoke_an_amount_in_allocation_order(ledger, key, clock):
    gift = (await ledger.grant(GUILD, ALICE, 100, kind="gift", actor_id=MOD, key=key(), expires="1d")).first_lot_id
    never = (await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key())).first_lot_id
    late = (await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="20d")).first_lot_id
    soon = (await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="10d")).first_lot_id
    result = await ledger.revoke(GUILD, ALICE, amount=25, reason="clawback", actor_id=MOD, key=key())
    assert [(c.lot_id, c.amount) for c in result.changes] == [(soon, -10), (late, -10), (never, -5)]
    assert result.amount == 25
    assert (await ledger.get_lot(GUILD, never)).remaining == 5
    assert (await ledger.get_lot(GUILD, gift)).remaining == 100
    result = await ledger.revoke(GUILD, ALICE, amount=50, reason="more", actor_id=MOD, key=key())
    assert [(c.lot_id, c.amount) for c in result.changes] == [(never, -5), (gift, -45)]
    bal = await ledger.balance(GUILD, ALICE)
    assert (bal.promo, bal.gift) == (0, 55)
    await healthy(ledger)


async def test_revoke_by_amount_skips_expired_and_upcoming_lots(ledger, store, key, clock):
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="1h")
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), starts="2d")
    usable = (await ledger.grant(GUILD, ALICE, 10, kind="gift", actor_id=MOD, key=key())).first_lot_id
    clock.advance(hours=1)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.revoke(GUILD, ALICE, amount=11, reason="r", actor_id=MOD, key=key()), Conflict
    )
    assert "Only 10 credits" in str(info.value)
    result = await ledger.revoke(GUILD, ALICE, amount=10, reason="r", actor_id=MOD, key=key())
    assert [c.lot_id for c in result.changes] == [usable]
    await healthy(ledger)


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"amount": 41}, Conflict, "Only 40 credits"),
        ({"amount": "0"}, InvalidInput, None),
        ({"amount": "-3"}, InvalidInput, None),
        ({"amount": "1e99"}, InvalidInput, None),
        ({"amount": "2.5"}, InvalidInput, None),
        ({"amount": 5, "reason": "  "}, InvalidInput, "reason"),
        ({"amount": 5, "reason": "x" * 201}, InvalidInput, None),
        ({}, InvalidInput, "lot or an amount"),
        ({"lot_id": "LOT", "amount": 31}, Conflict, "has only 30"),
        ({"lot_id": 999}, NotFound, None),
        ({"lot_id": "BOB"}, NotFound, None),  # a lot of another member
    ],
    ids=repr,
)
async def test_revoke_refusals_write_nothing(ledger, store, key, options, error, fragment):
    lot_id = (await ledger.grant(GUILD, ALICE, 30, actor_id=MOD, key=key())).first_lot_id
    await ledger.grant(GUILD, ALICE, 10, kind="gift", actor_id=MOD, key=key())
    bob_lot = (await ledger.grant(GUILD, BOB, 30, actor_id=MOD, key=key())).first_lot_id
    options = dict(options)
    options.setdefault("reason", "because")
    if options.get("lot_id") == "LOT":
        options["lot_id"] = lot_id
    if options.get("lot_id") == "BOB":
        options["lot_id"] = bob_lot
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.revoke(GUILD, ALICE, actor_id=MOD, key=key(), **options), error, fragment
    )


async def test_revoke_of_a_spent_voided_or_expired_lot_is_refused(ledger, store, key, clock):
    spent = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())).first_lot_id
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    voided = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())).first_lot_id
    await ledger.revoke(GUILD, ALICE, lot_id=voided, reason="r", actor_id=MOD, key=key())
    expiring = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="1h")).first_lot_id
    clock.advance(hours=1)
    for lot_id in (spent, voided, expiring):
        await assert_refused_writes_nothing(
            ledger,
            store,
            lambda lot_id=lot_id: ledger.revoke(GUILD, ALICE, lot_id=lot_id, reason="r", actor_id=MOD, key=key()),
            Conflict,
        )
    await ledger.sweep_expired()
    await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.revoke(GUILD, ALICE, lot_id=expiring, reason="r", actor_id=MOD, key=key()),
        Conflict,
    )
    await healthy(ledger)


# --- extend ----------------------------------------------------------------------------------------


async def test_extend_moves_the_expiry_with_a_zero_entry(ledger, key, clock):
    lot_id = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="1d")).first_lot_id
    result = await ledger.extend(GUILD, lot_id, "2026-12-31", actor_id=MOD, key=key(), reason="goodwill")
    new = unix(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert (result.lot_id, result.user_id, result.old_expires_at, result.new_expires_at) == (
        lot_id,
        ALICE,
        NOW + DAY,
        new,
    )
    newest = (await ledger.history(GUILD, ALICE)).items[0]
    assert (newest.type, newest.amount, newest.lot_id, newest.reason, newest.actor_id) == (
        "expiry_change",
        0,
        lot_id,
        "goodwill",
        MOD,
    )
    clock.advance(days=2)
    assert await ledger.sweep_expired() == []
    assert (await ledger.balance(GUILD, ALICE)).promo == 20
    await healthy(ledger)


async def test_extend_gives_a_never_expiring_lot_an_expiry(ledger, key):
    lot_id = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())).first_lot_id
    result = await ledger.extend(GUILD, lot_id, "7d", actor_id=MOD, key=key())
    assert (result.old_expires_at, result.new_expires_at) == (None, NOW + 7 * DAY)
    assert (await ledger.get_lot(GUILD, lot_id)).expires_at == NOW + 7 * DAY
    await healthy(ledger)


@pytest.mark.parametrize("text", ["2026-11-01", "-1d", "0d", "2026-11-26T12:00Z", "", "  ", "whenever"])
async def test_extend_only_into_the_future(ledger, store, key, text):
    lot_id = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="1d")).first_lot_id
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, lot_id, text, actor_id=MOD, key=key())
    )


async def test_extend_refuses_an_expired_lot_before_and_after_the_sweep(ledger, store, key, clock):
    lot_id = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="1d")).first_lot_id
    clock.advance(days=1)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, lot_id, "30d", actor_id=MOD, key=key()), Conflict, "expired"
    )
    await ledger.sweep_expired()
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, lot_id, "30d", actor_id=MOD, key=key()), Conflict, "expired"
    )
    assert (await ledger.balance(GUILD, ALICE)).total == 0


async def test_extend_refuses_voided_unknown_and_before_start(ledger, store, key):
    voided = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())).first_lot_id
    await ledger.revoke(GUILD, ALICE, lot_id=voided, reason="r", actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, voided, "30d", actor_id=MOD, key=key()), Conflict
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, 4242, "30d", actor_id=MOD, key=key()), NotFound
    )
    later = (await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), starts="10d", expires="20d")).first_lot_id
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.extend(GUILD, later, "5d", actor_id=MOD, key=key()), InvalidInput, "start"
    )


# --- the database guards itself; verify catches what slipped past -----------------------------------


async def test_entries_are_append_only_in_the_database(ledger, store, key):
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        db_execute(store, "UPDATE entries SET amount = 1000")
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        db_execute(store, "DELETE FROM entries")
    with pytest.raises(DATABASE_ERRORS, match="append-only"):
        db_execute(store, "UPDATE entries SET reason = 'edited' WHERE id = 1")
    assert db_rows(store, "SELECT amount, reason FROM entries") == [(20, None)]
    await healthy(ledger)


async def test_the_database_refuses_impossible_lots_and_entries(ledger, store, key):
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key())
    columns = "guild_id, user_id, kind, original, remaining, starts_at, source, created_at"
    insert = f"INSERT INTO lots ({columns}) VALUES (?, ?, 'promo', ?, ?, ?, 'grant', ?)"
    # The same insert with sane numbers is accepted (then rolled back): only broken invariants are refused.
    db_execute(store, insert, (GUILD, ALICE, 10, 10, NOW, NOW), commit=False)
    for original, remaining in ((10, 11), (10, -1), (0, 0), (10**12 + 1, 1)):
        with pytest.raises(INTEGRITY_ERRORS):
            db_execute(store, insert, (GUILD, ALICE, original, remaining, NOW, NOW))
    with pytest.raises(INTEGRITY_ERRORS):
        db_execute(store, "UPDATE lots SET remaining = original + 1")
    with pytest.raises(INTEGRITY_ERRORS):  # an active lot can't be empty
        db_execute(store, "UPDATE lots SET remaining = 0 WHERE status = 'active'")
    with pytest.raises(INTEGRITY_ERRORS):  # a spend must be negative
        db_execute(
            store,
            "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, created_at) VALUES (?, ?, 1, 'spend', 5, ?)",
            (GUILD, ALICE, NOW),
        )
    assert count(store, "lots") == 1


@corrupts_db
async def test_verify_catches_a_hand_edited_remaining(ledger, store, key):
    lot_id = (await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key())).first_lot_id
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await healthy(ledger)
    db_execute(store, "UPDATE lots SET remaining = remaining + 1 WHERE id = ?", (lot_id,))
    problems = await ledger.verify()
    assert problems
    assert any(f"lot {lot_id}" in p for p in problems)


@corrupts_db
async def test_verify_catches_an_active_lot_the_sweep_missed(ledger, store, key, clock):
    lot_id = (await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), expires="2d")).first_lot_id
    clock.advance(days=1)
    assert await ledger.sweep_expired() == []
    await healthy(ledger)
    db_execute(store, "UPDATE lots SET expires_at = starts_at + 60 WHERE id = ?", (lot_id,))
    problems = await ledger.verify()
    assert any(f"lot {lot_id}" in p and "expired" in p for p in problems)


@corrupts_db
async def test_verify_catches_promo_uses_and_order_totals_out_of_step(ledger, store, key):
    await ledger.create_promo(GUILD, "HELLO", 10, actor_id=MOD, key=key())
    await ledger.redeem(GUILD, ALICE, "hello", key=key())
    await ledger.grant(GUILD, ALICE, 50, kind="gift", actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await healthy(ledger)
    db_execute(store, "UPDATE promo_codes SET uses = uses + 1")
    assert any("HELLO" in p for p in await ledger.verify())
    db_execute(store, "UPDATE promo_codes SET uses = uses - 1")
    await healthy(ledger)
    db_execute(store, "UPDATE orders SET unit_price = 25, total = 25, gift_applied = 15 WHERE id = ?", (order.id,))
    assert any(f"order {order.id}" in p for p in await ledger.verify())


async def test_a_start_date_means_the_start_of_that_day_in_the_guild_timezone(ledger, key):
    """Expiry dates mean the end of the day (SPEC §1); a "usable from" date means its beginning."""
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), timezone="America/New_York")
    result = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), starts="2026-12-01", expires="2026-12-31")
    # 2026-12-01 00:00 in New York is 05:00 UTC; 2026-12-31 23:59:59 there is 2027-01-01 04:59:59 UTC.
    assert result.starts_at == int(datetime(2026, 12, 1, 5, 0, tzinfo=UTC).timestamp())
    assert result.expires_at == int(datetime(2027, 1, 1, 4, 59, 59, tzinfo=UTC).timestamp())
