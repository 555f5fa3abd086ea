"""Guild settings (currency, timezone, reminder lead times, promo exclusions), the report, the audit trail."""

from __future__ import annotations

import pytest

from bot.domain.errors import InsufficientBalance, InvalidInput
from bot.domain.models import GuildSettings
from tests.app._support import (
    ALICE,
    BOB,
    CAROL,
    DAY,
    GUILD,
    MOD,
    NOW,
    OTHER_GUILD,
    assert_each_refused_writes_nothing,
    assert_refused_writes_nothing,
    books_balance_after_each_test,  # noqa: F401 (autouse: verify after each test)
    healthy,
)

WEEK = 7 * DAY


async def settings_change(ledger, key, **changes) -> GuildSettings:
    return await ledger.update_settings(GUILD, actor_id=MOD, key=key(), **changes)


# --- settings ----------------------------------------------------------------------------------------


async def test_defaults(ledger):
    s = await ledger.settings(GUILD)
    assert (s.currency_name, s.currency_symbol, s.decimals, s.timezone) == ("credits", "", 0, "UTC")
    assert s.reminder_leads == (7 * DAY, DAY)
    assert (s.promo_excluded_categories, s.mod_role_id, s.audit_channel_id) == ((), None, None)


async def test_currency_can_be_set_and_is_used_in_messages(ledger, store, key):
    s = await settings_change(ledger, key, currency_name="Gems", currency_symbol="$", decimals=2)
    assert (s.currency_name, s.currency_symbol, s.decimals) == ("Gems", "$", 2)
    assert await ledger.settings(GUILD) == s
    await ledger.grant(GUILD, ALICE, "5", actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", "12.50", "merch", actor_id=MOD, key=key())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), InsufficientBalance
    )
    assert str(info.value) == "That costs $12.50 and you have $5.00."
    s = await settings_change(ledger, key, currency_symbol="")  # no symbol: the name is shown
    assert s.currency_symbol == ""
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), InsufficientBalance
    )
    assert str(info.value) == "That costs 12.50 Gems and you have 5.00 Gems."


async def test_bad_currency_settings_are_refused(ledger, store, key):
    for field, values in {
        "currency_name": ["", "   ", "x" * 21, "a@b", "co`ins", "two\nlines", "<@123>"],
        "currency_symbol": ["$$$$$$", "1", "$.", "-", "<@", "a b"],
        "decimals": [1, 3, -1, 6, True, "2"],
    }.items():
        await assert_each_refused_writes_nothing(
            ledger, store, values, lambda v, f=field: settings_change(ledger, key, **{f: v})
        )


async def test_currency_name_and_symbol_are_stored_trimmed(ledger, store, key):
    s = await settings_change(ledger, key, currency_name="  Gems  ", currency_symbol=" ")
    assert (s.currency_name, s.currency_symbol) == ("Gems", "")  # an empty symbol means "no symbol"
    item = await ledger.add_item(GUILD, "Thing", 12, "merch", actor_id=MOD, key=key())
    info = await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.checkout(GUILD, ALICE, item.id, key=key()), InsufficientBalance
    )
    assert str(info.value) == "That costs 12 Gems and you have 0 Gems."


async def test_nothing_to_change_is_refused(ledger, store, key):
    await assert_refused_writes_nothing(ledger, store, lambda: settings_change(ledger, key), InvalidInput, "Nothing")
    await assert_refused_writes_nothing(
        ledger, store, lambda: settings_change(ledger, key, timezone=None, decimals=None), InvalidInput
    )


@pytest.mark.parametrize(
    "setup",
    ["grant", "upcoming grant", "revoked grant", "item", "retired item", "promo"],
)
async def test_decimals_are_fixed_once_money_exists(ledger, store, key, setup):
    if setup == "grant":
        await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key())
    elif setup == "upcoming grant":
        await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), starts="10d")
    elif setup == "revoked grant":
        lot = await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key())
        await ledger.revoke(GUILD, ALICE, lot_id=lot.first_lot_id, reason="r", actor_id=MOD, key=key())
    elif setup in ("item", "retired item"):
        item = await ledger.add_item(GUILD, "Thing", 10, "merch", actor_id=MOD, key=key())
        if setup == "retired item":
            await ledger.remove_item(GUILD, item.id, actor_id=MOD, key=key())
    else:
        await ledger.create_promo(GUILD, "CODE", 10, actor_id=MOD, key=key())
    await assert_refused_writes_nothing(
        ledger, store, lambda: settings_change(ledger, key, decimals=2), InvalidInput, "Decimals"
    )
    # Restating the current scale, or changing the name, is fine.
    assert (await settings_change(ledger, key, decimals=0, currency_name="coins")).currency_name == "coins"


