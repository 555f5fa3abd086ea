"""Member-facing commands and DMs at the worst case the bot accepts, through the strict fake Discord:
/balance, /history, /redeem, /terms, /reminders and the reminder DM, with the longest currency,
the largest amounts, ten 50-character categories, 200-character reasons and hundreds of rows.

The strict fake refuses (and the `world` fixture then fails the test on) any message over one of
Discord's limits; these tests also check what the member sees: every total right, and a visible
"… and N more" wherever something is left out. Then the truthful-outcome tests of /redeem: a
redemption whose answer Discord refuses or times out tells the member what was done, with an
error id, never "nothing was changed"."""

from __future__ import annotations

import re

import pytest

from bot.domain import limits
from bot.domain.money import MAX_AMOUNT, Currency, format_amount
from bot.domain.timeparse import to_unix
from fakediscord import InvalidInvocation, Member
from tests.e2e import World, button, text_of

CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
NAME = "Galactic gold crowns"  # the longest currency name: 20 characters
SYMBOL = "GGC¤¤"  # the longest symbol: 5 characters
# Ten distinct categories of the longest length.
CATEGORIES = [(f"category-{i:02d}-" + "x" * limits.CATEGORY)[: limits.CATEGORY] for i in range(10)]
LOT_FIELD = "Your credit, in the order it is spent"
DAY = 86400

assert len(NAME) == 20
assert len(SYMBOL) == 5
assert len(CATEGORIES) == limits.CATEGORIES_PER_LIST
assert {len(c) for c in CATEGORIES} == {limits.CATEGORY}


def reason(n: int) -> str:
    """A distinct reason of the longest length the ledger accepts."""
    return (f"reason {n:04d}: " + "a long explanation " * 20)[: limits.REASON]


async def longest_currency(w: World, *, symbol: bool = False) -> Currency:
    """2 decimals and the longest name (and symbol): the longest formatted money. The audit channel
    is set too, so any audit post a command makes is exercised."""
    settings = await w.ledger.update_settings(
        w.guild.id,
        actor_id=w.mod.id,
        key=None,
        currency_name=NAME,
        currency_symbol=SYMBOL if symbol else None,
        decimals=2,
        audit_channel_id=w.audit_channel_id,
    )
    return settings.currency


def money(currency: Currency, minor: int) -> str:
    return format_amount(minor, currency)


def now(w: World) -> int:
    return to_unix(w.clock())


def callback_statuses(w: World, rec) -> list[int]:
    """What Discord answered to each initial response the bot tried (injected failures too)."""
    return [r.status for r in w.fake.requests_to("POST", rf"^/interactions/{rec.id}/[^/]+/callback$")]


def fields_of(embed: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed.get("fields") or []}


# --- /balance -----------------------------------------------------------------------------------


async def worst_lots(w: World, member: Member, count: int) -> list[int]:
    """``count`` lots with every part a lot line can show at its longest: partly revoked (so
    "X of Y"), not usable yet, expiring, ten 50-character categories, one-time. Returns their
    remaining amounts in the order /balance spends (and lists) them."""
    remaining = []
    for n in range(count):
        grant = await w.ledger.grant(
            w.guild.id,
            member.id,
            MAX_AMOUNT,
            actor_id=w.mod.id,
            key=None,
            starts="1d",
            expires=f"{30 + n}d",
            categories=CATEGORIES,
            one_time=True,
            reason=reason(n),
        )
        await w.ledger.revoke(
            w.guild.id,
            member.id,
            reason=reason(n),
            actor_id=w.mod.id,
            key=None,
            lot_id=grant.first_lot_id,
            amount=n + 1,
        )
        remaining.append(MAX_AMOUNT - n - 1)  # soonest expiry first: the order of creation
    return remaining


