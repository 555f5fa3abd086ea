"""Staff orders end to end through the fake Discord (SPEC §3 "Delivery and fulfilment"): the post in
the fulfilment channel with Fulfil / Deny, the deny modal, the member's DMs, the post's edits, the
moderator check at every click, two moderators pressing at once, /fulfil queue | done | deny, the
member's Cancel button and /cancel, and buttons that still work after a restart."""

from __future__ import annotations

import asyncio

import pytest

from fakediscord import InvalidInvocation, Perm
from tests import rawsql
from tests.e2e import Restart, World, button, db_dump, refused, text_of

NOT_A_MODERATOR = "This command is for moderators"


# helpers -------------------------------------------------------------------------------------------
async def staff_item(w: World, name: str = "Custom emoji", price: int = 60, **kw):
    return await w.ledger.add_item(
        w.guild.id, name, price, "perks", actor_id=w.mod.id, key=f"item:{name}", delivery="staff", **kw
    )


async def fulfilment_channel(w: World) -> int:
    channel = w.fake.add_channel(w.guild.id, "orders")
    await w.fake.wait_for(lambda: w.bot.get_channel(channel.id) is not None, what="the channel in the cache")
    rec = await w.run(w.mod, "settings fulfilment", channel=channel.id)
    assert f"<#{channel.id}>" in text_of(rec), text_of(rec)
    return channel.id


async def order(w: World, member=None, item=None) -> int:
    """/buy and Confirm; the order's id (pending when the item is a staff item)."""
    member = member or w.alice
    preview = await w.run(member, "buy", item=str(item.id))
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), member.id)
    await click.wait_for_edit(1)
    orders = await w.ledger.orders(w.guild.id, member.id)
    assert orders.total >= 1, text_of(click)
    return orders.items[0].id


def recorded_post(w: World, order_id: int) -> int | None:
    with rawsql.connect(w.settings) as db:
        row = db.execute("SELECT post_message_id FROM orders WHERE id = ?", (order_id,)).fetchone()
    return row[0] if row else None


async def post_of(w: World, channel_id: int, order_id: int):
    """The order's post, once the delivery worker made it and recorded where it is."""
    await w.fake.wait_for(lambda: recorded_post(w, order_id) is not None, what=f"the post of order #{order_id}")
    post = w.fake.message(recorded_post(w, order_id))
    assert post.channel_id == channel_id
    return post


async def click(w: World, message, custom_id: str, user) -> str:
    """Click and wait for the (deferred) private answer; its text."""
    rec = await w.fake.click(message, custom_id, user.id)
    await w.finished(rec)
    assert rec.ephemeral, text_of(rec)
    return text_of(rec)


async def status(w: World, order_id: int) -> str:
    found = await w.ledger.order(w.guild.id, order_id)
    assert found is not None
    return found.status


def deliveries(w: World, order_id: int) -> dict[str, tuple[str, str | None]]:
    with rawsql.connect(w.settings) as db:
        rows = db.execute("SELECT action, status, reason FROM deliveries WHERE order_id = ?", (order_id,)).fetchall()
    return {action: (state, reason) for action, state, reason in rows}


async def settled(w: World) -> None:
    """Until the delivery worker has carried out everything due (before comparing database dumps)."""

    def quiet() -> bool:
        with rawsql.connect(w.settings) as db:
            return db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'pending'").fetchone() == (0,)

    await w.fake.wait_for(quiet, what="the deliveries to settle")


async def edited(w: World, message, n: int = 1) -> None:
    await w.fake.wait_for(lambda: len(message.edits) >= n, what="the post's edit")


async def balance(w: World, member=None) -> int:
    return (await w.ledger.balance(w.guild.id, (member or w.alice).id)).total


@pytest.fixture
async def shop(world: World):
    """alice has 100 credits; a staff item of 60; a fulfilment channel. (world, item, channel id)"""
    w = world
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key="credit")
    await w.ledger.grant(w.guild.id, w.bob.id, 100, actor_id=w.mod.id, key="credit-bob")
    item = await staff_item(w)
    channel_id = await fulfilment_channel(w)
    return w, item, channel_id


