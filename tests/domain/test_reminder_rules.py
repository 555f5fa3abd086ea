"""SPEC §5 reminder timing as pure rules (`reminder_lead_due`, `next_reminder_at`, `pending_claim`),
and how the store keeps `lots.next_reminder_at` in step with them when /settings reminders changes
the leads."""

from __future__ import annotations

import pytest

from bot.app.ledger import Ledger
from bot.domain.reminders import next_reminder_at, pending_claim, reminder_lead_due
from bot.domain.timeparse import to_unix
from tests.app._support import db_rows, db_value
from tests.conftest import ALICE, BOB, GUILD, MOD, OTHER_GUILD, START, Clock, Keys

MIN = 60
HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
LEADS = (WEEK, DAY)
NOW = 1_800_000_000
EXP = NOW + 30 * DAY


# --- pending_claim -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claimed_by", "age", "expected"),
    [
        ("this-run", 0, "wait"),  # this run's own send, in progress or its outcome unrecorded
        ("this-run", 300, "wait"),
        ("this-run", 301, "unknown"),  # that long ago even this run gives it up, and never resends
        ("dead-run", 0, "resend"),  # an earlier run died while sending: Discord drops the same nonce
        ("dead-run", 300, "resend"),
        ("dead-run", 301, "unknown"),  # past the nonce window: a resend could be a second DM
        (None, 10, "resend"),  # claimed before claims named their run: an earlier run's
        (None, 301, "unknown"),
    ],
)
def test_pending_claim_tells_this_runs_sends_from_crashed_ones(claimed_by, age, expected):
    assert pending_claim(claimed_by, "this-run", NOW - age, NOW, 300) == expected


# --- reminder_lead_due -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (WEEK + 1, None),  # one second before the 7d window opens
        (WEEK, WEEK),  # the window opens at exactly expires_at - 7d
        (WEEK - 1, WEEK),
        (DAY + 1, WEEK),
        (DAY, DAY),  # exactly at the 1d boundary: the more urgent lead
        (DAY - 1, DAY),
        (1, DAY),  # the last second before expiry is still in the 1d window
        (0, None),  # expired at this very instant: nothing to remind
        (-1, None),
        (-WEEK, None),
    ],
)
def test_reminder_lead_due_boundaries(left: int, expected: int | None):
    assert reminder_lead_due(NOW + left, LEADS, NOW) == expected


def test_reminder_lead_due_is_independent_of_the_order_of_the_leads():
    for left in (WEEK + 1, WEEK, 3 * DAY, DAY, HOUR, 1):
        assert reminder_lead_due(NOW + left, (DAY, WEEK), NOW) == reminder_lead_due(NOW + left, LEADS, NOW)


def test_reminder_lead_due_without_leads_or_with_one_lead():
    assert reminder_lead_due(NOW + HOUR, (), NOW) is None
    assert reminder_lead_due(NOW + MIN, (MIN,), NOW) == MIN
    assert reminder_lead_due(NOW + MIN + 1, (MIN,), NOW) is None


def test_reminder_lead_due_picks_the_most_urgent_of_many_windows():
    leads = (30 * DAY, WEEK, 3 * DAY, DAY, HOUR)
    assert reminder_lead_due(NOW + 2 * DAY, leads, NOW) == 3 * DAY
    assert reminder_lead_due(NOW + 30 * MIN, leads, NOW) == HOUR
    assert reminder_lead_due(NOW + 20 * DAY, leads, NOW) == 30 * DAY


# --- next_reminder_at ------------------------------------------------------------------------------


def test_next_reminder_at_never_for_lots_without_expiry_or_already_expired():
    assert next_reminder_at(None, LEADS, NOW) is None
    assert next_reminder_at(NOW, LEADS, NOW) is None  # expires at this instant
    assert next_reminder_at(NOW - 1, LEADS, NOW) is None
    assert next_reminder_at(EXP, (), NOW) is None  # no leads configured


def test_next_reminder_at_is_the_opening_of_the_largest_window_ahead():
    assert next_reminder_at(EXP, LEADS, NOW) == EXP - WEEK
    # One second before the window opens: still the opening, not now.
    assert next_reminder_at(NOW + WEEK + 1, LEADS, NOW) == NOW + 1


def test_next_reminder_at_is_now_when_a_window_is_open():
    assert next_reminder_at(NOW + WEEK, LEADS, NOW) == NOW  # exact boundary: open
    assert next_reminder_at(NOW + 3 * DAY, LEADS, NOW) == NOW
    assert next_reminder_at(NOW + 1, LEADS, NOW) == NOW


def test_next_reminder_at_after_a_lead_only_shorter_leads_remain():
    # The 7d reminder went out with 6 days left: next is the opening of the 1d window.
    assert next_reminder_at(NOW + 6 * DAY, LEADS, NOW, after_lead=WEEK) == NOW + 5 * DAY
    # ... or now if the 1d window is open already (downtime).
    assert next_reminder_at(NOW + 12 * HOUR, LEADS, NOW, after_lead=WEEK) == NOW
    assert next_reminder_at(NOW + DAY, LEADS, NOW, after_lead=WEEK) == NOW
    # The most urgent lead was reminded: nothing is left, whatever the time.
    assert next_reminder_at(NOW + 12 * HOUR, LEADS, NOW, after_lead=DAY) is None
    assert next_reminder_at(NOW + 20 * DAY, LEADS, NOW, after_lead=DAY) is None
    assert next_reminder_at(NOW + 3 * DAY, (WEEK,), NOW, after_lead=WEEK) is None


