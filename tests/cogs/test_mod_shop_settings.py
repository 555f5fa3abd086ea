"""/shopadmin and /settings end to end: add, edit, remove, refund (the role goes too); currency,
reminders, modrole, auditlog, promo exclusions, timezone, show; refusals that write nothing."""

from __future__ import annotations

from datetime import datetime

from bot.domain.timeparse import to_unix
from fakediscord import Perm
from tests.e2e import World, button, db_dump, refused, text_of

NOT_A_MODERATOR = "This command is for moderators"


# helpers -------------------------------------------------------------------------------------------
async def add_item(w: World, name: str = "VIP pass", price: int = 30, category: str = "roles", **kw):
    return await w.ledger.add_item(w.guild.id, name, price, category, actor_id=w.mod.id, key=None, **kw)


async def buy(w: World, member, item) -> int:
    """/buy and Confirm, as the member; returns the order id."""
    preview = await w.run(member, "buy", item=str(item.id))
    click = await w.fake.click(preview, button(preview, "buy:confirm:"), member.id)
    await click.wait_for_edit(1)
    orders = await w.ledger.orders(w.guild.id, member.id)
    assert orders.total >= 1, text_of(click)
    return orders.items[0].id


def roles_of(w: World, member) -> list[int]:
    return w.fake.member(w.guild.id, member.id).roles


# /shopadmin ----------------------------------------------------------------------------------------
async def test_shopadmin_add_with_every_option(world: World):
    w = world
    rec = await w.run(
        w.mod,
        "shopadmin add",
        name="VIP pass",
        price="30",
        category="roles",
        stock=5,
        role=w.vip_role.id,
        limit=1,
        description="A shiny role for a month.",
    )
    assert rec.ephemeral
    text = text_of(rec)
    for shown in (
        "Added to the shop",
        "**VIP pass**",
        "30 credits",
        "`roles`",
        "5 left",
        "max 1 per member",
        f"<@&{w.vip_role.id}>",
        "A shiny role for a month.",
    ):
        assert shown in text, shown
    (item,) = await w.ledger.items(w.guild.id)
    assert (item.name, item.price, item.category, item.stock, item.role_id, item.per_member_limit) == (
        "VIP pass",
        30,
        "roles",
        5,
        w.vip_role.id,
        1,
    )
    assert item.description == "A shiny role for a month."
    plain = await w.run(w.mod, "shopadmin add", name="Sticker", price="2", category="fun")
    assert "**Sticker**" in text_of(plain)
    assert {i.name for i in await w.ledger.items(w.guild.id)} == {"VIP pass", "Sticker"}


async def test_shopadmin_refusals_write_nothing(world: World):
    w = world
    item = await add_item(w)
    high = w.fake.add_role(w.guild.id, "Admins", position=150)  # above the bot's own role
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_role(high.id) is not None)
    await refused(w, w.mod, "shopadmin add", "already has an item named", name="vip PASS", price="5", category="x")
    await refused(w, w.mod, "shopadmin add", "amount", name="Free", price="0", category="x")
    await refused(w, w.mod, "shopadmin add", "amount", name="Free", price="ten", category="x")
    await refused(w, w.mod, "shopadmin add", "can't give", name="Admin", price="5", category="x", role=high.id)
    await refused(w, w.mod, "shopadmin add", "can't give", name="All", price="5", category="x", role=w.guild.id)
    await refused(w, w.mod, "shopadmin edit", "no item called", item="Nothing", price="5")
    await refused(w, w.mod, "shopadmin edit", "Nothing to change", item=str(item.id))
    await refused(w, w.mod, "shopadmin edit", "amount", item=str(item.id), price="-1")
    await refused(w, w.mod, "shopadmin edit", "either", item=str(item.id), stock=3, unlimited_stock=True)
    await refused(w, w.mod, "shopadmin edit", "either", item=str(item.id), role=w.vip_role.id, no_role=True)
    await refused(w, w.mod, "shopadmin edit", "either", item=str(item.id), limit=2, no_limit=True)
    await refused(w, w.mod, "shopadmin edit", "can't give", item=str(item.id), role=high.id)
    await refused(w, w.mod, "shopadmin remove", "no item called", item="999")
    await refused(w, w.mod, "shopadmin refund", "no order #7", order=7)
    assert [i.name for i in await w.ledger.items(w.guild.id)] == ["VIP pass"]