# the post, Fulfil, Deny --------------------------------------------------------------------------------
async def test_a_staff_order_waits_is_posted_and_a_moderator_fulfils_it_with_the_button(shop):
    w, item, channel_id = shop
    preview = await w.run(w.alice, "buy", item=str(item.id))
    assert "By the staff" in text_of(preview)  # the preview says how it is delivered
    confirm = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    await confirm.wait_for_edit(1)
    receipt = text_of(confirm.message)
    assert "(waiting for staff)" in receipt, receipt
    assert "/cancel" in receipt, receipt
    [placed] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert placed.status == "pending"
    assert await balance(w) == 40

    post = await post_of(w, channel_id, placed.id)
    assert post.custom_ids == [f"order:fulfil:{placed.id}", f"order:deny:{placed.id}"]
    text = text_of(post)
    assert f"Order #{placed.id}: 1 × Custom emoji" in text
    assert f"<@{w.alice.id}>" in text
    assert "60 credits" in text
    assert (await w.ledger.order(w.guild.id, placed.id)).post_message_id == post.id

    answer = await click(w, post, f"order:fulfil:{placed.id}", w.mod)
    assert f"Order `#{placed.id}`" in answer, answer
    assert "is fulfilled" in answer, answer
    assert "told by DM" in answer, answer
    assert await status(w, placed.id) == "fulfilled"
    assert await balance(w) == 40
    await edited(w, post)
    assert post.custom_ids == []  # the buttons go
    assert f"Fulfilled by <@{w.mod.id}> <t:" in text_of(post), text_of(post)
    [dm] = w.fake.dms(w.alice.id)
    assert f"Your order #{placed.id} (1 × Custom emoji) in **Shop Guild** was fulfilled" in dm.content
    with pytest.raises(InvalidInvocation):  # no buttons left to press
        await w.fake.click(post, f"order:fulfil:{placed.id}", w.mod.id)
    orders = await w.run(w.alice, "orders")
    assert "**fulfilled**" in text_of(orders)
    assert orders.custom_ids == []


async def test_deny_asks_for_the_reason_refunds_and_tells_the_member_why(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    opened = await w.fake.click(post, f"order:deny:{placed}", w.mod.id)
    assert opened.response_type == 9
    assert opened.modal is not None
    assert await status(w, placed) == "pending"
    reason = "Out of stock this month, sorry @everyone <@&1>"
    submitted = await w.fake.submit_modal(opened, {"reason": reason})
    await w.finished(submitted)
    answer = text_of(submitted)
    assert submitted.ephemeral, answer
    assert "is denied: 60 credits back to their balance" in answer, answer
    assert await status(w, placed) == "refunded"
    assert await balance(w) == 100
    await edited(w, post)
    assert post.custom_ids == []
    assert f"Refunded by <@{w.mod.id}>" in text_of(post)
    assert reason in text_of(post)
    [dm] = w.fake.dms(w.alice.id)
    assert "was denied by the staff: " + reason in dm.content
    assert "60 credits you paid went back" in dm.content
    # The reason mentions @everyone and a role: nothing pings, in the DM or anywhere else.
    sent = [r for r in w.fake.requests_to("POST", r"^/channels/\d+/messages$") if r.json]
    assert sent, [r.json for r in sent]
    assert all(r.json.get("allowed_mentions") == {"parse": []} for r in sent), [r.json for r in sent]
    orders = await w.run(w.alice, "orders")
    assert "**refunded**" in text_of(orders)
    assert reason in text_of(orders)


async def test_every_action_is_audited_with_its_actor(shop):
    w, item, channel_id = shop
    await w.run(w.mod, "settings auditlog", channel=w.audit_channel_id)
    first, second = await order(w, item=item), await order(w, w.bob, item)
    await click(w, await post_of(w, channel_id, first), f"order:fulfil:{first}", w.mod)
    rec = await w.run(w.mod, "fulfil deny", order=second, reason="Duplicate order")
    await w.finished(rec)
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(w.audit_channel_id)) >= 3, what="the audit posts")
    titles = [m.embeds[0]["title"] for m in w.fake.channel_messages(w.audit_channel_id)]
    assert titles[-2:] == ["Order fulfilled", "Order denied"], titles
    denied = w.fake.channel_messages(w.audit_channel_id)[-1]
    assert "Duplicate order" in denied.embed_text
    assert f"#{second}" in denied.embed_text
    with rawsql.connect(w.settings) as db:
        actions = db.execute("SELECT actor_id, action FROM audit_log ORDER BY id").fetchall()
    assert (w.mod.id, "fulfil") in actions, actions
    assert (w.mod.id, "deny") in actions, actions


