"""The narrow persistence interface the application's units of work are written against.

A unit of work (bot/app) is one plain function `unit(tx, …)` that a store runs inside one
transaction, on its writer: every rule lives in the unit, and `Tx` only reads and writes rows.
A store supplies an `Engine` (its connection, its transactions) and a `Tx` whose repositories
speak its SQL. A second database adds those two and not one rule.

Repositories return the domain's records (bot/domain/models.py), take plain values, and never
decide anything: no error a member reads is raised here (a unique key that is taken raises
`DuplicateKey`, which the unit turns into words).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from bot.domain.errors import LedgerError
from bot.domain.models import (
    AuditRecord,
    Delivery,
    Entry,
    ExpiredLot,
    GiftCard,
    GuildSettings,
    Lot,
    LotSpec,
    Order,
    PromoCode,
    Schedule,
    ShopItem,
)

if TYPE_CHECKING:
    from bot.store.migrate import Upgrade

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Applied(Generic[T]):
    """A write's result and whether it was applied now (False: the key was seen before)."""

    __slots__ = ("fresh", "value")

    def __init__(self, value: T, fresh: bool) -> None:
        self.value = value
        self.fresh = fresh


class CommitThenRaise:
    """What a unit of work returns to commit what it wrote and then raise `error` to the caller:
    a refusal that must still be recorded (a wrong code counts toward the rate limit)."""

    __slots__ = ("error",)

    def __init__(self, error: LedgerError) -> None:
        self.error = error


class DuplicateKey(Exception):
    """A unique key (an item's name, a promo code) is already taken: nothing was written."""


# --- repositories ---------------------------------------------------------------------------------


class SettingsRows(Protocol):
    def get(self, guild_id: int) -> GuildSettings: ...
    def update(self, guild_id: int, values: Mapping[str, Any]) -> None: ...
    def has_amounts(self, guild_id: int) -> bool: ...


class AccountRows(Protocol):
    def ensure(self, guild_id: int, user_ids: Iterable[int], now: int) -> None: ...
    def reminder_prefs(self, guild_id: int, user_id: int) -> tuple[bool, int | None] | None:
        """(reminders_enabled, dm_closed_at), or None when the member has no account yet."""

    def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool) -> None: ...
    def set_dm_closed(self, guild_id: int, user_id: int, at: int | None) -> None: ...


class LotRows(Protocol):
    def next_id(self) -> int: ...
    def insert(
        self,
        guild_id: int,
        first_id: int,
        user_ids: Sequence[int],
        spec: LotSpec,
        starts_at: int,
        actor_id: int | None,
        now: int,
        next_reminder_at: int | None,
    ) -> None:
        """One lot per member, with consecutive ids from `first_id`."""

    def of_member(self, guild_id: int, user_id: int, active_only: bool = True) -> list[Lot]: ...
    def by_id(self, guild_id: int, lot_id: int) -> Lot | None: ...
    def guild_of(self, lot_id: int) -> int: ...
    def take(self, lot_id: int, before: int, after: int, status: str) -> bool:
        """Set remaining from `before` to `after` (and status) if it is still `before`; an inactive
        lot loses its next reminder. False when the row was not as expected."""

    def put_back(self, lot_id: int, amount: int) -> None: ...
    def set_status(self, lot_id: int, status: str) -> None: ...
    def revoked_at(self, lot_id: int) -> int | None: ...
    def mark_revoked(self, lot_id: int, at: int) -> None: ...
    def set_expiry(self, lot_id: int, expires_at: int) -> None: ...
    def expiry(self, lot_id: int) -> int | None: ...
    def set_next_reminder(self, lot_id: int, at: int | None) -> None:
        """Only while the lot is active."""

    def set_next_reminders(self, pairs: Iterable[tuple[int | None, int]]) -> None:
        """(at, lot_id) pairs."""

    def active_expiring(self, guild_id: int) -> list[tuple[int, int, int | None]]:
        """(lot id, expires_at, smallest lead already reminded) of a guild's expiring active lots."""

    def due_to_expire(self, now: int, limit: int) -> list[ExpiredLot]: ...
    def expire(self, lots: Sequence[ExpiredLot], now: int) -> None:
        """Empty each lot, with an 'expire' entry of what it had left."""

    def due_for_reminder(self, now: int, limit: int) -> list[tuple[int, int, int, int | None]]:
        """(guild id, user id, lot id, expires_at) of active lots whose next reminder is due."""

    def still_due_for_reminder(self, lot_id: int, now: int) -> Lot | None: ...


