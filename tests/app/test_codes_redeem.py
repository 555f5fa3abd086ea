"""Promo codes and gift cards through one redeem box; the wrong-code rate limit (SPEC §4)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.app.ledger import Ledger
from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited
from bot.domain.models import MemberFacts
from bot.store.sqlite import SqliteStore
from tests.app._support import (
    ALICE,
    BAD_AMOUNTS_DECIMALS_0,
    BAD_AMOUNTS_DECIMALS_2,
    BOB,
    CAROL,
    DAY,
    GUILD,
    MOD,
    NOW,
    OTHER_GUILD,
    another_store,
    assert_each_refused_writes_nothing,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    count,
    db_execute,
    db_rows,
    healthy,
    tables,
    unix,
    use_decimals,
)

GIFT_CODE = re.compile(r"[0-9A-HJKMNP-TV-Z]{4}(?:-[0-9A-HJKMNP-TV-Z]{4}){3}")
ROLE = 777


async def promo(ledger, key, code="SUMMER-SALE", amount=25, **options):
    return await ledger.create_promo(GUILD, code, amount, actor_id=MOD, key=key(), **options)


async def cards(ledger, key, amount=25, count=1, guild=GUILD, **options):
    return await ledger.issue_gift_cards(guild, amount, count, actor_id=MOD, key=key(), **options)


# --- creating promo codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("abc", "ABC"),
        ("summer-25", "SUMMER-25"),
        ("  Spring-Sale ", "SPRING-SALE"),
        ("A" * 32, "A" * 32),
        ("123", "123"),
    ],
)
async def test_create_promo_accepts_and_upper_cases(ledger, key, text, shown):
    created = await promo(ledger, key, text, 40)
    assert (created.code, created.amount, created.uses, created.per_member, created.active) == (shown, 40, 0, 1, True)
    assert [p.code for p in await ledger.promos(GUILD)] == [shown]


async def test_create_promo_refuses_bad_codes_and_writes_nothing(ledger, store, key):
    bad = [
        "AB",
        "A" * 33,
        "SUMMER SALE",
        "SUMMER_SALE",
        "ÉTÉ25",
        "",
        "   ",
        "---",
        "SALE!",
        "SALE.25",
        "7KQ2-M9XD-3F8B-ZT1C",
        "7kq2m9xd3f8bzt1c",
    ]  # the last two have a gift card's shape
    await assert_each_refused_writes_nothing(ledger, store, bad, lambda code: promo(ledger, key, code))


async def test_create_promo_refuses_bad_amounts_and_writes_nothing(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger, store, BAD_AMOUNTS_DECIMALS_0, lambda amount: promo(ledger, key, "CODE", amount)
    )
    await use_decimals(ledger, 2)
    await assert_each_refused_writes_nothing(
        ledger, store, BAD_AMOUNTS_DECIMALS_2, lambda amount: promo(ledger, key, "CODE", amount)
    )
    assert (await promo(ledger, key, "CODE", "12.50")).amount == 1250


@pytest.mark.parametrize(
    "options",
    [
        {"uses": 0},
        {"uses": -1},
        {"per_member": 0},
        {"credit_days": 0},
        {"credit_days": 36501},
        {"min_member_days": -1},
        {"credit_days": 10, "credit_expires": "30d"},
        {"redeem_by": "2026-11-01"},
        {"redeem_by": "-1d"},
        {"credit_expires": "2026-11-25"},
        {"redeem_by": "not a date"},
        {"categories": "x" * 51},
    ],
    ids=repr,
)
async def test_create_promo_refuses_bad_options(ledger, store, key, options):
    await assert_refused_writes_nothing(ledger, store, lambda: promo(ledger, key, "CODE", 10, **options))


@pytest.mark.parametrize("again", ["SUMMER-SALE", "summer-sale", "SUMMERSALE", "Summer--Sale", "S-U-M-M-E-R-SALE"])
async def test_duplicate_codes_are_refused_ignoring_case_and_dashes(ledger, store, key, again):
    await promo(ledger, key)
    await assert_refused_writes_nothing(
        ledger, store, lambda: promo(ledger, key, again, 99), Conflict, "already exists"
    )


# --- redeeming promo codes -----------------------------------------------------------------------------


async def test_redeem_a_promo_code(ledger, key, events):
    await promo(ledger, key, amount=25)
    events.clear()
    got = await ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key())
    assert (got.kind, got.code_label) == ("promo_code", "SUMMER-SALE")
    lot = got.lot
    assert (lot.user_id, lot.kind, lot.original, lot.remaining, lot.expires_at) == (ALICE, "promo", 25, 25, None)
    assert (lot.source, lot.source_ref, lot.categories, lot.one_time) == ("promo_code", "SUMMER-SALE", None, False)
    assert await ledger.get_lot(GUILD, lot.id) == lot
    assert (await ledger.balance(GUILD, ALICE)).promo == 25
    assert [name for name, _ in events] == ["code_redeemed", "credit_granted"]
    assert events[0][1]["code_label"] == "SUMMER-SALE"
    assert events[0][1]["amount"] == 25
    assert (await ledger.promos(GUILD))[0].uses == 1
    await healthy(ledger)


async def test_redeem_normalises_case_spaces_and_dashes(ledger, key):
    await promo(ledger, key, per_member=10)
    typed_forms = (
        "summer-sale",
        " Summer Sale ",
        "SUMMERSALE",
        "s-u-m-m-e-r-s-a-l-e",
        "summer\u2013sale",
        "ＳＵＭＭＥＲＳＡＬＥ",
    )
    for typed in typed_forms:
        got = await ledger.redeem(GUILD, ALICE, typed, key=key())
        assert got.code_label == "SUMMER-SALE", typed
    assert (await ledger.balance(GUILD, ALICE)).promo == 6 * 25
    assert (await ledger.promos(GUILD))[0].uses == 6
    await healthy(ledger)


async def test_total_uses_are_capped(ledger, store, key):
    await promo(ledger, key, uses=2)
    await ledger.redeem(GUILD, ALICE, "summer-sale", key=key())
    await ledger.redeem(GUILD, BOB, "summer-sale", key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, CAROL, "summer-sale", key=key()), Conflict, "used up"
    )
    assert (await ledger.promos(GUILD))[0].uses == 2
    await healthy(ledger)


async def test_total_uses_hold_under_concurrency(ledger, key):
    await promo(ledger, key, uses=3)
    members = [100 + n for n in range(10)]
    results = await asyncio.gather(
        *(ledger.redeem(GUILD, m, "SUMMER-SALE", key=key()) for m in members), return_exceptions=True
    )
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception))
    assert (await ledger.promos(GUILD))[0].uses == 3
    assert count(store := ledger.store, "lots") == 3
    assert count(store, "promo_redemptions") == 3
    await healthy(ledger)


async def test_use_caps_hold_across_two_connections_to_one_file(ledger, store, key, clock):
    """Two processes (here: two stores on the same file) redeeming at once still respect the cap."""
    await promo(ledger, key, uses=3)
    second_store = another_store(store)
    await second_store.open()
    try:
        second = Ledger(second_store, clock=clock)
        members = [100 + n for n in range(10)]
        results = await asyncio.gather(
            *((ledger if n % 2 else second).redeem(GUILD, m, "SUMMER-SALE", key=key()) for n, m in enumerate(members)),
            return_exceptions=True,
        )
        await promo(ledger, key, "TWICE", per_member=2)
        mine = await asyncio.gather(
            *((ledger if n % 2 else second).redeem(GUILD, ALICE, "TWICE", key=key()) for n in range(6)),
            return_exceptions=True,
        )
        issued = await cards(ledger, key)
        card = await asyncio.gather(
            ledger.redeem(GUILD, ALICE, issued.codes[0], key=key()),
            second.redeem(GUILD, BOB, issued.codes[0], key=key()),
            return_exceptions=True,
        )
    finally:
        await second_store.close()
    assert sum(not isinstance(r, Exception) for r in results) == 3
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception)), results
    assert {p.code: p.uses for p in await ledger.promos(GUILD)} == {"SUMMER-SALE": 3, "TWICE": 2}
    assert sum(not isinstance(r, Exception) for r in mine) == 2  # uses per member, too
    assert sum(not isinstance(r, Exception) for r in card) == 1  # a gift card, once
    assert count(store, "promo_redemptions") == 5
    assert count(store, "lots", "source = 'gift_card'") == 1


async def test_uses_per_member(ledger, store, key):
    await promo(ledger, key, "ONCE")
    await promo(ledger, key, "TWICE", per_member=2)
    await ledger.redeem(GUILD, ALICE, "once", key=key())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, "once", key=key()), Conflict, "already redeemed"
    )
    assert "once per member" in str(info.value)
    await ledger.redeem(GUILD, BOB, "once", key=key())  # another member still can
    await ledger.redeem(GUILD, ALICE, "twice", key=key())
    await ledger.redeem(GUILD, ALICE, "twice", key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, "twice", key=key()), Conflict, "2 times"
    )
    await healthy(ledger)


async def test_redeem_by_date(ledger, store, key, clock):
    await promo(ledger, key, redeem_by="2d")
    clock.advance(days=2)  # the last second it can be redeemed
    await ledger.redeem(GUILD, ALICE, "summer-sale", key=key())
    clock.advance(seconds=1)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, BOB, "summer-sale", key=key()), Conflict
    )
    assert (info.value.code, info.value.params) == ("promo_expired", {"until": NOW + 2 * DAY})
    assert "{until:f}" in info.value.template  # the date and time, not how long ago


async def test_credit_days_count_from_redemption(ledger, key, clock):
    created = await promo(ledger, key, credit_days=10)
    assert (created.credit_days, created.credit_expires) == (10, None)
    clock.advance(days=3)
    got = await ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key())
    assert got.lot.expires_at == NOW + 3 * DAY + 10 * DAY
    clock.advance(days=10)
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    assert [e.lot_id for e in await ledger.sweep_expired()] == [got.lot.id]
    await healthy(ledger)


async def test_credit_expires_is_a_fixed_date(ledger, store, key, clock):
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), timezone="Europe/Berlin")
    created = await promo(ledger, key, credit_expires="2026-12-31")
    end = unix(datetime(2026, 12, 31, 22, 59, 59, tzinfo=UTC))
    assert (created.credit_days, created.credit_expires) == (None, end)
    clock.advance(days=20)
    got = await ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key())
    assert got.lot.expires_at == end
    clock.current = datetime(2027, 1, 2, tzinfo=UTC)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, BOB, "SUMMER-SALE", key=key()), Conflict, "expired"
    )


async def test_categories_and_one_time_are_carried_into_the_lot(ledger, key):
    await promo(ledger, key, categories="Games, Gear", one_time=True)
    got = await ledger.redeem(GUILD, ALICE, "summer-sale", key=key())
    assert got.lot.categories == ("Games", "Gear")
    assert got.lot.one_time is True
    stored = await ledger.get_lot(GUILD, got.lot.id)
    assert stored.categories == ("Games", "Gear")
    assert stored.one_time is True
    book = await ledger.add_item(GUILD, "Book", 5, "books", actor_id=MOD, key=key())
    with pytest.raises(Conflict):
        await ledger.checkout(GUILD, ALICE, book.id, key=key())
    game = await ledger.add_item(GUILD, "Game", 5, "games", actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, game.id, key=key())
    assert order.forfeited == 20
    await healthy(ledger)


async def test_required_role(ledger, store, key):
    await promo(ledger, key, role_id=ROLE)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key()), Forbidden
    )
    assert (info.value.code, info.value.params) == ("promo_role_required", {"role": ROLE})
    await assert_refused_writes_nothing(
        ledger,
        store,
        lambda: ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key(), member=MemberFacts(role_ids=frozenset({1, 2}))),
        Forbidden,
    )
    got = await ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key(), member=MemberFacts(role_ids=frozenset({ROLE})))
    assert got.lot.original == 25
    await healthy(ledger)


async def test_minimum_membership_age(ledger, store, key):
    await promo(ledger, key, min_member_days=30)
    for member in (MemberFacts(), MemberFacts(joined_at=NOW - 10 * DAY), MemberFacts(joined_at=NOW - 30 * DAY + 1)):
        info = await assert_refused_writes_nothing(
            ledger, store, lambda m=member: ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key(), member=m), Forbidden
        )
        assert "30 days" in str(info.value)
    got = await ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key(), member=MemberFacts(joined_at=NOW - 30 * DAY))
    assert got.lot.original == 25
    await promo(ledger, key, "NEWBIES", min_member_days=0)
    await ledger.redeem(GUILD, BOB, "NEWBIES", key=key(), member=MemberFacts(joined_at=NOW))
    await healthy(ledger)


async def test_disabled_codes(ledger, store, key):
    await promo(ledger, key)
    disabled = await ledger.disable_promo(GUILD, "summer sale", actor_id=MOD, key=key())
    assert disabled.active is False
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, "SUMMER-SALE", key=key()), Conflict, "no longer active"
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.disable_promo(GUILD, "NOPE", actor_id=MOD, key=key()), NotFound
    )


@pytest.mark.parametrize("typed", ["", "   ", "---", "x" * 101])
async def test_empty_or_absurd_input_is_refused_and_not_counted(ledger, store, key, typed):
    await assert_refused_writes_nothing(ledger, store, lambda: ledger.redeem(GUILD, ALICE, typed, key=key()))


# --- gift cards --------------------------------------------------------------------------------------


async def test_issue_gift_cards_shows_codes_once(ledger, key):
    issued = await cards(ledger, key, amount=25, count=3)
    assert len(issued.codes) == 3
    assert len(set(issued.codes)) == 3
    for code, last4 in zip(issued.codes, issued.last4s, strict=True):
        assert GIFT_CODE.fullmatch(code), code
        assert code[-4:] == last4
    assert (issued.amount, issued.claim_by, len(issued.card_ids)) == (25, None, 3)
    listed = await ledger.gift_cards(GUILD)
    assert sorted(c.last4 for c in listed) == sorted(issued.last4s)
    assert {(c.status, c.amount, c.redeemed_by) for c in listed} == {("unredeemed", 25, None)}
    assert not any(hasattr(c, "code") for c in listed)


async def test_gift_card_codes_are_never_stored_in_plain_text(ledger, store, key):
    issued = await cards(ledger, key, count=5, claim_by="30d")
    await ledger.redeem(GUILD, ALICE, issued.codes[0].lower(), key=key())
    await ledger.void_gift_card(GUILD, issued.last4s[1], actor_id=MOD, key=key())
    await ledger.redeem(GUILD, BOB, issued.codes[2].replace("-", ""), key=key())
    with pytest.raises(Conflict):  # a refused redemption of a real code is not stored either
        await ledger.redeem(GUILD, CAROL, issued.codes[0], key=key())
    with pytest.raises(NotFound):  # nor is a code typed into the wrong server
        await ledger.redeem(OTHER_GUILD, CAROL, issued.codes[3], key=key())
    secrets = set()
    for code in issued.codes:
        canonical = code.replace("-", "")
        secrets |= {code, canonical, code.lower(), canonical.lower(), canonical[:12]}
    seen_tables = tables(store)
    assert {"gift_cards", "lots", "entries", "idempotency", "audit_log"} <= set(seen_tables)
    for table in seen_tables:
        for row in db_rows(store, f"SELECT * FROM {table}"):
            text = " ".join(str(v) for v in row)
            assert not any(s in text for s in secrets), (table, row)
    if not isinstance(store, SqliteStore):
        return  # PostgreSQL's files are the server's; its rows, above, are what it stores
    raw = b""
    for path in store.path.parent.iterdir():  # the database file and its WAL
        if path.name.startswith(store.path.name):
            raw += path.read_bytes()
    assert raw
    for s in secrets:
        assert s.encode() not in raw
        assert s.encode("utf-16-le") not in raw


async def test_redeem_a_gift_card_once(ledger, store, key, events):
    issued = await cards(ledger, key, amount=40)
    code = issued.codes[0]
    events.clear()
    got = await ledger.redeem(GUILD, ALICE, " " + code.lower().replace("-", " ") + " ", key=key())
    assert got.kind == "gift_card"
    assert got.code_label == f"gift card …{issued.last4s[0]}"
    lot = got.lot
    assert (lot.kind, lot.original, lot.expires_at, lot.source, lot.categories) == ("gift", 40, None, "gift_card", None)
    assert [name for name, _ in events] == ["code_redeemed", "credit_granted"]
    assert (await ledger.balance(GUILD, ALICE)).gift == 40
    [card] = await ledger.gift_cards(GUILD)
    assert (card.status, card.redeemed_by, card.redeemed_at) == ("redeemed", ALICE, NOW)
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, code, key=key()), Conflict, "already redeemed"
    )
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, BOB, code, key=key()), Conflict, "already been redeemed"
    )
    await healthy(ledger)


async def test_gift_code_reads_o_as_zero_and_i_l_as_one(ledger, key):
    for _ in range(20):  # find a code with a 0 or a 1 in it
        issued = await cards(ledger, key)
        code = issued.codes[0]
        if "0" in code or "1" in code:
            break
    else:
        pytest.skip("no 0 or 1 in 20 random codes")
    typed = code.replace("0", "o").replace("1", "l")
    assert (await ledger.redeem(GUILD, ALICE, typed, key=key())).kind == "gift_card"


async def test_void_an_unredeemed_card_by_its_last4(ledger, store, key):
    issued = await cards(ledger, key, count=2)
    voided = await ledger.void_gift_card(GUILD, issued.last4s[0].lower(), actor_id=MOD, key=key())
    assert (voided.status, voided.id) == ("voided", issued.card_ids[0])
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, issued.codes[0], key=key()), Conflict, "cancelled"
    )
    await ledger.redeem(GUILD, ALICE, issued.codes[1], key=key())
    for last4, error in (
        (issued.last4s[0], NotFound),
        (issued.last4s[1], NotFound),
        ("AB", InvalidInput),
        ("UUUU", InvalidInput),
    ):
        await assert_refused_writes_nothing(
            ledger, store, lambda t=last4: ledger.void_gift_card(GUILD, t, actor_id=MOD, key=key()), error
        )
    assert (await ledger.balance(GUILD, ALICE)).gift == 25
    assert [c.status for c in await ledger.gift_cards(GUILD, "voided")] == ["voided"]
    await healthy(ledger)


async def test_claim_by_date(ledger, store, key, clock):
    issued = await cards(ledger, key, count=2, claim_by="2d")
    assert issued.claim_by == NOW + 2 * DAY
    clock.advance(days=2)
    await ledger.redeem(GUILD, ALICE, issued.codes[0], key=key())
    clock.advance(seconds=1)
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.redeem(GUILD, BOB, issued.codes[1], key=key()), Conflict
    )
    assert info.value.code == "card_claim_lapsed"
    assert info.value.params == {"by": NOW + 2 * DAY}


async def test_issue_gift_cards_refuses_bad_input(ledger, store, key):
    await assert_each_refused_writes_nothing(ledger, store, BAD_AMOUNTS_DECIMALS_0, lambda a: cards(ledger, key, a))
    await assert_each_refused_writes_nothing(ledger, store, [0, -1, 501], lambda n: cards(ledger, key, 10, n))
    await assert_each_refused_writes_nothing(
        ledger, store, ["2026-11-01", "-2d", "never"], lambda when: cards(ledger, key, 10, claim_by=when)
    )
    await use_decimals(ledger, 2)
    await assert_each_refused_writes_nothing(ledger, store, BAD_AMOUNTS_DECIMALS_2, lambda a: cards(ledger, key, a))
    assert (await cards(ledger, key, "12.50")).amount == 1250


async def test_another_guild_cannot_redeem_a_card(ledger, key):
    issued = await cards(ledger, key, amount=30)
    with pytest.raises(NotFound):
        await ledger.redeem(OTHER_GUILD, ALICE, issued.codes[0], key=key())
    assert (await ledger.balance(OTHER_GUILD, ALICE)).total == 0
    assert (await ledger.gift_cards(GUILD))[0].status == "unredeemed"
    assert (await ledger.redeem(GUILD, ALICE, issued.codes[0], key=key())).lot.original == 30
    await healthy(ledger)


# --- wrong codes are rate limited --------------------------------------------------------------------


async def test_five_wrong_codes_in_15_minutes_make_a_member_wait(ledger, store, key, clock):
    await promo(ledger, key, "REAL")
    first_failure = clock()
    for n in range(4):
        with pytest.raises(NotFound, match=f"{4 - n} tr"):
            await ledger.redeem(GUILD, ALICE, f"WRONG{n}", key=key())
        clock.advance(minutes=3)
    with pytest.raises(RateLimited) as info:  # the fifth wrong code, 12 minutes after the first
        await ledger.redeem(GUILD, ALICE, "WRONG4", key=key())
    until = first_failure + timedelta(minutes=15)
    assert info.value.until == until
    assert info.value.params == {"until": unix(until)}  # shown as a Discord timestamp by the bot
    clock.advance(minutes=2)
    await assert_refused_writes_nothing(  # even the right code waits
        ledger, store, lambda: ledger.redeem(GUILD, ALICE, "REAL", key=key()), RateLimited
    )
    await ledger.redeem(GUILD, BOB, "REAL", key=key())  # others are not affected
    clock.advance(seconds=59)
    with pytest.raises(RateLimited):
        await ledger.redeem(GUILD, ALICE, "REAL", key=key())
    clock.current = until
    got = await ledger.redeem(GUILD, ALICE, "REAL", key=key())
    assert got.lot.original == 25
    await healthy(ledger)


async def test_old_failures_age_out(ledger, key, clock):
    for n in range(4):
        with pytest.raises(NotFound):
            await ledger.redeem(GUILD, ALICE, f"WRONG{n}", key=key())
    clock.advance(minutes=15)
    for n in range(4):
        with pytest.raises(NotFound):
            await ledger.redeem(GUILD, ALICE, f"WRONG{n}", key=key())
    with pytest.raises(RateLimited):
        await ledger.redeem(GUILD, ALICE, "WRONG9", key=key())


async def test_one_wrong_code_delivered_five_times_counts_once(ledger, store, key):
    """SPEC §4: Discord can deliver one interaction several times; the member made one attempt."""
    attempt = key()
    for _ in range(5):  # the same interaction (one idempotency key), delivered five times
        with pytest.raises(NotFound, match="4 tries left"):
            await ledger.redeem(GUILD, ALICE, "WRONG", key=attempt)
    for n in range(3):  # three more attempts of the member's own: still no pause
        with pytest.raises(NotFound, match=f"{3 - n} tr"):
            await ledger.redeem(GUILD, ALICE, f"WRONG{n}", key=key())
    fifth = key()
    with pytest.raises(RateLimited):  # the fifth attempt
        await ledger.redeem(GUILD, ALICE, "WRONG9", key=fifth)
    with pytest.raises(RateLimited):  # ... and its own replay answers the same
        await ledger.redeem(GUILD, ALICE, "WRONG9", key=fifth)
    assert count(store, "failed_redemptions") == 5


async def test_wrong_codes_without_a_key_each_count(ledger):
    """Writes without an idempotency key (the CLI, tests) have nothing to tell replays apart by."""
    for n in range(4):
        with pytest.raises(NotFound, match=f"{4 - n} tr"):
            await ledger.redeem(GUILD, ALICE, "WRONG", key=None)
    with pytest.raises(RateLimited):
        await ledger.redeem(GUILD, ALICE, "WRONG", key=None)


async def test_correct_codes_are_not_counted(ledger, key):
    issued = await cards(ledger, key, count=3)
    for code in ("A-ONE", "A-TWO", "A-THREE"):
        await promo(ledger, key, code)
    for n in range(4):
        with pytest.raises(NotFound):
            await ledger.redeem(GUILD, ALICE, f"WRONG{n}", key=key())
    for code in ("a-one", "a-two", "a-three", *issued.codes):
        await ledger.redeem(GUILD, ALICE, code, key=key())
    with pytest.raises(Conflict):  # a real code refused for another reason is not a wrong code either
        await ledger.redeem(GUILD, ALICE, "A-ONE", key=key())
    with pytest.raises(RateLimited):  # the fifth wrong one
        await ledger.redeem(GUILD, ALICE, "WRONG4", key=key())
    assert (await ledger.balance(GUILD, ALICE)).total == 3 * 25 + 3 * 25
    await healthy(ledger)


async def test_cards_sharing_last4_are_voided_by_number(ledger, store, key):
    """Two unredeemed cards can end alike (1 in 8 at 500 cards): the moderator picks one by number."""
    first = await ledger.issue_gift_cards(GUILD, 10, 2, actor_id=MOD, key=key())
    db_execute(store, "UPDATE gift_cards SET last4 = 'AAAA'")  # force the collision
    with pytest.raises(Conflict, match=f"#{first.card_ids[0]}"):
        await ledger.void_gift_card(GUILD, "AAAA", actor_id=MOD, key=key())
    voided = await ledger.void_gift_card(GUILD, "AAAA", actor_id=MOD, key=key(), card_id=first.card_ids[1])
    assert voided.id == first.card_ids[1]
    assert voided.status == "voided"
    statuses = {card.id: card.status for card in await ledger.gift_cards(GUILD)}
    assert statuses == {first.card_ids[0]: "unredeemed", first.card_ids[1]: "voided"}
