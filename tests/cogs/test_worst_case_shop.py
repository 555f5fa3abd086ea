"""The shop at its worst: the longest names, descriptions, categories, reasons and amounts the bot
accepts, and many items and orders, through the real bot and the strict fake Discord (which fails
the test on any request Discord would refuse). Then what the bot says when the answer to a
committed purchase or refund fails: the truth, with an error id, never "nothing was changed".

Bulk data is made through the ledger directly; every message under test comes from a command."""

from __future__ import annotations

import asyncio
import logging
import math
import re

import pytest

from bot.discordbot import fit
from bot.domain import limits
from bot.domain.money import MAX_AMOUNT
from cogs.orders import ORDERS_PAGE
from cogs.shop import ITEM_SEPARATOR, ITEMS_PER_PAGE
from fakediscord import InvalidInvocation
from tests.e2e import World, button, text_of

CURRENCY = "golden dragon scales"  # 20 characters: the longest currency name
SYMBOL = "DRAGN"  # 5 characters: the longest symbol
MAX_MONEY = "10,000,000,000.00 golden dragon scales"  # 10^12 minor units, 2 decimals, no symbol
CALLBACK = r"^/interactions/\d+/[^/]+/callback$"
FOLLOWUP = r"^/webhooks/\d+/[^/]+$"
ORIGINAL = r"^/webhooks/\d+/[^/]+/messages/@original$"
ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+"
NOTHING = "nothing was changed"


# data at its longest ------------------------------------------------------------------------------
def long_name(i: int) -> str:
    """100 characters, unique per i, ending in a marker so that a cut name is never 'in' a text."""
    return (f"Item {i:03} of the longest names " + "abcdefghij" * 10)[: limits.ITEM_NAME - 1] + "Z"


def long_description(i: int) -> str:
    return (f"Description {i:03}: " + "a very long line about this item " * 20)[: limits.ITEM_DESCRIPTION - 1] + "."


def long_category(i: int) -> str:
    return (f"Category {i:02} " + "cat" * 20)[: limits.CATEGORY - 1] + "Q"


def long_reason(marker: str = "") -> str:
    return (marker + "A reason as long as a moderator may type. " * 6)[: limits.REASON - 1] + "!"


async def longest_currency(w: World, symbol: str = "") -> None:
    await w.ledger.update_settings(
        w.guild.id, actor_id=w.mod.id, key=None, currency_name=CURRENCY, decimals=2, currency_symbol=symbol or None
    )


async def audit_on(w: World) -> None:
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, audit_channel_id=w.audit_channel_id)


async def add_longest_item(w: World, i: int, *, price: int = MAX_AMOUNT, category: str | None = None, **kw):
    options = {"stock": 10**9, "limit": 10**6, "role_id": w.vip_role.id, "description": long_description(i)}
    options.update(kw)
    return await w.ledger.add_item(
        w.guild.id,
        long_name(i),
        price,
        category or long_category(i % 3),
        actor_id=w.mod.id,
        key=f"item:{i}",
        **options,
    )


async def grant(w: World, member, amount: int, key: str, **options):
    return await w.ledger.grant(w.guild.id, member.id, amount, actor_id=w.mod.id, key=key, **options)


def names_on(record_or_message) -> list[str]:
    """The item names of a /shop page, in order: each item starts a paragraph with **name**."""
    message = getattr(record_or_message, "message", None) or record_or_message
    (embed,) = message.embeds
    return re.findall(r"(?:^|\n\n)\*\*(.+?)\*\* — ", embed["description"])


def fields(message) -> dict[str, str]:
    return {f["name"]: f["value"] for e in message.embeds for f in e.get("fields") or []}


def embed_size(embed: dict) -> int:
    """Characters Discord counts towards an embed's 6,000."""
    parts = [
        embed.get("title"),
        embed.get("description"),
        (embed.get("footer") or {}).get("text"),
        (embed.get("author") or {}).get("name"),
    ]
    parts += [f.get(k) for f in embed.get("fields") or [] for k in ("name", "value")]
    return sum(len(p or "") for p in parts)


def audit_posts(w: World) -> list[dict]:
    return [m.embeds[0] for m in w.fake.channel_messages(w.audit_channel_id)]