class EntryRows(Protocol):
    def add(
        self,
        lot: Lot,
        type_: str,
        amount: int,
        order_id: int | None,
        actor_id: int | None,
        reason: str | None,
        key: str | None,
        now: int,
    ) -> None: ...
    def add_grants(
        self,
        guild_id: int,
        first_id: int,
        user_ids: Sequence[int],
        amount: int,
        actor_id: int | None,
        reason: str | None,
        key: str | None,
        now: int,
    ) -> None: ...
    def taken_by_order(self, order_id: int) -> list[tuple[int, int]]:
        """(lot id, amount) of what an order's spend and forfeit entries took, in order."""

    def count_of_member(self, guild_id: int, user_id: int) -> int: ...
    def page_of_member(self, guild_id: int, user_id: int, offset: int, limit: int) -> list[Entry]: ...
    def after(self, guild_id: int, after_id: int, limit: int) -> list[Entry]: ...


class ItemRows(Protocol):
    def insert(self, guild_id: int, values: Mapping[str, Any], now: int) -> int: ...
    def update(self, item_id: int, values: Mapping[str, Any]) -> None: ...
    def by_id(self, guild_id: int, item_id: int) -> ShopItem | None: ...
    def listed(self, guild_id: int, category: str | None, include_inactive: bool) -> list[ShopItem]: ...
    def change_stock(self, item_id: int, by: int) -> None:
        """Add `by` (negative: take) to a stocked item's stock; unlimited stock stays unlimited."""


class OrderRows(Protocol):
    def insert(
        self,
        guild_id: int,
        user_id: int,
        item: ShopItem,
        quantity: int,
        total: int,
        promo_applied: int,
        gift_applied: int,
        forfeited: int,
        status: str,
        now: int,
    ) -> int:
        """A new order of `item` (its delivery and role as the item has them now), in `status`."""

    def by_id(self, guild_id: int, order_id: int) -> Order | None: ...
    def bought(self, item_id: int, user_id: int) -> int:
        """How many of an item a member has bought (orders neither refunded nor cancelled)."""

    def move(
        self, order_id: int, from_status: str, to_status: str, actor_id: int | None, now: int, note: str | None
    ) -> bool:
        """Move an order from `from_status` to `to_status`, by `actor_id` at `now` (and its note, when
        given); False when it was not in `from_status`."""

    def reverse(
        self,
        order_id: int,
        from_status: str,
        to_status: str,
        actor_id: int | None,
        now: int,
        reason: str,
        note: str | None,
    ) -> bool:
        """Like `move`, for a refund or cancellation: also when (refunded_at) and why."""

    def set_post(self, guild_id: int, order_id: int, channel_id: int, message_id: int) -> bool:
        """Where the order was posted in the fulfilment channel; False when there is no such order."""

    def count(self, guild_id: int, user_id: int | None) -> int: ...
    def page(self, guild_id: int, user_id: int | None, offset: int, limit: int) -> list[Order]: ...
    def count_pending(self, guild_id: int, user_id: int | None) -> int: ...
    def pending(self, guild_id: int, user_id: int | None, offset: int, limit: int, newest_first: bool) -> list[Order]:
        """Pending orders of a guild (or of one member), by id."""


class ItemCodeRows(Protocol):
    """The secret codes of code items. What they return is for the buyer only: never log it."""

    def add(self, guild_id: int, item_id: int, codes: Iterable[str], now: int) -> int:
        """Add the codes the item does not have yet (sold or unsold); returns how many were added."""

    def take(self, item_id: int, order_id: int) -> bool:
        """Give the item's oldest unused code to the order; False when it has none."""

    def of_orders(self, guild_id: int, user_id: int, order_ids: Sequence[int]) -> dict[int, str]:
        """The code each of these orders of `user_id` took (orders of others, or without one, are
        left out)."""

    def counts(self, item_id: int) -> tuple[int, int]:
        """(unused, sold) codes of an item."""


