"""Durable delivery end to end (SPEC §3): the real bot against the fake Discord. A purchase's role
and a refund's removal are recorded with the order and carried out by the delivery worker over
REST: rate limits and 5xx are retried on the backoff (the test's clock), an order whose role
cannot be given is refunded once and the member DMed, and nothing is delivered twice, also
when a restart comes mid-wait. (The real process, SIGKILLed mid-wait: tests/discordbot/test_process.py.)"""

from __future__ import annotations

import asyncio

from bot.domain import delivery as rules
from tests import rawsql
from tests.e2e import Restart, World, button, text_of

ROLE_PUT = r"/guilds/\d+/members/\d+/roles/\d+$"


async def setup_shop(w: World, *, stock: int | None = None):
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key="credit", expires="30d")
    return await w.ledger.add_item(
        w.guild.id, "VIP pass", 60, "perks", actor_id=w.mod.id, key="item", role_id=w.vip_role.id, stock=stock
    )


async def confirm(w: World, item) -> str:
    """/buy and Confirm as alice; the receipt's text."""
    preview = await w.run(w.alice, "buy", item=str(item.id))
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    await click.wait_for_edit(1)
    return text_of(click.message)


def role_requests(w: World, method: str = "PUT") -> list[int]:
    """The status Discord (the fake) gave each role request of this method, in order."""
    return [r.status for r in w.fake.requests_to(method, ROLE_PUT)]


def has_role(w: World) -> bool:
    return w.vip_role.id in w.fake.member(w.guild.id, w.alice.id).roles


def deliveries(w: World) -> list[tuple[str, str, str | None]]:
    with rawsql.connect(w.settings) as db:
        return db.execute("SELECT action, status, reason FROM deliveries ORDER BY id").fetchall()


def refund_entries(w: World) -> int:
    with rawsql.connect(w.settings) as db:
        return db.execute("SELECT COUNT(*) FROM entries WHERE type = 'refund'").fetchone()[0]


async def due_now(w: World) -> None:
    """Move the clock to the next delivery's due time (its backoff)."""
    with rawsql.connect(w.settings) as db:
        (due_at,) = db.execute("SELECT MIN(due_at) FROM deliveries WHERE status = 'pending'").fetchone()
    w.clock.advance(seconds=max(due_at - w.ledger.now(), 0))


# passing failures ---------------------------------------------------------------------------------


async def test_a_rate_limited_role_is_on_its_way_and_then_given_once(world: World):
    w = world
    item = await setup_shop(w)
    w.bot.deliveries.answer_wait = 0.2  # the 429 below makes discord.py wait 1.5 s
    w.fake.fail_next("PUT", ROLE_PUT, 429, retry_after=1.5)
    receipt = await confirm(w, item)
    assert f"<@&{w.vip_role.id}> is on its way" in receipt
    assert "(refunded)" not in receipt
    await w.fake.wait_for(lambda: deliveries(w) == [("add_role", "done", None)], what="the delivery after the wait")
    assert role_requests(w) == [429, 204]
    assert has_role(w)
    assert (await w.ledger.orders(w.guild.id, w.alice.id)).items[0].status == "completed"
    assert await w.bot.jobs.deliver() == 0  # nothing left: a tick does not give it again
    assert role_requests(w) == [429, 204]
    assert w.fake.dms(w.alice.id) == []


async def test_server_errors_are_retried_on_the_backoff_schedule(world: World):
    w = world
    item = await setup_shop(w)
    w.fake.fail_next("PUT", ROLE_PUT, 503, times=3)  # discord.py hands a 503 back at once
    receipt = await confirm(w, item)
    assert "is on its way" in receipt
    assert role_requests(w) == [503]
    for attempt, wait in enumerate(rules.BACKOFF[:3], start=1):
        w.clock.advance(seconds=wait - 1)
        assert await w.bot.jobs.deliver() == 0  # not due yet: Discord is not asked
        assert len(role_requests(w)) == attempt
        w.clock.advance(seconds=1)
        done = await w.bot.jobs.deliver()
        assert len(role_requests(w)) == attempt + 1
        assert done == (attempt == 3)
    assert role_requests(w) == [503, 503, 503, 204]
    assert has_role(w)
    assert refund_entries(w) == 0