def option(w: World, path: str, name: str) -> dict:
    """A synced option of a command (``"shopadmin add"``), as Discord received it."""
    top, *subs = path.split()
    (command,) = [c for c in w.fake.synced_commands() if c["name"] == top]
    node = command
    for sub in subs:
        (node,) = [o for o in node.get("options") or [] if o["name"] == sub]
    (found,) = [o for o in node.get("options") or [] if o["name"] == name]
    return found


def assert_told_what_was_done(text: str, *done: str) -> None:
    for part in done:
        assert part in text, text
    assert "error id" in text.casefold(), text
    assert NOTHING not in text.casefold(), text


# options: Discord itself stops the typing at the domain's limits ------------------------------------
async def test_every_free_text_option_of_the_shop_has_the_domains_length_limit(world: World):
    w = world
    expected = {
        ("shop", "category"): limits.CATEGORY,
        ("buy", "item"): limits.ITEM_NAME,
        ("shopadmin add", "name"): limits.ITEM_NAME,
        ("shopadmin add", "price"): limits.AMOUNT_INPUT,
        ("shopadmin add", "category"): limits.CATEGORY,
        ("shopadmin add", "description"): limits.ITEM_DESCRIPTION,
        ("shopadmin edit", "item"): limits.ITEM_NAME,
        ("shopadmin edit", "name"): limits.ITEM_NAME,
        ("shopadmin edit", "price"): limits.AMOUNT_INPUT,
        ("shopadmin edit", "category"): limits.CATEGORY,
        ("shopadmin edit", "description"): limits.ITEM_DESCRIPTION,
        ("shopadmin remove", "item"): limits.ITEM_NAME,
        ("shopadmin refund", "reason"): limits.REASON,
        ("shopadmin codes", "item"): limits.ITEM_NAME,
    }
    for (path, name), limit in expected.items():
        assert option(w, path, name).get("max_length") == limit, (path, name)
    strings = [
        (c["name"] + " " + s["name"] if s is not c else c["name"], o["name"])
        for c in w.fake.synced_commands()
        if c["name"] in {"shop", "buy", "orders", "shopadmin"}
        for s in ([c] if c["name"] != "shopadmin" else c["options"])
        for o in s.get("options") or []
        if o["type"] == 3 and not o.get("choices")  # fixed choices: no free text
    ]
    assert sorted(strings) == sorted(expected), "a free-text option of the shop without a length limit"
    assert "up to 200 characters" in option(w, "shopadmin refund", "reason")["description"]

    # Discord's client refuses one character more, so the bot never sees it.
    with pytest.raises(InvalidInvocation):
        await w.run(w.alice, "shop", category="c" * (limits.CATEGORY + 1))
    with pytest.raises(InvalidInvocation):
        await w.run(w.mod, "shopadmin add", name="n" * (limits.ITEM_NAME + 1), price="1", category="x")
    with pytest.raises(InvalidInvocation):
        await w.run(w.mod, "shopadmin refund", order=1, reason="r" * (limits.REASON + 1))


# /shop ------------------------------------------------------------------------------------------------
def shop_pages(lines: list[str]) -> list[list[str]]:
    """The /shop packing (cogs/shop.py), split back into each page's items."""
    pages = fit.pack_pages(lines, fit.DESCRIPTION, separator=ITEM_SEPARATOR, per_page=ITEMS_PER_PAGE) or [""]
    return [page.split(ITEM_SEPARATOR) if page else [] for page in pages]


def test_shop_pages_hold_ten_items_or_fewer_when_their_texts_would_not_fit():
    long, short = "L" * 800, "s" * 50
    pages = shop_pages([long] * 3 + [short] * 20)
    assert [len(p) for p in pages] == [ITEMS_PER_PAGE, ITEMS_PER_PAGE, 3]  # 3 long + 7 short fit one page
    assert [line for page in pages for line in page] == [long] * 3 + [short] * 20  # all, whole, in order
    six = shop_pages([long] * 6)
    assert [len(p) for p in six] == [5, 1]  # 6 x 800 characters pass 4,096
    assert all(len("\n\n".join(page)) <= fit.DESCRIPTION for page in pages + six)
    assert shop_pages([]) == [[]]