async def test_decimals_are_fixed_once_a_gift_card_exists(ledger, store, key):
    await settings_change(ledger, key, decimals=2)
    await ledger.issue_gift_cards(GUILD, "25.00", 1, actor_id=MOD, key=key())  # 2500 minor units = 25.00
    await assert_refused_writes_nothing(
        ledger, store, lambda: settings_change(ledger, key, decimals=0), InvalidInput, "Decimals"
    )


async def test_decimals_are_fixed_while_credit_is_still_upcoming(ledger, store, key, clock):
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), starts="100d")  # granted now, usable in 100 days
    clock.advance(days=13 * 7)
    assert (await ledger.balance(GUILD, ALICE)).upcoming == 10
    await assert_refused_writes_nothing(
        ledger, store, lambda: settings_change(ledger, key, decimals=2), InvalidInput, "Decimals"
    )


async def test_decimals_can_change_in_an_empty_guild_and_other_guilds_do_not_count(ledger, key):
    await ledger.grant(OTHER_GUILD, ALICE, 10, actor_id=MOD, key=key())
    assert (await settings_change(ledger, key, decimals=2)).decimals == 2
    assert (await settings_change(ledger, key, decimals=0)).decimals == 0
    assert (await ledger.settings(OTHER_GUILD)).decimals == 0


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        (" UTC ", "UTC"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
        ("Etc/GMT+2", "Etc/GMT+2"),
    ],
)
async def test_timezone_is_an_iana_name(ledger, key, typed, stored):
    assert (await settings_change(ledger, key, timezone=typed)).timezone == stored


async def test_bad_timezones_are_refused(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        [
            "Mars/Olympus",
            "",
            "  ",
            "UTC+2",
            "CEST",
            "posix/Europe/Berlin",
            "../../etc/passwd",
            "Europe/",
            "localtime",
            "x" * 80,
        ],
        lambda tz: settings_change(ledger, key, timezone=tz),
    )


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("7d,1d", (7 * DAY, DAY)),
        ("1d, 7d", (7 * DAY, DAY)),
        ("90m", (5400,)),
        ("1m", (60,)),
        ("2w,3d,12h,1d", (14 * DAY, 3 * DAY, DAY, DAY // 2)),
        ("1d,1d,24h", (DAY,)),
    ],
)
async def test_reminder_lead_times(ledger, key, typed, stored):
    s = await settings_change(ledger, key, reminder_leads=typed)
    assert s.reminder_leads == stored
    assert (await ledger.settings(GUILD)).reminder_leads == stored


async def test_bad_reminder_lead_times_are_refused(ledger, store, key):
    await assert_each_refused_writes_nothing(
        ledger,
        store,
        [
            "59s",
            "30s",
            "7d,30s",
            "0m",
            "",
            " , ",
            "abc",
            "7",
            "-1d",
            "2y",
            "3 months",
            ",".join(f"{n}h" for n in range(1, 12)),
        ],
        lambda leads: settings_change(ledger, key, reminder_leads=leads),
    )
    assert (await ledger.settings(GUILD)).reminder_leads == (7 * DAY, DAY)