async def test_racing_ticks_give_a_due_role_once(world: World):
    w = world
    item = await setup_shop(w)
    w.fake.fail_next("PUT", ROLE_PUT, 503)
    await confirm(w, item)
    await due_now(w)
    ticks = await asyncio.gather(
        w.bot.jobs.deliver(), w.bot.jobs.deliver(), w.bot.deliveries.run_once(), w.bot.deliveries.run_once()
    )
    assert [t if isinstance(t, int) else t.done for t in ticks].count(1) == 1
    assert role_requests(w) == [503, 204]
    assert has_role(w)


async def test_a_restart_during_a_rate_limit_wait_gives_the_role_once(world: World, restart: Restart):
    w = world
    item = await setup_shop(w)
    w.bot.deliveries.answer_wait = 0.2
    w.fake.fail_next("PUT", ROLE_PUT, 429, retry_after=30)
    assert "is on its way" in await confirm(w, item)
    bot = await restart()  # the wait is cut short; its claim stays in the database
    assert role_requests(w) == [429]
    assert not has_role(w)
    assert await bot.jobs.deliver() == 1  # the new process's first tick releases and delivers it
    assert role_requests(w) == [429, 204]
    assert has_role(w)
    assert deliveries(w) == [("add_role", "done", None)]
    assert refund_entries(w) == 0


# impossible deliveries ------------------------------------------------------------------------------


async def test_a_role_deleted_before_confirm_is_refunded_once_and_the_member_told(world: World):
    w = world
    item = await setup_shop(w, stock=3)
    preview = await w.run(w.alice, "buy", item=str(item.id))
    w.fake.delete_role(w.guild.id, w.vip_role.id)
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: guild.get_role(w.vip_role.id) is None, what="the role deleted")
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), w.alice.id)
    await click.wait_for_edit(1)
    receipt = text_of(click.message)
    assert "Order #1 (refunded)" in receipt
    assert "refunded automatically because the item's role no longer exists" in receipt
    assert role_requests(w) == []  # known from the gateway: Discord is not asked
    await w.fake.wait_for(lambda: w.fake.dms(w.alice.id), what="the member's DM")
    (dm,) = w.fake.dms(w.alice.id)
    assert "order #1 (1 × VIP pass) in **Shop Guild** was refunded automatically" in dm.content
    assert "the item's role no longer exists: 60 credits is back in your balance" in dm.content
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 100
    assert (await w.ledger.item(w.guild.id, item.id)).stock == 3
    assert deliveries(w) == [("add_role", "failed", "role_deleted"), ("dm_refund", "done", "role_deleted")]

    for _ in range(2):  # later ticks: nothing more is refunded or said
        assert await w.bot.jobs.deliver() == 0
    assert refund_entries(w) == 1
    assert len(w.fake.dms(w.alice.id)) == 1
    assert await w.ledger.verify() == []


async def test_a_member_who_left_while_the_role_was_retried_is_refunded_and_told(world: World):
    w = world
    item = await setup_shop(w)
    w.fake.fail_next("PUT", ROLE_PUT, 503)
    assert "is on its way" in await confirm(w, item)
    w.fake.remove_member(w.guild.id, w.alice.id)
    await due_now(w)
    await w.bot.jobs.deliver()
    assert role_requests(w) == [503, 404]  # 10007 Unknown Member
    [order] = (await w.ledger.orders(w.guild.id, w.alice.id)).items
    assert order.status == "refunded"
    (dm,) = w.fake.dms(w.alice.id)
    assert "refunded automatically because the member is no longer in the server" in dm.content
    assert await w.ledger.verify() == []


