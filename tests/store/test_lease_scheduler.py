"""The scheduler under the lease (bot/scheduler.py): two `Jobs`, as two processes would have, on
one ledger and a real PostgreSQL server's lease.

One runs the jobs, the other does not deliver: a purchase it serves waits for the holder, which
delivers on its short tick. When the holder's lease connection is ended, it pauses every job at
once and stops delivering; the other takes the lease, releases the holder's delivery claims (only
then) and carries them out; the old holder's late answer changes nothing. On SQLite the one
process takes the lease at start and the jobs run at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import psycopg
import pytest

from bot.app.delivery_worker import DeliveryWorker
from bot.app.ledger import Ledger
from bot.app.reminder_dispatch import ReminderDispatcher
from bot.domain.models import Delivery, DueReminder, Lot
from bot.scheduler import WORK, Jobs
from bot.store.postgres.lease import PostgresLease
from bot.store.sqlite import SqliteStore
from tests.conftest import ALICE, GUILD, MOD, Keys
from tests.store.test_lease import _split, until

ROLE = 555


class Discord:
    """What a process's delivery worker asks of Discord, recorded; `hold` makes calls wait."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self.hold: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def __call__(self, delivery: Delivery) -> None:
        self.calls.append((delivery.action, delivery.order_id))
        self.started.set()
        if self.hold is not None:
            await self.hold.wait()


