"""/redeem end to end: promo codes and gift cards in one box, wrong codes, the rate limit and
guild isolation, through real discord.py dispatch against the fake Discord."""

from __future__ import annotations

import logging

import pytest

from bot.domain import limits
from bot.domain.timeparse import to_unix
from fakediscord import InvalidInvocation
from tests import rawsql
from tests.e2e import World, text_of

TABLES = ("lots", "entries", "promo_redemptions", "idempotency")


def counts(w: World) -> dict[str, int]:
    with rawsql.connect(w.settings) as db:
        out = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        out["redeemed_cards"] = db.execute("SELECT COUNT(*) FROM gift_cards WHERE status = 'redeemed'").fetchone()[0]
        return out


def now(w: World) -> int:
    return to_unix(w.clock())


async def promo(w: World, code: str, amount: str = "25", guild_id: int | None = None, **options):
    return await w.ledger.create_promo(
        guild_id or w.guild.id, code, amount, actor_id=w.mod.id, key=f"promo:{code}:{guild_id}", **options
    )


async def gift_card(w: World, amount: str = "40", guild_id: int | None = None, **options) -> str:
    issued = await w.ledger.issue_gift_cards(
        guild_id or w.guild.id, amount, actor_id=w.mod.id, key=f"card:{amount}:{guild_id}:{options}", **options
    )
    return issued.codes[0]


async def redeem(w: World, member, code: str, guild_id: int | None = None):
    return await w.fake.invoke(guild_id or w.guild.id, member.id, "redeem", {"code": code})


async def test_promo_code_goes_into_promotional_balance(world: World):
    w = world
    await promo(w, "SUMMER-25", "25", credit_days=30, categories="games")
    rec = await redeem(w, w.alice, "  summer 25 ")  # case, spaces and dashes don't matter
    assert rec.ephemeral
    text = text_of(rec)
    assert "Code redeemed" in text
    assert "**+25 credits** added to your promotional balance from SUMMER-25" in text
    expires = now(w) + 30 * 86400
    assert f"<t:{expires}:R>" in text
    assert f"<t:{expires}:f>" in text
    assert "Usable on\ngames" in text
    assert "Your balance\n25 credits" in text
    [lot] = await w.ledger.lots(w.guild.id, w.alice.id)
    assert (lot.kind, lot.original, lot.source, lot.expires_at, lot.categories) == (
        "promo",
        25,
        "promo_code",
        expires,
        ("games",),
    )


async def test_one_time_promo_says_so(world: World):
    w = world
    await promo(w, "ONCE", "10", one_time=True)
    rec = await redeem(w, w.alice, "once")
    assert "One-time" in text_of(rec)
    assert "forfeited" in text_of(rec)


async def test_gift_card_goes_into_gift_balance_once(world: World):
    w = world
    code = await gift_card(w, "40")
    typed = code.replace("-", "").lower()
    rec = await redeem(w, w.alice, typed)
    assert rec.ephemeral
    text = text_of(rec)
    assert "**+40 credits** added to your gift balance" in text
    assert code[-4:] in text  # the card is named by its last 4 only
    assert code not in text
    assert "Expires" not in text  # gift cards don't expire unless the card says so
    bal = await w.ledger.balance(w.guild.id, w.alice.id)
    assert (bal.gift, bal.promo) == (40, 0)

    before = counts(w)
    again = await redeem(w, w.bob, code)
    assert again.ephemeral
    assert "already been redeemed" in text_of(again)
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.bob.id)).total == 0


async def test_gift_card_with_claim_by_date_past(world: World):
    w = world
    code = await gift_card(w, "15", claim_by="1d")
    w.clock.advance(days=2)
    before = counts(w)
    rec = await redeem(w, w.alice, code)
    assert rec.ephemeral
    assert "had to be claimed by <t:" in text_of(rec)
    assert counts(w) == before


async def test_wrong_code_says_how_many_tries_are_left_and_writes_no_credit(world: World):
    w = world
    before = counts(w)
    rec = await redeem(w, w.alice, "NOPE-123")
    assert rec.ephemeral
    assert "doesn't exist in this server" in text_of(rec)
    assert "4 tries left" in text_of(rec)
    second = await redeem(w, w.alice, "NOPE-124")
    assert "3 tries left" in text_of(second)
    assert counts(w) == before


async def test_five_wrong_codes_in_15_minutes_pause_the_member_until_a_shown_time(world: World):
    w = world
    await promo(w, "REAL", "10")
    first_failure = now(w)
    for n in range(4):
        rec = await redeem(w, w.alice, f"WRONG{n}")
        assert f"{4 - n} {'try' if n == 3 else 'tries'} left" in text_of(rec)
        w.clock.advance(minutes=1)
    fifth = await redeem(w, w.alice, "WRONG5")
    until = first_failure + 15 * 60
    assert fifth.ephemeral
    assert f"Too many wrong codes. You can try again <t:{until}:R>." in text_of(fifth)

    # Even the right code waits; nothing is written.
    before = counts(w)
    blocked = await redeem(w, w.alice, "REAL")
    assert blocked.ephemeral
    assert f"<t:{until}:R>" in text_of(blocked)
    assert counts(w) == before
    # Other members are not affected.
    assert "Code redeemed" in text_of(await redeem(w, w.bob, "REAL"))

    w.clock.advance(seconds=until - now(w) + 1)  # the oldest failure ages out
    assert "Code redeemed" in text_of(await redeem(w, w.alice, "REAL"))
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 10