async def test_missing_permissions_from_discord_refunds_and_a_closed_dm_is_not_retried(world: World):
    w = world
    item = await setup_shop(w)
    w.fake.close_dms(w.alice.id)
    w.fake.fail_next("PUT", ROLE_PUT, 403, 50013, "Missing Permissions")
    receipt = await confirm(w, item)
    assert "refunded automatically because Discord refused to give the role (Missing Permissions)" in receipt
    assert deliveries(w) == [
        ("add_role", "failed", "missing_permissions"),
        ("dm_refund", "failed", "dm_closed"),
    ]
    dm_posts = len(w.fake.requests_to("POST", r"/channels/\d+/messages"))
    assert await w.bot.jobs.deliver() == 0
    assert len(w.fake.requests_to("POST", r"/channels/\d+/messages")) == dm_posts
    assert refund_entries(w) == 1


# refunds take the role back through the same path -------------------------------------------------------


async def test_a_refund_takes_the_role_back_and_retries_a_failed_removal(world: World):
    w = world
    item = await setup_shop(w)
    await confirm(w, item)
    assert has_role(w)
    w.fake.fail_next("DELETE", ROLE_PUT, 503)
    rec = await w.finished(await w.run(w.mod, "shopadmin refund", order=1, reason="mistake"))
    text = text_of(rec)
    assert "refunded: 60 credits back" in text
    assert f"<@&{w.vip_role.id}> will be removed shortly" in text
    assert has_role(w)  # a 503: the removal waits for its backoff (and the refund's DM after it)
    assert w.fake.dms(w.alice.id) == []
    w.clock.advance(seconds=rules.BACKOFF[0])
    assert await w.bot.jobs.deliver() == 2
    assert not has_role(w)
    assert role_requests(w, "DELETE") == [503, 204]
    assert deliveries(w) == [
        ("add_role", "done", None),
        ("remove_role", "done", None),
        ("dm_refunded", "done", None),
    ]
    (dm,) = w.fake.dms(w.alice.id)
    assert "Your order #1 (1 × VIP pass) in **Shop Guild** was refunded by the staff" in dm.content


async def test_a_refund_before_the_role_was_given_cancels_it(world: World):
    w = world
    item = await setup_shop(w)
    w.fake.fail_next("PUT", ROLE_PUT, 503)
    await confirm(w, item)  # the grant waits for its backoff
    rec = await w.finished(await w.run(w.mod, "shopadmin refund", order=1))
    assert f"<@&{w.vip_role.id}> removed." in text_of(rec)  # a 503 may have reached Discord: taken back
    w.clock.advance(seconds=rules.BACKOFF[0])
    assert await w.bot.jobs.deliver() == 0  # the grant was cancelled: never retried
    assert role_requests(w) == [503]
    assert not has_role(w)
    assert deliveries(w) == [
        ("add_role", "cancelled", None),
        ("remove_role", "done", None),
        ("dm_refunded", "done", None),
    ]


async def test_a_refund_during_the_grants_rate_limit_wait_removes_the_role_after_it(world: World):
    w = world
    item = await setup_shop(w)
    w.bot.deliveries.answer_wait = 0.2
    w.fake.fail_next("PUT", ROLE_PUT, 429, retry_after=1.5)
    assert "is on its way" in await confirm(w, item)
    rec = await w.finished(await w.run(w.mod, "shopadmin refund", order=1))
    assert f"<@&{w.vip_role.id}> will be removed shortly" in text_of(rec)
    # The grant goes through after its wait, and the removal right after it, in the same kick.
    await w.fake.wait_for(
        lambda: (
            deliveries(w) == [("add_role", "done", None), ("remove_role", "done", None), ("dm_refunded", "done", None)]
        ),
        what="the removal after the grant, and the refund's DM",
    )
    assert role_requests(w) == [429, 204]
    assert role_requests(w, "DELETE") == [204]
    assert not has_role(w)
    assert refund_entries(w) == 1