class DeliveryRows(Protocol):
    def add(
        self,
        order: Order,
        action: str,
        role_id: int | None,
        now: int,
        reason: str | None = None,
        channel_id: int | None = None,
    ) -> None: ...
    def by_id(self, delivery_id: int) -> Delivery | None: ...
    def of_action(self, order_id: int, action: str) -> tuple[int, str, int, str | None, str | None] | None:
        """(id, status, attempts, claimed_by, reason) of an order's delivery of `action`."""

    def due(self, now: int, limit: int) -> list[Delivery]:
        """Claimable now: pending, due, unclaimed, nothing earlier of its order still pending."""

    def of_order(self, guild_id: int, order_id: int) -> list[Delivery]: ...
    def claim(self, delivery_id: int, worker: str, now: int) -> bool:
        """Claim a claimable delivery (one attempt more); False when it is not claimable."""

    def fail_claims_of_others(self, worker: str, actions: Sequence[str], claimed_before: int, now: int) -> None:
        """Settle as failed ('unknown') the deliveries of `actions` other workers claimed before then."""

    def release_claims_of_others(self, worker: str) -> int: ...
    def reschedule(self, delivery_id: int, worker: str, due_at: int, error: str | None) -> bool:
        """Unclaim and make due again at `due_at`, if `worker` still holds it."""

    def settle(
        self,
        delivery_id: int,
        worker: str,
        status: str,
        now: int,
        reason: str | None,
        error: str | None,
        only_pending: bool = False,
    ) -> bool:
        """Settle as `status`, if `worker` still holds it (and, with `only_pending`, it is pending)."""

    def cancel(self, delivery_id: int, now: int) -> None: ...
    def cancel_unclaimed(self, order_id: int, action: str, now: int) -> None: ...


class CodeRows(Protocol):
    def insert_promo(self, guild_id: int, values: Mapping[str, Any], actor_id: int | None, now: int) -> int: ...
    def promo_by_id(self, promo_id: int) -> PromoCode: ...
    def promo_by_key(self, guild_id: int, code_key: str) -> PromoCode | None: ...
    def promos(self, guild_id: int) -> list[PromoCode]: ...
    def set_promo_active(self, promo_id: int, active: bool) -> None: ...
    def promo_uses_of(self, promo_id: int, user_id: int) -> int: ...
    def use_promo(self, promo_id: int) -> bool:
        """Count one use if the code has uses left (atomically); False when it is used up."""

    def record_promo_redemption(self, promo: PromoCode, user_id: int, lot_id: int, now: int) -> None: ...
    def insert_card(
        self,
        guild_id: int,
        code_hash: str,
        last4: str,
        amount: int,
        claim_by: int | None,
        actor_id: int | None,
        now: int,
    ) -> int: ...
    def card_by_hash(self, guild_id: int, code_hash: str) -> GiftCard | None: ...
    def unredeemed_cards(self, guild_id: int, last4: str, card_id: int | None) -> list[GiftCard]: ...
    def cards(self, guild_id: int, status: str | None) -> list[GiftCard]: ...
    def set_card_status(self, card_id: int, status: str) -> None: ...
    def mark_card_redeemed(self, card_id: int, user_id: int, lot_id: int, now: int) -> None: ...
    def record_failure(self, guild_id: int, user_id: int, now: int, key: str | None) -> None:
        """A wrong code; under the interaction's key, recorded once however often it is delivered."""

    def failures_since(self, guild_id: int, user_id: int, since: int) -> list[int]: ...


class ScheduleRows(Protocol):
    def insert(self, guild_id: int, fields: Mapping[str, Any], actor_id: int | None, now: int) -> int: ...
    def by_id(self, guild_id: int, schedule_id: int) -> Schedule | None: ...
    def active(self, guild_id: int) -> list[Schedule]: ...
    def due(self, now: int) -> list[Schedule]: ...
    def deactivate(self, schedule_id: int) -> None: ...
    def set_next_runs(self, pairs: Iterable[tuple[int, int]]) -> None:
        """(next_run_at, schedule id) pairs."""

    def advance(self, schedule_id: int, seen_next_run_at: int, next_run_at: int) -> bool:
        """Move an active schedule on if it is still at `seen_next_run_at`; False if it moved already."""