async def test_shopadmin_refuses_a_role_the_bot_cannot_give_whatever_the_reason(world: World):
    """The rule /buy and the delivery worker use too (bot/discordbot/roles.py): a role above the
    bot, @everyone, and any role while the bot lacks Manage Roles are refused when the item is set
    up, not on every purchase after."""
    w = world
    high = w.fake.add_role(w.guild.id, "Admins", position=150)
    guild = w.bot.get_guild(w.guild.id)
    await w.fake.wait_for(lambda: guild.get_role(high.id) is not None)
    above = await refused(w, w.mod, "shopadmin add", "can't give", name="Admin", price="5", category="x", role=high.id)
    assert above.strip() == (
        f"I can't give <@&{high.id}>: I need the Manage Roles permission, and my highest role must be above it "
        "(Server Settings → Roles)."
    )
    everyone = await refused(
        w, w.mod, "shopadmin add", "can't give", name="All", price="5", category="x", role=w.guild.id
    )
    assert everyone.strip() == f"I can't give <@&{w.guild.id}>: nobody can be given @everyone or a managed role."
    bot_role = w.fake.bot_role(w.guild.id)
    w.fake.update_role(w.guild.id, bot_role.id, permissions=bot_role.permissions & ~Perm.MANAGE_ROLES)
    await w.fake.wait_for(lambda: not guild.me.guild_permissions.manage_roles, what="permission removed")
    below = await refused(
        w, w.mod, "shopadmin add", "can't give", name="VIP", price="5", category="x", role=w.vip_role.id
    )
    assert below == above.replace(str(high.id), str(w.vip_role.id))


async def test_shopadmin_edit_changes_only_the_options_given(world: World):
    w = world
    item = await add_item(w, stock=5, limit=2, role_id=w.vip_role.id, description="old")
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "shopadmin edit", {"item": "vip"}, focused="item")
    assert [c["value"] for c in choices] == [str(item.id)]

    rec = await w.run(w.mod, "shopadmin edit", item=str(item.id), name="VIP pass+", price="35", stock=9)
    assert rec.ephemeral
    assert "Updated" in text_of(rec)
    assert "**VIP pass+**" in text_of(rec)
    edited = await w.ledger.item(w.guild.id, item.id)
    assert (edited.name, edited.price, edited.stock, edited.per_member_limit, edited.role_id) == (
        "VIP pass+",
        35,
        9,
        2,
        w.vip_role.id,
    )
    assert (edited.category, edited.description) == ("roles", "old")

    await w.run(
        w.mod,
        "shopadmin edit",
        item="VIP pass+",
        unlimited_stock=True,
        no_role=True,
        no_limit=True,
        category="perks",
        description="new",
    )
    edited = await w.ledger.item(w.guild.id, item.id)
    assert (edited.stock, edited.role_id, edited.per_member_limit) == (None, None, None)
    assert (edited.category, edited.description) == ("perks", "new")

    hidden = await w.run(w.mod, "shopadmin edit", item=str(item.id), active=False)
    assert "(not in the shop)" in text_of(hidden)
    assert await w.ledger.items(w.guild.id) == []
    await w.run(w.mod, "shopadmin edit", item=str(item.id), active=True)
    assert [i.id for i in await w.ledger.items(w.guild.id)] == [item.id]


async def test_shopadmin_remove_keeps_orders_and_lists_removed_items(world: World):
    w = world
    item = await add_item(w, name="Sticker", price=2, category="fun")
    rec = await w.run(w.mod, "shopadmin remove", item="sticker")
    assert "**Sticker** is no longer sold" in text_of(rec)
    assert await w.ledger.items(w.guild.id) == []
    assert (await w.ledger.item(w.guild.id, item.id)).active is False
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "shopadmin edit", {"item": ""}, focused="item")
    assert [c["name"] for c in choices] == ["Sticker (removed)"]
    await refused(w, w.mod, "shopadmin remove", "no item called", item="Sticker")


