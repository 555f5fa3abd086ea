"""/balance and /history end to end: real discord.py dispatch against the fake Discord.

The ledger is only used to set up state and to check what was (not) written."""

from __future__ import annotations

import re

import pytest

from bot.domain.timeparse import to_unix
from fakediscord import InvalidInvocation
from tests import rawsql
from tests.e2e import World, button, text_of

TABLES = ("lots", "entries", "orders", "idempotency", "audit_log")


def counts(w: World) -> dict[str, int]:
    with rawsql.connect(w.settings) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


async def grant(w: World, member, amount: str, key: str, **options):
    return await w.ledger.grant(w.guild.id, member.id, amount, actor_id=w.mod.id, key=key, **options)


def now(w: World) -> int:
    return to_unix(w.clock())


async def test_balance_of_a_new_member_is_empty_private_and_writes_nothing(world: World):
    w = world
    before = counts(w)
    rec = await w.run(w.alice, "balance")
    assert rec.ephemeral
    text = text_of(rec)
    assert "Your balance" in text
    assert "no credit here yet" in text
    assert "/redeem" in text
    assert "Total\n**0 credits**" in text
    assert counts(w) == before


async def test_balance_splits_gift_promo_total_and_shows_lots_with_discord_timestamps(world: World):
    w = world
    t0 = now(w)
    promo = await grant(w, w.alice, "100", "p1", expires="7d", categories="games", one_time=True)
    await grant(w, w.alice, "30", "p2", expires="30d")
    gift = await grant(w, w.alice, "50", "g1", kind="gift")
    await grant(w, w.alice, "20", "u1", starts="2d")  # not usable yet: "upcoming"
    await grant(w, w.bob, "999", "b1")  # somebody else's credit never shows

    rec = await w.run(w.alice, "balance")
    assert rec.ephemeral
    fields = {f["name"]: f["value"] for f in rec.embeds[0]["fields"]}
    assert fields["Gift balance"] == "50 credits"
    assert fields["Promotional balance"] == "130 credits"
    assert fields["Total"] == "**180 credits**"
    assert fields["Upcoming"].startswith("20 credits")
    week = t0 + 7 * 86400
    assert fields["Expires next"] == f"100 credits <t:{week}:R> (<t:{week}:f>)"
    lots = fields["Your credit, in the order it is spent"].splitlines()
    # Promo before gift; soonest expiry first; the upcoming lot says when it becomes usable.
    assert lots[0].startswith(f"`#{promo.first_lot_id}`")
    assert f"expires <t:{week}:R>" in lots[0]
    assert "only: games" in lots[0]
    assert "one-time" in lots[0]
    assert f"expires <t:{t0 + 30 * 86400}:R>" in lots[1]
    assert any(f"usable <t:{t0 + 2 * 86400}:R>" in line for line in lots)
    assert any(line.startswith(f"`#{gift.first_lot_id}`") and "gift" in line for line in lots)
    assert not re.search(r"(?<!\d)999(?!\d)", text_of(rec))  # a snowflake id may hold the digits
    assert "can't be transferred or cashed out" in text_of(rec)


async def test_balance_ignores_credit_past_its_expiry_even_before_the_sweep(world: World):
    w = world
    await grant(w, w.alice, "40", "p1", expires="1h")
    await grant(w, w.alice, "5", "g1", kind="gift")
    w.clock.advance(hours=1, seconds=1)
    rec = await w.run(w.alice, "balance")
    fields = {f["name"]: f["value"] for f in rec.embeds[0]["fields"]}
    assert fields["Promotional balance"] == "0 credits"
    assert fields["Total"] == "**5 credits**"
    assert "Expires next" not in fields


async def test_balance_is_per_guild(world: World):
    w = world
    other = w.fake.add_guild(name="Elsewhere")
    w.fake.add_member(other.id, user_id=w.alice.id, name="alice")
    await w.fake.wait_for(lambda: w.bot.get_guild(other.id) is not None, what="second guild")
    await w.ledger.grant(other.id, w.alice.id, "70", actor_id=w.mod.id, key="elsewhere")
    here = await w.run(w.alice, "balance")
    assert "no credit here yet" in text_of(here)
    there = await w.fake.invoke(other.id, w.alice.id, "balance")
    assert "**70 credits**" in text_of(there)