class ReminderRows(Protocol):
    def state(self, lot_id: int, lead_seconds: int) -> tuple[str, int, str | None, int, str | None] | None:
        """(status, attempts, nonce, updated_at, claimed_by) of a lot's reminder for one lead."""

    def smallest_settled_lead(self, lot_id: int) -> int | None: ...
    def record(self, lot_id: int, lead_seconds: int, status: str, now: int) -> None: ...
    def claim(self, lot_ids: Iterable[int], lead_seconds: int, nonce: str, now: int, run_id: str) -> None: ...


class AuditRows(Protocol):
    def add(self, guild_id: int, audit: AuditRecord, now: int) -> None: ...
    def count(self, guild_id: int) -> int: ...
    def page(self, guild_id: int, offset: int, limit: int) -> list[dict[str, Any]]: ...


class StateRows(Protocol):
    def get(self, key: str) -> str | None: ...
    def set(self, key: str, value: str) -> None: ...


class IdempotencyRows(Protocol):
    def find(self, key: str) -> tuple[str, dict[str, Any]] | None:
        """(operation, result) stored under `key`."""

    def record(self, key: str, guild_id: int, operation: str, result: str, now: int) -> None: ...
    def operations_of_interaction(self, interaction_id: int) -> list[str]: ...
    def prune(self, before: int, limit: int) -> int: ...


class ReportRows(Protocol):
    def outstanding_by_kind(self, guild_id: int, now: int) -> dict[str, int]: ...
    def expiring_within(self, guild_id: int, now: int, within: int) -> int: ...
    def entry_totals_by_week(self, guild_id: int, start: int, week: int) -> list[tuple[int, str, int]]:
        """(week index, entry type, sum of amounts) of grant, spend and expire entries since `start`."""

    def refunds_by_week(self, guild_id: int, start: int, week: int) -> list[tuple[int, int]]:
        """(week index, sum of totals) of orders refunded or cancelled since `start`, by when."""

    def redemptions_per_code(self, guild_id: int) -> list[tuple[str, int]]: ...
    def redeemed_cards(self, guild_id: int) -> int: ...
    def pending_orders(self, guild_id: int) -> tuple[int, int]:
        """(count, sum of totals) of the guild's pending orders."""


class Tx(Protocol):
    """One transaction's view of the database."""

    @property
    def settings(self) -> SettingsRows: ...
    @property
    def accounts(self) -> AccountRows: ...
    @property
    def lots(self) -> LotRows: ...
    @property
    def entries(self) -> EntryRows: ...
    @property
    def items(self) -> ItemRows: ...
    @property
    def orders(self) -> OrderRows: ...
    @property
    def item_codes(self) -> ItemCodeRows: ...
    @property
    def deliveries(self) -> DeliveryRows: ...
    @property
    def codes(self) -> CodeRows: ...
    @property
    def schedules(self) -> ScheduleRows: ...
    @property
    def reminders(self) -> ReminderRows: ...
    @property
    def audit(self) -> AuditRows: ...
    @property
    def state(self) -> StateRows: ...
    @property
    def idempotency(self) -> IdempotencyRows: ...
    @property
    def reports(self) -> ReportRows: ...


class Engine(Protocol):
    """A store's connection and transactions."""

    #: The folder of this store's migrations (SQLite and PostgreSQL number theirs apart).
    migrations: Path
    #: The database's schema version once open, and what opening it applied (None: nothing).
    schema_version: int
    upgrade: Upgrade | None

    @property
    def location(self) -> str:
        """Where the data is, for people: the file's path, or the URL without its password."""

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def backup(self, target: str | Path) -> None: ...

    async def write(self, unit: Callable[..., T | CommitThenRaise], *args: Any) -> T:
        """Run `unit(tx, *args)` in one write transaction: committed if it returns, rolled back if
        it raises; a `CommitThenRaise` is committed and its error raised."""

    async def read(self, query: Callable[..., T], *args: Any, fast: bool = False) -> T:
        """Run `query(tx, *args)` on one consistent snapshot. `fast`: a short read that may run on
        the caller's thread (the store decides whether it can)."""

    async def verify(self, now: int) -> list[str]:
        """Every invariant of SPEC §2 the database can check, as readable problems (empty = healthy)."""