@pytest.mark.parametrize("symbol", ["", SYMBOL], ids=["long-name", "name-and-symbol"])
async def test_shop_of_many_longest_items_shows_every_item_whole_on_pages_that_fit(world: World, symbol: str):
    w = world
    await longest_currency(w, symbol)
    await w.ledger.set_category_excluded(w.guild.id, long_category(1), True, actor_id=w.mod.id, key="ex")
    count = 103
    for i in range(count):
        await add_longest_item(w, i)
    order = [item.name for item in await w.ledger.items(w.guild.id)]

    rec = await w.run(w.alice, "shop")
    assert rec.ephemeral
    per_page = 5  # five items of ~800 characters fit 4,096; six would not
    pages = math.ceil(count / per_page)
    seen: list[str] = []
    for page in range(1, pages + 1):
        message = rec.message
        (embed,) = message.embeds
        assert embed["footer"]["text"] == f"Buy with /buy · page {page} of {pages}"
        shown = names_on(message)
        assert len(shown) == (per_page if page < pages else count - per_page * (pages - 1))
        for name in shown:
            i = int(name[5:8])
            assert long_description(i) in embed["description"]  # the whole description
            item_line = embed["description"].split(f"**{name}**")[1]
            assert (MAX_MONEY if not symbol else f"{SYMBOL}10,000,000,000.00") in item_line.split("\n")[0]
            assert "1000000000 left · max 1000000 per member" in item_line
            assert f"<@&{w.vip_role.id}>" in item_line
            assert ("gift balance only" if i % 3 == 1 else "promo credit applies") in item_line
        assert "…" not in embed["description"]  # nothing cut
        assert len(embed["description"]) <= fit.DESCRIPTION
        assert embed_size(embed) <= fit.EMBEDS_TOTAL
        seen += shown
        if page < pages:
            turned = await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
            assert not turned.rejections
    assert seen == order  # every item exactly once, in the shop's order
    assert rec.message.component(button(rec, "pager:next:")).get("disabled")  # the last page


async def test_shop_filtered_by_the_longest_category(world: World):
    w = world
    await longest_currency(w)
    category = long_category(7)
    for i in range(12):
        await add_longest_item(w, i, category=category)
    await add_longest_item(w, 99)  # another category: not shown

    rec = await w.run(w.alice, "shop", category=category.upper())
    (embed,) = rec.message.embeds
    assert embed["title"] == f"Shop: {category.upper()}"  # whole, as typed
    assert embed["footer"]["text"] == "Buy with /buy · page 1 of 3"
    assert names_on(rec) == [long_name(i) for i in range(5)]
    assert long_name(99) not in text_of(rec)

    empty = await w.run(w.alice, "shop", category="z" * limits.CATEGORY)
    (embed,) = empty.message.embeds
    assert embed["title"] == "Shop: " + "z" * limits.CATEGORY
    assert embed["description"] == f"No items in `{'z' * limits.CATEGORY}`. Try `/shop` without a category."


# autocompletes -----------------------------------------------------------------------------------
async def test_item_and_category_autocompletes_with_the_longest_data(world: World):
    w = world
    await longest_currency(w)
    items = [await add_longest_item(w, i, category=long_category(i), stock=0 if i % 2 else 5) for i in range(30)]

    choices = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {"item": ""}, focused="item")
    assert len(choices) == fit.CHOICES
    by_id = {str(item.id): item for item in items}
    for choice in choices:
        item = by_id[choice["value"]]
        label = choice["name"]
        assert len(label) <= fit.CHOICE_NAME
        name_part, rest = label.split(" — ", 1)
        assert name_part.endswith("…")  # cut visibly, not dropped
        assert item.name.startswith(name_part[:-1])
        assert len(name_part) >= 25  # the name keeps a useful share
        assert rest.startswith(MAX_MONEY + " (")  # the price always shows whole
        assert label.endswith(" · sold out") == (item.stock == 0)
    # Typing a whole 100-character name finds its item.
    [found] = await w.fake.autocomplete(w.guild.id, w.alice.id, "buy", {"item": long_name(4)}, focused="item")
    assert found["value"] == str(items[4].id)

    categories = await w.fake.autocomplete(w.guild.id, w.alice.id, "shop", {}, focused="category")
    assert len(categories) == fit.CHOICES
    assert all(c["name"] == c["value"] and c["value"] in {long_category(i) for i in range(30)} for c in categories)

    await w.ledger.remove_item(w.guild.id, items[3].id, actor_id=w.mod.id, key="rm")
    edit = await w.fake.autocomplete(w.guild.id, w.mod.id, "shopadmin edit", {"item": long_name(3)}, focused="item")
    assert edit == [
        {"name": long_name(3)[: fit.CHOICE_NAME - len(" (removed)") - 1] + "… (removed)", "value": str(items[3].id)}
    ]
    everything = await w.fake.autocomplete(w.guild.id, w.mod.id, "shopadmin remove", {"item": ""}, focused="item")
    assert len(everything) == fit.CHOICES
    assert all(len(c["name"]) <= fit.CHOICE_NAME for c in everything)