async def test_shopadmin_refund_returns_credit_and_stock_and_removes_the_role(world: World):
    w = world
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key=None, expires="30d")
    item = await add_item(w, stock=5, role_id=w.vip_role.id)
    order_id = await buy(w, w.alice, item)
    await w.fake.wait_for(lambda: w.vip_role.id in roles_of(w, w.alice), what="the role of the purchase")
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 20
    assert (await w.ledger.item(w.guild.id, item.id)).stock == 4

    rec = await w.run(w.mod, "shopadmin refund", order=order_id, reason="Bought by mistake")
    await w.finished(rec)
    assert rec.ephemeral
    text = text_of(rec)
    assert f"Order `#{order_id}`" in text
    assert "30 credits back" in text
    assert f"<@&{w.vip_role.id}> removed" in text
    assert w.vip_role.id not in roles_of(w, w.alice)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 50
    assert (await w.ledger.item(w.guild.id, item.id)).stock == 5
    assert (await w.ledger.order(w.guild.id, order_id)).status == "refunded"
    refunds = [e for e in (await w.ledger.history(w.guild.id, w.alice.id)).items if e.type == "refund"]
    assert sum(e.amount for e in refunds) == 30
    assert all(e.actor_id == w.mod.id for e in refunds)

    await refused(w, w.mod, "shopadmin refund", "already refunded", order=order_id)


async def test_shopadmin_refund_of_an_order_whose_role_cannot_be_removed(world: World):
    w = world
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key=None)
    item = await add_item(w, role_id=w.vip_role.id)
    order_id = await buy(w, w.alice, item)
    await w.fake.wait_for(lambda: w.vip_role.id in roles_of(w, w.alice))
    w.fake.fail_next("DELETE", r"/roles/", status=403, code=50013, message="Missing Permissions")
    rec = await w.run(w.mod, "shopadmin refund", order=order_id)
    await w.finished(rec)
    assert "please remove it by hand" in text_of(rec)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).total == 50  # the refund itself stands


async def test_shopadmin_refuses_non_moderators(world: World):
    w = world
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key=None)
    item = await add_item(w)
    order_id = await buy(w, w.alice, item)
    for command, options in (
        ("shopadmin add", {"name": "Free stuff", "price": "1", "category": "x"}),
        ("shopadmin edit", {"item": str(item.id), "price": "1"}),
        ("shopadmin remove", {"item": str(item.id)}),
        ("shopadmin refund", {"order": order_id}),
    ):
        await refused(w, w.alice, command, NOT_A_MODERATOR, enforce=False, **options)
    assert (await w.ledger.order(w.guild.id, order_id)).status == "completed"


# /settings -----------------------------------------------------------------------------------------
async def test_settings_currency(world: World):
    w = world
    rec = await w.run(w.mod, "settings currency", name="coins", symbol="$", decimals=2)
    assert rec.ephemeral
    assert "Currency updated" in text_of(rec)
    assert "coins ($), 2 decimals" in text_of(rec)
    settings = await w.ledger.settings(w.guild.id)
    assert (settings.currency_name, settings.currency_symbol, settings.decimals) == ("coins", "$", 2)
    granted = await w.run(w.mod, "credits grant", member=w.alice.id, amount="12.50")
    assert "$12.50" in text_of(granted)
    assert (await w.ledger.balance(w.guild.id, w.alice.id)).promo == 1250

    cleared = await w.run(w.mod, "settings currency", no_symbol=True)
    assert "coins, 2 decimals" in text_of(cleared)
    assert (await w.ledger.settings(w.guild.id)).currency_symbol == ""
    assert "12.50 coins" in text_of(await w.run(w.mod, "credits inspect", member=w.alice.id))

    await refused(w, w.mod, "settings currency", "Decimals can only change", decimals=0)
    await refused(w, w.mod, "settings currency", "symbol", symbol="1")
    # Issue 8 item 10: a symbol that would make every amount in a CSV a formula.
    for symbol in ("=A", "+", "-", "@", "＝A"):
        await refused(w, w.mod, "settings currency", "can't start with = + - or @", symbol=symbol)
    await refused(w, w.mod, "settings currency", "either", symbol="€", no_symbol=True)
    await refused(w, w.mod, "settings currency", "Nothing to change")
    await refused(w, w.mod, "settings currency", "name", name="a\u200bb`c")


