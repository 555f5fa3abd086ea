"""The store's narrow interface: one method = one unit of work = one transaction.

The SQLite store implements it on aiosqlite; a PostgreSQL store (asyncpg) can implement the same
methods with `SELECT … FOR UPDATE` and run the same tests (see tests/conftest.py `store` fixture).
Rules (allocation, eligibility, code checks) come from `bot.domain.rules` and run inside the
transaction, so every implementation applies them identically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

from bot.domain.models import (
    AuditRecord,
    CheckoutPreview,
    Delivery,
    DeliveryFailure,
    DueReminder,
    Entry,
    ExpiredLot,
    ExtendResult,
    GiftCard,
    GrantResult,
    GuildSettings,
    IssuedGiftCards,
    Lot,
    LotSpec,
    MemberFacts,
    Order,
    Page,
    PromoCode,
    PurchasePlan,
    Redemption,
    RefundResult,
    ReminderClaim,
    Report,
    RevokeResult,
    Schedule,
    ShopItem,
)

T = TypeVar("T")


class Applied(Generic[T]):
    """A write's result and whether it was applied now (False: the key was seen before)."""

    __slots__ = ("fresh", "value")

    def __init__(self, value: T, fresh: bool) -> None:
        self.value = value
        self.fresh = fresh


class Store(ABC):
    """Persistence of the ledger; see the module docstring."""

    @abstractmethod
    async def open(self) -> None: ...

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def backup(self, target: str | Path) -> None:
        """SQLite online backup: a consistent copy, safe while the bot keeps writing."""

    @abstractmethod
    async def replayed(self, key: str, operation: str) -> dict[str, Any] | None:
        """The stored result of an earlier write with this key and operation, if any."""

    @abstractmethod
    async def operations_of_interaction(self, interaction_id: int) -> list[str]:
        """The operations committed under this interaction's keys (``ID`` or ``purpose:ID``)."""

    @abstractmethod
    async def get_settings(self, guild_id: int) -> GuildSettings: ...

    @abstractmethod
    async def update_settings(
        self, guild_id: int, changes: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[GuildSettings]: ...

    @abstractmethod
    async def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool, now: int) -> None: ...

    @abstractmethod
    async def reminders_enabled(self, guild_id: int, user_id: int) -> bool: ...

    @abstractmethod
    async def grant(
        self, guild_id: int, user_ids: Sequence[int], spec: LotSpec, audit: AuditRecord | None,
        key: str | None, now: int,
    ) -> Applied[GrantResult]: ...

    @abstractmethod
    async def revoke(
        self, guild_id: int, user_id: int, lot_id: int | None, amount: int | None,
        audit: AuditRecord, key: str | None, now: int,
    ) -> Applied[RevokeResult]: ...

    @abstractmethod
    async def extend(
        self, guild_id: int, lot_id: int, expires_at: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[ExtendResult]: ...

    @abstractmethod
    async def member_lots(self, guild_id: int, user_id: int, active_only: bool = True) -> list[Lot]: ...

    @abstractmethod
    async def get_lot(self, guild_id: int, lot_id: int) -> Lot | None: ...

    @abstractmethod
    async def history(self, guild_id: int, user_id: int, page: int, per_page: int) -> Page[Entry]: ...

    @abstractmethod
    async def add_item(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[ShopItem]: ...

    @abstractmethod
    async def edit_item(
        self, guild_id: int, item_id: int, changes: Mapping[str, Any], audit: AuditRecord,
        key: str | None, now: int,
    ) -> Applied[ShopItem]: ...

    @abstractmethod
    async def list_items(
        self, guild_id: int, category: str | None = None, include_inactive: bool = False
    ) -> list[ShopItem]: ...

    @abstractmethod
    async def get_item(self, guild_id: int, item_id: int) -> ShopItem | None: ...

    @abstractmethod
    async def preview(
        self, guild_id: int, user_id: int, item_id: int, quantity: int, now: int
    ) -> CheckoutPreview: ...

    @abstractmethod
    async def checkout(
        self, guild_id: int, user_id: int, item_id: int, quantity: int, key: str | None, now: int,
        expected: PurchasePlan | None = None,
    ) -> Applied[Order]: ...

    @abstractmethod
    async def refund(
        self, guild_id: int, order_id: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[RefundResult]: ...

    @abstractmethod
    async def orders(self, guild_id: int, user_id: int | None, page: int, per_page: int) -> Page[Order]: ...

    @abstractmethod
    async def get_order(self, guild_id: int, order_id: int) -> Order | None: ...

    @abstractmethod
    async def due_deliveries(self, now: int, limit: int = 100) -> list[Delivery]:
        """Deliveries the worker may claim now, soonest due first."""

    @abstractmethod
    async def order_deliveries(self, guild_id: int, order_id: int) -> list[Delivery]: ...

    @abstractmethod
    async def claim_delivery(self, delivery_id: int, worker: str, now: int) -> Delivery | None:
        """Claim a delivery for `worker` atomically: two runs never carry out one delivery."""

    @abstractmethod
    async def release_deliveries(self, worker: str, now: int, resend_window: int) -> int:
        """Release the claims of other workers (a process that died while delivering)."""

    @abstractmethod
    async def settle_delivery(
        self, delivery_id: int, worker: str, status: str, now: int, *, retry_at: int | None = None,
        reason: str | None = None, error: str | None = None,
    ) -> Delivery | None:
        """Record how a claimed delivery ended ('done', 'failed', or 'pending' again at `retry_at`)."""

    @abstractmethod
    async def fail_delivery(
        self, delivery: Delivery, worker: str, reason: str, refund: bool, audit: AuditRecord, key: str, now: int
    ) -> Applied[DeliveryFailure]:
        """Settle an impossible delivery as failed and, when `refund`, refund its order: one transaction."""

    @abstractmethod
    async def create_promo(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[PromoCode]: ...

    @abstractmethod
    async def list_promos(self, guild_id: int) -> list[PromoCode]: ...

    @abstractmethod
    async def set_promo_active(
        self, guild_id: int, code_key: str, active: bool, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[PromoCode]: ...

    @abstractmethod
    async def issue_gift_cards(
        self, guild_id: int, hashes: Sequence[tuple[str, str]], amount: int, claim_by: int | None,
        audit: AuditRecord, key: str | None, now: int,
    ) -> Applied[IssuedGiftCards]: ...

    @abstractmethod
    async def list_gift_cards(self, guild_id: int, status: str | None = None) -> list[GiftCard]: ...

    @abstractmethod
    async def void_gift_card(
        self, guild_id: int, last4: str, audit: AuditRecord, key: str | None, now: int, card_id: int | None = None
    ) -> Applied[GiftCard]:
        """Void the unredeemed card ending in `last4` (or the card `card_id` when several do)."""

    @abstractmethod
    async def redeem(
        self, guild_id: int, user_id: int, promo_key: str, gift_hash: str | None,
        member: MemberFacts, key: str | None, now: int,
    ) -> Applied[Redemption]: ...

    @abstractmethod
    async def add_schedule(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[Schedule]: ...

    @abstractmethod
    async def list_schedules(self, guild_id: int) -> list[Schedule]: ...

    @abstractmethod
    async def remove_schedule(
        self, guild_id: int, schedule_id: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[Schedule]: ...

    @abstractmethod
    async def due_schedules(self, now: int) -> list[Schedule]: ...

    @abstractmethod
    async def run_schedule(
        self, schedule: Schedule, user_ids: Sequence[int], next_run_at: int, now: int
    ) -> GrantResult | None:
        """Grant one due run and advance the schedule, once per due time (see SqliteStore)."""

    @abstractmethod
    async def sweep_expired(self, now: int, batch: int = 10_000) -> list[ExpiredLot]:
        """Expire every active lot past its expiry, `batch` lots per transaction."""

    @abstractmethod
    async def prune_idempotency(self, before: int, batch: int = 10_000) -> int:
        """Forget idempotency keys older than `before`; returns how many."""

    @abstractmethod
    async def due_reminders(self, now: int, limit: int = 10_000) -> list[DueReminder]: ...

    @abstractmethod
    async def claim_reminder(
        self, due: DueReminder, nonce: str, resend_window: int, now: int, run_id: str
    ) -> ReminderClaim:
        """Claim a due reminder as 'pending' for run `run_id` before sending it (at most once; see
        SqliteStore)."""

    @abstractmethod
    async def settle_reminder(
        self, lot_ids: Sequence[int], lead_seconds: int, status: str, now: int, retry_at: int | None = None
    ) -> None:
        """Record how a claimed reminder ended; 'retry' makes it due again at `retry_at`."""

    @abstractmethod
    async def mark_dm_closed(self, guild_id: int, user_id: int, now: int) -> None: ...

    @abstractmethod
    async def report(self, guild_id: int, now: int) -> Report: ...

    @abstractmethod
    async def export_entries(self, guild_id: int, after_id: int, limit: int) -> list[Entry]: ...

    @abstractmethod
    async def audit_log(self, guild_id: int, page: int, per_page: int) -> Page[dict[str, Any]]: ...

    @abstractmethod
    async def verify(self, now: int) -> list[str]: ...

    @abstractmethod
    async def get_state(self, key: str) -> str | None: ...

    @abstractmethod
    async def set_state(self, key: str, value: str) -> None: ...
