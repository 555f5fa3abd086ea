"""Fulfilment at its worst: the longest item names, notes, reasons, codes and amounts the bot
accepts, and many pending orders, through the real bot and the strict fake Discord (which fails the
test on any request Discord would refuse): the post and its edit, the DMs, the queue's pages and
buttons, /orders with a code and a reason on every line, and the autocomplete labels.

Bulk data is made through the ledger directly; every message under test comes from a command or a
delivery."""

from __future__ import annotations

import math

from bot.discordbot import fit
from bot.domain import limits
from bot.domain.money import MAX_AMOUNT
from cogs.fulfil import QUEUE_PAGE
from cogs.orders import ORDERS_PAGE
from tests import rawsql
from tests.e2e import World, button, text_of

CURRENCY = "golden dragon scales"  # 20 characters: the longest currency name


def long_name(i: int) -> str:
    """100 characters, unique per i, ending in a marker."""
    return (f"Item {i:03} of the longest names <@&1> **bold** " + "abcdefghij" * 10)[: limits.ITEM_NAME - 1] + "Z"


def long_text(marker: str, limit: int) -> str:
    """A note or reason as long as allowed, with markdown and mentions a member may type."""
    return (marker + " @everyone <@1> `tick` **bold** a long line " * 10)[: limit - 1] + "!"


def long_code(i: int) -> str:
    return (f"CODE{i:04}-" + "X" * limits.ITEM_CODE)[: limits.ITEM_CODE]


async def longest_world(w: World) -> int:
    """The longest currency, rich members, the audit channel on and a fulfilment channel."""
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, currency_name=CURRENCY, decimals=2)
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, audit_channel_id=w.audit_channel_id)
    channel = w.fake.add_channel(w.guild.id, "orders")
    await w.fake.wait_for(lambda: w.bot.get_channel(channel.id) is not None)
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key=None, fulfilment_channel_id=channel.id)
    for member in (w.alice, w.bob):
        for n in range(3):
            await w.ledger.grant(w.guild.id, member.id, MAX_AMOUNT, actor_id=w.mod.id, key=f"rich{member.id}:{n}")
    return channel.id


def sizes_fit(message) -> None:
    """What the fake checks too, spelled out: the embeds within Discord's limits."""
    total = 0
    for embed in message.embeds:
        assert len(embed.get("title", "")) <= fit.TITLE
        assert len(embed.get("description", "")) <= fit.DESCRIPTION
        for field in embed.get("fields") or []:
            assert len(field["value"]) <= fit.FIELD_VALUE
            assert len(field["name"]) <= fit.FIELD_NAME
            total += len(field["value"]) + len(field["name"])
        total += len(embed.get("title", "")) + len(embed.get("description", ""))
    assert total <= fit.EMBEDS_TOTAL
    assert len(message.content) <= fit.CONTENT


async def test_the_longest_staff_order_posted_fulfilled_and_denied(world: World):
    w = world
    channel_id = await longest_world(w)
    item = await w.ledger.add_item(
        w.guild.id,
        long_name(1),
        MAX_AMOUNT,
        "c" * limits.CATEGORY,
        actor_id=w.mod.id,
        key="item",
        delivery="staff",
        description="d" * limits.ITEM_DESCRIPTION,
    )
    ids = []
    for member in (w.alice, w.bob):
        preview = await w.run(member, "buy", item=str(item.id))
        confirm = await w.fake.click(preview, button(preview, "buy:confirm:"), member.id)
        await confirm.wait_for_edit(1)
        sizes_fit(confirm.message)
        ids.append((await w.ledger.orders(w.guild.id, member.id)).items[0].id)
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(channel_id)) == 2, what="both posts")
    posts = w.fake.channel_messages(channel_id)
    for post in posts:
        sizes_fit(post)
        assert long_name(1)[:50] in text_of(post) or "…" in text_of(post)

    note = long_text("NOTE", limits.ORDER_NOTE)
    done = await w.run(w.mod, "fulfil done", order=ids[0], note=note)
    await w.finished(done)
    assert "is fulfilled" in text_of(done)
    reason = long_text("WHY", limits.REASON)
    opened = await w.fake.click(posts[1], f"order:deny:{ids[1]}", w.mod.id)
    denied = await w.fake.submit_modal(opened, {"reason": reason})
    await w.finished(denied)
    assert "is denied" in text_of(denied)
    await w.fake.wait_for(lambda: all(p.edits for p in posts), what="both edits")
    assert note in text_of(posts[0])
    assert reason in text_of(posts[1])
    for post in posts:
        sizes_fit(post)
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id) and w.fake.dms(w.bob.id), what="the DMs")
    assert note in w.fake.dms(w.alice.id)[0].content
    assert reason in w.fake.dms(w.bob.id)[0].content
    for member in (w.alice, w.bob):
        listing = await w.run(member, "orders")
        sizes_fit(listing.message)
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(w.audit_channel_id)) >= 2, what="the audit posts")
    for post in w.fake.channel_messages(w.audit_channel_id):
        sizes_fit(post)


