"""Plain data the ledger speaks in. Times are Unix seconds (UTC), amounts minor units (int)."""

from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Generic, Literal, NamedTuple, Self, TypeVar

from bot.domain.money import Currency

LotKind = Literal["gift", "promo"]
LOT_KINDS: tuple[LotKind, ...] = ("gift", "promo")
LotSource = Literal["grant", "promo_code", "gift_card"]
LotStatus = Literal["active", "spent", "expired", "forfeited", "voided"]
EntryType = Literal["grant", "spend", "forfeit", "expire", "void", "refund", "expiry_change"]

DEFAULT_REMINDER_LEADS = (7 * 86400, 86400)

T = TypeVar("T")


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, tuple) and value and isinstance(value[0], (Record, tuple)):
        return tuple(_plain(v) for v in value)
    return value


class Record:
    """JSON round trip for results kept in the idempotency table and for event payloads."""

    def to_dict(self) -> dict[str, Any]:
        # Not dataclasses.asdict, which deep-copies every value (~10 µs a record): records hold
        # ints, strings, None, tuples and other records only.
        return {name: _plain(getattr(self, name)) for name in _field_names(type(self))}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """A record from its JSON. A field the JSON lacks (a result stored by an older release)
        takes its default, or None when it has none."""
        kwargs = {}
        for f in fields(cls):  # type: ignore[arg-type]
            if f.name not in data and (f.default is not MISSING or f.default_factory is not MISSING):
                continue
            value = data.get(f.name)
            if isinstance(value, list):
                value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
            kwargs[f.name] = value
        return cls(**kwargs)


@dataclass(frozen=True)
class GuildSettings(Record):
    guild_id: int
    currency_name: str = "credits"
    currency_symbol: str = ""
    decimals: int = 0
    timezone: str = "UTC"
    reminder_leads: tuple[int, ...] = DEFAULT_REMINDER_LEADS
    mod_role_id: int | None = None
    audit_channel_id: int | None = None
    promo_excluded_categories: tuple[str, ...] = ()
    fulfilment_channel_id: int | None = None  # where new staff orders are posted

    @property
    def currency(self) -> Currency:
        return Currency(self.currency_name, self.currency_symbol, self.decimals)


@dataclass(frozen=True)
class LotSpec:
    """What a grant creates: everything of a lot but its owner and bookkeeping."""

    amount: int
    kind: LotKind = "promo"
    starts_at: int | None = None  # None = now
    expires_at: int | None = None
    categories: tuple[str, ...] | None = None
    one_time: bool = False
    source: LotSource = "grant"
    source_ref: str | None = None
    memo: str | None = None


@dataclass(frozen=True)
class Lot(Record):
    id: int
    guild_id: int
    user_id: int
    kind: LotKind
    original: int
    remaining: int
    starts_at: int
    expires_at: int | None
    categories: tuple[str, ...] | None
    one_time: bool
    source: LotSource
    source_ref: str | None
    memo: str | None
    created_by: int | None
    created_at: int
    status: LotStatus

    def is_expired_at(self, now: int) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def is_usable_at(self, now: int) -> bool:
        """Active, started, not past expiry (even before the sweep writes it) and not empty."""
        return self.status == "active" and self.remaining > 0 and self.starts_at <= now and not self.is_expired_at(now)

    def is_upcoming_at(self, now: int) -> bool:
        return self.status == "active" and self.remaining > 0 and self.starts_at > now


@dataclass(frozen=True)
class Entry(Record):
    id: int
    guild_id: int
    user_id: int
    lot_id: int
    lot_kind: LotKind
    type: EntryType
    amount: int
    order_id: int | None
    actor_id: int | None
    reason: str | None
    created_at: int
    idempotency_key: str | None
    order_status: str | None = None  # the current status of its order (the export's extra column)


@dataclass(frozen=True)
class Balance:
    guild_id: int
    user_id: int
    gift: int
    promo: int
    upcoming: int
    lots: tuple[Lot, ...]  # usable and upcoming lots, in allocation order
    next_expiry: Lot | None  # the usable lot that expires soonest

    @property
    def total(self) -> int:
        return self.gift + self.promo


@dataclass(frozen=True)
class Page(Generic[T]):
    items: tuple[T, ...]
    page: int  # 1-based
    pages: int  # at least 1
    total: int


@dataclass(frozen=True)
class GrantResult(Record):
    """Lots of one grant get consecutive ids: first_lot_id .. first_lot_id + count - 1."""

    first_lot_id: int
    count: int
    amount: int  # per member
    kind: LotKind
    starts_at: int
    expires_at: int | None

    @property
    def lot_ids(self) -> range:
        return range(self.first_lot_id, self.first_lot_id + self.count)


