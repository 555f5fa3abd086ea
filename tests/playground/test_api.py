"""The playground's HTTP and websocket API, driven as the page drives it, against the real bot."""

from __future__ import annotations

import aiohttp

from bot.playground import demo
from bot.playground.app import Playground
from tests.playground.conftest import ALICE, BOB, CAROL, MOD, OWNER, Client, Live, text

GENERAL, AUDIT = str(demo.GENERAL_ID), str(demo.AUDIT_ID)


async def test_the_demo_server_its_people_channels_and_shop(client: Client):
    status, state = await client.get("/api/state")
    assert status == 200
    assert [c["name"] for c in state["channels"]] == ["general", "audit", "fulfilment"]
    people = {m["username"]: m for m in state["members"]}
    assert set(people) == {"olivia", "max", "alice", "bob", "carol"}
    assert people["olivia"]["owner"]
    assert not people["max"]["owner"]
    roles = {r["id"]: r["name"] for r in state["roles"]}
    assert [roles[r] for r in people["max"]["roles"]] == ["Moderator"]
    assert [roles[r] for r in people["alice"]["roles"]] == ["Booster"]
    assert "VIP" in roles.values()
    ledger = client.playground.bot.ledger
    items = await ledger.items(demo.GUILD_ID)
    assert {i.name for i in items} == {"VIP role", "Custom emoji", "Game key"}
    assert [i.role_id for i in items if i.name == "VIP role"] == [demo.VIP_ROLE_ID]
    alice = await ledger.balance(demo.GUILD_ID, demo.ALICE_ID)
    assert alice.total > 0
    assert any(lot.expires_at for lot in await ledger.lots(demo.GUILD_ID, demo.ALICE_ID))


async def test_the_set_up_shows_in_audit_and_its_answers_do_not(client: Client):
    snapshot = client.playground.feed.snapshot()
    audit = [m for m in snapshot if m["channel_id"] == AUDIT]
    assert len(audit) >= 10
    assert all(not m["ephemeral"] for m in audit)
    assert not [m for m in snapshot if m["channel_id"] == GENERAL]  # the owner's set-up answers are left out
    # Alice's credit expires in 5 days: the first run of the jobs sent her the 7-day reminder.
    [reminder] = [m for m in snapshot if m["dm_user_id"] == ALICE]
    assert "expires soon" in text(reminder)


async def test_a_member_sees_the_member_commands_and_a_moderator_more(client: Client):
    async def names(user: str, channel: str = GENERAL) -> set[str]:
        status, answer = await client.get(f"/api/commands?user={user}&channel={channel}")
        assert status == 200, answer
        return {c["name"] for c in answer["commands"]}

    member = {"balance", "history", "redeem", "shop", "buy", "orders", "cancel", "reminders", "terms"}
    moderator = {"credits", "promo", "giftcard", "shopadmin", "settings", "fulfil"}
    assert await names(ALICE) == member
    assert await names(MOD) == member | moderator
    assert await names(OWNER) == member | moderator
    assert await names(ALICE, "dm") == set()  # every command is the server's
    _, answer = await client.get(f"/api/commands?user={ALICE}")
    grant = next(c for c in answer["commands"] if c["name"] == "buy")
    assert any(o["name"] == "item" and o["required"] and o["autocomplete"] for o in grant["options"])


async def test_balance_answers_only_the_member_live(client: Client, live: Live):
    answer = await client.ok("/api/invoke", {"user": ALICE, "channel": GENERAL, "command": "balance"})
    assert answer["responded"]
    assert answer["modal"] is None
    message = await live.message(lambda m: m["interaction"] and m["interaction"]["command"] == "balance")
    assert message["ephemeral"]
    assert message["interaction"]["user_id"] == ALICE
    assert message["channel_id"] == GENERAL
    embed = message["embeds"][0]
    assert embed["title"] == "Your balance"
    assert embed["color"]
    assert any(f.get("inline") for f in embed["fields"])
    assert "<t:" in text(message)  # the page renders these in the reader's zone