# the moderator check, at every click ------------------------------------------------------------------
async def test_only_moderators_can_use_the_buttons_checked_again_at_every_click(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    await settled(w)
    before = db_dump(w)
    for custom_id in (f"order:fulfil:{placed}", f"order:deny:{placed}"):
        answer = await click(w, post, custom_id, w.bob)  # a member sees the post's buttons too
        assert NOT_A_MODERATOR in answer, answer
        assert "Error id" not in answer, answer
    w.fake.set_member_roles(w.guild.id, w.mod.id, [])  # the moderator lost the role meanwhile
    await w.fake.wait_for(lambda: not w.bot.get_guild(w.guild.id).get_member(w.mod.id).roles[1:])
    assert NOT_A_MODERATOR in await click(w, post, f"order:fulfil:{placed}", w.mod)
    assert db_dump(w) == before
    assert post.edits == []
    assert w.fake.dms(w.alice.id) == []
    # A member with the moderator role set by /settings modrole may.
    helpers = w.fake.add_role(w.guild.id, "Helpers", position=3)
    w.fake.set_member_roles(w.guild.id, w.bob.id, [helpers.id])
    await w.ledger.update_settings(w.guild.id, actor_id=w.owner.id, key="modrole", mod_role_id=helpers.id)
    await w.fake.wait_for(lambda: len(w.bot.get_guild(w.guild.id).get_member(w.bob.id).roles) == 2)
    assert "is fulfilled" in await click(w, post, f"order:fulfil:{placed}", w.bob)


async def test_a_modal_submitted_after_losing_the_role_is_refused(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    opened = await w.fake.click(post, f"order:deny:{placed}", w.mod.id)
    w.fake.set_member_roles(w.guild.id, w.mod.id, [])
    await w.fake.wait_for(lambda: not w.bot.get_guild(w.guild.id).get_member(w.mod.id).roles[1:])
    submitted = await w.fake.submit_modal(opened, {"reason": "no"})
    await w.finished(submitted)
    assert NOT_A_MODERATOR in text_of(submitted)
    assert await status(w, placed) == "pending"


# two moderators at once -----------------------------------------------------------------------------------
async def test_two_moderators_pressing_at_once_act_once_and_the_second_is_told_who_was_first(shop):
    w, item, channel_id = shop
    second_mod = w.fake.add_member(w.guild.id, name="mod2", roles=[w.mod_role.id])
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_member(second_mod.id) is not None)
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    clicks = [await w.fake.click(post, f"order:fulfil:{placed}", who.id, wait=False) for who in (w.mod, second_mod)]
    await asyncio.gather(*(c.wait_for_response() for c in clicks))
    await asyncio.gather(*(w.finished(c) for c in clicks))
    texts = [text_of(c) for c in clicks]
    winners = [t for t in texts if "is fulfilled" in t]
    losers = [t for t in texts if "already fulfilled by" in t]
    assert len(winners) == 1, texts
    assert len(losers) == 1, texts
    first = (await w.ledger.order(w.guild.id, placed)).acted_by
    assert first in (w.mod.id, second_mod.id)
    assert f"already fulfilled by <@{first}> <t:" in losers[0]
    assert "Error id" not in losers[0]
    await settled(w)
    assert len(w.fake.dms(w.alice.id)) == 1
    assert len(post.edits) == 1
    with rawsql.connect(w.settings) as db:
        assert db.execute("SELECT COUNT(*) FROM audit_log WHERE action = 'fulfil'").fetchone() == (1,)


async def test_fulfil_and_deny_at_once_act_once(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    queue = await w.run(w.mod, "fulfil queue")  # open before anyone acts: its buttons go stale
    opened = await w.fake.click(post, f"order:deny:{placed}", w.mod.id)  # writing the reason …
    answer = await click(w, post, f"order:fulfil:{placed}", w.owner)  # … while the owner fulfils it
    assert "is fulfilled" in answer
    submitted = await w.fake.submit_modal(opened, {"reason": "Too late?"})
    await w.finished(submitted)
    assert f"already fulfilled by <@{w.owner.id}>" in text_of(submitted), text_of(submitted)
    assert await status(w, placed) == "fulfilled"
    assert await balance(w) == 40
    # And a Deny pressed on the stale queue says so at once, before any reason is asked for.
    late = await w.fake.click(queue, f"order:deny:{placed}", w.mod.id)
    assert late.modal is None, text_of(late)
    assert f"already fulfilled by <@{w.owner.id}>" in text_of(late), text_of(late)


async def test_a_member_cancelling_while_a_moderator_fulfils_is_one_or_the_other(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    listing = await w.run(w.alice, "orders")
    clicks = [
        await w.fake.click(post, f"order:fulfil:{placed}", w.mod.id, wait=False),
        await w.fake.click(listing, f"order:cancel:{placed}", w.alice.id, wait=False),
    ]
    await asyncio.gather(*(c.wait_for_response() for c in clicks))
    await asyncio.gather(*(w.finished(c) for c in clicks))
    fulfilled, cancelled = (text_of(c) for c in clicks)
    final = await status(w, placed)
    if final == "fulfilled":
        assert "is fulfilled" in fulfilled
        assert "can't be cancelled: it was fulfilled" in cancelled
        assert await balance(w) == 40
    else:
        assert final == "cancelled"
        assert "is cancelled" in cancelled
        assert "already cancelled by its buyer" in fulfilled
        assert await balance(w) == 100
    await settled(w)
    assert len(w.fake.dms(w.alice.id)) == 1
    assert len(post.edits) == 1


# /fulfil queue | done | deny ---------------------------------------------------------------------------------
async def test_queue_lists_pending_orders_oldest_first_in_pages_with_their_buttons(world: World):
    w = world  # no fulfilment channel: the queue is where staff orders wait
    item = await staff_item(w, price=1)
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key="credit")
    ids = [(await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key=f"buy{n}")).id for n in range(10)]
    await w.ledger.checkout(
        w.guild.id,
        w.alice.id,
        (await w.ledger.add_item(w.guild.id, "Sticker", 1, "fun", actor_id=w.mod.id, key="sticker")).id,
        key="instant",
    )
    rec = await w.run(w.mod, "fulfil queue")
    text = text_of(rec)
    assert rec.ephemeral, text
    assert "10 waiting" in text, text
    assert "page 1 of 3" in text, text
    assert [line.split("`")[1] for line in text.splitlines() if line.startswith("`#")] == [f"#{i}" for i in ids[:4]]
    routed = [c for c in rec.custom_ids if c.startswith("order:")]
    assert routed == [f"order:{a}:{i}" for i in ids[:4] for a in ("fulfil", "deny")]
    rows = rec.message.components
    assert len(rows) == 5
    assert [len(r["components"]) for r in rows] == [2, 2, 2, 2, 2]

    turned = await w.fake.click(rec, button(rec, "pager:next:"), w.mod.id)
    assert "page 2 of 3" in text_of(turned)
    assert [c for c in rec.custom_ids if c.startswith("order:fulfil")] == [f"order:fulfil:{i}" for i in ids[4:8]]
    # Fulfil from the queue page works as on a post.
    assert "is fulfilled" in await click(w, rec.message, f"order:fulfil:{ids[4]}", w.mod)
    last = await w.run(w.mod, "fulfil queue", page=3)
    assert "9 waiting" in text_of(last)
    assert "page 3 of 3" in text_of(last)
    assert [c for c in last.custom_ids if c.startswith("order:fulfil")] == [f"order:fulfil:{ids[9]}"]
    # A member can't open the queue, even with the command shown to them.
    await settled(w)
    await refused(w, w.bob, "fulfil queue", NOT_A_MODERATOR, enforce=False)


async def test_an_empty_queue_says_so(world: World):
    rec = await world.run(world.mod, "fulfil queue")
    assert "Nothing is waiting" in text_of(rec)
    assert rec.custom_ids == []


async def test_fulfil_done_and_deny_commands_with_order_autocomplete(shop):
    w, item, channel_id = shop
    first, second = await order(w, item=item), await order(w, w.bob, item)
    instant = await w.ledger.add_item(w.guild.id, "Sticker", 1, "fun", actor_id=w.mod.id, key="sticker")
    await order(w, item=instant)
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "fulfil done", {}, focused="order")
    assert [c["value"] for c in choices] == [first, second]  # pending ones, oldest first
    assert choices[0]["name"].startswith(f"#{first} · 1 × Custom emoji · alice")
    assert "60 credits" in choices[0]["name"]
    by_member = await w.fake.autocomplete(w.guild.id, w.mod.id, "fulfil deny", {"order": "bob"}, focused="order")
    assert [c["value"] for c in by_member] == [second]
    by_id = await w.fake.autocomplete(w.guild.id, w.mod.id, "fulfil deny", {"order": f"#{second}"}, focused="order")
    assert [c["value"] for c in by_id] == [second]
    assert (
        await w.fake.autocomplete(w.guild.id, w.bob.id, "fulfil done", {}, focused="order", enforce_permissions=False)
        == []
    )  # not to members

    done = await w.run(w.mod, "fulfil done", order=first, note="Check #emoji: it's live!")
    await w.finished(done)
    assert "is fulfilled" in text_of(done)
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="alice's DM")
    assert "Their note: Check #emoji: it's live!" in w.fake.dms(w.alice.id)[0].content
    post = await post_of(w, channel_id, first)
    await edited(w, post)
    assert "Check #emoji: it's live!" in text_of(post)
    denied = await w.run(w.mod, "fulfil deny", order=second, reason="Not eligible")
    await w.finished(denied)
    assert "is denied" in text_of(denied)
    assert await balance(w, w.bob) == 100
    again = await w.run(w.mod, "fulfil done", order=second)
    await w.finished(again)
    assert f"already refunded by <@{w.mod.id}>" in text_of(again)
    assert "Error id" not in text_of(again)
    await settled(w)
    await refused(w, w.mod, "fulfil done", "no order #999", order=999)
    not_staff = await w.run(w.mod, "fulfil done", order=3)
    await w.finished(not_staff)
    assert "not waiting for staff" in text_of(not_staff), text_of(not_staff)


