"""APScheduler drives the time-based work: the expiry sweep, reminder DMs, recurring grants and
deliveries (what orders must still do in Discord: roles to give or take back, refund DMs).

A few interval jobs, whatever the number of lots: each asks the database what is due (indexed
queries that cost a few milliseconds when nothing is), so the scheduler holds nothing that is not
rebuilt from the database at start, and nothing is lost or doubled by a restart.

Exactly one process runs them (SPEC §5): the holder of the store's lease "scheduler". Every
process runs the lease job: a follower tries to take the lease every `lease_retry` seconds; the
holder checks it is still held then, and before each job's tick, and pauses every job at once the
moment it is not (a run in progress stops claiming). Taking the lease releases the delivery claims
of the holders before (bot/app/delivery_worker.py `lead`), starts a new reminder run, and catches
every job up at once. On SQLite the one process takes it at start (bot/store/sqlite/lease.py). The
jobs stay safe even if two processes ran them for a moment: reminders, recurring runs, expiry and
deliveries are claimed in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, EVENT_JOB_SUBMITTED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app.delivery_worker import DeliveryWorker
from bot.app.ledger import Ledger
from bot.app.reminder_dispatch import ReminderDispatcher
from bot.store.ports import Lease

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 86400
DRAIN_SECONDS = 3.0  # at shutdown, how long a running job may take to finish
TICK_SECONDS = 20  # expiry within 60 s of due and reminders within 60 s of their window, with margin
DELIVERY_TICK_SECONDS = 5  # retries after their backoff; a purchase kicks its own delivery at once
#: With many processes a purchase in one that does not hold the lease waits for the holder's tick.
SHARED_DELIVERY_TICK_SECONDS = 1.0
LEASE_RETRY = 5.0  # a follower tries to take the lease this often; the holder checks it as often
WORK = ("expire", "remind", "recurring", "deliver")
# (guild, role) -> member ids, None = unknown now; async: a guild of another shard is listed over REST
RoleMembers = Callable[[int, int], Awaitable[list[int] | None]]


class Jobs:
    def __init__(
        self,
        ledger: Ledger,
        reminders: ReminderDispatcher,
        role_members: RoleMembers,
        tick_seconds: float = TICK_SECONDS,
        deliveries: DeliveryWorker | None = None,
        *,
        lease: Lease | None = None,
        lease_retry: float = LEASE_RETRY,
    ) -> None:
        self.ledger = ledger
        self.reminders = reminders
        self.role_members = role_members
        self.tick_seconds = tick_seconds
        self.deliveries = deliveries
        self.lease = lease  # None: this process is the only one (the jobs run from the start)
        self.lease_retry = lease_retry
        #: Whether this process runs the jobs now (it holds the lease).
        self.leading = False
        self._gated = False  # started under the lease: the jobs run only while `leading`
        self._stopping = False
        self._leasing = asyncio.Lock()  # one look at the lease at a time
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._running = 0
        self._pruned_at = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.scheduler.add_listener(
            self._count, EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        )

    def start(self) -> None:
        # next_run_time=now: a start after downtime catches up at once (missed expiries, reminders
        # and recurring runs), then every tick. Under a lease they start paused (next_run_time
        # None) and run from the moment the lease is taken.
        shared = self.lease is not None and self.lease.shared
        delivery_tick = SHARED_DELIVERY_TICK_SECONDS if shared else DELIVERY_TICK_SECONDS
        jobs: list[tuple[str, Callable[[], Awaitable[object]], float]] = [
            ("expire", self.expire, self.tick_seconds),
            ("remind", self.remind, self.tick_seconds),
            ("recurring", self.recurring, self.tick_seconds),
        ]
        if self.deliveries is not None:
            jobs.append(("deliver", self.deliver, min(self.tick_seconds, delivery_tick)))
        self._gated = self.lease is not None
        self.leading = not self._gated
        if shared and self.deliveries is not None:
            self.deliveries.follow()  # until this process takes the lease
        now = datetime.now(UTC)
        for name, job, seconds in jobs:
            self.scheduler.add_job(
                self._guard(name, self._only_leading(job)),
                IntervalTrigger(seconds=seconds),
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=None if self._gated else now,
            )
        if self._gated:
            self.scheduler.add_job(
                self._guard("lease", self.keep_lease),
                IntervalTrigger(seconds=self.lease_retry),
                id="lease",
                name="lease",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=now,
            )
        self.scheduler.start()

    # the lease ---------------------------------------------------------------------------------
    async def keep_lease(self) -> bool:
        """The lease job: take the lease if free, or check it is still held; returns `leading`."""
        assert self.lease is not None
        async with self._leasing:
            if self.leading:
                if not await self.lease.held():
                    self._lose()
            elif await self.lease.acquire():
                await self._lead()
            return self.leading

    async def _still_leading(self) -> bool:
        """Before a job's tick: whether this process may run it (the lease is still held)."""
        if not self._gated:
            return True
        if not self.leading:
            return False
        assert self.lease is not None
        if not self.lease.shared:
            return True
        async with self._leasing:
            if self.leading and not await self.lease.held():
                self._lose()
            return self.leading

    async def _lead(self) -> None:
        if self.deliveries is not None:
            await self.deliveries.lead()  # the claims of the holders before: due again
        self.reminders.new_run()
        self.leading = True
        if self.lease is not None and self.lease.shared:
            log.info("this process holds the scheduler lease now: it runs the scheduled jobs")
        now = datetime.now(UTC)
        for name in WORK:
            if self.scheduler.get_job(name) is not None:
                self.scheduler.modify_job(name, next_run_time=now)  # catch up at once

    def _lose(self) -> None:
        """Pause every job at once: another process may hold the lease already."""
        self.leading = False
        for name in WORK:
            if self.scheduler.get_job(name) is not None:
                self.scheduler.pause_job(name)
        if self.deliveries is not None:
            self.deliveries.follow()
        log.warning("the scheduler lease is lost: the scheduled jobs are paused until this process takes it again")

    def _may_go_on(self) -> bool:
        """For a run in progress: false once the lease is lost, or the scheduler stops (what it
        has claimed it still finishes)."""
        return not self._stopping and (self.leading or not self._gated)

    def _only_leading(self, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
        async def run() -> object:
            if not await self._still_leading():
                return None
            return await job()

        return run

    def _count(self, event: JobEvent) -> None:
        self._running += 1 if event.code == EVENT_JOB_SUBMITTED else -1
        if self._running > 0:
            self._idle.clear()
        else:
            self._idle.set()

    async def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Let a running job (an expiry sweep, reminder DMs) finish, then shut down: APScheduler's
        asyncio executor would cancel it mid-way. Then give the lease up, so that another process
        takes it over at its next try."""
        self._stopping = True
        if self.scheduler.running:
            self.scheduler.pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_seconds)
            if self._running > 0:
                log.warning("stopping with %d scheduled job(s) still running; they are cancelled", self._running)
        self.shutdown()
        if self.deliveries is not None:  # a purchase's delivery still waiting on Discord: due again at start
            await self.deliveries.close()
        if self._gated and self.lease is not None:
            self.leading = False
            await self.lease.release()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    @staticmethod
    def _guard(name: str, job: Callable[[], Awaitable[object]]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                await job()
            except Exception:  # a failing tick must not stop the next one
                log.exception("scheduled job %s failed", name)

        return run

    async def expire(self) -> int:
        expired = len(await self.ledger.sweep_expired())
        if self.ledger.now() - self._pruned_at >= PRUNE_EVERY_SECONDS:  # housekeeping, once a day
            self._pruned_at = self.ledger.now()
            await self.ledger.prune_idempotency()
        return expired

    async def remind(self) -> int:
        return (await self.reminders.run_once(self._may_go_on)).sent

    async def deliver(self) -> int:
        """Carry out the deliveries due now; returns how many were done."""
        if self.deliveries is None:
            return 0
        return (await self.deliveries.run_once()).done

    async def recurring(self) -> int:
        runs = 0
        for schedule in await self.ledger.due_schedules():
            if not self._may_go_on():
                break
            members = await self.role_members(schedule.guild_id, schedule.role_id)
            if members is None:  # the guild is not available right now: try again next tick
                continue
            result = await self.ledger.run_schedule(schedule, members)
            runs += result is not None
            log.info("recurring grant %s ran for %d members", schedule.id, len(members))
        return runs