# /buy: preview, receipt, /orders ---------------------------------------------------------------------
@pytest.mark.parametrize("symbol", ["", SYMBOL], ids=["long-name", "name-and-symbol"])
async def test_buy_preview_and_receipt_of_100_of_the_longest_item(world: World, symbol: str):
    w = world
    await longest_currency(w, symbol)

    def m(minor: int) -> str:
        whole, cents = divmod(minor, 100)
        return f"{SYMBOL}{whole:,}.{cents:02}" if symbol else f"{whole:,}.{cents:02} {CURRENCY}"

    item = await add_longest_item(w, 1, price=9_999_999_999)  # 100 of them: 999,999,999,900
    total = 100 * 9_999_999_999
    await grant(w, w.alice, 5 * 10**11, "promo", expires="1d")
    await grant(w, w.alice, 2 * 10**11, "gift-soon", kind="gift", expires="2d")
    await grant(w, w.alice, MAX_AMOUNT, "gift-one-time", kind="gift", expires="3d", one_time=True)
    for n in range(3):
        await grant(w, w.alice, MAX_AMOUNT, f"gift-{n}", kind="gift")
    touched = total - 5 * 10**11 - 2 * 10**11

    preview = await w.run(w.alice, "buy", item=str(item.id), quantity=100)
    (embed,) = preview.message.embeds
    assert embed["title"] == f"Buy 100 × {item.name}?"
    assert fields(preview.message) == {
        "Price": m(total),
        "Promotional credit applied": m(5 * 10**11),
        "Gift balance applied": m(total - 5 * 10**11),
        "Forfeited": f"{m(MAX_AMOUNT - touched)} of one-time credit this purchase touches but does not use",
        "Balance after": m(3 * MAX_AMOUNT),
        "You get the role": f"<@&{w.vip_role.id}>",
    }

    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    await click.wait_for_edit(1)
    (receipt,) = click.message.embeds
    assert receipt["title"] == f"Order #1: 100 × {item.name}"
    assert fields(click.message) == {
        "Paid": m(total),
        "Promotional credit": m(5 * 10**11),
        "Gift balance": m(total - 5 * 10**11),
        "Forfeited": m(MAX_AMOUNT - touched),
    }
    assert receipt["description"] == f"You now have <@&{w.vip_role.id}>."
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 3 * MAX_AMOUNT


@pytest.mark.parametrize("symbol", ["", SYMBOL], ids=["long-name", "name-and-symbol"])
async def test_a_changed_plan_at_its_longest_shows_the_new_preview_and_what_changed(world: World, symbol: str):
    """Price, promo, gift and forfeit all changed, at the largest amounts and the longest name and
    currency: the new preview and its "what changed" line fit one message, and Confirm buys it."""
    w = world
    await longest_currency(w, symbol)

    def m(minor: int) -> str:
        whole, cents = divmod(minor, 100)
        return f"{SYMBOL}{whole:,}.{cents:02}" if symbol else f"{whole:,}.{cents:02} {CURRENCY}"

    item = await add_longest_item(w, 1, price=9_999_999_999)
    await grant(w, w.alice, 5 * 10**11, "promo", expires="1d")
    await grant(w, w.alice, MAX_AMOUNT, "gift", kind="gift")
    preview = await w.run(w.alice, "buy", item=str(item.id), quantity=100)
    assert "Forfeited" not in fields(preview.message)

    await w.ledger.edit_item(w.guild.id, item.id, actor_id=w.mod.id, key="price", price=9_999_999_998)
    await grant(w, w.alice, MAX_AMOUNT, "once", expires="1h", one_time=True)  # used first, mostly forfeited
    new_total = 100 * 9_999_999_998
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    message = await click.wait_for_edit(1)
    assert not click.rejections
    assert message.content == (
        f"Nothing was charged. The price of **{item.name}** changed since the preview: now {m(9_999_999_998)} "
        f"each instead of {m(9_999_999_999)}. This purchase would now use {m(new_total)} of promotional credit "
        f"instead of {m(5 * 10**11)} and {m(0)} of gift balance instead of {m(100 * 9_999_999_999 - 5 * 10**11)}, "
        f"and forfeit {m(MAX_AMOUNT - new_total)} of one-time credit instead of nothing. Check the new preview below."
    )
    assert len(message.content) <= fit.CONTENT
    (embed,) = message.embeds
    assert embed["title"] == f"Buy 100 × {item.name}?"
    assert embed_size(embed) <= 6000
    assert fields(message)["Price"] == m(new_total)
    assert fields(message)["Forfeited"].startswith(m(MAX_AMOUNT - new_total))

    done = await w.fake.click(message, button(message, "buy:confirm:"), w.alice.id)
    await done.wait_for_edit(2)
    assert fields(done.message) == {
        "Paid": m(new_total),
        "Promotional credit": m(new_total),
        "Gift balance": m(0),
        "Forfeited": m(MAX_AMOUNT - new_total),
    }


