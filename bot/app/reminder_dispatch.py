"""Reminder DMs before credit expires: find what is due, claim it, send it paced, settle it.

Plain Python: the Discord side comes in as `send` (see bot/discordbot/notify.py). The ledger is the only
state: a due reminder is a lot whose `next_reminder_at` has passed, so a million lots never mean
a million scheduler jobs, and a restart resumes exactly where the database says.

At most once, by design: a reminder is claimed ('pending') in the database before it is sent,
with a Discord nonce and the id of the run that claimed it (a random token per start of the bot).
If the bot dies while sending, the next run resends under the same nonce within Discord's nonce
window (Discord returns the first message instead of a second), and later settles it 'unknown'
without resending. A claim of the run still going is never taken for a crashed send: it is that
run's own send (rules.pending_claim). No other run is alive meanwhile: on SQLite one bot process
holds the database (bot/store/lock.py); on PostgreSQL only the holder of the scheduler lease runs
reminders (bot/scheduler.py), which takes a new run id each time it takes the lease and stops
claiming the moment it loses it. Sending first and recording after would turn the
same crash into a duplicate DM, which members notice more than one missing reminder.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from bot.app.ledger import Ledger
from bot.domain.models import DueReminder, Lot

log = logging.getLogger(__name__)

# Discord: 50 requests/s globally per bot. A DM is up to two requests (open the DM channel, post),
# so 20 DMs/s stays well inside it, leaving room for interactions.
DEFAULT_DMS_PER_SECOND = 20.0
NONCE_WINDOW = 5 * 60  # Discord checks a nonce's uniqueness "in the past few minutes"
MAX_ATTEMPTS = 6
BACKOFF_BASE = 60  # 1, 2, 4, 8, 16 minutes, capped
BACKOFF_CAP = 3600


class DmClosed(Exception):
    """The member does not accept DMs from the bot (Discord 50007): record it, never retry."""


class SendFailed(Exception):
    """A passing failure (5xx, network, rate limit): retry later with backoff."""


SendReminder = Callable[[DueReminder, Sequence[Lot], str], Awaitable[None]]


def nonce_for(due: DueReminder) -> str:
    """Discord nonces are at most 25 characters; this one is the same for the same reminder."""
    ids = ",".join(str(lot_id) for lot_id in sorted(due.lot_ids))
    digest = hashlib.sha256(f"{due.guild_id}:{due.user_id}:{due.lead_seconds}:{ids}".encode()).hexdigest()
    return "r" + digest[:24]


def backoff(attempts: int) -> int:
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_CAP)  # type: ignore[no-any-return]


class Pacer:
    """At most `rate` sends per second, evenly spaced (a burst of 10,000 is spread, not fired)."""

    def __init__(self, rate: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = 0.0 if rate == float("inf") else 1.0 / rate
        self.monotonic = monotonic
        self.next_slot = 0.0

    async def wait(self) -> None:
        if not self.interval:
            return
        now = self.monotonic()
        delay = self.next_slot - now
        self.next_slot = max(self.next_slot, now) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


@dataclass
class ReminderRun:
    found: int = 0  # due (member, lead) groups
    sent: int = 0
    dm_closed: int = 0
    opted_out: int = 0
    retried: int = 0
    failed: int = 0
    unknown: int = 0
    find_seconds: float = 0.0
    send_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class ReminderDispatcher:
    def __init__(
        self,
        ledger: Ledger,
        send: SendReminder,
        *,
        rate: float = DEFAULT_DMS_PER_SECOND,
        batch: int = 10_000,
        max_attempts: int = MAX_ATTEMPTS,
        run_id: str | None = None,
    ) -> None:
        self.ledger = ledger
        # This run's claims are told apart from those of a run that died while sending by this.
        self.run_id = run_id or secrets.token_hex(8)
        self.send = send
        self.pacer = Pacer(rate)
        self.batch = batch
        self.max_attempts = max_attempts
        self._running = asyncio.Lock()

    def new_run(self) -> None:
        """From now on this is another run: claims left 'pending' before (this process lost the
        scheduler lease meanwhile, and another holder may have taken them on) are an earlier run's."""
        self.run_id = secrets.token_hex(8)

    async def run_once(self, keep_going: Callable[[], bool] = lambda: True) -> ReminderRun:
        """Send every reminder due now. Never runs twice at once (a long burst and the next tick).
        Stops claiming when `keep_going()` turns false (the scheduler lease was lost)."""
        async with self._running:
            run = ReminderRun()
            started = time.perf_counter()
            dues = await self.ledger.due_reminders(self.batch)
            run.find_seconds = time.perf_counter() - started
            run.found = len(dues)
            started = time.perf_counter()
            for due in dues:
                if not keep_going():
                    break
                await self._remind(due, run)
            run.send_seconds = time.perf_counter() - started
            if run.found:
                log.info(
                    "reminders: %d due, %d sent, %d closed DMs, %d opted out, %d to retry, %d failed",
                    run.found,
                    run.sent,
                    run.dm_closed,
                    run.opted_out,
                    run.retried,
                    run.failed,
                )
            return run

    async def _remind(self, due: DueReminder, run: ReminderRun) -> None:
        claim = await self.ledger.claim_reminder(due, nonce_for(due), NONCE_WINDOW, run_id=self.run_id)
        run.unknown += len(claim.settled)
        if claim.skipped == "opted_out":
            run.opted_out += 1
            return
        if claim.skipped == "dm_closed":
            run.dm_closed += 1
            return
        if not claim.lot_ids:
            return
        lots = claim.lots  # read in the claim's transaction: amounts as they are now
        await self.pacer.wait()
        retry_at = None
        try:
            await self.send(due, lots, claim.nonce)
            status = "sent"
            run.sent += 1
        except DmClosed:
            status = "dm_closed"
            run.dm_closed += 1
            await self.ledger.mark_dm_closed(due.guild_id, due.user_id)
        except Exception as exc:  # any other failure is retried, then given up on
            run.errors.append(f"{type(exc).__name__}: {exc}")
            if claim.attempts >= self.max_attempts:
                status = "failed"
                run.failed += 1
                log.warning("reminder to %s gave up after %d attempts: %s", due.user_id, claim.attempts, exc)
            else:
                status = "retry"
                retry_at = self.ledger.now() + backoff(claim.attempts)
                run.retried += 1
        await self.ledger.settle_reminder(claim.lot_ids, due.lead_seconds, status, retry_at)
        if status == "sent":
            self.ledger.emit(
                "credits_expiring",
                {
                    "guild_id": due.guild_id,
                    "user_id": due.user_id,
                    "lead_seconds": due.lead_seconds,
                    "lots": [
                        {"lot_id": lot.id, "amount": lot.remaining, "kind": lot.kind, "expires_at": lot.expires_at}
                        for lot in lots
                    ],
                },
            )
