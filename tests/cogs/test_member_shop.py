"""/shop, /buy (preview, Confirm / Cancel) and /orders end to end, through real discord.py dispatch
against the fake Discord. The ledger only sets up state and checks what was (not) written."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.timeparse import to_unix
from fakediscord import InvalidInvocation, Perm
from tests import rawsql
from tests.e2e import World, button, db_dump, text_of

TABLES = ("lots", "entries", "orders", "idempotency")
ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+"


def counts(w: World) -> dict[str, int]:
    with rawsql.connect(w.settings) as db:
        out = {t: db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES}
        out["stock"] = db.execute("SELECT COALESCE(SUM(stock), 0) FROM shop_items").fetchone()[0]
        return out


def now(w: World) -> int:
    return to_unix(w.clock())


def fields(record_or_message) -> dict[str, str]:
    message = getattr(record_or_message, "message", None) or record_or_message
    return {f["name"]: f["value"] for e in message.embeds for f in e.get("fields") or []}


async def grant(w: World, member, amount: str, key: str, **options):
    return await w.ledger.grant(w.guild.id, member.id, amount, actor_id=w.mod.id, key=key, **options)


async def add_item(w: World, name: str, price: str, category: str, **options):
    return await w.ledger.add_item(w.guild.id, name, price, category, actor_id=w.mod.id, key=f"item:{name}", **options)


async def exclude(w: World, category: str) -> None:
    await w.ledger.set_category_excluded(w.guild.id, category, True, actor_id=w.mod.id, key=f"ex:{category}")


async def buy(w: World, member, item, quantity: int | None = None):
    options = {"item": str(item.id) if hasattr(item, "id") else item}
    if quantity is not None:
        options["quantity"] = quantity
    return await w.run(member, "buy", **options)


async def press(w: World, preview, which: str, member=None):
    """Click Confirm or Cancel and wait until the preview message shows the outcome."""
    edits = len((getattr(preview, "message", None) or preview).edits)
    click = await w.fake.click(preview, button(preview, f"buy:{which}:"), (member or w.alice).id)
    await click.wait_for_edit(edits + 1)
    return click


async def refused(w: World, rec, why: str) -> None:
    assert rec.ephemeral, text_of(rec)
    assert why in text_of(rec), text_of(rec)
    assert rec.custom_ids == []  # no preview, no buttons


# /shop -----------------------------------------------------------------------------------------


async def test_shop_lists_items_with_prices_stock_and_whether_promo_applies(world: World):
    w = world
    await exclude(w, "subscriptions")
    await add_item(w, "Sword", "60", "gear", stock=3, limit=1, description="Sharp.")
    await add_item(w, "Shield", "40", "gear", stock=0)
    await add_item(w, "Nitro", "100", "Subscriptions")
    await add_item(w, "Badge", "5", "cosmetics", role_id=w.vip_role.id)
    gone = await add_item(w, "Old hat", "1", "cosmetics")
    await w.ledger.remove_item(w.guild.id, gone.id, actor_id=w.mod.id, key="rm")

    rec = await w.run(w.alice, "shop")
    assert rec.ephemeral
    text = text_of(rec)
    lines = {line.split("**")[1]: line for line in text.splitlines() if line.startswith("**")}
    assert set(lines) == {"Sword", "Shield", "Nitro", "Badge"}  # retired items are not for sale
    assert "60 credits" in lines["Sword"]
    assert "3 left" in lines["Sword"]
    assert "max 1 per member" in lines["Sword"]
    assert "promo credit applies" in lines["Sword"]
    assert "**sold out**" in lines["Shield"]
    assert "gift balance only" in lines["Nitro"]  # excluded category, whatever its case
    assert f"gives <@&{w.vip_role.id}>" in lines["Badge"]
    assert "Sharp." in text


async def test_shop_category_filter_and_its_autocomplete(world: World):
    w = world
    await add_item(w, "Sword", "60", "gear")
    await add_item(w, "Hat", "5", "Cosmetics")
    await add_item(w, "Cape", "8", "cosmetics")

    choices = await w.fake.autocomplete(w.guild.id, w.alice.id, "shop", {"category": "cos"}, focused="category")
    assert [c["value"].casefold() for c in choices] == ["cosmetics"]  # one entry per category, any case
    every = await w.fake.autocomplete(w.guild.id, w.alice.id, "shop", {}, focused="category")
    assert [c["value"].casefold() for c in every] == ["cosmetics", "gear"]

    rec = await w.run(w.alice, "shop", category="COSMETICS")
    assert rec.ephemeral
    text = text_of(rec)
    assert "**Hat**" in text
    assert "**Cape**" in text
    assert "Sword" not in text

    empty = await w.run(w.alice, "shop", category="food")
    assert empty.ephemeral
    assert "No items in `food`" in text_of(empty)


async def test_shop_pages_when_long(world: World):
    w = world
    for n in range(12):
        await add_item(w, f"Item {n:02}", "1", "misc")
    rec = await w.run(w.alice, "shop")
    assert "page 1 of 2" in text_of(rec)
    assert "Item 11" not in text_of(rec)
    turned = await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
    assert "page 2 of 2" in text_of(turned)
    assert "Item 11" in text_of(turned)


# /buy: autocomplete, preview, Confirm / Cancel --------------------------------------------------


async def test_buy_item_autocomplete_offers_items_by_name_or_category(world: World):
    w = world
    sword = await add_item(w, "Sword", "60", "gear")
    await add_item(w, "Swan", "3", "pets")
    hat = await add_item(w, "Hat", "5", "cosmetics")
    gone = await add_item(w, "Swordfish", "1", "food")
    await w.ledger.remove_item(w.guild.id, gone.id, actor_id=w.mod.id, key="rm")

    choices = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {"item": "swo"}, focused="item")
    assert choices == [{"name": "Sword — 60 credits (gear)", "value": str(sword.id)}]
    by_category = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {"item": "cosm"}, focused="item")
    assert [c["value"] for c in by_category] == [str(hat.id)]
    everything = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {}, focused="item")
    assert len(everything) == 3
    await w.ledger.edit_item(w.guild.id, hat.id, actor_id=w.mod.id, key="sold", stock=0)
    [sold] = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {"item": "hat"}, focused="item")
    assert sold["name"] == "Hat — 5 credits (cosmetics) · sold out"


async def test_preview_shows_promo_gift_forfeit_and_balance_after_and_writes_nothing(world: World):
    w = world
    await grant(w, w.alice, "30", "p1", expires="10d", one_time=True)
    await grant(w, w.alice, "100", "g1", kind="gift")
    item = await add_item(w, "Sword", "20", "gear")
    before = counts(w)
    preview = await buy(w, w.alice, item)
    assert preview.ephemeral
    f = fields(preview)
    assert "Buy 1 × Sword?" in text_of(preview)
    assert f["Price"] == "20 credits"
    assert f["Promotional credit applied"] == "20 credits"
    assert f["Gift balance applied"] == "0 credits"
    assert f["Forfeited"].startswith("10 credits of one-time credit")
    assert f["Balance after"] == "100 credits"
    assert f"lapses <t:{now(w) + 120}:R>" in text_of(preview)
    assert sorted(preview.custom_ids) == sorted([f"buy:cancel:{preview.id}", f"buy:confirm:{preview.id}"])
    assert counts(w) == before  # a preview charges nothing

    done = await press(w, preview, "confirm")
    receipt = text_of(done.original or done.message)
    assert "Order #1: 1 × Sword" in receipt
    assert fields(done.message)["Forfeited"] == "10 credits"
    assert done.message.custom_ids == []
    bal = await w.ledger.balance(w.guild.id, w.alice.id)
    assert (bal.promo, bal.gift) == (0, 100)
    with rawsql.connect(w.settings) as db:
        types = [t for (t,) in db.execute("SELECT type FROM entries WHERE order_id = 1 ORDER BY id")]
    assert types == ["spend", "forfeit"]


async def test_preview_uses_gift_balance_for_what_promo_does_not_cover(world: World):
    w = world
    await grant(w, w.alice, "10", "p1")
    await grant(w, w.alice, "100", "g1", kind="gift")
    item = await add_item(w, "Cape", "15", "cosmetics")
    preview = await buy(w, w.alice, item, quantity=2)
    f = fields(preview)
    assert "Buy 2 × Cape?" in text_of(preview)
    assert (f["Price"], f["Promotional credit applied"], f["Gift balance applied"], f["Balance after"]) == (
        "30 credits",
        "10 credits",
        "20 credits",
        "80 credits",
    )
    assert "Forfeited" not in f
    await press(w, preview, "confirm")
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert (order.quantity, order.total, order.promo_applied, order.gift_applied) == (2, 30, 10, 20)


async def test_buy_by_typed_name_and_the_excluded_category_takes_gift_only(world: World):
    w = world
    await exclude(w, "subscriptions")
    await grant(w, w.alice, "500", "p1")
    await grant(w, w.alice, "50", "g1", kind="gift")
    await add_item(w, "Nitro", "30", "subscriptions")
    preview = await buy(w, w.alice, "  nitro ")
    f = fields(preview)
    assert (f["Promotional credit applied"], f["Gift balance applied"]) == ("0 credits", "30 credits")


async def test_cancel_writes_nothing(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "60", "gear", stock=2)
    preview = await buy(w, w.alice, item)
    before = counts(w)
    cancelled = await press(w, preview, "cancel")
    assert "Cancelled. Nothing was charged." in text_of(cancelled.message)
    assert cancelled.message.custom_ids == []  # Confirm is gone with the preview
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


async def test_two_concurrent_confirm_clicks_buy_once(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "30", "gear", stock=5)
    preview = await buy(w, w.alice, item)
    confirm = button(preview, "buy:confirm:")
    first, second = await asyncio.gather(
        w.fake.click(preview, confirm, w.alice.id), w.fake.click(preview, confirm, w.alice.id)
    )
    await first.wait_for_edit(2)  # both clicks answered, on the same preview message
    assert not first.rejections
    assert not second.rejections
    assert "Order #1: 1 × Sword" in text_of(first.message)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 70
    assert (await w.ledger.item(w.guild.id, item.id)).stock == 4
    assert await w.ledger.verify() == []


async def test_another_members_click_is_refused(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    confirm = button(preview, "buy:confirm:")
    with pytest.raises(InvalidInvocation):  # Discord doesn't even show bob alice's preview
        await w.fake.click(preview, confirm, w.bob.id)
    before = counts(w)
    forged = await w.fake.click(preview, confirm, w.bob.id, skip_client_checks=True)
    assert forged.ephemeral
    assert "Only the buyer can confirm this purchase." in text_of(forged)
    assert counts(w) == before
    assert preview.message.edits == []  # alice's preview is untouched
    done = await press(w, preview, "confirm")
    assert "Order #1" in text_of(done.message)


async def test_preview_lapses_after_two_minutes(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    w.clock.advance(seconds=121)
    before = counts(w)
    lapsed = await press(w, preview, "confirm")
    assert "This preview lapsed and nothing was charged. Run `/buy` again." in text_of(lapsed.message)
    assert lapsed.message.custom_ids == []
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


async def test_insufficient_balance_says_how_much_can_be_used_on_that_category(world: World):
    w = world
    await exclude(w, "subscriptions")
    await grant(w, w.alice, "80", "p1")
    await grant(w, w.alice, "40", "g1", kind="gift")
    item = await add_item(w, "Nitro", "100", "subscriptions")
    plain = await add_item(w, "Castle", "500", "gear")
    before = counts(w)
    rec = await buy(w, w.alice, item)
    await refused(
        w,
        rec,
        ("That costs 100 credits. You have 120 credits, of which 40 credits can be used on `subscriptions` items."),
    )
    await refused(w, await buy(w, w.alice, plain), "That costs 500 credits and you have 120 credits.")
    assert counts(w) == before


async def test_balance_gone_between_preview_and_confirm(world: World):
    w = world
    await grant(w, w.alice, "50", "p1")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    await w.ledger.revoke(w.guild.id, w.alice.id, amount="40", reason="mistake", actor_id=w.mod.id, key="rv")
    before = counts(w)
    done = await press(w, preview, "confirm")
    text = text_of(done.message)
    assert "Nothing was charged." in text
    assert "That costs 30 credits and you have 10 credits." in text
    assert done.message.custom_ids == []  # the stale preview is replaced, not left clickable
    assert counts(w) == before


async def test_price_raised_after_the_preview_is_not_charged(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "20", "gear")
    preview = await buy(w, w.alice, item)
    await w.ledger.edit_item(w.guild.id, item.id, actor_id=w.mod.id, key="price", price="90")
    before = counts(w)
    done = await press(w, preview, "confirm")
    assert text_of(done.message).startswith(
        "Nothing was charged. The price of **Sword** changed since the preview: now 90 credits each instead of "
        "20 credits. This purchase would now use 90 credits of promotional credit instead of 20 credits."
    )
    assert (fields(done.message)["Price"], fields(done.message)["Balance after"]) == ("90 credits", "10 credits")
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100
    # The new preview shows the new price; confirming it pays exactly that.
    bought = await press(w, done, "confirm")
    assert fields(bought.message)["Paid"] == "90 credits"
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 10


async def test_sold_out_and_not_enough_stock(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    await grant(w, w.bob, "100", "p2")
    empty = await add_item(w, "Shield", "10", "gear", stock=0)
    last = await add_item(w, "Helmet", "10", "gear", stock=1)
    before = counts(w)
    await refused(w, await buy(w, w.alice, empty), "**Shield** is sold out.")
    await refused(w, await buy(w, w.alice, last, quantity=2), "Only 1 of **Helmet** left in stock.")
    assert counts(w) == before

    # Both preview the last helmet; bob confirms first, alice gets "sold out" and pays nothing.
    alices, bobs = await buy(w, w.alice, last), await buy(w, w.bob, last)
    await press(w, bobs, "confirm", w.bob)
    before = counts(w)
    late = await press(w, alices, "confirm")
    assert "Nothing was charged. **Helmet** is sold out." in text_of(late.message)
    assert counts(w) == before
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


async def test_per_member_limit(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Ticket", "10", "events", limit=2)
    await refused(w, await buy(w, w.alice, item, quantity=3), "limited to 2 per member; you can buy 2 more.")
    await press(w, await buy(w, w.alice, item, quantity=2), "confirm")
    before = counts(w)
    await refused(w, await buy(w, w.alice, item), "limited to 2 per member; you have reached that limit.")
    assert counts(w) == before
    # The limit is per member: bob may still buy.
    await grant(w, w.bob, "10", "p2")
    assert "Buy 1 × Ticket?" in text_of(await buy(w, w.bob, item))


async def test_unknown_or_retired_items_and_bad_quantities(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "Sword", "10", "gear")
    other = w.fake.add_guild(name="Elsewhere")
    await w.fake.wait_for(lambda: w.bot.get_guild(other.id) is not None, what="second guild")
    foreign = await w.ledger.add_item(other.id, "Relic", "1", "misc", actor_id=w.mod.id, key="foreign")
    retired = await add_item(w, "Old hat", "1", "gear")
    await w.ledger.remove_item(w.guild.id, retired.id, actor_id=w.mod.id, key="rm")
    before = counts(w)
    await refused(w, await buy(w, w.alice, "Excalibur"), "The shop has no item called `Excalibur`.")
    await refused(w, await buy(w, w.alice, str(foreign.id)), "The shop has no item called")  # other guild's
    await refused(w, await buy(w, w.alice, retired), "The shop has no item called")
    await refused(w, await buy(w, w.alice, "old hat"), "The shop has no item called")
    for quantity in (0, 101):  # Discord's client enforces the option's min and max
        with pytest.raises(InvalidInvocation):
            await buy(w, w.alice, item, quantity=quantity)
    assert counts(w) == before


async def test_twenty_concurrent_buy_flows_of_a_member_who_can_afford_five(world: World):
    w = world
    await grant(w, w.alice, "30", "p1")
    await grant(w, w.alice, "20", "g1", kind="gift")
    item = await add_item(w, "Pin", "10", "gear")
    previews = await asyncio.gather(*(buy(w, w.alice, item) for _ in range(20)))
    assert all(p.custom_ids and not p.rejections for p in previews)  # each preview alone is affordable
    clicks = await asyncio.gather(*(w.fake.click(p, button(p, "buy:confirm:"), w.alice.id) for p in previews))
    await asyncio.gather(*(c.wait_for_edit(1) for c in clicks))
    outcomes = [text_of(c.message) for c in clicks]
    # Each preview showed 10 of promotional credit: three are paid so; then promo is gone and the
    # other seventeen would be paid with gift balance, which they did not show: new previews.
    assert sum("Order #" in o for o in outcomes) == 3
    changed = [c for c, o in zip(clicks, outcomes, strict=True) if "Your credit changed since the preview" in o]
    assert len(changed) == 17
    again = await asyncio.gather(*(w.fake.click(c, button(c, "buy:confirm:"), w.alice.id) for c in changed))
    await asyncio.gather(*(c.wait_for_edit(2) for c in again))
    outcomes = [text_of(c.message) for c in again]
    assert sum("Order #" in o for o in outcomes) == 2
    assert sum("Nothing was charged. That costs 10 credits and you have 0 credits." in o for o in outcomes) == 15
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 5
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 0
    assert await w.ledger.verify() == []


# items that grant a role ------------------------------------------------------------------------


async def test_role_is_given_on_purchase(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id)
    preview = await buy(w, w.alice, item)
    assert fields(preview)["You get the role"] == f"<@&{w.vip_role.id}>"
    done = await press(w, preview, "confirm")
    assert f"You now have <@&{w.vip_role.id}>." in text_of(done.message)
    assert w.vip_role.id in w.fake.member(w.guild.id, w.alice.id).roles
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert order.status == "completed"
    assert order.role_id == w.vip_role.id


async def test_buy_refuses_before_charging_when_the_role_is_above_the_bot(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id)
    w.fake.update_role(w.guild.id, w.vip_role.id, position=200)
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: guild.get_role(w.vip_role.id).position == 200, what="role moved")
    before = counts(w)
    await refused(w, await buy(w, w.alice, item), "gives a role the bot cannot assign right now")
    assert counts(w) == before
    assert w.vip_role.id not in w.fake.member(w.guild.id, w.alice.id).roles


async def test_buy_refuses_before_charging_without_manage_roles(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id)
    bot_role = w.fake.bot_role(w.guild.id)
    w.fake.update_role(w.guild.id, bot_role.id, permissions=bot_role.permissions & ~Perm.MANAGE_ROLES)
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: not guild.me.guild_permissions.manage_roles, what="permission removed")
    before = counts(w)
    await refused(w, await buy(w, w.alice, item), "gives a role the bot cannot assign right now")
    assert counts(w) == before


async def test_role_refused_by_discord_at_grant_time_refunds_the_order(world: World):
    w = world
    await grant(w, w.alice, "100", "p1", expires="30d")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id, stock=3)
    preview = await buy(w, w.alice, item)
    w.fake.fail_next("PUT", ROLE_PUT, 403, 50013)
    done = await press(w, preview, "confirm")
    text = text_of(done.message)
    assert "Order #1 (refunded)" in text
    assert "refunded automatically because Discord refused to give the role" in text
    assert w.fake.requests_to("PUT", ROLE_PUT)  # the grant was attempted
    assert w.vip_role.id not in w.fake.member(w.guild.id, w.alice.id).roles
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert order.status == "refunded"
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100
    assert (await w.ledger.item(w.guild.id, item.id)).stock == 3
    assert await w.ledger.verify() == []
    orders = await w.run(w.alice, "orders")
    assert "**refunded**" in text_of(orders)


async def test_role_moved_above_the_bot_after_the_preview_refunds_without_calling_discord(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id)
    preview = await buy(w, w.alice, item)
    w.fake.update_role(w.guild.id, w.vip_role.id, position=200)
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: guild.get_role(w.vip_role.id).position == 200, what="role moved")
    done = await press(w, preview, "confirm")
    assert "refunded automatically because the role" in text_of(done.message)
    assert w.fake.requests_to("PUT", ROLE_PUT) == []
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


async def test_double_confirm_with_a_failing_role_refunds_once_and_gives_no_role(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    item = await add_item(w, "VIP pass", "50", "perks", role_id=w.vip_role.id)
    preview = await buy(w, w.alice, item)
    w.fake.fail_next("PUT", ROLE_PUT, 403, 50013)
    confirm = button(preview, "buy:confirm:")
    first, _ = await asyncio.gather(
        w.fake.click(preview, confirm, w.alice.id), w.fake.click(preview, confirm, w.alice.id)
    )
    await first.wait_for_edit(2)
    # The second click must not grant the role of the order the first click refunded.
    assert w.vip_role.id not in w.fake.member(w.guild.id, w.alice.id).roles
    assert len(w.fake.requests_to("PUT", ROLE_PUT)) == 1
    assert "refunded automatically" in text_of(first.message)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


# /orders ---------------------------------------------------------------------------------------


async def test_orders_lists_the_members_orders_with_timestamps(world: World):
    w = world
    await grant(w, w.alice, "100", "p1")
    await grant(w, w.bob, "100", "p2")
    item = await add_item(w, "Sword", "30", "gear")
    t0 = now(w)
    await press(w, await buy(w, w.alice, item, quantity=2), "confirm")
    await press(w, await buy(w, w.bob, item), "confirm", w.bob)

    rec = await w.run(w.alice, "orders")
    assert rec.ephemeral
    text = text_of(rec)
    assert f"`#1` <t:{t0}:R> · 2 × Sword · 60 credits" in text
    assert "`#2`" not in text  # bob's order is his own
    assert rec.custom_ids == []

    empty = await w.run(w.mod, "orders")
    assert "No orders yet" in text_of(empty)


async def test_orders_page_buttons_and_only_the_invoker_turns_pages(world: World):
    w = world
    await grant(w, w.alice, "1000", "p1")
    item = await add_item(w, "Pin", "1", "gear")
    for n in range(12):
        await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key=f"buy{n}")
    rec = await w.run(w.alice, "orders")
    assert "Page 1 of 2" in text_of(rec)
    assert "`#12`" in text_of(rec)
    assert "`#2` " not in text_of(rec)

    nxt = button(rec, "pager:next:")
    with pytest.raises(InvalidInvocation):
        await w.fake.click(rec, nxt, w.bob.id)
    forged = await w.fake.click(rec, nxt, w.bob.id, skip_client_checks=True)
    assert forged.ephemeral
    assert "belong to someone else" in text_of(forged)
    assert "Page 1 of 2" in text_of(rec)

    turned = await w.fake.click(rec, nxt, w.alice.id)
    assert "Page 2 of 2" in text_of(turned)
    assert "`#2` " in text_of(turned)
    assert "`#1` " in text_of(turned)
    assert "`#12`" not in text_of(turned)
    back = await w.fake.click(rec, button(rec, "pager:previous:"), w.alice.id)
    assert "Page 1 of 2" in text_of(back)

    direct = await w.run(w.alice, "orders", page=2)
    assert "Page 2 of 2" in text_of(direct)


# Confirm applies exactly the preview's plan, or nothing and a new preview (SPEC §3) -------------------


def entries_of_order(w: World, order_id: int) -> list[tuple[str, int, int]]:
    with rawsql.connect(w.settings) as db:
        return db.execute(
            "SELECT type, lot_id, amount FROM entries WHERE order_id = ? ORDER BY id", (order_id,)
        ).fetchall()


async def test_one_time_promo_granted_before_confirm_is_not_used_unseen(world: World):
    """The preview says "gift 10, no forfeit"; a one-time promo lot granted before Confirm would be
    used first and 40 of it forfeited. Confirm charges nothing and shows that as a new preview."""
    w = world
    gift = await grant(w, w.alice, "10", "g1", kind="gift")
    item = await add_item(w, "Sticker", "10", "merch")
    preview = await buy(w, w.alice, item)
    f = fields(preview)
    assert (f["Promotional credit applied"], f["Gift balance applied"]) == ("0 credits", "10 credits")
    assert "Forfeited" not in f

    once = await grant(w, w.alice, "50", "p1", one_time=True, expires="30d")
    before = db_dump(w)
    changed = await press(w, preview, "confirm")
    assert db_dump(w) == before  # nothing charged, nothing written
    text = text_of(changed.message)
    assert text.startswith(
        "Nothing was charged. Your credit changed since the preview: this purchase would now use "
        "10 credits of promotional credit instead of 0 credits and 0 credits of gift balance instead of "
        "10 credits, and forfeit 40 credits of one-time credit instead of nothing."
    ), text
    f = fields(changed.message)
    assert (f["Price"], f["Promotional credit applied"], f["Gift balance applied"]) == (
        "10 credits",
        "10 credits",
        "0 credits",
    )
    assert f["Forfeited"].startswith("40 credits of one-time credit")
    assert f["Balance after"] == "10 credits"
    assert f"lapses <t:{now(w) + 120}:R>" in text
    # Fresh buttons: the old Confirm cannot buy what this preview shows.
    assert sorted(changed.message.custom_ids) == [f"buy:cancel:{preview.id}:2", f"buy:confirm:{preview.id}:2"]
    with pytest.raises(InvalidInvocation):
        await w.fake.click(preview, f"buy:confirm:{preview.id}", w.alice.id)

    done = await press(w, changed, "confirm")
    assert "Order #1: 1 × Sticker" in text_of(done.message)
    assert fields(done.message) == {
        "Paid": "10 credits",
        "Promotional credit": "10 credits",
        "Gift balance": "0 credits",
        "Forfeited": "40 credits",
    }
    assert done.message.custom_ids == []
    assert entries_of_order(w, 1) == [("spend", once.first_lot_id, -10), ("forfeit", once.first_lot_id, -40)]
    bal = await w.ledger.balance(w.guild.id, w.alice.id)
    assert (bal.promo, bal.gift) == (0, 10)
    assert gift.first_lot_id in [lot.id for lot in bal.lots]
    assert await w.ledger.verify() == []


async def test_two_clicks_on_a_changed_preview_show_the_new_preview_and_buy_nothing(world: World):
    w = world
    await grant(w, w.alice, "100", "g1", kind="gift")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    await grant(w, w.alice, "20", "p1")  # would now pay 20 of it
    before = db_dump(w)
    confirm = button(preview, "buy:confirm:")
    first, second = await asyncio.gather(
        w.fake.click(preview, confirm, w.alice.id), w.fake.click(preview, confirm, w.alice.id)
    )
    await first.wait_for_edit(2)  # both answered on the same message: the new preview, twice
    assert not first.rejections
    assert not second.rejections
    assert db_dump(w) == before  # the second click did not confirm the new preview unseen
    assert fields(first.message)["Promotional credit applied"] == "20 credits"
    assert "20 credits of promotional credit instead of 0 credits" in text_of(first.message)
    assert button(first.message, "buy:confirm:").endswith(":2")
    await press(w, first, "confirm")
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert (order.promo_applied, order.gift_applied) == (20, 10)


async def test_credit_that_changes_again_gives_a_third_preview_and_the_new_preview_lapses(world: World):
    w = world
    await grant(w, w.alice, "100", "g1", kind="gift")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    await grant(w, w.alice, "10", "p1")
    second = await press(w, preview, "confirm")
    await grant(w, w.alice, "5", "p2", expires="1d")  # expires sooner: used first, then the other
    third = await press(w, second, "confirm")
    assert button(third.message, "buy:confirm:").endswith(":3")
    assert "15 credits of promotional credit instead of 10 credits" in text_of(third.message)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 0
    w.clock.advance(seconds=121)
    before = db_dump(w)
    lapsed = await press(w, third, "confirm")
    assert "This preview lapsed and nothing was charged." in text_of(lapsed.message)
    assert lapsed.message.custom_ids == []
    assert db_dump(w) == before


async def test_a_category_excluded_after_the_preview_gives_a_new_preview_that_cancel_drops(world: World):
    w = world
    await grant(w, w.alice, "50", "p1")
    await grant(w, w.alice, "100", "g1", kind="gift")
    item = await add_item(w, "Sword", "30", "gear")
    preview = await buy(w, w.alice, item)
    assert fields(preview)["Promotional credit applied"] == "30 credits"
    await exclude(w, "gear")
    changed = await press(w, preview, "confirm")
    f = fields(changed.message)
    assert (f["Promotional credit applied"], f["Gift balance applied"]) == ("0 credits", "30 credits")
    before = db_dump(w)
    cancelled = await press(w, changed, "cancel")
    assert "Cancelled. Nothing was charged." in text_of(cancelled.message)
    assert cancelled.message.custom_ids == []
    assert db_dump(w) == before