async def test_what_discord_would_not_send_is_refused_with_the_reason(client: Client):
    status, answer = await client.post(
        "/api/invoke", {"user": MOD, "channel": GENERAL, "command": "credits grant", "options": {"amount": "5"}}
    )
    assert status == 400
    assert answer["refused_by"] == "discord"
    assert "missing required options ['member']" in answer["error"]
    status, answer = await client.post(
        "/api/invoke",
        {"user": ALICE, "channel": GENERAL, "command": "credits grant", "options": {"member": BOB, "amount": "5"}},
    )
    assert status == 400
    assert "default_member_permissions" in answer["error"]
    status, answer = await client.post("/api/invoke", {"user": "1", "command": "balance"})
    assert status == 400
    assert "not in the playground's server" in answer["error"]
    status, answer = await client.post("/api/clock", {"step": "backwards"})
    assert status == 400


async def test_only_loopback_names_reach_it(client: Client):
    async with client.http.get(client.url + "api/state", headers={"Host": "evil.example:80"}) as response:
        assert response.status == 403


async def test_buy_with_autocomplete_then_confirm(client: Client, live: Live):
    status, answer = await client.post(
        "/api/autocomplete",
        {"user": ALICE, "channel": GENERAL, "command": "buy", "options": {"item": "vip"}, "focused": "item"},
    )
    assert status == 200
    [choice] = answer["choices"]
    assert choice["name"].startswith("VIP role")
    await client.ok(
        "/api/invoke", {"user": ALICE, "channel": GENERAL, "command": "buy", "options": {"item": choice["value"]}}
    )
    preview = await live.message(lambda m: m["interaction"] and m["interaction"]["command"] == "buy")
    buttons = [c for row in preview["components"] for c in row["components"]]
    confirm = next(b for b in buttons if b["label"] == "Confirm")
    status, refused = await client.post(  # Bob can't see Alice's ephemeral preview, so he can't click it
        "/api/click", {"user": BOB, "message": preview["id"], "custom_id": confirm["custom_id"]}
    )
    assert status == 400
    assert refused["refused_by"] == "discord"
    await client.ok("/api/click", {"user": ALICE, "message": preview["id"], "custom_id": confirm["custom_id"]})
    order = await live.message(lambda m: m["id"] == preview["id"] and "Order #" in text(m))
    assert all(b.get("disabled") for row in order["components"] for b in row["components"])
    ledger = client.playground.bot.ledger
    assert len((await ledger.orders(demo.GUILD_ID, demo.ALICE_ID)).items) == 1
    await live.next_matching(  # the delivery worker gave her the role: the page is told
        lambda e: (
            e["type"] == "state"
            and str(demo.VIP_ROLE_ID) in next(m for m in e["state"]["members"] if m["id"] == ALICE)["roles"]
        ),
        timeout=15,
    )


async def test_the_clock_runs_reminders_and_expiry(client: Client, live: Live):
    pg: Playground = client.playground
    ledger = pg.bot.ledger
    await client.ok(
        "/api/invoke",
        {
            "user": MOD,
            "channel": GENERAL,
            "command": "credits grant",
            "options": {"member": CAROL, "amount": "12", "expires": "3d", "reason": "try it"},
        },
    )
    granted = await live.message(lambda m: m["interaction"] and m["interaction"]["command"] == "credits grant")
    assert granted["ephemeral"]
    audit = await live.message(lambda m: m["channel_id"] == AUDIT)
    assert "Credit granted" in text(audit)
    before = (await ledger.balance(demo.GUILD_ID, demo.CAROL_ID)).total

    start = pg.clock().timestamp()
    moved = await client.ok("/api/clock", {"step": "hour"})
    assert moved["moved"]
    assert moved["now"] - start >= 3600
    assert moved["ran"]["reminded"] == 1  # the 7-day window was open from the start
    first = await live.message(lambda m: m["dm_user_id"] == CAROL)
    assert "expires soon" in text(first)

    jumped = await client.ok("/api/clock", {"step": "next-reminder"})
    assert jumped["ran"]["reminded"] >= 1  # the 1-day window of Carol's credit (and Alice's 7-day is done)
    second = await live.message(lambda m: m["dm_user_id"] == CAROL)
    assert second["id"] != first["id"]
    assert second["at"] > first["at"]
    # the page's clock moves too
    await live.next_matching(lambda e: e["type"] == "clock" and e["clock"]["now"] >= jumped["now"])

    for _ in range(2):
        await client.ok("/api/clock", {"step": "day"})
    after = (await ledger.balance(demo.GUILD_ID, demo.CAROL_ID)).total
    assert after == before - 12  # the default currency has no decimals