async def test_one_wrong_code_delivered_five_times_counts_once(world: World):
    """SPEC §4: one attempt counts once, however often Discord delivers it. The replays reach the
    bot (Discord refuses their answers with 40060: the first answer stands) and pause nobody."""
    w = world
    rec = await redeem(w, w.alice, "NOPE-123")
    assert "4 tries left" in text_of(rec)
    for _ in range(4):
        await w.fake.redeliver(rec)
    assert rec.rejection_codes == [40060] * 4
    assert "4 tries left" in text_of(rec)
    nxt = await redeem(w, w.alice, "NOPE-124")
    assert "3 tries left" in text_of(nxt)
    assert w.fake.dms(w.alice.id) == []  # the replays' refused answers are not pushed into DMs


async def test_a_redeemed_code_delivered_again_is_credited_once_and_answered_once(
    world: World, caplog: pytest.LogCaptureFixture
):
    w = world
    await promo(w, "REAL", "10")
    rec = await redeem(w, w.alice, "REAL")
    assert "Code redeemed" in text_of(rec)
    await w.fake.redeliver(rec)
    await w.fake.redeliver(rec)
    assert rec.rejection_codes == [40060, 40060]
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 10
    assert w.fake.dms(w.alice.id) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a replay is not our bug


async def test_failures_older_than_15_minutes_do_not_count(world: World):
    w = world
    for n in range(4):
        await redeem(w, w.alice, f"WRONG{n}")
    w.clock.advance(minutes=16)
    rec = await redeem(w, w.alice, "WRONG9")
    assert "4 tries left" in text_of(rec)


async def test_codes_of_another_guild_are_unknown_here(world: World):
    w = world
    other = w.fake.add_guild(name="Elsewhere")
    w.fake.add_member(other.id, user_id=w.alice.id, name="alice")
    await w.fake.wait_for(lambda: w.bot.get_guild(other.id) is not None, what="second guild")
    await promo(w, "THERE-ONLY", "30", guild_id=other.id)
    card = await gift_card(w, "60", guild_id=other.id)

    before = counts(w)
    for code in ("THERE-ONLY", card):
        rec = await redeem(w, w.alice, code)
        assert rec.ephemeral
        assert "doesn't exist in this server" in text_of(rec)
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 0

    there = await redeem(w, w.alice, card, guild_id=other.id)
    assert "**+60 credits** added to your gift balance" in text_of(there)
    assert (await w.ledger.balance(other.id, w.alice.id)).total == 60
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 0


async def test_promo_rules_refuse_with_a_reason_and_write_nothing(world: World):
    w = world
    await promo(w, "ONE-EACH", "5")
    await promo(w, "TWO-TOTAL", "5", uses=1)
    await promo(w, "VETERANS", "5", min_member_days=30)
    await promo(w, "VIP-ONLY", "5", role_id=w.vip_role.id)
    await promo(w, "SOON-GONE", "5", redeem_by="1h")
    await promo(w, "OFF", "5")
    await w.ledger.disable_promo(w.guild.id, "OFF", actor_id=w.mod.id, key="off")
    assert "Code redeemed" in text_of(await redeem(w, w.alice, "ONE-EACH"))
    assert "Code redeemed" in text_of(await redeem(w, w.alice, "TWO-TOTAL"))
    w.clock.advance(hours=2)

    refusals = [
        (w.alice, "one-each", "already redeemed that code"),
        (w.bob, "two-total", "used up"),
        (w.bob, "veterans", "joined at least 30 days ago"),  # bob joined 2 days ago
        (w.alice, "vip-only", f"<@&{w.vip_role.id}>"),
        (w.alice, "soon-gone", "could be redeemed until <t:"),
        (w.alice, "off", "no longer active"),
    ]
    before = counts(w)
    for member, code, why in refusals:
        rec = await redeem(w, member, code)
        assert rec.ephemeral, code
        assert why in text_of(rec), (code, text_of(rec))
    assert counts(w) == before
    # The veteran and the role holder get theirs.
    assert "Code redeemed" in text_of(await redeem(w, w.alice, "VETERANS"))
    w.fake.set_member_roles(w.guild.id, w.bob.id, [w.vip_role])
    assert "Code redeemed" in text_of(await redeem(w, w.bob, "VIP-ONLY"))


async def test_blank_or_oversized_input_is_refused(world: World):
    w = world
    before = counts(w)
    rec = await redeem(w, w.alice, "   ")
    assert rec.ephemeral
    assert "Type the code you received." in text_of(rec)
    dashes = await redeem(w, w.alice, "---")
    assert dashes.ephemeral
    assert "Type the code you received." in text_of(dashes)
    with pytest.raises(InvalidInvocation):  # Discord's client enforces max_length (limits.REDEEM_INPUT)
        await redeem(w, w.alice, "X" * (limits.REDEEM_INPUT + 1))
    assert counts(w) == before