async def test_many_pending_orders_page_the_queue_and_the_autocomplete(world: World):
    w = world
    await longest_world(w)
    items = [
        await w.ledger.add_item(
            w.guild.id, long_name(i), MAX_AMOUNT // 10, "perks", actor_id=w.mod.id, key=f"i{i}", delivery="staff"
        )
        for i in range(3)
    ]
    count = 30
    for n in range(count):
        await w.ledger.checkout(w.guild.id, w.alice.id, items[n % 3].id, key=f"b{n}")
    pages = math.ceil(count / QUEUE_PAGE)
    rec = await w.run(w.mod, "fulfil queue")
    assert f"{count} waiting" in text_of(rec)
    assert f"page 1 of {pages}" in text_of(rec)
    seen = set()
    for page in range(1, pages + 1):
        if page > 1:
            await w.fake.click(rec, button(rec, "pager:next:"), w.mod.id)
        sizes_fit(rec.message)
        assert f"page {page} of {pages}" in text_of(rec)
        assert len(rec.message.components) <= 5
        seen |= {c for c in rec.custom_ids if c.startswith("order:fulfil:")}
    assert len(seen) == count  # every pending order reachable, each with its buttons
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "fulfil done", {}, focused="order")
    assert len(choices) == fit.CHOICES
    assert all(len(c["name"]) <= fit.CHOICE_NAME for c in choices)
    mine = await w.fake.autocomplete(w.guild.id, w.alice.id, "cancel", {}, focused="order")
    assert len(mine) == fit.CHOICES
    assert all(len(c["name"]) <= fit.CHOICE_NAME for c in mine)
    report = await w.run(w.mod, "credits report")
    await w.finished(report)
    assert f"{count} orders" in text_of(report)


async def test_orders_with_the_longest_codes_and_reasons_fit_every_page(world: World):
    w = world
    await longest_world(w)
    item = await w.ledger.add_item(
        w.guild.id, long_name(7), MAX_AMOUNT, "keys", actor_id=w.mod.id, key="item", delivery="code"
    )
    count = 2 * ORDERS_PAGE + 1
    await w.ledger.upload_codes(
        w.guild.id, item.id, "\n".join(long_code(i) for i in range(count)), actor_id=w.mod.id, key="codes"
    )
    for n in range(count):
        order = await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key=f"b{n}")
        await w.ledger.refund(
            w.guild.id, order.id, actor_id=w.mod.id, key=f"r{n}", reason=long_text(f"R{n}", limits.REASON)
        )
    rec = await w.run(w.alice, "orders")
    codes_seen = set()
    for page in range(1, 4):
        if page > 1:
            await w.fake.click(rec, button(rec, "pager:next:"), w.alice.id)
        sizes_fit(rec.message)
        text = text_of(rec)
        assert f"Page {page} of 3" in text
        assert "more" not in text
        codes_seen |= {c for c in (long_code(i) for i in range(count)) if c in text}
    assert len(codes_seen) == count  # every code whole, on some page
    with rawsql.connect(w.settings) as db:
        assert db.execute("SELECT COUNT(*) FROM item_codes WHERE order_id IS NOT NULL").fetchone() == (count,)