@pytest.mark.parametrize("symbol", [False, True], ids=["name", "symbol"])
@pytest.mark.parametrize("count", [12, 15])
async def test_balance_of_a_dozen_longest_lots_fits_and_says_what_it_leaves_out(world: World, symbol: bool, count: int):
    """The issue's case: 11-15 lots with expiry, categories and one-time flags passed 1,024
    characters in the lots field."""
    w = world
    currency = await longest_currency(w, symbol=symbol)
    remaining = await worst_lots(w, w.alice, count)
    # Usable a day after the promo lots: listed after them, among those left out.
    await w.ledger.grant(w.guild.id, w.alice.id, MAX_AMOUNT, actor_id=w.mod.id, key=None, kind="gift", starts="2d")

    rec = await w.run(w.alice, "balance")
    assert rec.ephemeral
    assert rec.rejection_codes == []
    (embed,) = rec.embeds
    fields = fields_of(embed)
    assert fields["Total"] == f"**{money(currency, 0)}**"  # nothing is usable before tomorrow
    assert fields["Upcoming"] == f"{money(currency, sum(remaining) + MAX_AMOUNT)} (not usable yet)"
    lines = fields[LOT_FIELD].splitlines()
    assert len(fields[LOT_FIELD]) <= 1024
    *shown, more = lines
    assert shown, "at least the first lot is listed"
    for index, line in enumerate(shown):
        assert len(line) <= 300, line
        # Every part of the line is there; the categories end "… and 8 more".
        assert f"**{money(currency, remaining[index])}** of {money(currency, MAX_AMOUNT)}" in line
        assert "usable <t:" in line
        assert "expires <t:" in line
        assert "one-time" in line
        assert f"only: {CATEGORIES[0]}, {CATEGORIES[1]}, … and 8 more" in line
    # The rest: how many, and what they hold (the promo lots left out and the gift lot).
    left_out = count + 1 - len(shown)
    held = sum(remaining[len(shown) :]) + MAX_AMOUNT
    assert more == f"… and {left_out} more, {money(currency, held)} in all"


async def test_balance_of_hundreds_of_lots_counts_them_all(world: World):
    w = world
    currency = await longest_currency(w)
    remaining = await worst_lots(w, w.alice, 40)
    for _ in range(260):  # listed after the long ones: usable later
        await w.ledger.grant(w.guild.id, w.alice.id, MAX_AMOUNT, actor_id=w.mod.id, key=None, kind="gift", starts="2d")
    rec = await w.run(w.alice, "balance")
    lines = fields_of(rec.embeds[0])[LOT_FIELD].splitlines()
    *shown, more = lines
    left_out = 300 - len(shown)
    held = sum(remaining[len(shown) :]) + 260 * MAX_AMOUNT
    assert more == f"… and {left_out} more, {money(currency, held)} in all"
    assert len(fields_of(rec.embeds[0])[LOT_FIELD]) <= 1024


async def test_balance_keeps_its_fifteen_line_cap_and_names_the_rest(world: World):
    """Short lines fit by the dozen: still at most 15 lines, then the rest on a line of its own."""
    w = world
    for n in range(17):
        await w.ledger.grant(w.guild.id, w.alice.id, n + 1, actor_id=w.mod.id, key=None, expires=f"{n + 1}d")
    rec = await w.run(w.alice, "balance")
    lines = fields_of(rec.embeds[0])[LOT_FIELD].splitlines()
    assert len(lines) == 16
    assert lines[0].startswith("`#")
    assert "**1 credits**" in lines[0]
    assert "**15 credits**" in lines[14]
    assert lines[15] == "… and 2 more, 33 credits in all"  # lots of 16 and 17 credits


async def test_balance_lists_up_to_fifteen_short_lots_without_a_more_line(world: World):
    w = world
    for n in range(15):
        await w.ledger.grant(w.guild.id, w.alice.id, n + 1, actor_id=w.mod.id, key=None)
    rec = await w.run(w.alice, "balance")
    lines = fields_of(rec.embeds[0])[LOT_FIELD].splitlines()
    assert len(lines) == 15
    assert not any("more" in line for line in lines)


