"""The fulfilment deliveries against the fake Discord (bot/discordbot/notify.py): a staff order's
post and its edit, the DMs about an order. What Discord will never do (the channel gone or closed to
the bot, the post deleted, DMs closed) is settled failed, or done when nothing is left to do, and
never refunds; a passing failure is retried on the backoff and posts once."""

from __future__ import annotations

from bot.domain import delivery as rules
from fakediscord import Perm
from tests import rawsql
from tests.e2e import Restart, World

POST = r"^/channels/\d+/messages$"


async def setup_staff(w: World):
    channel = w.fake.add_channel(w.guild.id, "orders")
    await w.fake.wait_for(lambda: w.bot.get_channel(channel.id) is not None)
    await w.ledger.update_settings(w.guild.id, actor_id=w.mod.id, key="ch", fulfilment_channel_id=channel.id)
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key="credit")
    item = await w.ledger.add_item(w.guild.id, "Mug", 30, "merch", actor_id=w.mod.id, key="item", delivery="staff")
    return channel.id, item


def rows(w: World) -> list[tuple[str, str, str | None]]:
    with rawsql.connect(w.settings) as db:
        return db.execute("SELECT action, status, reason FROM deliveries ORDER BY id").fetchall()


def posts_to(w: World, channel_id: int) -> list[int]:
    return [r.status for r in w.fake.requests_to("POST", POST) if r.path == f"/channels/{channel_id}/messages"]


async def test_a_post_is_retried_on_the_backoff_and_made_once(world: World):
    w = world
    channel_id, item = await setup_staff(w)
    w.fake.fail_next("POST", rf"^/channels/{channel_id}/messages$", 503)
    order = await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    assert await w.bot.jobs.deliver() == 0
    assert posts_to(w, channel_id) == [503]
    assert rows(w) == [("post_order", "pending", None)]
    w.clock.advance(seconds=rules.BACKOFF[0])
    assert await w.bot.jobs.deliver() == 1
    assert posts_to(w, channel_id) == [503, 200]
    assert len(w.fake.channel_messages(channel_id)) == 1
    assert (await w.ledger.order(w.guild.id, order.id)).post_message_id == w.fake.channel_messages(channel_id)[0].id
    assert await w.bot.jobs.deliver() == 0
    assert len(w.fake.channel_messages(channel_id)) == 1


async def test_a_channel_closed_to_the_bot_fails_the_post_without_asking_discord_or_refunding(world: World):
    w = world
    channel_id, item = await setup_staff(w)
    w.fake.set_bot_roles(w.guild.id, [])  # the bot keeps @everyone, which may not embed links here
    w.fake.update_role(w.guild.id, w.guild.id, permissions=int(Perm.VIEW_CHANNEL | Perm.SEND_MESSAGES))
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: not guild.me.guild_permissions.embed_links, what="the bot's roles in the cache")
    order = await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    await w.bot.jobs.deliver()
    assert rows(w) == [("post_order", "failed", rules.NO_CHANNEL_ACCESS)]
    assert posts_to(w, channel_id) == []
    assert (await w.ledger.order(w.guild.id, order.id)).status == "pending"
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 70  # paid; it waits in the queue


async def test_missing_access_from_discord_fails_the_post(world: World):
    w = world
    channel_id, item = await setup_staff(w)
    w.fake.fail_next("POST", rf"^/channels/{channel_id}/messages$", 403, 50001, "Missing Access")
    await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    await w.bot.jobs.deliver()
    assert rows(w) == [("post_order", "failed", rules.NO_CHANNEL_ACCESS)]


async def test_a_restart_before_the_post_settles_posts_once(world: World, restart: Restart):
    w = world
    channel_id, item = await setup_staff(w)
    w.bot.deliveries.answer_wait = 0.1
    w.fake.fail_next("POST", rf"^/channels/{channel_id}/messages$", 429, retry_after=30)
    await w.ledger.checkout(w.guild.id, w.alice.id, item.id, key="buy")
    w.bot.deliveries.kick(w.guild.id, 1)
    await w.fake.wait_for(lambda: posts_to(w, channel_id) == [429], what="the rate-limited post")
    bot = await restart()  # its claim stays; the next start resends it under the same nonce
    assert await bot.jobs.deliver() == 1
    assert len(w.fake.channel_messages(channel_id)) == 1
    assert rows(w) == [("post_order", "done", None)]