async def test_settings_reminders(world: World):
    w = world
    current = await w.run(w.mod, "settings reminders")
    assert "7d" in text_of(current)
    assert "1d" in text_of(current)
    rec = await w.run(w.mod, "settings reminders", lead_times="3d, 12h,90m")
    assert rec.ephemeral
    assert "Reminder lead times" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).reminder_leads == (3 * 86400, 12 * 3600, 90 * 60)
    for bad, expect in (
        ("30s", "Lead time"),
        ("0m", "Lead time"),
        ("abc", "Lead time"),
        (",", "at least one"),
        ("400d", "too long"),
    ):
        await refused(w, w.mod, "settings reminders", expect, lead_times=bad)
    assert (await w.ledger.settings(w.guild.id)).reminder_leads == (3 * 86400, 12 * 3600, 90 * 60)


async def test_settings_modrole_and_show(world: World):
    w = world
    await refused(w, w.mod, "settings modrole", "everyone a moderator", role=w.guild.id)
    rec = await w.run(w.owner, "settings modrole", role=w.vip_role.id)
    assert rec.ephemeral
    assert f"Moderator role: <@&{w.vip_role.id}>" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).mod_role_id == w.vip_role.id
    shown = await w.run(w.mod, "settings show")
    assert shown.ephemeral
    text = text_of(shown)
    for part in ("Promo Balance settings", "credits, 0 decimals", "UTC", f"<@&{w.vip_role.id}>", "none"):
        assert part in text, part


async def test_settings_auditlog_posts_every_moderator_action(world: World):
    w = world
    rec = await w.run(w.mod, "settings auditlog", channel=w.audit_channel_id)
    assert rec.ephemeral
    assert f"<#{w.audit_channel_id}>" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).audit_channel_id == w.audit_channel_id
    await w.ledger.grant(w.guild.id, w.alice.id, 50, actor_id=w.mod.id, key=None)
    item = await add_item(w, role_id=w.vip_role.id)
    order_id = await buy(w, w.alice, item)
    steps = [
        ("shopadmin add", {"name": "Hat", "price": "3", "category": "fun"}, "Shop item added"),
        ("shopadmin edit", {"item": "Hat", "price": "4"}, "Shop item edited"),
        ("shopadmin remove", {"item": "Hat"}, "Shop item removed"),
        ("shopadmin refund", {"order": order_id, "reason": "Asked nicely"}, "Order refunded"),
        ("settings currency", {"name": "gems"}, "Settings changed"),
        ("settings reminders", {"lead_times": "2d"}, "Settings changed"),
        ("settings modrole", {"role": w.vip_role.id}, "Settings changed"),
        ("settings exclude-category", {"category": "games"}, "Settings changed"),
        ("settings include-category", {"category": "games"}, "Settings changed"),
        ("settings timezone", {"tz": "Europe/Berlin"}, "Settings changed"),
    ]
    await w.fake.wait_for(lambda: len(w.fake.channel_messages(w.audit_channel_id)) == 1)
    posted = 1
    for command, options, title in steps:
        await w.finished(await w.run(w.mod, command, **options))
        await w.fake.wait_for(
            lambda n=posted: len(w.fake.channel_messages(w.audit_channel_id)) == n + 1, what=f"audit of /{command}"
        )
        posted += 1
        (embed,) = w.fake.channel_messages(w.audit_channel_id)[-1].embeds
        assert embed["title"] == title, command
        assert str(w.mod.id) in embed["footer"]["text"]
        assert embed["author"]["name"] == "mod"
    # Reading is not an action: nothing more is posted.
    await w.run(w.mod, "settings show")
    await w.run(w.mod, "settings reminders")
    await w.fake.flush()
    assert len(w.fake.channel_messages(w.audit_channel_id)) == posted
    assert "Asked nicely" in w.fake.channel_messages(w.audit_channel_id)[4].embed_text
    # And every action is recorded with its actor.
    actors = {row[2] for row in db_dump(w)["audit_log"]}
    assert w.mod.id in actors


