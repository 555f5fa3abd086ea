"""SPEC §5 reminder DMs and the expiry sweep, end to end: the real bot on the fake Discord, a clock
the tests move by hand (jobs run when a test calls bot.jobs.expire() / remind()), restarts on the
same database file, a crash of a separate process in the middle of a batch, and one real-time run
of APScheduler itself."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sqlite3
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import discord
import pytest

from bot.app.ledger import Ledger
from bot.app.reminder_dispatch import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    MAX_ATTEMPTS,
    NONCE_WINDOW,
    Pacer,
    ReminderDispatcher,
    backoff,
    nonce_for,
)
from bot.discordbot.client import PromoBalanceBot
from bot.domain.models import DueReminder, Lot
from bot.store.factory import make_store
from bot.store.sqlite import SqliteStore
from fakediscord import Member
from tests import rawsql
from tests.conftest import ALICE, BOB, GUILD, MOD, START, Clock, Keys
from tests.e2e import Restart, World, stop_bot, text_of

REPO = Path(__file__).resolve().parents[2]
MIN = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
DM_POST = r"/channels/\d+/messages$"


# --- helpers ----------------------------------------------------------------------------------------


def db_rows(path: Path, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, tuple(args)).fetchall()
    finally:
        conn.close()


def reminder_rows(w: World) -> dict[tuple[int, int], str]:
    """(lot id, lead seconds) -> status of the `reminders` table."""
    rows = rawsql.rows(w.settings, "SELECT lot_id, lead_seconds, status FROM reminders")
    return {(lot, lead): status for lot, lead, status in rows}


def dm_texts(w: World, member: Member) -> list[str]:
    return [text_of(m) for m in w.fake.dms(member.id)]


def dm_posts(w: World, member: Member) -> list[Any]:
    """Every POST to the member's DM channel (failed ones too), in order."""
    channel_id = w.fake._dm_channels.get(member.id)  # no public accessor for the DM channel's id
    if channel_id is None:
        return []
    return w.fake.requests_to("POST", rf"^/channels/{channel_id}/messages$")


def ts(unix: int) -> str:
    return f"<t:{unix}:R>"


async def grant(w: World, member: Member, amount: str, expires: str | None, guild_id: int | None = None) -> int:
    result = await w.ledger.grant(
        guild_id or w.guild.id, member.id, amount, actor_id=w.mod.id, key=None, expires=expires
    )
    return result.first_lot_id


