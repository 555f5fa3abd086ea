"""What orders must still do in Discord (bot/domain/delivery.py): claiming a delivery, settling it,
and the refund of an order whose role cannot be given. The worker that carries them out is
bot/app/delivery_worker.py."""

from __future__ import annotations

from bot.app.service import Service
from bot.app.shop import refund_order
from bot.domain import delivery as deliveries
from bot.domain import fulfilment
from bot.domain.models import AuditRecord, Delivery, DeliveryFailure
from bot.store.ports import Tx


def due_deliveries(tx: Tx, now: int, limit: int) -> list[Delivery]:
    return tx.deliveries.due(now, limit)


def order_deliveries(tx: Tx, guild_id: int, order_id: int) -> list[Delivery]:
    return tx.deliveries.of_order(guild_id, order_id)


def claim_delivery(tx: Tx, delivery_id: int, worker: str, now: int) -> Delivery | None:
    """Claim a claimable delivery for `worker` (one attempt more), or None when it is not
    claimable (done, claimed by another run, not due, waiting for an earlier one)."""
    return tx.deliveries.by_id(delivery_id) if tx.deliveries.claim(delivery_id, worker, now) else None


def release_deliveries(tx: Tx, worker: str, now: int, resend_window: int) -> int:
    """Release the claims of every other worker: exactly one process serves a database (SPEC
    §5), so they are the claims of a process that died while delivering. A grant or removal is
    tried again (Discord applies it once however often it is asked). A DM claimed longer ago
    than Discord's nonce window is settled 'failed' (reason 'unknown') rather than sent twice; so is
    a post to the fulfilment channel (an edit of a post is tried again: editing twice is harmless)."""
    tx.deliveries.fail_claims_of_others(worker, deliveries.MESSAGES, now - resend_window, now)
    return tx.deliveries.release_claims_of_others(worker)


def settle_delivery(
    tx: Tx,
    delivery_id: int,
    worker: str,
    status: str,
    now: int,
    retry_at: int | None,
    reason: str | None,
    error: str | None,
) -> Delivery | None:
    """Settle a delivery `worker` claimed: 'done', 'failed' (with `reason`; no refund: see
    fail_delivery), or 'pending' again at `retry_at` after a passing `error`. None when the
    claim is no longer this worker's (a restart released it): nothing is changed then."""
    if status == "pending":
        assert retry_at is not None
        settled = tx.deliveries.reschedule(delivery_id, worker, retry_at, error)
    else:
        settled = tx.deliveries.settle(delivery_id, worker, status, now, reason, error)
    return tx.deliveries.by_id(delivery_id) if settled else None


def fail_delivery(
    tx: Tx, delivery: Delivery, worker: str, reason: str, refund: bool, audit: AuditRecord, key: str, now: int
) -> DeliveryFailure:
    """Settle an impossible delivery `worker` claimed as 'failed' and, when `refund`, refund its
    order in the same transaction (once: an order refunded meanwhile is left as it is) and
    record the DM that tells the member."""
    ours = tx.deliveries.settle(delivery.id, worker, "failed", now, reason, None, only_pending=True)
    current = tx.deliveries.by_id(delivery.id)
    assert current is not None
    if not ours or not refund:  # not ours any more: whoever holds it settles it
        return DeliveryFailure(current, None)
    order = tx.orders.by_id(delivery.guild_id, delivery.order_id)
    assert order is not None
    if order.status in fulfilment.REVERSED:
        # Refunded while the role was being given, which failed: there is nothing to take back.
        if reason != deliveries.GAVE_UP:
            tx.deliveries.cancel_unclaimed(order.id, deliveries.REMOVE_ROLE, now)
        return DeliveryFailure(current, None)
    refunded = refund_order(tx, delivery.guild_id, order.id, audit, key, now, dm=None)
    tx.deliveries.add(refunded.order, deliveries.DM_REFUND, None, now, reason)
    return DeliveryFailure(current, refunded)


class DeliveryService(Service):
    async def due_deliveries(self, limit: int = 100) -> list[Delivery]:
        return await self.store.read(due_deliveries, self.now(), limit)

    async def order_deliveries(self, guild_id: int, order_id: int) -> list[Delivery]:
        return await self.store.read(order_deliveries, guild_id, order_id)

    async def claim_delivery(self, delivery_id: int, worker: str) -> Delivery | None:
        return await self.store.write(claim_delivery, delivery_id, worker, self.now())

    async def release_deliveries(self, worker: str, resend_window: int) -> int:
        return await self.store.write(release_deliveries, worker, self.now(), resend_window)

    async def delivered(self, delivery: Delivery, worker: str) -> Delivery | None:
        return await self.store.write(settle_delivery, delivery.id, worker, "done", self.now(), None, None, None)

    async def delivery_failed_for_now(self, delivery: Delivery, worker: str, error: str) -> Delivery | None:
        """A passing failure (rate limit, 5xx, network): try again after the backoff, or give up
        once it has failed for longer than GIVE_UP_AFTER (then it is impossible)."""
        now = self.now()
        if deliveries.gives_up(delivery.created_at, now):
            failure = await self.delivery_impossible(delivery, worker, deliveries.GAVE_UP, error)
            return failure.delivery if failure else None
        retry_at = now + deliveries.backoff(delivery.attempts)
        return await self.store.write(settle_delivery, delivery.id, worker, "pending", now, retry_at, None, error)

    async def delivery_impossible(
        self, delivery: Delivery, worker: str, reason: str, error: str | None = None
    ) -> DeliveryFailure | None:
        """Discord will not do it. A removal whose role or member is gone is done; a role that
        cannot be given refunds its order (once, with the DM that tells the member, in the same
        transaction); anything else is recorded as failed. None: the claim was not ours any more."""
        now = self.now()
        if deliveries.nothing_left_to_do(delivery.action, reason):
            settled = await self.store.write(settle_delivery, delivery.id, worker, "done", now, None, reason, error)
            return None if settled is None else DeliveryFailure(settled, None)
        audit = AuditRecord(
            None,
            "refund",
            {
                "order_id": delivery.order_id,
                "reason": f"automatic refund: {deliveries.describe(reason)}",
            },
        )
        applied = await self.unit(
            "delivery_failure",
            DeliveryFailure.from_dict,
            f"delivery:{delivery.id}:failed",
            delivery.guild_id,
            now,
            fail_delivery,
            delivery,
            worker,
            reason,
            deliveries.refunds_order(delivery.action),
            audit,
            f"delivery:{delivery.id}:failed",
            now,
        )
        return applied.value
