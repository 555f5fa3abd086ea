"""/reminders and /terms end to end, through real discord.py dispatch against the fake Discord."""

from __future__ import annotations

import pytest

from fakediscord import InvalidInvocation
from tests import rawsql
from tests.e2e import World, text_of

TABLES = ("lots", "entries", "orders")


def counts(w: World) -> dict[str, int]:
    with rawsql.connect(w.settings) as db:
        return {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}


async def test_reminders_off_and_on_are_stored_per_member(world: World):
    w = world
    g = w.guild.id
    assert await w.ledger.reminders_enabled(g, w.alice.id) is True  # on by default
    before = counts(w)

    off = await w.run(w.alice, "reminders", enabled=False)
    assert off.ephemeral
    assert "Reminders are off for this server" in text_of(off)
    assert "/reminders enabled:True" in text_of(off)
    assert await w.ledger.reminders_enabled(g, w.alice.id) is False
    assert await w.ledger.reminders_enabled(g, w.bob.id) is True  # only the invoker's preference

    on = await w.run(w.alice, "reminders", enabled=True)
    assert on.ephemeral
    assert "Reminders are on: I'll DM you 7 days and 1 day before" in text_of(on)
    assert await w.ledger.reminders_enabled(g, w.alice.id) is True
    assert counts(w) == before  # a preference, not a ledger write


async def test_reminders_answer_uses_this_servers_lead_times(world: World):
    w = world
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key="leads", reminder_leads="3d,12h,90m")
    on = await w.run(w.alice, "reminders", enabled=True)
    assert "I'll DM you 3 days, 12 hours and 90 minutes before" in text_of(on)


async def test_reminders_preference_is_per_guild(world: World):
    w = world
    other = w.fake.add_guild(name="Elsewhere")
    w.fake.add_member(other.id, user_id=w.alice.id, name="alice")
    await w.fake.wait_for(lambda: w.bot.get_guild(other.id) is not None, what="second guild")
    await w.run(w.alice, "reminders", enabled=False)
    assert await w.ledger.reminders_enabled(w.guild.id, w.alice.id) is False
    assert await w.ledger.reminders_enabled(other.id, w.alice.id) is True


async def test_reminders_needs_its_option(world: World):
    w = world
    with pytest.raises(InvalidInvocation):  # `enabled` is required; Discord's client won't send without it
        await w.run(w.alice, "reminders")


async def test_terms_say_non_transferable_not_cash_and_list_excluded_categories(world: World):
    w = world
    for category in ("subscriptions", "gift cards"):
        await w.ledger.set_category_excluded(w.guild.id, category, True, actor_id=w.mod.id, key=category)
    before = counts(w)
    rec = await w.run(w.bob, "terms")
    assert rec.ephemeral
    text = text_of(rec)
    assert "Credit terms" in text
    assert "Non-transferable" in text
    assert "can't be cashed out" in text
    assert "exchanged for cash" in text
    assert "can't be used on** `subscriptions`, `gift cards` items" in text
    assert "Expiry" in text
    assert "/balance" in text
    assert "7 days and 1 day before credit expires" in text
    assert "One-time credit" in text
    assert counts(w) == before


async def test_terms_without_exclusions_and_with_a_custom_currency(world: World):
    w = world
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key="cur", currency_name="gems")
    rec = await w.run(w.alice, "terms")
    text = text_of(rec)
    assert "counted in gems" in text
    assert "can be used on every category" in text
    assert "can't be used on" not in text