class NoWaitAsyncio:
    """discord.py's HTTP client retries a 500/502 itself after 1 s, 3 s, 5 s, 7 s: the same
    retries, without the real waiting (patched into `discord.http` only)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        await asyncio.sleep(0)
        return result


@pytest.fixture
def no_http_retry_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(discord.http, "asyncio", NoWaitAsyncio())


# --- rendering and grouping -----------------------------------------------------------------------


async def test_one_dm_per_member_guild_and_window_with_the_guild_currency(world: World):
    w = world
    await w.run(w.mod, "settings currency", name="gems", decimals=2)
    other = w.fake.add_guild(name="Other Guild")
    w.fake.add_member(other.id, user_id=w.alice.id, name="alice")
    await w.fake.wait_for(lambda: w.bot.get_guild(other.id) is not None, what="the second guild")
    now = w.ledger.now()

    week_a = await grant(w, w.alice, "12.50", "3d")
    week_b = await grant(w, w.alice, "7.25", "5d")
    day_lot = await grant(w, w.alice, "3.33", "12h")  # the 1d window: another DM
    await grant(w, w.alice, "99.99", "20d")  # no window open yet
    await grant(w, w.alice, "55.55", None)  # never expires
    other_lot = await grant(w, w.alice, "41", "4d", guild_id=other.id)  # another guild: another DM
    bob_lot = await grant(w, w.bob, "8.88", "6d")

    sent = await w.bot.jobs.remind()
    assert sent == 4  # alice: 7d + 1d in Shop Guild, 7d in Other Guild; bob: 7d

    texts = dm_texts(w, w.alice)
    assert len(texts) == 3
    week = [t for t in texts if "12.50 gems" in t]
    assert len(week) == 1
    week_dm = week[0]
    assert "Shop Guild" in week_dm
    assert "7.25 gems" in week_dm
    assert "19.75 gems" in week_dm  # the total expiring in that window
    assert ts(now + 3 * DAY) in week_dm
    assert ts(now + 5 * DAY) in week_dm
    assert "/shop" in week_dm
    for foreign in ("3.33", "99.99", "55.55", "41 credits", "Other Guild"):
        assert foreign not in week_dm

    (day_dm,) = [t for t in texts if "3.33 gems" in t]
    assert ts(now + 12 * HOUR) in day_dm
    assert "/shop" in day_dm
    assert "12.50" not in day_dm
    assert "7.25" not in day_dm

    (other_dm,) = [t for t in texts if "Other Guild" in t]
    assert "41 credits" in other_dm  # that guild's own (default) currency
    assert "gems" not in other_dm
    assert "Shop Guild" not in other_dm
    assert ts(now + 4 * DAY) in other_dm

    (bob_dm,) = dm_texts(w, w.bob)
    assert "8.88 gems" in bob_dm
    assert "12.50" not in bob_dm

    rows = reminder_rows(w)
    assert rows == {
        (week_a, WEEK): "sent",
        (week_b, WEEK): "sent",
        (day_lot, DAY): "sent",
        (other_lot, WEEK): "sent",
        (bob_lot, WEEK): "sent",
    }
    assert await w.bot.jobs.remind() == 0
    assert len(w.fake.dms(w.alice.id)) == 3


async def test_reminder_dm_is_sent_with_a_nonce_and_emits_credits_expiring(world: World):
    w = world
    events: list[dict] = []

    async def on_credits_expiring(payload: dict) -> None:
        events.append(payload)

    w.bot.add_listener(on_credits_expiring, "on_credits_expiring")
    lot = await grant(w, w.alice, "30", "2d")
    await w.bot.jobs.remind()
    (post,) = dm_posts(w, w.alice)
    assert post.json["enforce_nonce"] is True
    assert 1 <= len(post.json["nonce"]) <= 25  # Discord's limit
    await w.fake.wait_for(lambda: len(events) == 1, what="credits_expiring")
    assert events[0]["user_id"] == w.alice.id
    assert events[0]["lead_seconds"] == WEEK
    assert [item["lot_id"] for item in events[0]["lots"]] == [lot]
    assert events[0]["lots"][0]["amount"] == 30


async def test_many_lots_in_one_window_still_fit_in_one_dm(world: World):
    w = world
    lots = [await grant(w, w.alice, str(10 + i), f"{3 * 24 * 60 + i}m") for i in range(60)]
    run = await w.bot.reminders.run_once()
    assert (run.sent, run.retried, run.errors) == (1, 0, [])
    (dm,) = w.fake.dms(w.alice.id)
    (embed,) = dm.embeds
    assert len(embed["description"]) <= 4096  # Discord refuses longer ones, on every attempt
    assert len(dm.embed_text) <= 6000
    total = sum(10 + i for i in range(60))
    assert f"{total:,} credits" in dm.embed_text  # the total covers every lot
    assert "**10 credits**" in embed["description"]  # the soonest listed first
    shown = embed["description"].count("credit expires")
    assert 10 < shown < 60
    rest = sum(10 + i for i in range(shown, 60))
    assert f"and {60 - shown} more, **{rest:,} credits** in all" in embed["description"]
    assert "/shop" in embed["description"]
    assert set(reminder_rows(w).values()) == {"sent"}
    assert len(reminder_rows(w)) == len(lots)


# --- at most once, across restarts ----------------------------------------------------------------


async def test_each_lot_and_lead_is_reminded_once_across_restarts(world: World, restart: Restart):
    w = world
    lot = await grant(w, w.alice, "40", "10d")
    assert await w.bot.jobs.remind() == 0  # 10 days left: no window open
    w.clock.advance(days=3)  # exactly 7 days left: the window opens
    assert await w.bot.jobs.remind() == 1
    assert await w.bot.jobs.remind() == 0
    await restart()
    assert await w.bot.jobs.remind() == 0
    assert len(w.fake.dms(w.alice.id)) == 1

    w.clock.advance(days=5, hours=23)  # 1 day and 1 hour left
    assert await w.bot.jobs.remind() == 0
    w.clock.advance(hours=1)
    assert await w.bot.jobs.remind() == 1
    await restart()
    w.clock.advance(hours=12)
    assert await w.bot.jobs.remind() == 0
    w.clock.advance(days=1)
    assert await w.bot.jobs.expire() == 1
    assert await w.bot.jobs.remind() == 0

    assert len(w.fake.dms(w.alice.id)) == 2
    assert reminder_rows(w) == {(lot, WEEK): "sent", (lot, DAY): "sent"}


async def test_restart_between_due_time_and_sending(world: World, restart: Restart):
    w = world
    lot = await grant(w, w.alice, "40", "10d")
    w.clock.advance(days=3, hours=1)  # due, but the bot stops before its next tick
    bot = await restart()
    w.clock.advance(minutes=30)
    assert await bot.jobs.remind() == 1
    (text,) = dm_texts(w, w.alice)
    assert "40 credits" in text
    assert reminder_rows(w) == {(lot, WEEK): "sent"}
    await restart()
    assert await w.bot.jobs.remind() == 0
    assert len(w.fake.dms(w.alice.id)) == 1


async def crash_after_posting(w: World, bot: PromoBalanceBot) -> None:
    """Run a reminder tick whose DM reaches Discord, but the bot dies before recording it."""
    real_send = bot.reminders.send

    async def send_then_die(due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        await real_send(due, lots, nonce)
        raise asyncio.CancelledError  # shut down between the POST and the settle

    bot.reminders.send = send_then_die
    with pytest.raises(asyncio.CancelledError):
        await bot.jobs.remind()


async def test_restart_after_posting_resends_with_the_same_nonce_and_discord_drops_it(world: World, restart: Restart):
    w = world
    lot = await grant(w, w.alice, "40", "3d")
    await crash_after_posting(w, w.bot)
    assert len(w.fake.dms(w.alice.id)) == 1
    assert reminder_rows(w) == {(lot, WEEK): "pending"}

    await restart()
    w.clock.advance(minutes=2)  # within Discord's nonce window
    assert await w.bot.jobs.remind() == 1
    first, second = dm_posts(w, w.alice)
    assert first.json["nonce"] == second.json["nonce"]
    assert len(w.fake.dms(w.alice.id)) == 1  # the fake (like Discord) returned the first message
    assert reminder_rows(w) == {(lot, WEEK): "sent"}
    assert await w.bot.jobs.remind() == 0


async def test_restart_long_after_posting_settles_unknown_and_never_resends(world: World, restart: Restart):
    w = world
    lot = await grant(w, w.alice, "40", "3d")
    await crash_after_posting(w, w.bot)
    await restart()
    w.clock.advance(seconds=NONCE_WINDOW + 1)
    assert await w.bot.jobs.remind() == 0
    assert len(dm_posts(w, w.alice)) == 1
    assert reminder_rows(w) == {(lot, WEEK): "unknown"}
    # The next lead still comes.
    w.clock.advance(days=2)
    assert await w.bot.jobs.remind() == 1
    assert len(w.fake.dms(w.alice.id)) == 2
    assert reminder_rows(w) == {(lot, WEEK): "unknown", (lot, DAY): "sent"}


async def test_a_claim_of_the_running_bot_is_never_taken_for_a_crashed_send(
    world: World, restart: Restart, monkeypatch: pytest.MonkeyPatch
):
    """A 'pending' claim is a crashed send only when an earlier run made it. Here the DM went out
    but recording it failed: the same run's next ticks leave it alone (before, they resent it,
    as two processes did with each other's claims); the next start resends it under its nonce."""
    w = world
    lot = await grant(w, w.alice, "40", "3d")

    async def settle_fails(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(w.bot.ledger, "settle_reminder", settle_fails)
        with pytest.raises(sqlite3.OperationalError):
            await w.bot.jobs.remind()
    assert reminder_rows(w) == {(lot, WEEK): "pending"}
    assert len(dm_posts(w, w.alice)) == 1
    for _ in range(2):
        w.clock.advance(minutes=1)
        assert await w.bot.jobs.remind() == 0
    assert len(dm_posts(w, w.alice)) == 1  # not sent again by the run that claimed it
    assert reminder_rows(w) == {(lot, WEEK): "pending"}

    await restart()  # a new run: the claim's run is over, so its send is one that crashed
    w.clock.advance(minutes=1)  # within Discord's nonce window
    assert await w.bot.jobs.remind() == 1
    first, second = dm_posts(w, w.alice)
    assert first.json["nonce"] == second.json["nonce"]
    assert len(w.fake.dms(w.alice.id)) == 1  # Discord returned the first message
    assert reminder_rows(w) == {(lot, WEEK): "sent"}
    assert await w.bot.jobs.remind() == 0
    assert len(dm_posts(w, w.alice)) == 2


async def test_a_claim_of_the_running_bot_past_the_nonce_window_is_given_up(
    world: World, monkeypatch: pytest.MonkeyPatch
):
    w = world
    lot = await grant(w, w.alice, "40", "3d")

    async def settle_fails(*args: Any, **kwargs: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(w.bot.ledger, "settle_reminder", settle_fails)
        with pytest.raises(sqlite3.OperationalError):
            await w.bot.jobs.remind()
    w.clock.advance(seconds=NONCE_WINDOW + 1)
    assert await w.bot.jobs.remind() == 0
    assert reminder_rows(w) == {(lot, WEEK): "unknown"}
    assert len(dm_posts(w, w.alice)) == 1
    w.clock.advance(days=2)  # the next lead still comes
    assert await w.bot.jobs.remind() == 1
    assert reminder_rows(w) == {(lot, WEEK): "unknown", (lot, DAY): "sent"}


async def test_fake_discord_honours_nonce_and_enforce_nonce(world: World):
    w = world
    user = await w.bot.fetch_user(w.alice.id)
    first = await user.send("hello", nonce="same-nonce")
    again = await user.send("hello again", nonce="same-nonce")
    assert again.id == first.id
    assert len(w.fake.dms(w.alice.id)) == 1
    other = await user.send("other", nonce="other-nonce")
    assert other.id != first.id
    assert len(w.fake.dms(w.alice.id)) == 2
    w.fake.nonce_window = 0  # "the past few minutes" are over
    late = await user.send("late", nonce="same-nonce")
    assert late.id != first.id
    assert len(w.fake.dms(w.alice.id)) == 3
    # Without enforce_nonce, Discord does not deduplicate.
    channel = await user.create_dm()
    w.fake.nonce_window = 300
    before = len(w.fake.dms(w.alice.id))
    await w.bot.http.request(
        discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=channel.id),
        json={"content": "no enforce", "nonce": "late"},
    )
    assert len(w.fake.dms(w.alice.id)) == before + 1


# --- downtime ----------------------------------------------------------------------------------------


async def test_after_downtime_only_the_most_urgent_missed_lead_and_none_for_expired(world: World, restart: Restart):
    w = world
    now = w.ledger.now()
    lot = await grant(w, w.alice, "40", "10d")
    gone = await grant(w, w.alice, "17", "9d6h")  # expires during the downtime
    w.clock.advance(days=2)  # 8 days left: nothing due yet
    assert await w.bot.jobs.remind() == 0
    await w.bot.close()  # down from 8 days to 12 hours before the expiry
    w.clock.advance(days=7, hours=12)
    await restart()
    assert await w.bot.jobs.remind() == 1  # before the sweep even ran
    (text,) = dm_texts(w, w.alice)
    assert "40 credits" in text
    assert ts(now + 10 * DAY) in text
    assert "17 credits" not in text
    assert reminder_rows(w) == {(lot, DAY): "sent"}  # no 7d reminder, nothing for the expired lot
    assert [e.lot_id for e in await w.ledger.sweep_expired()] == [gone]
    w.clock.advance(hours=6)
    assert await w.bot.jobs.remind() == 0
    assert len(w.fake.dms(w.alice.id)) == 1


# --- opting out ----------------------------------------------------------------------------------


async def test_opt_out_is_respected_and_opting_back_in_works_for_later_windows(world: World):
    w = world
    off = await w.run(w.alice, "reminders", enabled=False)
    assert off.ephemeral
    assert "off" in text_of(off)
    lot = await grant(w, w.alice, "40", "3d")
    bob_lot = await grant(w, w.bob, "40", "3d")
    assert await w.bot.jobs.remind() == 1  # bob only
    assert w.fake.dms(w.alice.id) == []
    assert dm_posts(w, w.alice) == []
    assert reminder_rows(w) == {(lot, WEEK): "opted_out", (bob_lot, WEEK): "sent"}

    on = await w.run(w.alice, "reminders", enabled=True)
    assert "on" in text_of(on)
    assert await w.bot.jobs.remind() == 0  # the 7d window went by while opted out: not resent
    w.clock.advance(days=2)
    assert await w.bot.jobs.remind() == 2
    (text,) = dm_texts(w, w.alice)
    assert "40 credits" in text
    assert reminder_rows(w)[(lot, DAY)] == "sent"


# --- failures --------------------------------------------------------------------------------------


async def test_closed_dms_in_the_middle_of_a_batch(world: World):
    w = world
    carol = w.fake.add_member(w.guild.id, name="carol")
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_member(carol.id) is not None, what="carol")
    w.fake.close_dms(w.bob.id)
    lots = {m.id: await grant(w, m, "40", "3d") for m in (w.alice, w.bob, carol)}
    run = await w.bot.reminders.run_once()
    assert (run.found, run.sent, run.dm_closed, run.retried) == (3, 2, 1, 0)
    assert len(w.fake.dms(w.alice.id)) == 1
    assert len(w.fake.dms(carol.id)) == 1
    assert w.fake.dms(w.bob.id) == []
    # Bob was in the middle of the batch: his refusal did not stop carol's DM.
    posts = w.fake.requests_to("POST", DM_POST)
    assert [p.status for p in posts] == [200, 403, 200]
    rows = rawsql.rows(w.settings, "SELECT user_id, dm_closed_at FROM accounts WHERE guild_id = ?", (w.guild.id,))
    closed = dict(rows)
    assert closed[w.bob.id] == w.ledger.now()
    assert closed[w.alice.id] is None
    assert closed[carol.id] is None
    assert reminder_rows(w)[(lots[w.bob.id], WEEK)] == "dm_closed"

    # Not retried: not this window, not the next one, not another lot.
    w.clock.advance(minutes=30)
    assert await w.bot.jobs.remind() == 0
    w.clock.advance(days=2)
    await grant(w, w.bob, "5", "1h")
    assert await w.bot.jobs.remind() == 2  # alice and carol, 1d
    assert len(dm_posts(w, w.bob)) == 1
    assert reminder_rows(w)[(lots[w.bob.id], DAY)] == "dm_closed"