async def test_next_reminder_with_none_ahead_says_so(client: Client):
    ledger = client.playground.bot.ledger
    [schedule] = await ledger.schedules(demo.GUILD_ID)  # the boosters' weekly credit would keep coming
    await client.ok(
        "/api/invoke",
        {"user": MOD, "channel": GENERAL, "command": "credits schedule remove", "options": {"id": schedule.id}},
    )
    for _ in range(6):  # a month and a half: every credit with an expiry has expired
        await client.ok("/api/clock", {"step": "week"})
    assert await client.playground.next_reminder() is None
    answer = await client.ok("/api/clock", {"step": "next-reminder"})
    assert not answer["moved"]
    assert "No credit" in answer["why"]
    now = ledger.now()
    for member in (demo.ALICE_ID, demo.BOB_ID, demo.CAROL_ID):
        assert all(lot.expires_at is None or lot.expires_at <= now for lot in await ledger.lots(demo.GUILD_ID, member))


async def test_export_is_a_csv_download_and_the_report_an_image(client: Client, live: Live):
    await client.ok("/api/invoke", {"user": MOD, "channel": GENERAL, "command": "credits export"})
    exported = await live.message(lambda m: m["attachments"])
    [csv] = exported["attachments"]
    async with client.http.get(client.url + csv["url"].lstrip("/")) as response:
        assert response.status == 200
        assert response.headers["Content-Disposition"].startswith("attachment;")
        body = await response.text()
    assert body.splitlines()[0].startswith("entry_id,created_at,guild_id,user_id,lot_id")

    await client.ok("/api/invoke", {"user": MOD, "channel": GENERAL, "command": "credits report"})
    report = await live.message(lambda m: m["attachments"] and m["id"] != exported["id"] and not m["loading"])
    [chart] = report["attachments"]
    assert chart["filename"].endswith(".png")
    assert report["embeds"][0]["image"]["url"] == f"attachment://{chart['filename']}"
    async with client.http.get(client.url + chart["url"].lstrip("/")) as response:
        assert response.headers["Content-Type"] == "image/png"
        assert (await response.read()).startswith(b"\x89PNG")
    async with client.http.get(client.url + "api/attachments/1/nothing.csv") as response:
        assert response.status == 404


async def test_the_page_and_its_files_are_served_from_the_package(client: Client):
    for path, kind in (
        ("", "text/html"),
        ("static/app.js", "javascript"),
        ("static/app.css", "text/css"),
        ("static/markup.js", "javascript"),
    ):
        async with client.http.get(client.url + path) as response:
            assert response.status == 200, path
            assert kind in response.headers["Content-Type"], path
            page = await response.text()
        assert "http://" not in page.replace("http://127.0.0.1", ""), path
        assert "https://" not in page, path


async def test_a_restart_keeps_the_clock_and_sets_up_once(tmp_path, monkeypatch):
    import discord

    monkeypatch.setattr(discord.http.Route, "BASE", discord.http.Route.BASE)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    )
    database = tmp_path / "playground.sqlite3"
    first = Playground(database, port=0, tick_seconds=None)
    await first.start()
    try:
        await first.move_clock("day")
        offset = first.clock.offset
    finally:
        await first.stop()
    second = Playground(database, port=0, tick_seconds=None)
    await second.start()
    try:
        assert second.clock.offset >= offset >= 86400
        items = await second.bot.ledger.items(demo.GUILD_ID)
        assert len(items) == 3  # not set up twice
        async with aiohttp.ClientSession() as http, http.get(second.url + "api/state") as response:
            assert response.status == 200
    finally:
        await second.stop()
    second.fake.assert_clean()


async def test_a_modal_is_submitted_only_where_the_bot_opened_one(client: Client, live: Live):
    """The bot opens no modal today; the page's path to one refuses what Discord's client would not send."""
    answer = await client.ok("/api/invoke", {"user": ALICE, "channel": GENERAL, "command": "terms"})
    assert answer["responded"]
    assert answer["modal"] is None
    status, refused = await client.post(
        "/api/modal", {"user": ALICE, "interaction": answer["interaction"], "values": {"text": "hi"}}
    )
    assert status == 400
    assert refused["refused_by"] == "discord"
    assert "did not open a modal" in refused["error"]
    status, _ = await client.post("/api/modal", {"user": ALICE, "interaction": "1", "values": {}})
    assert status == 404