# --- /history -----------------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", [False, True], ids=["name", "symbol"])
async def test_history_pages_of_the_longest_entries_fit_and_turn(world: World, symbol: bool):
    """Refunds of the largest orders, with order ids and 200-character reasons: each page's ten
    lines fit in one description, every reason shown in full, and the buttons turn the pages."""
    w = world
    currency = await longest_currency(w, symbol=symbol)
    item = await w.ledger.add_item(
        w.guild.id,
        "I" * limits.ITEM_NAME,
        MAX_AMOUNT,
        "c" * limits.CATEGORY,
        actor_id=w.mod.id,
        key=None,
        description="d" * limits.ITEM_DESCRIPTION,
    )
    orders = []
    for n in range(12):
        await w.ledger.grant(
            w.guild.id, w.alice.id, MAX_AMOUNT, actor_id=w.mod.id, key=None, kind="gift", reason=reason(n)
        )
        orders.append(await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key=None))
    for n, order in enumerate(orders):
        w.clock.advance(minutes=1)
        await w.ledger.refund(w.guild.id, order.id, actor_id=w.mod.id, key=None, reason=reason(100 + n))

    rec = await w.run(w.alice, "history")
    assert rec.ephemeral
    assert rec.rejection_codes == []
    (embed,) = rec.embeds
    lines = embed["description"].splitlines()
    assert len(lines) == 10  # a whole page: nothing cut
    assert len(embed["description"]) <= 4096
    for line, order, n in zip(lines, orders[::-1][:10], range(111, 101, -1), strict=True):  # newest first
        assert f"Refunded **+{money(currency, MAX_AMOUNT)}**" in line
        assert f"order `#{order.id}`" in line
        assert line.endswith(" · " + reason(n)), line  # the reason in full
    assert embed["footer"]["text"] == "Page 1 of 4 · 36 entries"

    for page in (2, 3, 4):
        turned = await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
        text = text_of(turned)
        assert f"Page {page} of 4 · 36 entries" in text
        assert len(turned.message.embeds[0]["description"]) <= 4096
    # Page 2: the last two refunds, then spends of "1 × <100-character name>" with their orders.
    assert "Spent **−" in text
    assert "1 × " + "I" * limits.ITEM_NAME in text


# --- /redeem ------------------------------------------------------------------------------------


async def test_redeem_option_has_discords_max_length_from_limits(world: World):
    w = world
    (synced,) = [c for c in w.fake.synced_commands() if c["name"] == "redeem"]
    (code,) = synced["options"]
    assert (code["min_length"], code["max_length"]) == (1, limits.REDEEM_INPUT)
    with pytest.raises(InvalidInvocation):  # Discord's client stops the typing
        await w.run(w.alice, "redeem", code="X" * (limits.REDEEM_INPUT + 1))


@pytest.mark.parametrize("symbol", [False, True], ids=["name", "symbol"])
async def test_redeem_promo_with_ten_longest_categories_fits_and_lists_them_all(world: World, symbol: bool):
    w = world
    currency = await longest_currency(w, symbol=symbol)
    code = "LONGEST-PROMO-CODE-" + "Z" * 13  # 32 characters, the most a promo code has
    await w.ledger.create_promo(
        w.guild.id,
        code,
        MAX_AMOUNT,
        actor_id=w.mod.id,
        key=None,
        credit_days=36500,
        categories=CATEGORIES,
        one_time=True,
    )
    typed = f"  {code.lower()}  ".ljust(limits.REDEEM_INPUT)  # the longest input Discord lets through
    rec = await w.run(w.alice, "redeem", code=typed)
    assert rec.ephemeral
    assert rec.rejection_codes == []
    (embed,) = rec.embeds
    assert embed["description"] == (
        f"**+{money(currency, MAX_AMOUNT)}** added to your promotional balance from {code}."
    )
    fields = fields_of(embed)
    assert fields["Usable on"] == ", ".join(CATEGORIES)  # all ten, in full
    assert "forfeited" in fields["One-time"]
    assert fields["Your balance"] == money(currency, MAX_AMOUNT)
    expires = now(w) + 36500 * DAY
    assert fields["Expires"] == f"<t:{expires}:R> (<t:{expires}:f>)"