async def test_orders_of_the_longest_items_page_whole_lines(world: World):
    w = world
    await longest_currency(w)
    for n in range(25):
        await grant(w, w.alice, MAX_AMOUNT, f"g{n}", kind="gift")
    items = [await add_longest_item(w, i, price=10**10, role_id=None) for i in range(25)]
    for n, item in enumerate(items):
        await w.ledger.checkout(w.guild.id, w.alice.id, item.id, 100, key=f"buy{n}")
    for order_id in (25, 20, 3):
        await w.ledger.refund(w.guild.id, order_id, actor_id=w.mod.id, key=f"rf{order_id}", reason=long_reason())

    rec = await w.run(w.alice, "orders")
    seen = []
    pages = math.ceil(25 / ORDERS_PAGE)
    for page in range(1, pages + 1):
        (embed,) = rec.message.embeds
        assert embed["footer"]["text"] == f"Page {page} of {pages}"
        lines = embed["description"].split("\n")
        assert len(lines) == (ORDERS_PAGE if page < pages else 25 - ORDERS_PAGE * (pages - 1))
        for line in lines:
            order_id = int(re.match(r"`#(\d+)`", line).group(1))
            assert f" · 100 × {items[order_id - 1].name} · {MAX_MONEY}" in line
            status = "refunded" if order_id in (25, 20, 3) else "completed"  # every order says its status
            assert line.endswith(f" · **{status}**"), line
            seen.append(order_id)
        if page < pages:
            await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
    assert seen == list(range(25, 0, -1))


# /shopadmin add, edit, remove, refund with the audit channel set -------------------------------------
async def test_shopadmin_add_edit_remove_with_the_longest_data_answer_and_audit_in_full(world: World):
    w = world
    await longest_currency(w)
    await audit_on(w)
    name, category, description = long_name(1), long_category(1), long_description(1)

    added = await w.run(
        w.mod,
        "shopadmin add",
        name=name,
        price="10,000,000,000.00",
        category=category,
        stock=10**9,
        role=w.vip_role.id,
        limit=10**6,
        description=description,
    )
    text = added.message.content
    assert text == (
        f"Added to the shop: **{name}** — {MAX_MONEY} · `{category}` · promo credit applies · 1000000000 left"
        f" · max 1000000 per member · gives <@&{w.vip_role.id}>\n{description}"
    )
    (item,) = await w.ledger.items(w.guild.id)
    await w.fake.wait_for(lambda: len(audit_posts(w)) == 1, what="the audit post of the add")
    assert audit_posts(w)[-1]["title"] == "Shop item added"
    assert audit_posts(w)[-1]["description"] == text  # whole, not cut

    new_name, new_category, new_description = long_name(2), long_category(2), long_description(2)
    edited = await w.run(
        w.mod,
        "shopadmin edit",
        item=str(item.id),
        name=new_name,
        price="9,999,999,999.99",
        category=new_category,
        description=new_description,
        active=False,
    )
    text = edited.message.content
    assert text.startswith(f"Updated: **{new_name}** — 9,999,999,999.99 {CURRENCY} · `{new_category}`")
    assert text.endswith(f"\n{new_description} (not in the shop)")
    await w.fake.wait_for(lambda: len(audit_posts(w)) == 2, what="the audit post of the edit")
    assert (audit_posts(w)[-1]["title"], audit_posts(w)[-1]["description"]) == ("Shop item edited", text)

    await w.run(w.mod, "shopadmin edit", item=new_name, active=True)
    removed = await w.run(w.mod, "shopadmin remove", item=new_name)
    text = removed.message.content
    assert text == (f"**{new_name}** is no longer sold. Orders of it stay in the books and can still be refunded.")
    await w.fake.wait_for(lambda: len(audit_posts(w)) == 4, what="the audit post of the remove")
    assert (audit_posts(w)[-1]["title"], audit_posts(w)[-1]["description"]) == ("Shop item removed", text)
    assert all(embed_size(e) <= fit.EMBEDS_TOTAL for e in audit_posts(w))