async def test_exclude_and_include_categories(ledger, store, key):
    s = await ledger.set_category_excluded(GUILD, " Subscriptions ", True, actor_id=MOD, key=key())
    assert s.promo_excluded_categories == ("Subscriptions",)
    s = await ledger.set_category_excluded(GUILD, "digital", True, actor_id=MOD, key=key())
    s = await ledger.set_category_excluded(GUILD, "subscriptions", True, actor_id=MOD, key=key())
    assert sorted(s.promo_excluded_categories, key=str.casefold) == ["digital", "subscriptions"]
    s = await ledger.set_category_excluded(GUILD, "SUBSCRIPTIONS", False, actor_id=MOD, key=key())
    assert s.promo_excluded_categories == ("digital",)
    assert (await ledger.settings(GUILD)).promo_excluded_categories == ("digital",)
    assert (await ledger.settings(OTHER_GUILD)).promo_excluded_categories == ()
    await assert_refused_writes_nothing(
        ledger, store, lambda: ledger.set_category_excluded(GUILD, "  ", True, actor_id=MOD, key=key())
    )


async def test_other_settings_are_stored(ledger, key):
    s = await settings_change(ledger, key, mod_role_id=42, audit_channel_id=43)
    assert (s.mod_role_id, s.audit_channel_id) == (42, 43)
    s = await settings_change(ledger, key, currency_name="Stars")
    assert (s.mod_role_id, s.audit_channel_id, s.currency_name) == (42, 43, "Stars")  # untouched values stay


async def test_moderator_actions_are_audited_with_their_actor(ledger, key):
    lot = await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key=key(), reason="hi")
    await ledger.revoke(GUILD, ALICE, amount=5, reason="r", actor_id=MOD + 1, key=key())
    await ledger.extend(GUILD, lot.first_lot_id, "30d", actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", 10, "merch", actor_id=MOD, key=key())
    order = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.refund(GUILD, order.id, actor_id=MOD, key=key())
    await ledger.create_promo(GUILD, "CODE", 10, actor_id=MOD, key=key())
    issued = await ledger.issue_gift_cards(GUILD, 10, 1, actor_id=MOD, key=key())
    await ledger.void_gift_card(GUILD, issued.last4s[0], actor_id=MOD, key=key())
    await settings_change(ledger, key, timezone="Europe/Paris")
    await ledger.set_category_excluded(GUILD, "x", True, actor_id=MOD, key=key())
    log = (await ledger.audit_log(GUILD, per_page=100)).items
    actions = [(row["action"], row["actor_id"]) for row in reversed(log)]
    assert actions == [
        ("grant", MOD),
        ("revoke", MOD + 1),
        ("extend", MOD),
        ("shop-add", MOD),
        ("refund", MOD),
        ("promo-create", MOD),
        ("giftcard-issue", MOD),
        ("giftcard-void", MOD),
        ("settings", MOD),
        ("exclude-category", MOD),
    ]
    assert (await ledger.audit_log(OTHER_GUILD)).total == 0


# --- the report ------------------------------------------------------------------------------------


async def test_report_figures(ledger, key, clock):
    soon = await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="5d")
    await ledger.grant(GUILD, ALICE, 200, kind="gift", actor_id=MOD, key=key())
    await ledger.grant(GUILD, BOB, 50, actor_id=MOD, key=key(), expires="20d")
    await ledger.grant(GUILD, ALICE, 30, actor_id=MOD, key=key(), starts="2d", expires="40d")  # upcoming
    await ledger.grant(OTHER_GUILD, ALICE, 999, actor_id=MOD, key=key(), expires="3d")  # another server's
    clock.advance(hours=1)
    item = await ledger.add_item(GUILD, "Thing", 30, "merch", actor_id=MOD, key=key())
    await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.create_promo(GUILD, "WELCOME", 10, actor_id=MOD, key=key())
    await ledger.create_promo(GUILD, "UNUSED", 10, actor_id=MOD, key=key())
    await ledger.redeem(GUILD, BOB, "welcome", key=key())
    await ledger.redeem(GUILD, CAROL, "welcome", key=key())
    card = await ledger.issue_gift_cards(GUILD, 15, 2, actor_id=MOD, key=key())
    await ledger.redeem(GUILD, ALICE, card.codes[0], key=key())
    clock.advance(hours=1)

    report = await ledger.report(GUILD)
    assert (report.outstanding_promo, report.outstanding_gift) == (70 + 50 + 10 + 10, 200 + 15)
    assert (report.expiring_7d, report.expiring_30d) == (70, 70 + 50)
    assert report.redemptions_per_code == (("WELCOME", 2), ("UNUSED", 0))
    assert report.gift_cards_redeemed == 1
    assert len(report.weeks) == 12
    now = NOW + 2 * 3600
    assert [w.week_start for w in report.weeks] == [now - 12 * WEEK + i * WEEK for i in range(12)]
    last = report.weeks[-1]
    assert (last.granted, last.spent, last.expired) == (100 + 200 + 50 + 30 + 10 + 10 + 15, 30, 0)
    assert all((w.granted, w.spent, w.expired) == (0, 0, 0) for w in report.weeks[:-1])

    clock.advance(days=5)  # `soon` is past its expiry: no longer outstanding, even before the sweep
    report = await ledger.report(GUILD)
    assert report.outstanding_promo == 50 + 10 + 10 + 30  # the upcoming lot has started
    assert (report.expiring_7d, report.expiring_30d) == (0, 50)
    await ledger.sweep_expired()
    clock.advance(days=3)
    report = await ledger.report(GUILD)
    expired = [w.expired for w in report.weeks]
    assert sum(expired) == 70
    assert expired[-1] == 70
    granted = [w.granted for w in report.weeks]
    assert granted[-2:] == [415, 0]
    assert (await ledger.get_lot(GUILD, soon.first_lot_id)).status == "expired"
    await healthy(ledger)


