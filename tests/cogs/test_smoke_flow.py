"""A member's whole journey through real discord.py dispatch: grant, balance, buy, confirm."""

import asyncio

from tests.e2e import World, button, text_of


async def test_grant_balance_buy_confirm(world: World):
    w = world
    granted = await w.run(w.mod, "credits grant", member=w.alice.id, amount="100", expires="30d")
    assert granted.ephemeral
    assert "Granted 100 credits" in text_of(granted)

    balance = await w.run(w.alice, "balance")
    assert balance.ephemeral
    assert "100 credits" in text_of(balance)

    added = await w.run(w.mod, "shopadmin add", name="Sword", price="60", category="gear")
    assert "Sword" in text_of(added)

    preview = await w.run(w.alice, "buy", item="Sword")
    assert "Buy 1 × Sword?" in text_of(preview)
    confirm = button(preview, "buy:confirm:")
    # A double click: both clicks reach the bot before either answer comes back.
    first, _second = await asyncio.gather(
        w.fake.click(preview, confirm, w.alice.id), w.fake.click(preview, confirm, w.alice.id)
    )
    await first.wait_for_edit(1)
    assert "Order #1" in text_of(first.original or first.message)
    orders = await w.ledger.orders(w.guild.id, w.alice.id)
    assert orders.total == 1  # confirming twice buys once
    bal = await w.ledger.balance(w.guild.id, w.alice.id)
    assert bal.total == 40