async def test_shopadmin_refund_of_the_longest_order_with_expired_and_revoked_credit(world: World):
    w = world
    await longest_currency(w)
    await audit_on(w)
    item = await add_longest_item(w, 5, price=10**10)  # 100 of them: the most one order may cost
    # Allocation order: the promo lot, then the gift lot that expires first, then the other one.
    await grant(w, w.alice, 3 * 10**11, "soon", expires="1d")  # expired by the refund
    await grant(w, w.alice, 4 * 10**11, "gift", kind="gift", expires="30d")  # comes back
    revoked = await grant(w, w.alice, MAX_AMOUNT, "later", kind="gift")  # 3 * 10**11 used, then revoked
    preview = await w.run(w.alice, "buy", item=str(item.id), quantity=100)
    await (await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)).wait_for_edit(1)
    await w.fake.wait_for(lambda: w.vip_role.id in w.fake.member(w.guild.id, w.alice.id).roles, what="the role")
    await w.ledger.revoke(
        w.guild.id, w.alice.id, lot_id=revoked.first_lot_id, reason="abuse", actor_id=w.mod.id, key="rv"
    )
    w.clock.advance(days=2)

    reason = long_reason()
    rec = await w.finished(await w.run(w.mod, "shopadmin refund", order=1, reason=reason))
    text = rec.followups[0].content
    assert text == (
        f"Order `#1` (100 × {item.name}) of <@{w.alice.id}> refunded: 4,000,000,000.00 {CURRENCY} back to their "
        f"balance. 3,000,000,000.00 {CURRENCY} had expired meanwhile and stays expired. 3,000,000,000.00 {CURRENCY}"
        f" came from revoked credit and stays revoked. <@&{w.vip_role.id}> removed."
    )
    assert (await w.ledger.order(w.guild.id, 1)).status == "refunded"
    await w.fake.wait_for(lambda: any(p["title"] == "Order refunded" for p in audit_posts(w)), what="the audit")
    post = audit_posts(w)[-1]
    assert post["description"] == text
    assert post["fields"] == [{"name": "Reason", "value": reason, "inline": True}]


# the truth about a committed purchase whose answer failed ------------------------------------------------
async def preview_of(w: World, *, role: bool = False):
    await grant(w, w.alice, 100, "p1")
    item = await w.ledger.add_item(
        w.guild.id,
        long_name(1),
        60,
        "gear",
        actor_id=w.mod.id,
        key="item",
        role_id=w.vip_role.id if role else None,
    )
    return item, await w.run(w.alice, "buy", item=str(item.id))


def bought(item) -> str:
    return f"You bought 1 × {item.name} for 60 credits (order #1)."


async def test_confirm_whose_edit_is_refused_tells_the_member_what_was_bought(world: World):
    w = world
    item, preview = await preview_of(w)
    w.fake.fail_next("PATCH", ORIGINAL, status=400, code=50035, message="Invalid Form Body")
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    told = await click.wait_for_followup(1)
    assert told.ephemeral
    assert_told_what_was_done(told.content, bought(item))
    assert [o.status for o in (await w.ledger.orders(w.guild.id, w.alice.id)).items] == ["completed"]
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 40


async def test_confirm_after_the_token_expired_tells_the_member_by_dm(world: World):
    w = world
    item, preview = await preview_of(w)
    w.fake.interaction_token_lifetime = 0  # the click's edit and any followup get 401 50027
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="the DM")
    (dm,) = w.fake.dms(w.alice.id)
    assert_told_what_was_done(dm.content, bought(item))
    assert 50027 in click.rejection_codes
    assert click.followups == []
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1


