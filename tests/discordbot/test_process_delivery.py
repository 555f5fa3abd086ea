"""Durable delivery in the real `python -m bot` (SPEC §3): a paid order never loses its role.

The fake answers the role grant with a 429 and a long Retry-After; the bot is SIGKILLed while
discord.py waits it out, then started again: the role is given exactly once and nothing is
refunded. When the role went above the bot meanwhile, the order is refunded once and the member
told by DM. (Faster scenarios, in process: tests/discordbot/test_deliveries.py.)
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from bot.app.ledger import Ledger
from bot.store.sqlite import SqliteStore
from fakediscord import FakeDiscord, Role
from tests.discordbot.test_process import Shop
from tests.e2e import button, text_of
from tests.processes import Launch, assert_clean

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROLE_REQUEST = r"/guilds/\d+/members/\d+/roles/\d+$"


def rows(db: Path, sql: str) -> list[tuple]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return conn.execute(sql).fetchall()


async def verify(db: Path) -> list[str]:
    store = SqliteStore(db)
    await store.open()
    try:
        return await Ledger(store).verify()
    finally:
        await store.close()


async def buy_killed_during_a_rate_limit_wait(
    fake: FakeDiscord, launch: Launch, shop: Shop, role: Role, db: Path
) -> None:
    """Stock the shop, buy an item that gives `role`, and SIGKILL the bot while discord.py waits out
    the 429 Discord answered the role grant with."""
    bot = await launch(fake)
    await fake.wait_until_ready(timeout=20)
    await fake.wait_for(lambda: fake.sync_count == 1, 20, "command sync")
    granted = await fake.invoke(shop.guild.id, shop.mod.id, "credits grant", {"member": shop.alice.id, "amount": "100"})
    assert "100 credits" in text_of(granted), text_of(granted)
    added = await fake.invoke(
        shop.guild.id,
        shop.mod.id,
        "shopadmin add",
        {"name": "Gold pass", "price": "60", "category": "perks", "role": role.id},
    )
    assert "Added to the shop" in text_of(added), text_of(added)
    fake.fail_next("PUT", ROLE_REQUEST, 429, retry_after=60)
    preview = await fake.invoke(shop.guild.id, shop.alice.id, "buy", {"item": "Gold pass"})
    await fake.click(preview, button(preview, "buy:confirm:"), shop.alice.id)
    await bot.wait_for_log("We are being rate limited", fake)  # discord.py sleeps for 60 s now
    assert [r.status for r in fake.requests_to("PUT", ROLE_REQUEST)] == [429]
    bot.proc.kill()
    assert await bot.exit_code() == -signal.SIGKILL
    # Paid, no role: what used to be lost for good is now written down.
    assert rows(db, "SELECT status FROM orders") == [("completed",)]
    assert rows(db, "SELECT action, status, attempts FROM deliveries") == [("add_role", "pending", 1)]
    assert role.id not in fake.member(shop.guild.id, shop.alice.id).roles


async def test_a_purchase_killed_during_a_rate_limit_wait_gets_its_role_once_after_a_restart(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    shop = Shop(fake)
    gold = fake.add_role(shop.guild.id, "Gold", position=3)
    db = tmp_path / "data" / "bot.sqlite3"  # where `launch` puts it
    await buy_killed_during_a_rate_limit_wait(fake, launch, shop, gold, db)

    again = await launch(fake)
    await fake.wait_for(
        lambda: rows(db, "SELECT action, status FROM deliveries") == [("add_role", "done")], 20, "the delivery"
    )
    assert gold.id in fake.member(shop.guild.id, shop.alice.id).roles
    assert [r.status for r in fake.requests_to("PUT", ROLE_REQUEST)] == [429, 204]  # given once
    assert rows(db, "SELECT status FROM orders") == [("completed",)]
    assert rows(db, "SELECT COUNT(*) FROM entries WHERE type = 'refund'") == [(0,)]
    assert fake.dms(shop.alice.id) == []
    assert await again.stop() == 0
    assert_clean(again)
    assert await verify(db) == []


async def test_a_purchase_whose_role_went_above_the_bot_during_a_crash_is_refunded_once_and_the_member_told(
    fake: FakeDiscord, launch: Launch, tmp_path: Path
):
    shop = Shop(fake)
    gold = fake.add_role(shop.guild.id, "Gold", position=3)
    db = tmp_path / "data" / "bot.sqlite3"  # where `launch` puts it
    await buy_killed_during_a_rate_limit_wait(fake, launch, shop, gold, db)
    fake.update_role(shop.guild.id, gold.id, position=200)  # above the bot's role (100) while it is down

    again = await launch(fake)
    await fake.wait_for(
        lambda: rows(db, "SELECT action, status FROM deliveries") == [("add_role", "failed"), ("dm_refund", "done")],
        20,
        "the refund and its DM",
    )
    (dm,) = fake.dms(shop.alice.id)
    assert "order #1 (1 × Gold pass) in **Shop Guild** was refunded automatically" in dm.content
    assert "60 credits is back in your balance" in dm.content
    assert rows(db, "SELECT status FROM orders") == [("refunded",)]
    assert rows(db, "SELECT COUNT(*) FROM entries WHERE type = 'refund'") == [(1,)]
    # Known from the gateway cache (no request) or from Discord's 403 50013: never given.
    assert [r.status for r in fake.requests_to("PUT", ROLE_REQUEST)][1:] in ([], [403])
    assert gold.id not in fake.member(shop.guild.id, shop.alice.id).roles
    balance = await fake.invoke(shop.guild.id, shop.alice.id, "balance")
    assert "100 credits" in text_of(balance)
    assert await again.stop() == 0
    assert_clean(again)
    assert await verify(db) == []
