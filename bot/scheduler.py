"""APScheduler drives the time-based work: the expiry sweep, reminder DMs, recurring grants and
deliveries (what orders must still do in Discord: roles to give or take back, refund DMs).

A few interval jobs, whatever the number of lots: each asks the database what is due (indexed
queries that cost a few milliseconds when nothing is), so the scheduler holds nothing that is not
rebuilt from the database at start, and nothing is lost or doubled by a restart.
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

log = logging.getLogger(__name__)

PRUNE_EVERY_SECONDS = 86400
DRAIN_SECONDS = 3.0  # at shutdown, how long a running job may take to finish
TICK_SECONDS = 20  # expiry within 60 s of due and reminders within 60 s of their window, with margin
DELIVERY_TICK_SECONDS = 5  # retries after their backoff; a purchase kicks its own delivery at once
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
    ) -> None:
        self.ledger = ledger
        self.reminders = reminders
        self.role_members = role_members
        self.tick_seconds = tick_seconds
        self.deliveries = deliveries
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
        # and recurring runs), then every tick.
        jobs: list[tuple[str, Callable[[], Awaitable[object]], float]] = [
            ("expire", self.expire, self.tick_seconds),
            ("remind", self.remind, self.tick_seconds),
            ("recurring", self.recurring, self.tick_seconds),
        ]
        if self.deliveries is not None:
            jobs.append(("deliver", self.deliver, min(self.tick_seconds, DELIVERY_TICK_SECONDS)))
        for name, job, seconds in jobs:
            self.scheduler.add_job(
                self._guard(name, job),
                IntervalTrigger(seconds=seconds),
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
                next_run_time=datetime.now(UTC),
            )
        self.scheduler.start()

    def _count(self, event: JobEvent) -> None:
        self._running += 1 if event.code == EVENT_JOB_SUBMITTED else -1
        if self._running > 0:
            self._idle.clear()
        else:
            self._idle.set()

    async def stop(self, drain_seconds: float = DRAIN_SECONDS) -> None:
        """Let a running job (an expiry sweep, reminder DMs) finish, then shut down: APScheduler's
        asyncio executor would cancel it mid-way."""
        if self.scheduler.running:
            self.scheduler.pause()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), drain_seconds)
            if self._running > 0:
                log.warning("stopping with %d scheduled job(s) still running; they are cancelled", self._running)
        self.shutdown()
        if self.deliveries is not None:  # a purchase's delivery still waiting on Discord: due again at start
            await self.deliveries.close()

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
        return (await self.reminders.run_once()).sent

    async def deliver(self) -> int:
        """Carry out the deliveries due now; returns how many were done."""
        if self.deliveries is None:
            return 0
        return (await self.deliveries.run_once()).done

    async def recurring(self) -> int:
        runs = 0
        for schedule in await self.ledger.due_schedules():
            members = await self.role_members(schedule.guild_id, schedule.role_id)
            if members is None:  # the guild is not available right now: try again next tick
                continue
            result = await self.ledger.run_schedule(schedule, members)
            runs += result is not None
            log.info("recurring grant %s ran for %d members", schedule.id, len(members))
        return runs
