"""SPEC §5 recurring grants, end to end: /credits schedule add / list / remove as a moderator, runs
driven by the test's clock (bot.jobs.recurring()), role membership read at run time from the
bot's member cache, restarts on the same database file, and the guild's timezone."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

import bot.app.schedules as schedules_app
from bot.app.ledger import Ledger
from bot.domain.recurrence import next_run
from bot.domain.timeparse import to_unix
from fakediscord import Member
from tests import rawsql
from tests.conftest import ALICE, BOB, GUILD, MOD, START, Clock, Keys
from tests.e2e import Restart, World, text_of

DAY = 86400
VIP = 77


def schedule_lots(w: World, schedule_id: int = 1) -> list[tuple[Any, ...]]:
    return rawsql.rows(
        w.settings,
        "SELECT user_id, original, kind, expires_at, categories, created_at FROM lots WHERE source_ref = ? ORDER BY id",
        (f"schedule:{schedule_id}",),
    )


def unix(*args: int) -> int:
    return to_unix(datetime(*args, tzinfo=UTC))


async def give_role(w: World, members: Sequence[Member], role_id: int) -> None:
    for m in members:
        w.fake.set_member_roles(w.guild.id, m.id, [role_id])
    want = {m.id for m in members}
    await w.fake.wait_for(
        lambda: want <= {m.id for m in w.bot.get_guild(w.guild.id).get_role(role_id).members},
        what="the role in the bot's member cache",
    )


async def add_schedule(w: World, rule: str, amount: str = "100", **options: Any) -> str:
    rec = await w.run(w.mod, "credits schedule add", role=w.vip_role.id, amount=amount, rule=rule, **options)
    assert rec.ephemeral
    return text_of(rec)


# --- adding ----------------------------------------------------------------------------------------


async def test_invalid_rules_are_refused_clearly_and_nothing_is_written(world: World):
    w = world
    for rule in ("every monday", "* * * *", "61 * * * *", "0 25 * * *", "*/0 * * * *", "0 0 31 2 *", "0 0 * * * *"):
        text = await add_schedule(w, rule)
        assert "cron" in text, (rule, text)
        assert "0 12 1 * *" in text  # an example of what works
        assert "Error id" not in text
        assert "went wrong" not in text
    assert rawsql.rows(w.settings, "SELECT COUNT(*) FROM schedules") == [(0,)]
    assert rawsql.rows(w.settings, "SELECT COUNT(*) FROM audit_log WHERE action LIKE 'schedule%'") == [(0,)]
    listed = await w.run(w.mod, "credits schedule list")
    assert "None yet" in text_of(listed)


async def test_a_bad_amount_is_refused_too(world: World):
    w = world
    for amount in ("0", "-5", "abc", "1e99"):
        text = await add_schedule(w, "0 12 1 * *", amount=amount)
        assert "Error id" not in text
    assert rawsql.rows(w.settings, "SELECT COUNT(*) FROM schedules") == [(0,)]


# --- running ---------------------------------------------------------------------------------------


async def test_each_due_run_grants_every_non_bot_member_of_the_role_once(world: World):
    w = world
    helper = w.fake.add_member(w.guild.id, name="helper", bot=True)
    await w.fake.wait_for(lambda: w.bot.get_guild(w.guild.id).get_member(helper.id) is not None, what="helper")
    await give_role(w, [w.alice, w.bob, helper], w.vip_role.id)
    granted: list[dict] = []

    async def on_credit_granted(payload: dict) -> None:
        granted.append(payload)

    w.bot.add_listener(on_credit_granted, "on_credit_granted")

    text = await add_schedule(w, "0 12 1 * *", valid_days=30, categories="games, books")
    assert "#1" in text
    assert f"<@&{w.vip_role.id}>" in text
    assert "100 credits" in text
    due = unix(2026, 12, 1, 12, 0)
    assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(due,)]

    w.clock.current = datetime(2026, 12, 1, 11, 59, 59, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 0
    assert schedule_lots(w) == []
    w.clock.advance(seconds=1)
    assert await w.bot.jobs.recurring() == 1
    lots = schedule_lots(w)
    expires = due + 30 * DAY
    assert sorted(lots) == sorted(
        [
            (w.alice.id, 100, "promo", expires, '["games", "books"]', due),
            (w.bob.id, 100, "promo", expires, '["games", "books"]', due),
        ]
    )  # the bot member got nothing
    keys = rawsql.rows(
        w.settings,
        "SELECT DISTINCT e.idempotency_key FROM entries e JOIN lots l ON l.id = e.lot_id"
        " WHERE l.source_ref = 'schedule:1'",
    )
    assert keys == [(f"schedule:1:{due}",)]  # one run, one key
    await w.fake.wait_for(lambda: len(granted) == 1, what="credit_granted")
    assert sorted(granted[0]["user_ids"]) == sorted([w.alice.id, w.bob.id])
    assert granted[0]["schedule_id"] == 1

    # Each due time runs once, however many ticks see it.
    for _ in range(3):
        w.clock.advance(seconds=20)
        assert await w.bot.jobs.recurring() == 0
    assert len(schedule_lots(w)) == 2

    # Members of the role *at run time*: bob left it, the owner joined it.
    w.fake.set_member_roles(w.guild.id, w.bob.id, [])
    await give_role(w, [w.owner], w.vip_role.id)
    await w.fake.wait_for(
        lambda: w.bob.id not in {m.id for m in w.bot.get_guild(w.guild.id).get_role(w.vip_role.id).members},
        what="bob to leave the role",
    )
    w.clock.current = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 1
    second = [row[0] for row in schedule_lots(w)[2:]]
    assert sorted(second) == sorted([w.alice.id, w.owner.id])
    balance = await w.ledger.balance(w.guild.id, w.alice.id)
    assert balance.total == 100  # December's run was valid 30 days: only January's is left


async def test_runs_once_across_a_restart_and_a_missed_run_runs_once_at_start(world: World, restart: Restart):
    w = world
    await give_role(w, [w.alice, w.bob], w.vip_role.id)
    await add_schedule(w, "0 12 * * *", amount="10", kind="gift")
    w.clock.current = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 1
    await restart()
    assert await w.bot.jobs.recurring() == 0
    assert len(schedule_lots(w)) == 2

    # Down for five due times: one run at start, not five.
    await w.bot.close()
    w.clock.current = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    await restart()
    assert await w.bot.jobs.recurring() == 1
    assert await w.bot.jobs.recurring() == 0
    lots = schedule_lots(w)
    assert len(lots) == 4
    assert {row[2] for row in lots} == {"gift"}
    assert {row[3] for row in lots} == {None}  # no valid_days: never expires
    assert [row[5] for row in lots[2:]] == [w.ledger.now()] * 2
    assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(unix(2026, 12, 3, 12, 0),)]
    w.clock.current = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 1
    assert len(schedule_lots(w)) == 6


async def test_a_run_while_the_guild_is_unavailable_waits_for_it(world: World):
    w = world
    await give_role(w, [w.alice], w.vip_role.id)
    await add_schedule(w, "0 12 * * *")
    w.clock.current = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    real = w.bot.jobs.role_members

    async def unknown(guild_id: int, role_id: int) -> None:  # e.g. before the guild arrived
        return None

    w.bot.jobs.role_members = unknown
    assert await w.bot.jobs.recurring() == 0
    assert schedule_lots(w) == []
    w.bot.jobs.role_members = real
    w.clock.advance(seconds=20)
    assert await w.bot.jobs.recurring() == 1
    assert [row[0] for row in schedule_lots(w)] == [w.alice.id]


async def test_the_rule_is_read_in_the_guild_timezone(world: World):
    w = world
    await give_role(w, [w.alice], w.vip_role.id)
    tz = await w.run(w.mod, "settings timezone", tz="America/New_York")
    assert "America/New_York" in text_of(tz)
    text = await add_schedule(w, "0 9 * * *")
    assert "America/New_York" in text
    # START is 12:00 UTC = 07:00 in New York (EST, UTC-5): 09:00 there is 14:00 UTC.
    nine_am = unix(2026, 11, 26, 14, 0)
    assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(nine_am,)]
    w.clock.current = datetime(2026, 11, 26, 13, 59, 59, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 0
    w.clock.advance(seconds=1)
    assert await w.bot.jobs.recurring() == 1
    assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(nine_am + DAY,)]
    listed = await w.run(w.mod, "credits schedule list")
    assert "America/New_York" in text_of(listed)


async def test_a_rule_with_a_day_of_month_and_a_weekday_runs_on_either_day(world: World):
    """Issue 8 item 8: `0 12 1 * 1` is noon on the 1st AND noon every Monday, as in standard cron.
    APScheduler alone waited for a 1st that is a Monday: 67 days from this Thursday."""
    w = world
    await give_role(w, [w.alice], w.vip_role.id)
    assert START.strftime("%a") == "Thu"
    text = await add_schedule(w, "0 12 1 * 1", amount="5")
    monday, first, next_monday = unix(2026, 11, 30, 12, 0), unix(2026, 12, 1, 12, 0), unix(2026, 12, 7, 12, 0)
    assert f"<t:{monday}:" in text  # the answer shows the coming Monday
    for due, then in ((monday, first), (first, next_monday)):
        assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(due,)]
        w.clock.current = datetime.fromtimestamp(due - 1, UTC)
        assert await w.bot.jobs.recurring() == 0
        w.clock.advance(seconds=1)
        assert await w.bot.jobs.recurring() == 1
        assert rawsql.rows(w.settings, "SELECT next_run_at FROM schedules") == [(then,)]
    assert [row[:2] for row in schedule_lots(w)] == [(w.alice.id, 5), (w.alice.id, 5)]
    listed = text_of(await w.run(w.mod, "credits schedule list"))
    assert f"<t:{next_monday}:" in listed


async def test_schedule_list_and_remove(world: World):
    w = world
    await give_role(w, [w.alice], w.vip_role.id)
    await add_schedule(w, "0 12 * * *", amount="10")
    await add_schedule(w, "30 6 1 * *", amount="25", kind="gift", valid_days=7)
    listed = text_of(await w.run(w.mod, "credits schedule list"))
    assert "#1" in listed
    assert "#2" in listed
    assert "10 credits" in listed
    assert "25 credits" in listed
    assert "`0 12 * * *`" in listed
    assert "`30 6 1 * *`" in listed
    assert "valid 7 days" in listed

    removed = await w.run(w.mod, "credits schedule remove", id=1)
    assert removed.ephemeral
    assert "#1" in text_of(removed)
    assert "stopped" in text_of(removed)
    listed = text_of(await w.run(w.mod, "credits schedule list"))
    assert "#1" not in listed
    assert "#2" in listed
    again = await w.run(w.mod, "credits schedule remove", id=1)
    assert "no recurring grant #1" in text_of(again)
    audit = rawsql.rows(w.settings, "SELECT action FROM audit_log WHERE action LIKE 'schedule%' ORDER BY id")
    assert audit == [("schedule-add",), ("schedule-add",), ("schedule-remove",)]

    # The removed one never runs again; the other does.
    w.clock.current = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert await w.bot.jobs.recurring() == 1
    assert schedule_lots(w, 1) == []
    assert [row[:3] for row in schedule_lots(w, 2)] == [(w.alice.id, 25, "gift")]

    members_only = await w.fake.invoke(w.guild.id, w.alice.id, "credits schedule list", enforce_permissions=False)
    assert "#2" not in text_of(members_only)  # moderators only, checked again at run time


# --- the store, without Discord ------------------------------------------------------------------


async def test_a_run_is_one_transaction(ledger: Ledger, clock: Clock, key: Keys, monkeypatch: pytest.MonkeyPatch):
    schedule = await ledger.add_schedule(GUILD, VIP, 10, "0 12 * * *", actor_id=MOD, key=key())
    clock.current = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    (due,) = await ledger.due_schedules()
    real_insert = schedules_app.insert_lots

    def insert_then_fail(*args: Any, **kwargs: Any) -> int:
        real_insert(*args, **kwargs)
        raise RuntimeError("disk full")  # after the lots were written, before the commit

    monkeypatch.setattr(schedules_app, "insert_lots", insert_then_fail)
    with pytest.raises(RuntimeError):
        await ledger.run_schedule(due, [ALICE, BOB])
    assert (await ledger.balance(GUILD, ALICE)).total == 0
    (still_due,) = await ledger.due_schedules()  # not moved on either: it runs at the next tick
    assert still_due.next_run_at == schedule.next_run_at
    monkeypatch.setattr(schedules_app, "insert_lots", real_insert)
    result = await ledger.run_schedule(still_due, [ALICE, BOB, ALICE])
    assert result is not None
    assert result.count == 2
    assert await ledger.run_schedule(still_due, [ALICE, BOB]) is None  # a second caller grants nothing
    assert (await ledger.balance(GUILD, ALICE)).total == 10
    assert await ledger.verify() == []


async def test_changing_the_timezone_moves_the_next_run(ledger: Ledger, key: Keys):
    await ledger.add_schedule(GUILD, VIP, 10, "0 9 * * *", actor_id=MOD, key=key())
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), timezone="America/New_York")
    (schedule,) = await ledger.schedules(GUILD)
    assert schedule.next_run_at == unix(2026, 11, 26, 14, 0)  # 09:00 in New York, not 09:00 UTC


def test_next_run_is_strictly_after_and_in_the_timezone():
    noon = unix(2026, 11, 26, 12, 0)
    assert next_run("0 12 * * *", "UTC", noon - 1) == noon
    assert next_run("0 12 * * *", "UTC", noon) == noon + DAY  # strictly after
    assert next_run("0 12 * * *", "Europe/Berlin", noon) == unix(2026, 11, 27, 11, 0)  # CET = UTC+1
    # Across a DST change the local hour holds: 09:00 New York is 14:00 UTC in winter, 13:00 in summer.
    assert next_run("0 9 * * *", "America/New_York", unix(2027, 3, 13, 15, 0)) == unix(2027, 3, 14, 13, 0)


def test_numeric_weekdays_follow_crontab():
    wednesday = unix(2026, 11, 25, 12, 0)
    fire = datetime.fromtimestamp(next_run("0 9 * * 1", "UTC", wednesday), UTC)
    assert fire.strftime("%a") == "Mon"
    fire = datetime.fromtimestamp(next_run("0 9 * * 0", "UTC", wednesday), UTC)
    assert fire.strftime("%a") == "Sun"


def test_named_weekdays_are_right():
    wednesday = unix(2026, 11, 25, 12, 0)
    assert datetime.fromtimestamp(next_run("0 9 * * mon", "UTC", wednesday), UTC).strftime("%a") == "Mon"
    assert datetime.fromtimestamp(next_run("0 9 * * sun", "UTC", wednesday), UTC).strftime("%a") == "Sun"
    assert START.strftime("%a") == "Thu"
