"""The delivery worker: carries out what orders must still do in Discord, from the database.

A purchase records "give role R to member M for order O" in its own transaction, a refund "take
R back", an automatic refund "DM M about it" (bot/domain/delivery.py). This worker claims each
one atomically, has `send` (the Discord side, bot/discordbot/notify.py) do it, and settles it: done, again
later after a passing failure, or impossible (which refunds an order whose role cannot be given).
It runs from the scheduler at start and on a short tick, and right after a purchase or refund
(`kick`), so a normal purchase has its role within a second. A crash, a restart or a long
Retry-After wait between payment and delivery delays a delivery, never loses it.

Never twice: a claim carries this worker's token (one per process); a second run, or a tick and
a kick racing, cannot claim what is claimed. Only the process that holds the scheduler lease
(bot/scheduler.py, SPEC §5) delivers: when it takes the lease it releases the claims of the
processes before it (they died, or lost the lease, while delivering), and tries those again. Giving
or taking a role again is harmless (Discord applies it once); a DM is resent under the same nonce
only within Discord's nonce window. In the other processes (`follow`) a purchase's kick does
nothing, and `wait` watches the database while the holder, on its short tick, delivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.app.ledger import Ledger
from bot.domain import delivery as rules
from bot.domain.models import Delivery

log = logging.getLogger(__name__)

NONCE_WINDOW = 5 * 60  # Discord checks a nonce's uniqueness "in the past few minutes"
BATCH = 100
PASSES = 5  # a tick also carries out what its deliveries lead to (a refund's DM), a few rounds deep
#: How long an answer (Confirm, a refund) waits for its delivery before saying "on its way".
ANSWER_WAIT_SECONDS = 3.0
#: How often `wait` in a process that does not deliver looks at the order's deliveries again.
FOLLOWER_POLL_SECONDS = 0.1


class DeliveryImpossible(Exception):
    """Discord will not do it however often we ask (`reason`: a code of bot/domain/delivery.py)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


class DeliveryRetry(Exception):
    """A passing failure (rate limit, 5xx, network): try again after the backoff."""


SendDelivery = Callable[[Delivery], Awaitable[None]]


def nonce_for(delivery: Delivery) -> str:
    """The same for the same delivery (Discord nonces are at most 25 characters)."""
    return f"pbd{delivery.id}"[:25]


@dataclass
class DeliveryRun:
    found: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    refunded: list[int] = field(default_factory=list)  # order ids