async def test_settings_auditlog_refuses_a_channel_the_bot_cannot_post_in(world: World):
    w = world
    bot_role = w.fake.bot_role(w.guild.id)
    w.fake.update_role(w.guild.id, bot_role.id, permissions=int(Perm.VIEW_CHANNEL | Perm.MANAGE_ROLES))
    w.fake.update_role(w.guild.id, w.guild.id, permissions=int(Perm.VIEW_CHANNEL))  # @everyone
    me = w.bot.get_guild(w.guild.id).me
    await w.fake.wait_for(lambda: not me.guild_permissions.send_messages, what="the role update")
    await refused(w, w.mod, "settings auditlog", "can't post", channel=w.audit_channel_id)


async def test_settings_exclude_and_include_category(world: World):
    w = world
    await add_item(w, name="Game key", category="games")
    choices = await w.fake.autocomplete(
        w.guild.id, w.mod.id, "settings exclude-category", {"category": "ga"}, focused="category"
    )
    assert [c["value"] for c in choices] == ["games"]
    rec = await w.run(w.mod, "settings exclude-category", category="games")
    assert rec.ephemeral
    assert "can no longer be spent on `games`" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).promo_excluded_categories == ("games",)
    assert "gift balance only" in text_of(await w.run(w.alice, "shop"))
    # Promo credit no longer pays for it.
    await w.ledger.grant(w.guild.id, w.alice.id, 100, actor_id=w.mod.id, key=None)
    preview = await w.run(w.alice, "buy", item="Game key")
    assert "of which 0 credits can be used on `games` items" in text_of(preview)
    assert preview.custom_ids == []  # nothing to confirm

    rec = await w.run(w.mod, "settings include-category", category="GAMES")
    assert "can be spent on `GAMES` again" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).promo_excluded_categories == ()
    assert "promo credit applies" in text_of(await w.run(w.alice, "shop"))


async def test_settings_timezone(world: World):
    w = world
    choices = await w.fake.autocomplete(w.guild.id, w.mod.id, "settings timezone", {"tz": "berl"}, focused="tz")
    assert "Europe/Berlin" in [c["value"] for c in choices]
    rec = await w.run(w.mod, "settings timezone", tz="europe/berlin")
    assert rec.ephemeral
    assert "Timezone: Europe/Berlin" in text_of(rec)
    assert (await w.ledger.settings(w.guild.id)).timezone == "Europe/Berlin"
    # Dates are now read in Berlin: the end of 31 Dec there is 22:59:59 UTC.
    await w.run(w.mod, "credits grant", member=w.alice.id, amount="5", expires="2026-12-31")
    (lot,) = await w.ledger.lots(w.guild.id, w.alice.id)
    assert lot.expires_at == to_unix(datetime.fromisoformat("2026-12-31T22:59:59+00:00"))
    await refused(w, w.mod, "settings timezone", "Unknown timezone", tz="Mars/Olympus_Mons")
    await refused(w, w.mod, "settings timezone", "Unknown timezone", tz="UTC+2")
    assert (await w.ledger.settings(w.guild.id)).timezone == "Europe/Berlin"


async def test_settings_refuse_non_moderators(world: World):
    w = world
    for command, options in (
        ("settings currency", {"name": "bucks"}),
        ("settings reminders", {"lead_times": "1m"}),
        ("settings modrole", {"role": w.vip_role.id}),
        ("settings auditlog", {"channel": w.audit_channel_id}),
        ("settings exclude-category", {"category": "x"}),
        ("settings include-category", {"category": "x"}),
        ("settings timezone", {"tz": "Europe/Paris"}),
        ("settings show", {}),
    ):
        await refused(w, w.bob, command, NOT_A_MODERATOR, enforce=False, **options)
    assert (await w.ledger.settings(w.guild.id)).mod_role_id is None