async def test_passing_failures_are_retried_with_backoff(world: World, no_http_retry_wait: None):
    w = world
    lot = await grant(w, w.alice, "40", "3d")
    # discord.py itself tries a 502 five times before giving up on the request.
    w.fake.fail_next("POST", DM_POST, 502, times=5)
    run = await w.bot.reminders.run_once()
    assert (run.sent, run.retried) == (0, 1)
    assert w.fake.dms(w.alice.id) == []
    assert reminder_rows(w) == {(lot, WEEK): "retry"}
    w.clock.advance(seconds=BACKOFF_BASE - 1)  # the backoff has not passed yet
    assert await w.bot.jobs.remind() == 0
    assert len(dm_posts(w, w.alice)) == 5
    w.clock.advance(seconds=1)
    assert await w.bot.jobs.remind() == 1
    assert len(w.fake.dms(w.alice.id)) == 1
    assert reminder_rows(w) == {(lot, WEEK): "sent"}
    posts = dm_posts(w, w.alice)
    assert len({p.json["nonce"] for p in posts}) == 1  # a retry of the same DM: the same nonce
    assert await w.bot.jobs.remind() == 0


async def test_failures_are_given_up_after_max_attempts(world: World, no_http_retry_wait: None):
    w = world
    lot = await grant(w, w.alice, "40", "3d")
    w.fake.fail_next("POST", DM_POST, 500, times=5 * MAX_ATTEMPTS)
    waits = []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        run = await w.bot.reminders.run_once()
        assert run.found == 1, attempt
        if attempt < MAX_ATTEMPTS:
            assert (run.retried, run.failed) == (1, 0)
            wait = rawsql.rows(w.settings, "SELECT next_reminder_at FROM lots WHERE id = ?", (lot,))
            waits.append(wait[0][0] - w.ledger.now())
            w.clock.advance(seconds=waits[-1])
        else:
            assert (run.retried, run.failed) == (0, 1)
    assert waits == [backoff(n) for n in range(1, MAX_ATTEMPTS)]
    assert waits == sorted(waits)  # growing: 1, 2, 4, 8, 16 minutes
    assert waits[0] == BACKOFF_BASE
    assert len(dm_posts(w, w.alice)) == 5 * MAX_ATTEMPTS
    assert reminder_rows(w) == {(lot, WEEK): "failed"}
    w.clock.advance(hours=1)
    assert await w.bot.jobs.remind() == 0
    assert len(dm_posts(w, w.alice)) == 5 * MAX_ATTEMPTS  # given up: no more requests
    # The next lead is a new reminder, with its own attempts.
    w.clock.advance(days=2)
    assert await w.bot.jobs.remind() == 1
    assert reminder_rows(w) == {(lot, WEEK): "failed", (lot, DAY): "sent"}