async def test_confirm_refunded_automatically_whose_edit_is_refused_says_so(world: World):
    w = world
    item, preview = await preview_of(w, role=True)
    w.fake.fail_next("PUT", ROLE_PUT, 403, 50013)
    w.fake.fail_next("PATCH", ORIGINAL, status=400, code=50035, message="Invalid Form Body")
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    told = await click.wait_for_followup(1)
    assert_told_what_was_done(
        told.content, f"Order #1 (1 × {item.name}) was paid and then refunded automatically: 60 credits is back"
    )
    assert [o.status for o in (await w.ledger.orders(w.guild.id, w.alice.id)).items] == ["refunded"]
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100


async def test_two_confirm_clicks_whose_edits_both_fail_are_both_told_what_was_bought(world: World):
    """The second click shows the first click's purchase: its failure must not say "nothing"."""
    w = world
    item, preview = await preview_of(w)
    w.fake.fail_next("PATCH", ORIGINAL, status=400, code=50035, message="Invalid Form Body", times=2)
    confirm = button(preview, "buy:confirm:")
    clicks = await asyncio.gather(*(w.fake.click(preview, confirm, w.alice.id) for _ in range(2)))
    for click in clicks:
        assert_told_what_was_done((await click.wait_for_followup(1)).content, bought(item))
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1


async def test_confirm_whose_acknowledgement_is_refused_buys_nothing_and_says_so(world: World):
    w = world
    _, preview = await preview_of(w)
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    confirm = button(preview, "buy:confirm:")
    click = await w.fake.click(preview, confirm, w.alice.id)
    await click.wait_until(lambda r: r.acknowledged)
    assert NOTHING in text_of(click).casefold()
    assert "Error id" in text_of(click)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 0
    # True: nothing was bought, and the preview still works.
    again = await w.fake.click(preview, confirm, w.alice.id)
    await again.wait_for_edit(1)
    assert "Order #1: 1 ×" in text_of(again)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1


async def test_a_new_preview_whose_edit_is_refused_charges_nothing_and_the_old_preview_retries(world: World):
    w = world
    _, preview = await preview_of(w)
    await grant(w, w.alice, 5, "p2", expires="1h")  # now used first: the plan changed
    w.fake.fail_next("PATCH", ORIGINAL, status=400, code=50035, message="Invalid Form Body")
    confirm = button(preview, "buy:confirm:")
    click = await w.fake.click(preview, confirm, w.alice.id)
    told = await click.wait_for_followup(1)
    assert NOTHING in told.content.casefold()  # true: nothing was bought
    assert "Error id" in told.content
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 0
    again = await w.fake.click(preview, confirm, w.alice.id)  # the old buttons are still there and work
    await again.wait_for_edit(1)
    assert "Your credit changed since the preview" in text_of(again)
    done = await w.fake.click(again, button(again, "buy:confirm:"), w.alice.id)
    await done.wait_for_edit(2)
    assert "Order #1: 1 ×" in text_of(done)
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert (order.promo_applied, order.gift_applied) == (60, 0)


async def test_confirm_too_late_to_acknowledge_buys_nothing_and_claims_nothing(
    world: World, caplog: pytest.LogCaptureFixture
):
    w = world
    caplog.set_level(logging.INFO)
    _, preview = await preview_of(w)
    w.fake.interaction_timeout = 0  # the defer gets 10062
    confirm = button(preview, "buy:confirm:")
    late = await w.fake.click(preview, confirm, w.alice.id)
    await w.fake.wait_for(
        lambda: any(f"interaction {late.id} expired" in r.getMessage() for r in caplog.records),
        what="the bot's decision about the expired click",
    )
    assert late.rejection_codes == [10062]
    assert late.followups == []
    assert w.fake.dms(w.alice.id) == []
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 0
    w.fake.interaction_timeout = 3.0
    again = await w.fake.click(preview, confirm, w.alice.id)
    await again.wait_for_edit(1)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).total == 1
    assert w.fake.dms(w.alice.id) == []


# the truth about a committed refund or item change whose answer failed ------------------------------------
async def bought_order(w: World) -> int:
    await grant(w, w.alice, 100, "p1")
    item = await w.ledger.add_item(w.guild.id, long_name(1), 60, "gear", actor_id=w.mod.id, key="item")
    order = await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    return order.id