# the member: Cancel and /cancel ----------------------------------------------------------------------------
async def test_a_member_cancels_with_the_button_in_orders(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    listing = await w.run(w.alice, "orders")
    assert "**waiting for staff**" in text_of(listing)
    assert listing.custom_ids == [f"order:cancel:{placed}"]
    answer = await click(w, listing.message, f"order:cancel:{placed}", w.alice)
    assert f"Order `#{placed}` (1 × Custom emoji) is cancelled: 60 credits is back in your balance" in answer
    assert await status(w, placed) == "cancelled"
    assert await balance(w) == 100
    await edited(w, post)
    assert post.custom_ids == []
    assert "Cancelled by the member" in text_of(post)
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="the DM")
    assert "is cancelled, as you asked" in w.fake.dms(w.alice.id)[0].content
    # The same button again (the page is still open): it says why not, and changes nothing.
    await settled(w)
    before = db_dump(w)
    again = await click(w, listing.message, f"order:cancel:{placed}", w.alice)
    assert "already cancelled" in again, again
    assert "Error id" not in again, again
    assert db_dump(w) == before


async def test_cancel_command_autocompletes_own_pending_orders_and_says_why_not(shop):
    w, item, _ = shop
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key="more")
    mine, theirs = await order(w, item=item), await order(w, w.bob, item)
    kept = await order(w, item=item)
    choices = await w.fake.autocomplete(w.guild.id, w.alice.id, "cancel", {}, focused="order")
    assert sorted(c["value"] for c in choices) == sorted([mine, kept])  # never bob's
    rec = await w.run(w.alice, "cancel", order=mine)
    await w.finished(rec)
    assert "is cancelled" in text_of(rec)
    await settled(w)
    await refused(w, w.alice, "cancel", f"no order #{theirs}", order=theirs)  # another member's
    await w.run(w.mod, "fulfil done", order=kept)
    rec = await w.run(w.alice, "cancel", order=kept)
    await w.finished(rec)
    assert "can't be cancelled: it was fulfilled" in text_of(rec), text_of(rec)
    assert await status(w, kept) == "fulfilled"
    choices = await w.fake.autocomplete(w.guild.id, w.alice.id, "cancel", {}, focused="order")
    assert choices == []