async def test_redeem_gift_card_of_the_largest_value_with_the_longest_input(world: World):
    w = world
    currency = await longest_currency(w)
    issued = await w.ledger.issue_gift_cards(w.guild.id, MAX_AMOUNT, actor_id=w.mod.id, key=None, claim_by="1y")
    (card,) = issued.codes
    await w.ledger.grant(w.guild.id, w.alice.id, MAX_AMOUNT, actor_id=w.mod.id, key=None)  # a bigger total
    typed = " - ".join(card.split("-")).ljust(limits.REDEEM_INPUT)
    assert len(typed) == limits.REDEEM_INPUT
    rec = await w.run(w.alice, "redeem", code=typed)
    assert rec.rejection_codes == []
    (embed,) = rec.embeds
    assert f"**+{money(currency, MAX_AMOUNT)}** added to your gift balance" in embed["description"]
    assert card[-4:] in embed["description"]
    assert card not in text_of(rec)
    assert fields_of(embed)["Your balance"] == money(currency, 2 * MAX_AMOUNT)


# --- /terms and /reminders ------------------------------------------------------------------------


ODD_LEADS = [525_599 - 7 * n for n in range(10)]  # ten lead times in minutes, none a whole hour


@pytest.mark.parametrize("symbol", [False, True], ids=["name", "symbol"])
async def test_terms_with_every_exclusion_the_longest_currency_and_ten_lead_times(world: World, symbol: bool):
    w = world
    await longest_currency(w, symbol=symbol)
    await w.ledger.update_settings(
        w.guild.id, actor_id=w.mod.id, key=None, reminder_leads=",".join(f"{m}m" for m in ODD_LEADS)
    )
    excluded = [(f"excluded-{i:02d}-" + "y" * limits.CATEGORY)[: limits.CATEGORY] for i in range(25)]
    for category in excluded:
        await w.ledger.set_category_excluded(w.guild.id, category, True, actor_id=w.mod.id, key=None)
    assert len(excluded) == limits.EXCLUDED_CATEGORIES

    rec = await w.run(w.alice, "terms")
    assert rec.ephemeral
    assert rec.rejection_codes == []
    description = rec.embeds[0]["description"]
    assert len(description) <= 4096  # everything, nothing cut
    assert "…" not in description
    assert f"counted in {NAME}." in description
    assert all(f"`{category}`" in description for category in excluded)
    assert all(f"{m} minutes" in description for m in ODD_LEADS)
    assert description.endswith("whatever that purchase leaves of it is forfeited.")


async def test_reminders_with_ten_lead_times_fits_and_is_saved(world: World):
    w = world
    await w.ledger.update_settings(
        w.guild.id, actor_id=w.mod.id, key=None, reminder_leads=",".join(f"{m}m" for m in ODD_LEADS)
    )
    await w.ledger.set_reminders_enabled(w.guild.id, w.alice.id, False)
    rec = await w.run(w.alice, "reminders", enabled=True)
    assert rec.ephemeral
    assert rec.rejection_codes == []
    assert len(rec.content) <= 2000
    assert rec.content.startswith("Reminders are on: I'll DM you 525599 minutes, 525592 minutes, ")
    assert " and 525536 minutes before credit of yours in this server expires." in rec.content
    assert await w.ledger.reminders_enabled(w.guild.id, w.alice.id)


async def test_reminders_answer_refused_still_tells_what_was_saved(world: World):
    w = world
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.alice, "reminders", enabled=False)
    await rec.wait_until(lambda r: r.message is not None)
    assert rec.ephemeral
    assert callback_statuses(w, rec) == [400, 200]
    told_what_was_done(text_of(rec), "Reminders are off for this server.")
    assert not await w.ledger.reminders_enabled(w.guild.id, w.alice.id)


# --- the reminder DM -------------------------------------------------------------------------------