async def test_member_commands_are_guild_only(world: World):
    w = world
    for name in ("balance", "history", "redeem", "shop", "buy", "orders", "reminders", "terms"):
        synced = next(c for c in w.fake.synced_commands() if c["name"] == name)
        assert synced.get("contexts") == [0] or synced.get("dm_permission") is False, name
    with pytest.raises(InvalidInvocation):
        await w.fake.invoke(None, w.alice.id, "balance")


async def test_history_is_newest_first_private_with_timestamps(world: World):
    w = world
    t0 = now(w)
    await grant(w, w.alice, "10", "h1", reason="welcome bonus")
    w.clock.advance(minutes=5)
    item = await w.ledger.add_item(w.guild.id, "Badge", "4", "gear", actor_id=w.mod.id, key="item")
    order = await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    rec = await w.run(w.alice, "history")
    assert rec.ephemeral
    lines = rec.embeds[0]["description"].splitlines()
    assert lines[0].startswith(f"<t:{t0 + 300}:R> Spent **−4 credits**")
    assert f"order `#{order.id}`" in lines[0]
    assert lines[1].startswith(f"<t:{t0}:R> Credit added **+10 credits**")
    assert "welcome bonus" in lines[1]
    assert "Page 1 of 1 · 2 entries" in text_of(rec)
    assert rec.custom_ids == []  # one page: no buttons


async def test_history_page_buttons_turn_pages_and_belong_to_the_invoker(world: World):
    w = world
    for n in range(1, 13):
        await grant(w, w.alice, str(n), f"h{n}", reason=f"grant number {n}")
        w.clock.advance(minutes=1)
    rec = await w.run(w.alice, "history")
    assert rec.ephemeral
    page1 = text_of(rec)
    assert "Page 1 of 2 · 12 entries" in page1
    assert page1.index("grant number 12") < page1.index("grant number 3")
    assert "grant number 2\n" not in page1
    assert "grant number 1\n" not in page1
    assert rec.message.component(button(rec, "pager:previous:"))["disabled"] is True

    nxt = button(rec, "pager:next:")
    turned = await w.fake.click(rec, nxt, w.alice.id)
    page2 = text_of(turned)
    assert "Page 2 of 2" in page2
    assert "grant number 2" in page2
    assert "grant number 1" in page2
    assert "grant number 12" not in page2
    assert turned.message.component(nxt)["disabled"] is True

    # Another member can't even see the ephemeral message; a crafted click is refused by the bot.
    with pytest.raises(InvalidInvocation):
        await w.fake.click(rec, button(rec, "pager:previous:"), w.bob.id)
    before = rec.message.embeds
    forged = await w.fake.click(rec, button(rec, "pager:previous:"), w.bob.id, skip_client_checks=True)
    assert forged.ephemeral
    assert "belong to someone else" in text_of(forged)
    assert rec.message.embeds == before  # the page did not turn

    back = await w.fake.click(rec, button(rec, "pager:previous:"), w.alice.id)
    assert "Page 1 of 2" in text_of(back)
    assert "grant number 12" in text_of(back)


async def test_history_page_option_opens_that_page_and_clamps(world: World):
    w = world
    for n in range(1, 24):
        await grant(w, w.alice, "1", f"h{n}", reason=f"g{n}")
    second = await w.run(w.alice, "history", page=2)
    assert "Page 2 of 3 · 23 entries" in text_of(second)
    assert "g13\n" in text_of(second)
    assert "g23" not in text_of(second)
    beyond = await w.run(w.alice, "history", page=50)
    assert "Page 3 of 3" in text_of(beyond)
    assert beyond.message.component(button(beyond, "pager:next:"))["disabled"] is True
    with pytest.raises(InvalidInvocation):  # Discord's client enforces min_value 1
        await w.run(w.alice, "history", page=0)


async def test_history_of_someone_without_entries(world: World):
    w = world
    await grant(w, w.alice, "5", "a")
    rec = await w.run(w.bob, "history")
    assert rec.ephemeral
    assert "Nothing here yet." in text_of(rec)
    assert "alice" not in text_of(rec)
    assert "+5" not in text_of(rec)