def test_backoff_doubles_and_is_capped():
    assert [backoff(n) for n in range(1, 6)] == [60, 120, 240, 480, 960]
    assert backoff(0) == BACKOFF_BASE
    assert backoff(30) == BACKOFF_CAP


# --- the expiry sweep ----------------------------------------------------------------------------


async def test_expiry_sweep_writes_expiries_within_one_tick_and_dispatches_events(world: World):
    w = world
    expired: list[dict] = []

    async def on_credit_expired(payload: dict) -> None:
        expired.append(payload)

    w.bot.add_listener(on_credit_expired, "on_credit_expired")
    soon = await grant(w, w.alice, "40", "90m")
    later = await grant(w, w.bob, "25", "3h")
    w.clock.advance(minutes=89)
    assert await w.bot.jobs.expire() == 0
    w.clock.advance(minutes=1)  # exactly at expires_at: unusable from this instant
    assert await w.bot.jobs.expire() == 1
    rows = rawsql.rows(w.settings, "SELECT id, status, remaining FROM lots ORDER BY id")
    assert rows == [(soon, "expired", 0), (later, "active", 25)]
    entries = rawsql.rows(w.settings, "SELECT lot_id, type, amount FROM entries WHERE type = 'expire'")
    assert entries == [(soon, "expire", -40)]
    await w.fake.wait_for(lambda: len(expired) == 1, what="credit_expired")
    assert expired[0]["lot_id"] == soon
    assert expired[0]["user_id"] == w.alice.id
    assert expired[0]["amount"] == 40
    assert expired[0]["guild_id"] == w.guild.id
    assert isinstance(expired[0], dict)  # plain data, not a row
    assert await w.bot.jobs.expire() == 0  # once only
    assert await w.ledger.verify() == []
    balance = await w.run(w.alice, "balance")
    assert "40 credits" not in text_of(balance)