def test_next_reminder_at_after_a_lead_that_is_no_longer_configured():
    # Reminded at 10d under old settings; with leads 7d,1d both are shorter and still to come.
    assert next_reminder_at(NOW + 9 * DAY, LEADS, NOW, after_lead=10 * DAY) == NOW + 2 * DAY
    # Reminded at 12h under old settings: 7d and 1d are longer, so nothing is left.
    assert next_reminder_at(NOW + 9 * DAY, LEADS, NOW, after_lead=12 * HOUR) is None


def test_next_reminder_at_agrees_with_reminder_lead_due_second_by_second():
    """Whatever `next_reminder_at` says, the window really opens then: not a second earlier."""
    leads = (WEEK, DAY, HOUR)
    expires = NOW + 10 * DAY
    for now in (NOW, NOW + 3 * DAY - 1, NOW + 3 * DAY, NOW + 9 * DAY + 5, expires - HOUR - 1, expires - 1):
        for after in (None, WEEK, DAY):
            remaining = [lead for lead in leads if after is None or lead < after]
            due = next_reminder_at(expires, leads, now, after)
            assert due is not None
            assert due >= now
            assert reminder_lead_due(expires, remaining, due) is not None
            if due > now:
                assert reminder_lead_due(expires, remaining, due - 1) is None


# --- the store follows /settings reminders --------------------------------------------------------


def next_reminders(ledger: Ledger) -> dict[int, int | None]:
    return dict(db_rows(ledger.store, "SELECT id, next_reminder_at FROM lots ORDER BY id"))


async def test_changing_the_leads_reschedules_active_lots(ledger: Ledger, clock: Clock, key: Keys):
    now = to_unix(START)
    a = await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="20d")
    b = await ledger.grant(GUILD, BOB, 100, actor_id=MOD, key=key(), expires="10d")
    forever = await ledger.grant(GUILD, BOB, 100, actor_id=MOD, key=key())
    other = await ledger.grant(OTHER_GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="20d")
    before = next_reminders(ledger)
    assert before[a.first_lot_id] == now + 20 * DAY - WEEK
    assert before[b.first_lot_id] == now + 10 * DAY - WEEK
    assert before[forever.first_lot_id] is None

    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="3d,12h")
    after = next_reminders(ledger)
    assert after[a.first_lot_id] == now + 20 * DAY - 3 * DAY
    assert after[b.first_lot_id] == now + 10 * DAY - 3 * DAY
    assert after[forever.first_lot_id] is None
    assert after[other.first_lot_id] == before[other.first_lot_id]  # another guild: untouched

    # A lead longer than the time left opens a window at once: the lot is due now.
    clock.advance(days=1)
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="14d")
    after = next_reminders(ledger)
    assert after[b.first_lot_id] == ledger.now()
    assert after[a.first_lot_id] == now + 20 * DAY - 14 * DAY
    due = await ledger.due_reminders()
    assert [(d.user_id, d.lead_seconds, list(d.lot_ids)) for d in due] == [(BOB, 14 * DAY, [b.first_lot_id])]


async def test_changing_the_leads_keeps_what_was_reminded(ledger: Ledger, clock: Clock, key: Keys):
    lot = (await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="10d")).first_lot_id
    expires = to_unix(START) + 10 * DAY
    clock.advance(days=3)  # 7 days left: the 7d reminder goes out
    await ledger.settle_reminder([lot], WEEK, "sent")
    assert next_reminders(ledger)[lot] == expires - DAY

    # New leads: only those shorter than the 7d already reminded are still to come.
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="10d,7d,3d,1d")
    assert next_reminders(ledger)[lot] == expires - 3 * DAY
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="14d")
    assert next_reminders(ledger)[lot] is None  # 14d is longer than the 7d reminded: none left
    assert await ledger.due_reminders() == []
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="7d,1h")
    assert next_reminders(ledger)[lot] == expires - 3600


async def test_changing_the_leads_leaves_finished_lots_alone(ledger: Ledger, clock: Clock, key: Keys):
    spent = (await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="10d")).first_lot_id
    await ledger.revoke(GUILD, ALICE, actor_id=MOD, key=key(), lot_id=spent, reason="test")
    short = (await ledger.grant(GUILD, BOB, 100, actor_id=MOD, key=key(), expires="1d")).first_lot_id
    clock.advance(days=2)
    await ledger.sweep_expired()
    await ledger.update_settings(GUILD, actor_id=MOD, key=key(), reminder_leads="30d")
    rows = next_reminders(ledger)
    assert rows[spent] is None
    assert rows[short] is None
    assert await ledger.due_reminders() == []


async def test_turning_reminders_on_again_clears_a_closed_dm_mark(ledger, store):
    """A member who reopened their DMs says so with /reminders enabled:True; until then we never retry."""
    await ledger.mark_dm_closed(GUILD, ALICE)

    def closed() -> int | None:
        return db_value(store, "SELECT dm_closed_at FROM accounts WHERE guild_id = ? AND user_id = ?", (GUILD, ALICE))

    assert closed() is not None
    await ledger.set_reminders_enabled(GUILD, ALICE, False)
    assert closed() is not None  # turning them off keeps the mark
    await ledger.set_reminders_enabled(GUILD, ALICE, True)
    assert closed() is None