async def test_reminder_dm_for_hundreds_of_longest_lots_in_one_window(world: World):
    w = world
    currency = await longest_currency(w)
    guild = w.fake.add_guild(name="G" * 100)  # Discord's longest guild name
    w.fake.add_member(guild.id, user_id=w.alice.id, name="alice")
    await w.fake.wait_for(lambda: w.bot.get_guild(guild.id) is not None, what="the second guild")
    await w.ledger.update_settings(guild.id, actor_id=w.mod.id, key=None, currency_name=NAME, decimals=2)
    count = 300
    for n in range(count):  # all expire within the 7-day window, soonest first
        await w.ledger.grant(
            guild.id,
            w.alice.id,
            MAX_AMOUNT,
            actor_id=w.mod.id,
            key=None,
            expires=f"{3 * 24 * 60 + n}m",
            categories=CATEGORIES,
            reason=reason(n),
        )

    run = await w.bot.reminders.run_once()
    assert (run.sent, run.retried, run.errors) == (1, 0, [])
    (dm,) = w.fake.dms(w.alice.id)
    (embed,) = dm.embeds
    assert embed["title"] == f"Your credit in {'G' * 100} expires soon"
    description = embed["description"]
    assert len(description) <= 4096
    assert len(dm.embed_text) <= 6000
    listed = [line for line in description.splitlines() if "credit expires" in line]
    assert 5 < len(listed) < count
    for line in listed:
        assert len(line) <= 300, line
        assert line.startswith(f"• **{money(currency, MAX_AMOUNT)}** promotional credit expires <t:")
        assert line.endswith(f"(only: {CATEGORIES[0]}, {CATEGORIES[1]}, … and 8 more)")
    rest = count - len(listed)
    assert f"• …and {rest} more, **{money(currency, rest * MAX_AMOUNT)}** in all: see `/balance`" in description
    assert description.endswith(f"in **{'G' * 100}** before it's gone.")
    assert fields_of(embed)["Expiring"] == money(currency, count * MAX_AMOUNT)  # the total covers every lot


# --- what /redeem says about a redemption whose answer failed ----------------------------------------


async def a_promo(w: World) -> tuple[str, str]:
    await w.ledger.create_promo(w.guild.id, "SPRING-10", "10", actor_id=w.mod.id, key=None, categories="games")
    return "spring-10", "**+10 credits** added to your promotional balance from SPRING-10."


async def a_gift_card(w: World) -> tuple[str, str]:
    (card,) = (await w.ledger.issue_gift_cards(w.guild.id, "10", actor_id=w.mod.id, key=None)).codes
    return card, "**+10 credits** added to your gift balance from"


def told_what_was_done(text: str, done: str) -> None:
    assert done in text, text
    assert re.search(r"error id `[0-9a-f]{8}`", text), text
    assert "There is no need to do it again." in text
    assert "nothing was changed" not in text.casefold()


@pytest.mark.parametrize("make", [a_promo, a_gift_card], ids=["promo", "gift card"])
async def test_redemption_whose_answer_is_refused_says_it_was_saved(world: World, make):
    w = world
    code, done = await make(w)
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.alice, "redeem", code=code)
    await rec.wait_until(lambda r: r.message is not None)
    assert rec.ephemeral
    assert callback_statuses(w, rec) == [400, 200]
    told_what_was_done(text_of(rec), done)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 10  # committed, once
    assert w.fake.dms(w.alice.id) == []


@pytest.mark.parametrize("make", [a_promo, a_gift_card], ids=["promo", "gift card"])
async def test_redemption_whose_answer_times_out_is_told_by_dm(world: World, make):
    w = world
    code, done = await make(w)
    w.fake.interaction_timeout = 0
    rec = await w.run(w.alice, "redeem", code=code)
    await w.fake.wait_for(lambda: len(w.fake.dms(w.alice.id)) == 1, what="the DM saying what was done")
    assert rec.rejection_codes == [10062]
    assert not rec.acknowledged
    (dm,) = w.fake.dms(w.alice.id)
    told_what_was_done(dm.content, done)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 10


async def test_a_wrong_code_still_says_so_without_an_error_id(world: World):
    w = world
    await a_promo(w)
    rec = await w.run(w.alice, "redeem", code="SPRING-11")
    text = text_of(rec)
    assert rec.ephemeral
    assert rec.rejection_codes == []
    assert "doesn't exist in this server" in text
    assert "4 tries left" in text
    assert "error id" not in text.casefold()
    assert "saved" not in text
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 0