# --- APScheduler for real ----------------------------------------------------------------------------


async def test_apscheduler_runs_the_three_jobs_on_the_real_clock(world: World):
    w = world
    await w.bot.close()
    await w.fake.wait_for(lambda: not w.fake.gateway.ready.is_set(), what="the test-clock bot to stop")
    w.fake.set_member_roles(w.guild.id, w.alice.id, [w.vip_role])
    real_now = datetime.now(UTC)
    # A recurring grant that fell due while the bot was down: it runs once at start.
    store = make_store(w.settings)  # the bot's own store: SQLite or PostgreSQL, as world runs it
    await store.open()
    try:
        past = Ledger(store, clock=lambda: real_now - timedelta(days=2))
        await past.add_schedule(w.guild.id, w.vip_role.id, 25, "0 0 * * *", actor_id=w.mod.id, key="s1", valid_days=30)
        # A reminder that fell due while the bot was down: the first tick, right at start, sends it.
        await Ledger(store).grant(w.guild.id, w.alice.id, 45, actor_id=w.mod.id, key=None, expires="2h")
    finally:
        await store.close()

    # A gateway as slow as Discord's can be at start: the first tick runs before the guilds arrive.
    identify = w.fake.gateway._identify

    async def slow_identify(connection: Any, data: dict) -> None:
        await asyncio.sleep(0.5)
        await identify(connection, data)

    w.fake.gateway._identify = slow_identify
    bot = PromoBalanceBot(w.settings, tick_seconds=0.2, dm_rate=float("inf"))
    expired: list[dict] = []

    async def on_credit_expired(payload: dict) -> None:
        expired.append(payload)

    bot.add_listener(on_credit_expired, "on_credit_expired")
    await bot.login(w.fake.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    try:
        await w.fake.wait_until_ready()
        assert bot.jobs.scheduler.running
        assert sorted(job.id for job in bot.jobs.scheduler.get_jobs()) == [
            "deliver",
            "expire",
            "lease",
            "recurring",
            "remind",
        ]
        expiring = await bot.ledger.grant(w.guild.id, w.bob.id, 10, actor_id=w.mod.id, key=None, expires="2s")
        await bot.ledger.grant(w.guild.id, w.mod.id, 30, actor_id=w.mod.id, key=None, expires="1h")
        await bot.ledger.grant_many(w.guild.id, range(10_000, 10_200), 5, actor_id=w.mod.id, key=None, expires="30d")
        assert len(bot.jobs.scheduler.get_jobs()) == 5  # 203 lots later: still the four jobs and the lease

        await w.fake.wait_for(lambda: len(w.fake.dms(w.alice.id)) == 1, timeout=10, what="the catch-up reminder")
        catch_up = text_of(w.fake.dms(w.alice.id)[0])
        assert "45 credits" in catch_up
        assert "Shop Guild" in catch_up  # sent at start, but not before the bot knows the guild

        await w.fake.wait_for(lambda: len(w.fake.dms(w.mod.id)) == 1, timeout=10, what="the reminder tick")
        assert "30 credits" in text_of(w.fake.dms(w.mod.id)[0])
        await w.fake.wait_for(lambda: len(expired) == 1, timeout=10, what="the expiry tick")
        assert expired[0]["lot_id"] == expiring.first_lot_id
        await w.fake.wait_for(
            lambda: bool(
                rawsql.rows(
                    w.settings,
                    "SELECT 1 FROM lots WHERE user_id = ? AND source_ref = 'schedule:1'",
                    (w.alice.id,),
                )
            ),
            timeout=10,
            what="the recurring grant",
        )
        await asyncio.sleep(0.5)  # a few more ticks: the missed run ran once, not once per tick
        granted = rawsql.rows(w.settings, "SELECT user_id, original FROM lots WHERE source_ref = 'schedule:1'")
        assert granted == [(w.alice.id, 25)]
        assert len(bot.jobs.scheduler.get_jobs()) == 5
    finally:
        await stop_bot(bot, task)
    assert not bot.jobs.scheduler.running
    # Closed after the scheduler stopped: SQLite's connection, PostgreSQL's pool.
    assert getattr(bot.store, "_db", None) is None
    assert getattr(bot.store, "_pool", None) is None


# --- pacing ----------------------------------------------------------------------------------------


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, delay: float, result: Any = None) -> Any:
        self.sleeps.append(delay)
        self.now += delay
        return result