@dataclass(frozen=True)
class LotChange(Record):
    """One lot touched by a write: how much was taken from or returned to it, and why."""

    lot_id: int
    user_id: int
    kind: LotKind
    type: EntryType
    amount: int  # signed, as in the ledger entry


@dataclass(frozen=True)
class RevokeResult(Record):
    user_id: int
    amount: int  # total voided (positive)
    changes: tuple[LotChange, ...]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(data["user_id"], data["amount"], tuple(LotChange.from_dict(c) for c in data["changes"]))


@dataclass(frozen=True)
class ExtendResult(Record):
    lot_id: int
    user_id: int
    old_expires_at: int | None
    new_expires_at: int | None


@dataclass(frozen=True)
class ShopItem(Record):
    id: int
    guild_id: int
    name: str
    description: str
    price: int
    category: str
    stock: int | None
    role_id: int | None
    per_member_limit: int | None
    active: bool
    delivery: str = "instant"  # instant | staff | code (bot/domain/fulfilment.py); fixed once it exists


@dataclass(frozen=True)
class Allocation:
    """How a purchase is paid: (lot, amount) taken, and one-time remainders forfeited."""

    takes: tuple[tuple[Lot, int], ...]
    forfeits: tuple[tuple[Lot, int], ...]

    @property
    def promo_applied(self) -> int:
        return sum(a for lot, a in self.takes if lot.kind == "promo")

    @property
    def gift_applied(self) -> int:
        return sum(a for lot, a in self.takes if lot.kind == "gift")

    @property
    def forfeited(self) -> int:
        return sum(a for _, a in self.forfeits)


class LotUse(NamedTuple):
    """One lot's part in a purchase: how much of it is spent (or forfeited)."""

    lot_id: int
    kind: LotKind
    amount: int


@dataclass(frozen=True)
class PurchasePlan:
    """Exactly how a purchase pays: the preview shows it, and Confirm applies it or nothing.

    Two plans are equal when they take the same amounts from the same lots and forfeit the same
    remainders, at the same price: then the member pays exactly as shown."""

    item_id: int
    quantity: int
    unit_price: int
    total: int
    takes: tuple[LotUse, ...]
    forfeits: tuple[LotUse, ...]

    @property
    def promo_applied(self) -> int:
        return sum(use.amount for use in self.takes if use.kind == "promo")

    @property
    def gift_applied(self) -> int:
        return sum(use.amount for use in self.takes if use.kind == "gift")

    @property
    def forfeited(self) -> int:
        return sum(use.amount for use in self.forfeits)


@dataclass(frozen=True)
class CheckoutPreview:
    """What `/buy` shows before Confirm: the item, the plan, and the balance before and after."""

    item: ShopItem
    plan: PurchasePlan
    balance_before: int
    balance_after: int

    @property
    def quantity(self) -> int:
        return self.plan.quantity

    @property
    def total(self) -> int:
        return self.plan.total

    @property
    def promo_applied(self) -> int:
        return self.plan.promo_applied

    @property
    def gift_applied(self) -> int:
        return self.plan.gift_applied

    @property
    def forfeited(self) -> int:
        return self.plan.forfeited


@dataclass(frozen=True)
class Order(Record):
    id: int
    guild_id: int
    user_id: int
    item_id: int
    item_name: str
    quantity: int
    unit_price: int
    total: int
    promo_applied: int
    gift_applied: int
    forfeited: int
    role_id: int | None
    status: str  # completed | pending | fulfilled | cancelled | refunded (bot/domain/fulfilment.py)
    created_at: int
    refunded_at: int | None = None
    # Defaults at the end: results stored before fulfilment existed still decode. The code of a
    # code order is deliberately not here (it would reach logs, events, reprs and JSON): see
    # `Ledger.order_code`, which gives it to its buyer only.
    delivery: str = "instant"
    acted_by: int | None = None  # who last changed the status (None: the bot itself)
    acted_at: int | None = None
    note: str | None = None  # the fulfil note or the deny reason
    post_channel_id: int | None = None  # the order's post in the fulfilment channel
    post_message_id: int | None = None


@dataclass(frozen=True)
class RefundResult(Record):
    order: Order
    returned: int  # credit back on usable lots
    expired_again: int  # credit whose lot had expired meanwhile: expired again at once
    revoked_again: int = 0  # credit of a lot revoked as a whole meanwhile: stays revoked

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(
            Order.from_dict(data["order"]), data["returned"], data["expired_again"], data.get("revoked_again", 0)
        )