async def test_a_cancel_button_clicked_by_someone_else_cancels_nothing(shop):
    w, item, _ = shop
    placed = await order(w, item=item)
    listing = await w.run(w.alice, "orders")
    forged = await w.fake.click(listing, f"order:cancel:{placed}", w.bob.id, skip_client_checks=True)
    await w.finished(forged)
    assert f"no order #{placed}" in text_of(forged)
    assert await status(w, placed) == "pending"


# after a restart, and when Discord won't -------------------------------------------------------------------
async def test_buttons_work_after_a_restart(shop, restart: Restart):
    w, item, channel_id = shop
    first, second = await order(w, item=item), await order(w, w.bob, item)
    posts = [await post_of(w, channel_id, first), await post_of(w, channel_id, second)]
    listing = await w.run(w.bob, "orders")
    await restart()
    assert "is fulfilled" in await click(w, posts[0], f"order:fulfil:{first}", w.mod)
    opened = await w.fake.click(posts[1], f"order:deny:{second}", w.mod.id)
    assert opened.modal is not None
    await restart()  # a cancel button of a page opened before two restarts
    assert "is cancelled" in await click(w, listing.message, f"order:cancel:{second}", w.bob)


async def test_a_deleted_fulfilment_channel_leaves_the_order_waiting_in_the_queue(shop):
    w, item, channel_id = shop
    w.fake.delete_channel(channel_id)
    await w.fake.wait_for(lambda: w.bot.get_channel(channel_id) is None, what="CHANNEL_DELETE")
    placed = await order(w, item=item)
    await w.fake.wait_for(lambda: deliveries(w, placed).get("post_order", ("",))[0] == "failed", what="the post")
    assert deliveries(w, placed)["post_order"] == ("failed", "channel_gone")
    assert await status(w, placed) == "pending"
    assert await balance(w) == 40
    queue = await w.run(w.mod, "fulfil queue")
    assert f"order:fulfil:{placed}" in queue.custom_ids
    answer = await click(w, queue.message, f"order:fulfil:{placed}", w.mod)
    assert "is fulfilled" in answer
    assert deliveries(w, placed).get("edit_post", ("none",))[0] in ("none", "done")  # nothing to edit