async def test_pacer_spaces_sends_evenly(monkeypatch: pytest.MonkeyPatch):
    t = FakeTime()
    monkeypatch.setattr(asyncio, "sleep", t.sleep)
    pacer = Pacer(4.0, monotonic=t.monotonic)
    moments = []
    for _ in range(5):
        await pacer.wait()
        moments.append(t.now)
    assert moments == [1000.0, 1000.25, 1000.5, 1000.75, 1001.0]
    # Time spent elsewhere counts: after a long pause, no waiting, and no burst credit either.
    t.now += 10
    await pacer.wait()
    assert t.now == 1011.0
    await pacer.wait()
    assert t.now == 1011.25


async def test_unlimited_pacer_never_sleeps(monkeypatch: pytest.MonkeyPatch):
    t = FakeTime()
    monkeypatch.setattr(asyncio, "sleep", t.sleep)
    pacer = Pacer(float("inf"), monotonic=t.monotonic)
    for _ in range(100):
        await pacer.wait()
    assert t.sleeps == []


async def test_dispatcher_paces_a_burst(ledger: Ledger, key: Keys, monkeypatch: pytest.MonkeyPatch):
    t = FakeTime()
    monkeypatch.setattr(asyncio, "sleep", t.sleep)
    for user in range(100, 140):
        await ledger.grant(GUILD, user, 10, actor_id=MOD, key=key(), expires="2d")
    sent_at: list[float] = []

    async def send(due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        sent_at.append(t.now)

    dispatcher = ReminderDispatcher(ledger, send, rate=20.0)
    dispatcher.pacer.monotonic = t.monotonic
    run = await dispatcher.run_once()
    assert run.sent == 40
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(sent_at)]
    assert gaps == [0.05] * 39  # 20 DMs per second, evenly spread
    assert sum(t.sleeps) == pytest.approx(39 / 20)


# --- the store's claim and settle, without Discord --------------------------------------------------