@dataclass(frozen=True)
class PromoCode(Record):
    id: int
    guild_id: int
    code: str
    amount: int
    max_uses: int | None
    uses: int
    per_member: int
    redeem_by: int | None
    credit_days: int | None
    credit_expires: int | None
    categories: tuple[str, ...] | None
    one_time: bool
    role_id: int | None
    min_member_days: int | None
    active: bool
    created_at: int


@dataclass(frozen=True)
class GiftCard(Record):
    id: int
    guild_id: int
    last4: str
    amount: int
    claim_by: int | None
    status: str
    created_at: int
    redeemed_by: int | None
    redeemed_at: int | None


@dataclass(frozen=True)
class IssuedGiftCards(Record):
    """`codes` is the only moment plain gift-card codes exist: shown to the issuer, never stored.

    A repeated request (same idempotency key) gets the same cards back without their codes.
    """

    card_ids: tuple[int, ...]
    last4s: tuple[str, ...]
    amount: int
    claim_by: int | None
    codes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Redemption(Record):
    kind: Literal["gift_card", "promo_code"]
    lot: Lot
    code_label: str  # promo code as written, or "gift card …AB12"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        return cls(data["kind"], Lot.from_dict(data["lot"]), data["code_label"])


@dataclass(frozen=True)
class MemberFacts:
    """What redemption needs to know of a member, gathered by the Discord layer."""

    role_ids: frozenset[int] = frozenset()
    joined_at: int | None = None


@dataclass(frozen=True)
class ExpiredLot(Record):
    lot_id: int
    guild_id: int
    user_id: int
    kind: LotKind
    amount: int
    expires_at: int


class DueReminder(NamedTuple):
    """One member's lots in one lead window: one DM. (A NamedTuple: a 10,000-reminder burst
    builds 10,000 of these, and tuples are the cheapest immutable record.)"""

    guild_id: int
    user_id: int
    lead_seconds: int
    lot_ids: tuple[int, ...]  # the lots themselves are read fresh when the reminder is claimed


@dataclass(frozen=True)
class ReminderClaim:
    """The lots of a due reminder to DM now (as they are now), under `nonce`; `settled` were
    dropped (see the store)."""

    lots: tuple[Lot, ...]
    nonce: str
    attempts: int
    settled: tuple[int, ...] = ()  # stale 'pending' claims given up as 'unknown'
    skipped: str | None = None  # 'opted_out' or 'dm_closed': settled without a DM

    @property
    def lot_ids(self) -> tuple[int, ...]:
        return tuple(lot.id for lot in self.lots)


@dataclass(frozen=True)
class WeekFigures:
    week_start: int
    granted: int
    spent: int
    expired: int


@dataclass(frozen=True)
class Report:
    guild_id: int
    outstanding_promo: int
    outstanding_gift: int
    expiring_7d: int
    expiring_30d: int
    weeks: tuple[WeekFigures, ...]  # oldest first, 12 weeks
    redemptions_per_code: tuple[tuple[str, int], ...]
    gift_cards_redeemed: int
    pending_orders: int = 0  # the staff's backlog: staff orders waiting to be fulfilled
    pending_value: int = 0  # what they were paid


@dataclass(frozen=True)
class AuditRecord:
    actor_id: int | None
    action: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule(Record):
    """A recurring grant: every member of `role_id` gets `amount` at each due time of `rule`."""

    id: int
    guild_id: int
    role_id: int
    amount: int
    rule: str
    valid_days: int | None
    categories: tuple[str, ...] | None
    kind: LotKind
    next_run_at: int
    active: bool
    created_at: int


@dataclass(frozen=True)
class Delivery(Record):
    """What an order must still do in Discord (bot/domain/delivery.py): give or take back a role,
    post a staff order to the fulfilment channel or edit that post, or DM the member about what
    happened to their order; carried out from the database by the worker."""

    id: int
    guild_id: int
    user_id: int
    order_id: int
    action: str
    role_id: int | None
    status: str
    attempts: int
    due_at: int
    reason: str | None
    last_error: str | None
    created_at: int
    settled_at: int | None
    channel_id: int | None = None  # post_order: the fulfilment channel when the order was placed


@dataclass(frozen=True)
class CodeUpload(Record):
    """What an upload of codes to a code item did, in counts only (never the codes)."""

    item_id: int
    added: int
    duplicates: int  # skipped: already in the item (sold or unsold), or twice in the file
    stock: int  # the item's unused codes now


@dataclass(frozen=True)
class DeliveryFailure(Record):
    """An impossible delivery, settled: the delivery as it now is, and the refund it made (None
    when the order needed none or had been refunded already)."""

    delivery: Delivery
    refund: RefundResult | None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        refund = data.get("refund")
        return cls(Delivery.from_dict(data["delivery"]), None if refund is None else RefundResult.from_dict(refund))