class DeliveryWorker:
    def __init__(self, ledger: Ledger, send: SendDelivery, *, token: str | None = None) -> None:
        self.ledger = ledger
        self.send = send
        self.token = token or secrets.token_hex(8)  # this process's claims
        self.answer_wait = ANSWER_WAIT_SECONDS
        #: Whether this process delivers. A worker on its own does; the scheduler makes it `follow`
        #: while another process holds the lease, and `lead` when this one takes it.
        self.leader = True
        self._recovered = False
        self._recovering = asyncio.Lock()
        self._tasks: set[asyncio.Task[DeliveryRun]] = set()

    async def recover(self) -> None:
        """Once per worker, before its first delivery: release the claims of dead processes."""
        if self._recovered:
            return
        async with self._recovering:
            if not self._recovered:
                await self._release_others()

    async def lead(self) -> None:
        """This process took the scheduler lease: release the claims of every other process (the
        holders before it; no other process claims while this one holds the lease), then deliver."""
        async with self._recovering:
            await self._release_others()
        self.leader = True

    def follow(self) -> None:
        """Another process delivers now (or will, once it takes the lease): a delivery this worker
        is carrying out still ends, and nothing more is started here."""
        self.leader = False

    async def _release_others(self) -> None:
        released = await self.ledger.release_deliveries(self.token, NONCE_WINDOW)
        if released:
            log.info("deliveries: %d interrupted by a stop or crash are due again", released)
        self._recovered = True

    async def run_once(self, batch: int = BATCH) -> DeliveryRun:
        """Carry out every delivery due now (the scheduler's tick), and what they lead to (the DM
        of an automatic refund, a removal that waited for its grant) until nothing is due. Nothing
        in a process that does not deliver; stops early when this one stops delivering."""
        run = DeliveryRun()
        if not self.leader:
            return run
        await self.recover()
        for _ in range(PASSES):  # bounded: a Discord failing fast for minutes is left to later ticks
            progressed = False
            for due in await self.ledger.due_deliveries(batch):
                if not self.leader:
                    break
                progressed = await self._deliver(due.id, run) or progressed
            if not progressed:
                break
        if run.found:
            log.info(
                "deliveries: %d carried out, %d to retry, %d failed (%d orders refunded)",
                run.done,
                run.retried,
                run.failed,
                len(run.refunded),
            )
        return run

    async def deliver_order(self, guild_id: int, order_id: int) -> DeliveryRun:
        """Carry out an order's due deliveries now, in order (a kick after a purchase or refund).
        Until nothing more can be done: a refund made while its grant was being sent records a
        removal that can start once that grant has settled. Nothing in a process that does not
        deliver: the lease holder's tick does it."""
        run = DeliveryRun()
        if not self.leader:
            return run
        await self.recover()
        progressed = True
        while progressed:
            progressed = False
            for delivery in await self.ledger.order_deliveries(guild_id, order_id):
                if delivery.status == "pending" and await self._deliver(delivery.id, run):
                    progressed = True
        return run

    def kick(self, guild_id: int, order_id: int) -> asyncio.Task[DeliveryRun]:
        """Start `deliver_order` in the background; the caller may wait for it, a while or not at
        all. The task outlives the interaction that started it (close() cancels it; its claim is
        then released at the next start)."""
        task = asyncio.create_task(self.deliver_order(guild_id, order_id), name=f"deliver order {order_id}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[DeliveryRun]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery of an order failed", exc_info=task.exception())

    async def wait(self, guild_id: int, order_id: int, seconds: float | None = None) -> list[Delivery]:
        """Kick an order's deliveries and wait up to `seconds` (default `answer_wait`) for them;
        returns them as they are then in the database (still 'pending' if Discord is slow: they go
        on in the background, and the scheduler's tick retries them). In a process that does not
        deliver: watch the database until the lease holder has settled them, as long."""
        seconds = self.answer_wait if seconds is None else seconds
        if self.leader:
            task = self.kick(guild_id, order_id)
            await asyncio.wait({task}, timeout=seconds)
            return await self.ledger.order_deliveries(guild_id, order_id)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            states = await self.ledger.order_deliveries(guild_id, order_id)
            if all(state.status != "pending" for state in states) or loop.time() >= deadline:
                return states
            await asyncio.sleep(min(FOLLOWER_POLL_SECONDS, max(deadline - loop.time(), 0)))

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _deliver(self, delivery_id: int, run: DeliveryRun) -> bool:
        """Claim and carry out one delivery; False when it was not this run's to do."""
        delivery = await self.ledger.claim_delivery(delivery_id, self.token)
        if delivery is None:  # another run has it, or it is not due (waits for an earlier one)
            return False
        run.found += 1
        try:
            await self.send(delivery)
        except DeliveryImpossible as exc:
            log.warning(
                "delivery %s (%s for order %s) is impossible: %s", delivery.id, delivery.action, delivery.order_id, exc
            )
            failure = await self.ledger.delivery_impossible(delivery, self.token, exc.reason, str(exc))
            if failure is not None and failure.delivery.status == "done":
                run.done += 1
            else:
                run.failed += 1
            if failure is not None and failure.refund is not None:
                run.refunded.append(failure.refund.order.id)
                log.info("order %s refunded automatically: %s", delivery.order_id, rules.describe(exc.reason))
            return True
        except Exception as exc:  # DeliveryRetry, or anything unexpected: never lose it, retry later
            if not isinstance(exc, DeliveryRetry):
                log.exception("delivery %s failed unexpectedly; it is retried", delivery.id)
            settled = await self.ledger.delivery_failed_for_now(delivery, self.token, f"{type(exc).__name__}: {exc}")
            if settled is not None and settled.status == "pending":
                run.retried += 1
                log.info("delivery %s will be retried at %s: %s", delivery.id, settled.due_at, exc)
            else:
                run.failed += 1
            return True
        await self.ledger.delivered(delivery, self.token)
        run.done += 1
        return True