async def test_report_buckets_by_week_and_nets_refunds(ledger, key, clock):
    await ledger.grant(GUILD, ALICE, 100, kind="gift", actor_id=MOD, key=key())
    item = await ledger.add_item(GUILD, "Thing", 10, "merch", actor_id=MOD, key=key())
    clock.advance(days=7)
    kept = await ledger.checkout(GUILD, ALICE, item.id, 2, key=key())
    refunded = await ledger.checkout(GUILD, ALICE, item.id, key=key())
    await ledger.refund(GUILD, refunded.id, actor_id=MOD, key=key())
    clock.advance(days=7)
    report = await ledger.report(GUILD)
    figures = [(w.granted, w.spent, w.expired) for w in report.weeks]
    assert figures[-3:] == [(0, 0, 0), (100, 0, 0), (0, kept.total, 0)]
    assert sum(w.granted for w in report.weeks) == 100
    assert sum(w.spent for w in report.weeks) == 20
    clock.advance(days=12 * 7)
    assert all(w.granted == w.spent == 0 for w in (await ledger.report(GUILD)).weeks)  # older than 12 weeks
    await healthy(ledger)


async def test_report_spent_is_not_reduced_by_refunded_forfeits(ledger, key):
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), one_time=True)
    await ledger.grant(GUILD, ALICE, 100, kind="gift", actor_id=MOD, key=key())
    small = await ledger.add_item(GUILD, "Small", 30, "merch", actor_id=MOD, key=key())
    big = await ledger.add_item(GUILD, "Big", 50, "merch", actor_id=MOD, key=key())
    first = await ledger.checkout(GUILD, ALICE, small.id, key=key())  # 30 spent, 70 forfeited
    assert first.forfeited == 70
    await ledger.checkout(GUILD, ALICE, big.id, key=key())  # 50 spent from gift
    await ledger.refund(GUILD, first.id, actor_id=MOD, key=key())
    report = await ledger.report(GUILD)
    assert report.weeks[-1].spent == 50  # the kept purchase (refunding forfeits does not reduce spending)


async def test_report_counts_what_happened_this_very_second(ledger, key):
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key())
    report = await ledger.report(GUILD)
    assert report.outstanding_promo == 100
    assert report.weeks[-1].granted == 100


async def test_report_of_an_empty_guild(ledger, key):
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key())
    await ledger.create_promo(GUILD, "MINE", 10, actor_id=MOD, key=key())
    report = await ledger.report(OTHER_GUILD)
    assert (report.outstanding_promo, report.outstanding_gift, report.expiring_7d, report.expiring_30d) == (0, 0, 0, 0)
    assert report.redemptions_per_code == ()
    assert report.gift_cards_redeemed == 0
    assert all((w.granted, w.spent, w.expired) == (0, 0, 0) for w in report.weeks)