async def test_nonce_is_stable_per_reminder_and_fits_discord(ledger: Ledger, key: Keys):
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2d")
    await ledger.grant(GUILD, ALICE, 20, actor_id=MOD, key=key(), expires="3d")
    (due,) = await ledger.due_reminders()
    assert len(due.lot_ids) == 2
    nonce = nonce_for(due)
    assert len(nonce) <= 25
    ids = due.lot_ids
    assert nonce_for(DueReminder(due.guild_id, due.user_id, due.lead_seconds, tuple(reversed(ids)))) == nonce
    assert nonce_for(DueReminder(due.guild_id, due.user_id, DAY, ids)) != nonce
    assert nonce_for(DueReminder(due.guild_id, BOB, due.lead_seconds, ids)) != nonce
    assert nonce_for(DueReminder(due.guild_id, due.user_id, due.lead_seconds, ids[:1])) != nonce


@pytest.mark.parametrize(("later", "resent"), [(1, True), (NONCE_WINDOW, True), (NONCE_WINDOW + 1, False)])
async def test_pending_claim_of_a_dead_run_resent_within_the_nonce_window_only(
    ledger: Ledger, clock: Clock, key: Keys, later: int, resent: bool
):
    lot = (await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2d")).first_lot_id
    (due,) = await ledger.due_reminders()
    first = await ledger.claim_reminder(due, nonce_for(due), NONCE_WINDOW, run_id="run-1")
    assert (first.lot_ids, first.attempts) == ((lot,), 1)
    # ... the process dies here: nothing settles the claim. The next start is another run.
    clock.advance(seconds=later)
    (again,) = await ledger.due_reminders()
    claim = await ledger.claim_reminder(again, "a-different-nonce", NONCE_WINDOW, run_id="run-2")
    if resent:
        assert claim.lot_ids == (lot,)
        assert claim.nonce == first.nonce
        assert claim.attempts == 2
    else:
        assert claim.lot_ids == ()
        assert claim.settled == (lot,)
        assert await ledger.due_reminders() == []  # (lot, 7d) settled 'unknown'; the 1d lead is not open yet


@pytest.mark.parametrize("later", [0, 1, NONCE_WINDOW])
async def test_pending_claim_of_the_same_run_is_its_own_send_and_never_resent(
    ledger: Ledger, clock: Clock, key: Keys, later: int
):
    lot = (await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2d")).first_lot_id
    (due,) = await ledger.due_reminders()
    await ledger.claim_reminder(due, nonce_for(due), NONCE_WINDOW, run_id="run-1")
    clock.advance(seconds=later)
    (again,) = await ledger.due_reminders()  # still due: the claim is not settled
    claim = await ledger.claim_reminder(again, nonce_for(again), NONCE_WINDOW, run_id="run-1")
    assert (claim.lot_ids, claim.settled) == ((), ())
    clock.advance(seconds=NONCE_WINDOW + 1 - later)  # long past: given up, not resent, even by this run
    (late,) = await ledger.due_reminders()
    claim = await ledger.claim_reminder(late, nonce_for(late), NONCE_WINDOW, run_id="run-1")
    assert (claim.lot_ids, claim.settled) == ((), (lot,))
    assert await ledger.due_reminders() == []


async def test_lots_spent_expired_or_opted_out_during_a_paced_batch_are_not_reminded(
    ledger: Ledger, clock: Clock, key: Keys
):
    """Pacing spreads a batch over minutes (10,000 DMs at 20/s), but the batch is read once at the
    start: what changes meanwhile must not be DMed from the stale read."""
    carol, dave, erin = 13, 14, 15
    await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key=key(), expires="2d")
    bob_lot = (await ledger.grant(GUILD, BOB, 20, actor_id=MOD, key=key(), expires="2d")).first_lot_id
    await ledger.grant(GUILD, carol, 30, actor_id=MOD, key=key(), expires="10m")
    await ledger.grant(GUILD, dave, 40, actor_id=MOD, key=key(), expires="2d")
    await ledger.grant(GUILD, erin, 50, actor_id=MOD, key=key(), expires="2d")
    sent: list[int] = []

    async def send(due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        sent.append(due.user_id)
        if due.user_id == ALICE:  # while the batch goes on:
            await ledger.revoke(GUILD, BOB, actor_id=MOD, key=key(), lot_id=bob_lot, reason="mistake")
            await ledger.set_reminders_enabled(GUILD, dave, False)
            clock.advance(minutes=11)  # carol's lot expires before her turn

    run = await ReminderDispatcher(ledger, send, rate=float("inf")).run_once()
    assert sent == [ALICE, erin]
    assert run.sent == 2
    assert run.opted_out == 1  # dave opted out meanwhile: his claim saw it and settled it, no DM
    run = await ReminderDispatcher(ledger, send, rate=float("inf")).run_once()
    assert sent == [ALICE, erin]
    assert run.opted_out == 0


CHILD = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from datetime import datetime

    from bot.app.ledger import Ledger
    from bot.app.reminder_dispatch import ReminderDispatcher
    from bot.store.sqlite import SqliteStore

    db, out, now, hang_at = sys.argv[1], sys.argv[2], datetime.fromisoformat(sys.argv[3]), int(sys.argv[4])


    async def main():
        store = SqliteStore(db)
        await store.open()
        ledger = Ledger(store, clock=lambda: now)
        count = 0

        async def send(due, lots, nonce):
            nonlocal count
            with open(out, "a") as f:
                record = {"user": due.user_id, "lead": due.lead_seconds, "lots": [lot.id for lot in lots],
                          "nonce": nonce}
                f.write(json.dumps(record) + "\\n")
                f.flush()
                os.fsync(f.fileno())
            count += 1
            if count == hang_at:
                await asyncio.sleep(3600)  # stuck mid-batch, until SIGKILL

        await ReminderDispatcher(ledger, send, rate=float("inf")).run_once()


    asyncio.run(main())
    """
)


def read_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def crash_mid_batch(tmp_path: Path, members: Sequence[int], hang_at: int) -> tuple[Path, Path, list[int]]:
    db = tmp_path / "crash.sqlite3"
    out = tmp_path / "sent.jsonl"
    store = SqliteStore(db)
    await store.open()
    try:
        ledger = Ledger(store, clock=Clock())
        lots = [
            (await ledger.grant(GUILD, m, 10 + i, actor_id=MOD, key=f"g{m}", expires="3d")).first_lot_id
            for i, m in enumerate(members)
        ]
    finally:
        await store.close()
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        str(db),
        str(out),
        START.isoformat(),
        str(hang_at),
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(30):
            while len(read_records(out)) < hang_at:
                if proc.returncode is not None:
                    _, err = await proc.communicate()
                    raise AssertionError(f"the child exited early: {err.decode()[-2000:]}")
                await asyncio.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()  # SIGKILL: no cleanup, no settle
        await proc.communicate()
    assert proc.returncode == -9
    return db, out, lots


async def rerun(db: Path, at: datetime) -> tuple[list[dict], Any, SqliteStore]:
    store = SqliteStore(db)
    await store.open()
    ledger = Ledger(store, clock=lambda: at)
    records: list[dict] = []

    async def send(due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        records.append(
            {"user": due.user_id, "lead": due.lead_seconds, "lots": [lot.id for lot in lots], "nonce": nonce}
        )

    run = await ReminderDispatcher(ledger, send, rate=float("inf")).run_once()
    return records, run, store


MEMBERS = [201, 202, 203, 204, 205]


@pytest.mark.slow
async def test_crash_mid_batch_then_restart_within_the_nonce_window(tmp_path: Path):
    db, out, lots = await crash_mid_batch(tmp_path, MEMBERS, hang_at=3)
    before = read_records(out)
    assert [r["user"] for r in before] == MEMBERS[:3]
    statuses = dict(db_rows(db, "SELECT lot_id, status FROM reminders"))
    assert statuses == {lots[0]: "sent", lots[1]: "sent", lots[2]: "pending"}

    records, run, store = await rerun(db, START + timedelta(minutes=2))
    try:
        assert [r["user"] for r in records] == MEMBERS[2:]
        # The one caught mid-send goes again under the same nonce: Discord keeps one message.
        assert records[0]["nonce"] == before[2]["nonce"]
        nonces: dict[tuple[int, int], set[str]] = {}
        for r in before + records:
            for lot in r["lots"]:
                nonces.setdefault((lot, r["lead"]), set()).add(r["nonce"])
        assert set(nonces) == {(lot, WEEK) for lot in lots}
        assert all(len(n) == 1 for n in nonces.values())  # no (lot, lead) delivered twice
        assert dict(db_rows(db, "SELECT lot_id, status FROM reminders")) == dict.fromkeys(lots, "sent")
        assert (run.sent, run.unknown) == (3, 0)
    finally:
        await store.close()
    again = await rerun_and_close(db, START + timedelta(minutes=3))
    assert again == []


@pytest.mark.slow
async def test_crash_mid_batch_then_restart_after_the_nonce_window(tmp_path: Path):
    db, out, lots = await crash_mid_batch(tmp_path, MEMBERS, hang_at=3)
    before = read_records(out)
    records, run, store = await rerun(db, START + timedelta(seconds=NONCE_WINDOW + 60))
    try:
        assert [r["user"] for r in records] == MEMBERS[3:]  # the caught one is not resent
        sent = [lot for r in before + records for lot in r["lots"]]
        assert sorted(sent) == sorted(lots)  # each (lot, 7d) exactly once
        assert (run.sent, run.unknown) == (2, 1)
        statuses = dict(db_rows(db, "SELECT lot_id, status FROM reminders"))
        assert statuses == {lots[0]: "sent", lots[1]: "sent", lots[2]: "unknown", lots[3]: "sent", lots[4]: "sent"}
    finally:
        await store.close()
    # Its next lead is still to come.
    later = await rerun_and_close(db, START + timedelta(days=2, hours=1))
    assert sorted(r["user"] for r in later) == MEMBERS
    assert {r["lead"] for r in later} == {DAY}


async def rerun_and_close(db: Path, at: datetime) -> list[dict]:
    records, _, store = await rerun(db, at)
    await store.close()
    return records