async def test_a_post_deleted_by_hand_and_closed_dms_still_let_the_order_be_fulfilled(shop):
    w, item, channel_id = shop
    placed = await order(w, item=item)
    post = await post_of(w, channel_id, placed)
    w.fake.delete_message(post.id)
    w.fake.close_dms(w.alice.id)
    rec = await w.run(w.mod, "fulfil done", order=placed)
    await w.finished(rec)
    answer = text_of(rec)
    assert "is fulfilled" in answer, answer
    assert "could not be told by DM" in answer, answer
    assert "DMs" in answer, answer
    await w.fake.wait_for(lambda: deliveries(w, placed)["edit_post"][0] != "pending", what="the edit")
    assert deliveries(w, placed)["edit_post"] == ("done", "post_gone")
    assert deliveries(w, placed)["dm_fulfilled"] == ("failed", "dm_closed")
    assert await status(w, placed) == "fulfilled"
    assert await balance(w) == 40


async def test_the_bot_without_access_to_the_channel_is_refused_as_fulfilment_channel(world: World):
    w = world
    w.fake.set_bot_roles(w.guild.id, [])  # the bot keeps @everyone only, which can't embed links here
    w.fake.update_role(w.guild.id, w.guild.id, permissions=int(Perm.VIEW_CHANNEL))
    await w.fake.wait_for(lambda: not w.bot.get_guild(w.guild.id).me.guild_permissions.send_messages)
    await refused(w, w.mod, "settings fulfilment", "I can't post staff orders in", channel=w.audit_channel_id)


async def test_the_report_counts_the_staff_backlog(shop):
    w, item, _ = shop
    await order(w, item=item)
    await order(w, w.bob, item)
    rec = await w.run(w.mod, "credits report")
    await w.finished(rec)
    assert "2 orders, 120 credits paid: see /fulfil queue" in text_of(rec), text_of(rec)