async def test_refund_whose_answer_is_refused_tells_the_moderator_it_was_made(world: World):
    w = world
    await audit_on(w)
    order_id = await bought_order(w)
    w.fake.fail_next("POST", FOLLOWUP, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, "shopadmin refund", order=order_id, reason=long_reason())
    told = await rec.wait_for_followup(1)
    assert told.ephemeral
    assert_told_what_was_done(told.content, f"Order `#{order_id}` (1 × {long_name(1)}) of <@{w.alice.id}> refunded")
    assert (await w.ledger.order(w.guild.id, order_id)).status == "refunded"
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100
    await w.fake.wait_for(lambda: len(audit_posts(w)) == 1, what="the audit post, answer or not")
    assert audit_posts(w)[0]["title"] == "Order refunded"


async def test_refund_after_the_token_expired_tells_the_moderator_by_dm(world: World):
    w = world
    order_id = await bought_order(w)
    w.fake.interaction_token_lifetime = 0
    rec = await w.run(w.mod, "shopadmin refund", order=order_id)
    await w.fake.wait_for(lambda: w.fake.dms(w.mod.id), what="the DM")
    (dm,) = w.fake.dms(w.mod.id)
    assert_told_what_was_done(dm.content, f"Order `#{order_id}`", "refunded: 60 credits back to their balance.")
    assert 50027 in rec.rejection_codes
    assert (await w.ledger.order(w.guild.id, order_id)).status == "refunded"


async def test_refund_whose_acknowledgement_is_refused_refunds_nothing_and_says_so(world: World):
    w = world
    order_id = await bought_order(w)
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, "shopadmin refund", order=order_id)
    await rec.wait_until(lambda r: r.acknowledged)
    assert NOTHING in text_of(rec).casefold()
    assert (await w.ledger.order(w.guild.id, order_id)).status == "completed"


@pytest.mark.parametrize("command", ["shopadmin add", "shopadmin edit", "shopadmin remove"])
async def test_item_changes_whose_answer_fails_say_what_was_done(world: World, command: str):
    w = world
    await audit_on(w)
    item = await w.ledger.add_item(w.guild.id, long_name(1), 60, "gear", actor_id=w.mod.id, key="item")
    options, done, title = {
        "shopadmin add": (
            {"name": long_name(2), "price": "5", "category": "gear"},
            f"Added to the shop: **{long_name(2)}**",
            "Shop item added",
        ),
        "shopadmin edit": (
            {"item": str(item.id), "price": "7"},
            f"Updated: **{long_name(1)}** — 7 credits",
            "Shop item edited",
        ),
        "shopadmin remove": ({"item": str(item.id)}, f"**{long_name(1)}** is no longer sold.", "Shop item removed"),
    }[command]
    # Refused: told at once, in the answer's place.
    w.fake.fail_next("POST", CALLBACK, status=400, code=50035, message="Invalid Form Body")
    rec = await w.run(w.mod, command, **options)
    await rec.wait_until(lambda r: r.acknowledged)
    assert rec.ephemeral
    assert_told_what_was_done(rec.message.content, done)
    items = {i.name: i for i in await w.ledger.items(w.guild.id, include_inactive=True)}
    if command == "shopadmin add":
        assert long_name(2) in items
    elif command == "shopadmin edit":
        assert items[long_name(1)].price == 7
    else:
        assert not items[long_name(1)].active
    await w.fake.wait_for(lambda: len(audit_posts(w)) == 1, what="the audit post, answer or not")
    assert audit_posts(w)[0]["title"] == title
    assert done in audit_posts(w)[0]["description"]


async def test_item_added_too_late_to_answer_is_told_by_dm(world: World):
    w = world
    w.fake.interaction_timeout = 0
    rec = await w.run(w.mod, "shopadmin add", name=long_name(3), price="5", category="gear")
    await w.fake.wait_for(lambda: w.fake.dms(w.mod.id), what="the DM")
    assert rec.rejection_codes == [10062]
    assert_told_what_was_done(w.fake.dms(w.mod.id)[0].content, f"Added to the shop: **{long_name(3)}**")
    assert [i.name for i in await w.ledger.items(w.guild.id)] == [long_name(3)]
