"""Decision 4 of issue 11: the jobs stay single even if two processes ran them at once for a moment
(a holder that lost its lease connection finishing its tick while the next holder starts).

Two stores on one PostgreSQL database, as two processes have: the expiry sweep and a due recurring
run, each started in both at once, expire each lot once and grant the run once; two reminder runs
claiming the same due reminder at once send it under one nonce (Discord keeps one message).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.app.ledger import Ledger
from bot.app.reminder_dispatch import NONCE_WINDOW, nonce_for
from bot.store.postgres import PostgresStore
from tests.conftest import GUILD, MOD

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def ledgers(pg_url: str) -> AsyncIterator[tuple[Ledger, Ledger]]:
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    await first.open()
    await second.open()
    try:
        yield Ledger(first, clock=lambda: NOW), Ledger(second, clock=lambda: NOW)
    finally:
        await first.close()
        await second.close()


async def test_two_sweeps_at_once_expire_each_lot_once(ledgers: tuple[Ledger, Ledger]):
    a, b = ledgers
    past = Ledger(a.store, clock=lambda: NOW - timedelta(days=2))
    for user in range(100, 160):
        await past.grant(GUILD, user, 10, actor_id=MOD, key=None, expires="1d")
    expired = await asyncio.gather(a.sweep_expired(), b.sweep_expired())
    assert sorted(len(lots) for lots in expired) == [0, 60]
    entries = await a.store.read(lambda tx: tx.entries.after(GUILD, 0, 10_000))
    expires = [e.lot_id for e in entries if e.type == "expire"]
    assert len(expires) == len(set(expires)) == 60
    assert await a.verify() == []


async def test_a_due_recurring_run_started_in_two_processes_at_once_grants_once(ledgers: tuple[Ledger, Ledger]):
    a, b = ledgers
    past = Ledger(a.store, clock=lambda: NOW - timedelta(days=2))
    await past.add_schedule(GUILD, 7, 25, "0 0 * * *", actor_id=MOD, key="s", valid_days=30)
    [seen_by_a], [seen_by_b] = await a.due_schedules(), await b.due_schedules()
    members = range(200, 210)
    runs = await asyncio.gather(a.run_schedule(seen_by_a, members), b.run_schedule(seen_by_b, members))
    assert sorted(run is not None for run in runs) == [False, True]
    entries = await a.store.read(lambda tx: tx.entries.after(GUILD, 0, 10_000))
    assert sorted(e.user_id for e in entries if e.type == "grant") == list(members)
    assert await a.due_schedules() == []
    assert await a.verify() == []


async def test_a_reminder_claimed_by_two_runs_at_once_goes_out_under_one_nonce(ledgers: tuple[Ledger, Ledger]):
    a, b = ledgers
    await a.grant(GUILD, 300, 50, actor_id=MOD, key=None, expires="2h")
    [due] = await a.due_reminders()
    claims = await asyncio.gather(
        a.claim_reminder(due, nonce_for(due), NONCE_WINDOW, run_id="first"),
        b.claim_reminder(due, nonce_for(due), NONCE_WINDOW, run_id="second"),
    )
    # Whichever claimed second found the first's claim and sends again under the same nonce.
    assert {claim.nonce for claim in claims if claim.lot_ids} == {nonce_for(due)}
    assert sorted(claim.attempts for claim in claims) == [1, 2]