class Reminders:
    """What a process's reminder job sends, recorded as (user, nonce); `hold_at` makes the call
    of that number (1: the first) wait for `hold`."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.hold = asyncio.Event()
        self.hold_at: int | None = None
        self.holding = asyncio.Event()

    async def __call__(self, due: DueReminder, lots: Sequence[Lot], nonce: str) -> None:
        self.sent.append((due.user_id, nonce))
        if len(self.sent) == self.hold_at:
            self.holding.set()
            await self.hold.wait()


async def no_members(guild_id: int, role_id: int) -> list[int]:
    return []


class Process:
    def __init__(self, ledger: Ledger, url: str | None, name: str) -> None:
        self.discord = Discord()
        self.reminders = Reminders()
        self.deliveries = DeliveryWorker(ledger, self.discord, token=name)
        lease = PostgresLease(url, "scheduler") if url else ledger.store.lease("scheduler")
        self.jobs = Jobs(
            ledger,
            ReminderDispatcher(ledger, self.reminders, rate=float("inf")),
            no_members,
            3600,
            deliveries=self.deliveries,
            lease=lease,
            lease_retry=0.05,
        )


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    await store.open()
    try:
        yield Ledger(store)
    finally:
        await store.close()


async def buy_role(ledger: Ledger, key: Keys):
    await ledger.grant(GUILD, ALICE, 100, actor_id=MOD, key=key(), expires="30d")
    item = await ledger.add_item(GUILD, f"VIP {key.n}", 10, "perks", actor_id=MOD, key=key(), role_id=ROLE)
    return await ledger.checkout(GUILD, ALICE, item.id, key=key())


def end_lease_connection(url: str, lease: PostgresLease) -> None:
    """What a database restart or a network cut does to the holder: the server ends its session."""
    with psycopg.connect(url, autocommit=True) as admin:
        [(pid,)] = admin.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid::bigint = %s"
            " AND objid::bigint = %s",
            _split(lease.key),
        ).fetchall()
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def paused(jobs: Jobs) -> bool:
    return all(jobs.scheduler.get_job(name).next_run_time is None for name in WORK)


async def test_one_process_delivers_and_another_takes_over_when_its_lease_connection_dies(
    ledger: Ledger, pg_url: str, key: Keys
):
    first, second = Process(ledger, pg_url, "first"), Process(ledger, pg_url, "second")
    first.jobs.start()
    try:
        await until(lambda: first.jobs.leading, what="the first to take the lease")
        second.jobs.start()
        assert not second.deliveries.leader  # a follower from its start
        assert not await second.jobs.keep_lease()
        assert paused(second.jobs)

        # A purchase the follower serves: it does not deliver, it waits for the holder's tick.
        order = await buy_role(ledger, key)
        [grant] = await second.deliveries.wait(GUILD, order.id, seconds=30)
        assert grant.status == "done"
        assert first.discord.calls == [("add_role", order.id)]
        assert second.discord.calls == []
        assert (await second.deliveries.deliver_order(GUILD, order.id)).found == 0

        # The holder is sending the next one when the server ends its lease connection.
        first.discord.hold = asyncio.Event()
        first.discord.started.clear()
        order = await buy_role(ledger, key)
        await asyncio.wait_for(first.discord.started.wait(), 30)
        end_lease_connection(pg_url, first.jobs.lease)
        await until(lambda: not first.jobs.leading, what="the holder to find its lease lost")
        assert paused(first.jobs)
        assert not first.deliveries.leader
        await until(lambda: second.jobs.leading, what="the follower to take the lease")
        assert not paused(second.jobs)
        # Taking the lease released the first's claim: the second delivers it.
        await until(lambda: ("add_role", order.id) in second.discord.calls, what="the second's delivery")

        async def done() -> bool:
            return [d.status for d in await ledger.order_deliveries(GUILD, order.id)] == ["done"]

        await until(done, what="the delivery done")
        first.discord.hold.set()  # the old holder's late answer: its claim is gone, nothing changes
        await asyncio.wait_for(first.jobs._idle.wait(), 30)  # its delivery tick has ended
        [grant] = await ledger.order_deliveries(GUILD, order.id)
        assert (grant.status, grant.attempts) == ("done", 2)
        assert not await first.jobs.keep_lease()  # the second holds it now
    finally:
        await first.jobs.stop()
        await second.jobs.stop()


async def test_a_holder_that_loses_the_lease_mid_burst_stops_and_the_next_sends_each_reminder_once(
    ledger: Ledger, pg_url: str
):
    members = list(range(100, 106))
    for member in members:  # the 1-day window is open: due at once
        await ledger.grant(GUILD, member, 50, actor_id=MOD, key=None, expires="2h")
    first, second = Process(ledger, pg_url, "first"), Process(ledger, pg_url, "second")
    first.reminders.hold_at = 2  # the first is sending its second reminder when it loses the lease
    first.jobs.start()
    try:
        await asyncio.wait_for(first.reminders.holding.wait(), 30)
        second.jobs.start()
        end_lease_connection(pg_url, first.jobs.lease)
        await until(lambda: not first.jobs.leading, what="the holder to find its lease lost")
        await until(lambda: second.jobs.leading, what="the second to take the lease")
        await until(lambda: len(second.reminders.sent) == len(members) - 1, what="the rest of the reminders")
        first.reminders.hold.set()  # the old holder's send in flight ends; it claims nothing more
        await asyncio.wait_for(first.jobs._idle.wait(), 30)
        assert len(first.reminders.sent) == 2
        (done, _), (in_flight, nonce) = first.reminders.sent
        # The one in flight is sent again under the same nonce (Discord keeps one message); the
        # one the first had finished is not sent again; every other member once, by the second.
        assert (in_flight, nonce) in second.reminders.sent
        assert sorted(user for user, _ in second.reminders.sent) == sorted(m for m in members if m != done)
        statuses = await ledger.store.read(
            lambda tx: [tx.reminders.state(lot.id, 86400) for m in members for lot in tx.lots.of_member(GUILD, m)]
        )
        assert [state[0] for state in statuses] == ["sent"] * len(members)
    finally:
        await first.jobs.stop()
        await second.jobs.stop()


async def test_a_holder_that_stops_gives_the_lease_up_for_the_next(ledger: Ledger, pg_url: str):
    first, second = Process(ledger, pg_url, "first"), Process(ledger, pg_url, "second")
    first.jobs.start()
    second.jobs.start()
    try:
        await until(lambda: first.jobs.leading or second.jobs.leading, what="a holder")
        holder, other = (first, second) if first.jobs.leading else (second, first)
        assert not other.jobs.leading
        await holder.jobs.stop()
        await until(lambda: other.jobs.leading, what="the other to take over")
        assert other.deliveries.leader
    finally:
        await first.jobs.stop()
        await second.jobs.stop()


async def test_on_sqlite_the_process_takes_the_lease_at_start_and_runs_the_jobs(ledger: Ledger, key: Keys):
    only = Process(ledger, None, "only")
    assert only.deliveries.leader
    order = await buy_role(ledger, key)
    only.jobs.start()
    try:
        await until(lambda: only.jobs.leading, what="the lease")
        assert only.deliveries.leader  # never a follower: nobody else could deliver
        await until(lambda: ("add_role", order.id) in only.discord.calls, what="the delivery at start")
    finally:
        await only.jobs.stop()
