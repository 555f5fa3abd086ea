"""The SQLite store on aiosqlite.

Every unit of work is one plain function run on aiosqlite's worker thread, wrapped in
BEGIN IMMEDIATE … COMMIT. That thread runs one function at a time, so transactions of concurrent
coroutines cannot interleave, and a checkout costs one hop to the thread instead of one per
statement. (aiosqlite 0.22 has no public call for this; `_execute` is pinned by pyproject.toml.)
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from bot.domain import delivery as deliveries
from bot.domain.allocation import allocate_revoke
from bot.domain.errors import Conflict, InvalidInput, LedgerError, NotFound
from bot.domain.models import (
    Allocation,
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
    LotChange,
    LotSpec,
    MemberFacts,
    Order,
    Page,
    PromoCode,
    PurchasePlan,
    Record,
    Redemption,
    RefundResult,
    ReminderClaim,
    Report,
    RevokeResult,
    Schedule,
    ShopItem,
    WeekFigures,
)
from bot.domain.money import Currency, format_amount
from bot.domain.orders import check_plan_unchanged, preview_purchase
from bot.domain.paging import clamp_page, page_count
from bot.domain.recurrence import next_run
from bot.domain.redemption import (
    RATE_LIMIT_FAILURES,
    RATE_LIMIT_WINDOW,
    check_promo_redeemable,
    promo_credit_expiry,
    raise_if_rate_limited,
)
from bot.domain.reminders import next_reminder_at, pending_claim, reminder_lead_due
from bot.domain.timeparse import discord_timestamp, from_unix
from bot.store.base import Applied, Store
from bot.store.migrate import SchemaTooNew, Upgrade, backup_path, code_version, migrate, pending, schema_version

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R", bound=Record)

LOT_COLUMNS = (
    "id, guild_id, user_id, kind, original, remaining, starts_at, expires_at, categories,"
    " one_time, source, source_ref, memo, created_by, created_at, status"
)
ITEM_COLUMNS = "id, guild_id, name, description, price, category, stock, role_id, per_member_limit, active"
ORDER_COLUMNS = (
    "id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,"
    " gift_applied, forfeited, role_id, status, created_at, refunded_at"
)
PROMO_COLUMNS = (
    "id, guild_id, code, amount, max_uses, uses, per_member, redeem_by, credit_days, credit_expires,"
    " categories, one_time, role_id, min_member_days, active, created_at"
)
SCHEDULE_COLUMNS = (
    "id, guild_id, role_id, amount, rule, valid_days, categories, kind, next_run_at, active, created_at"
)
DELIVERY_COLUMNS = (
    "id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, reason, last_error,"
    " created_at, settled_at"
)
CARD_COLUMNS = "id, guild_id, last4, amount, claim_by, status, created_at, redeemed_by, redeemed_at"
ENTRY_SELECT = (
    "SELECT e.id, e.guild_id, e.user_id, e.lot_id, l.kind, e.type, e.amount, e.order_id, e.actor_id,"
    " e.reason, e.created_at, e.idempotency_key FROM entries e JOIN lots l ON l.id = e.lot_id"
)
SWEEP_RECORD_INTERVAL = 300
EMPTY_STATUS = {"spend": "spent", "forfeit": "forfeited", "void": "voided", "expire": "expired"}
SETTINGS_COLUMNS = {
    "currency_name", "currency_symbol", "decimals", "timezone", "reminder_leads", "mod_role_id",
    "audit_channel_id", "promo_excluded_categories",
}
ITEM_FIELDS = {"name", "description", "price", "category", "stock", "role_id", "per_member_limit", "active"}
PROMO_FIELDS = {
    "code", "code_key", "amount", "max_uses", "per_member", "redeem_by", "credit_days", "credit_expires",
    "categories", "one_time", "role_id", "min_member_days",
}


def _categories(raw: str | None) -> tuple[str, ...] | None:
    return None if raw is None else tuple(json.loads(raw))


def _categories_json(values: Iterable[str] | None) -> str | None:
    return None if values is None else json.dumps(list(values))


def _lot(row: Sequence[Any]) -> Lot:
    return Lot(
        id=row[0], guild_id=row[1], user_id=row[2], kind=row[3], original=row[4], remaining=row[5],
        starts_at=row[6], expires_at=row[7], categories=_categories(row[8]), one_time=bool(row[9]),
        source=row[10], source_ref=row[11], memo=row[12], created_by=row[13], created_at=row[14],
        status=row[15],
    )


def _item(row: Sequence[Any]) -> ShopItem:
    return ShopItem(
        id=row[0], guild_id=row[1], name=row[2], description=row[3], price=row[4], category=row[5],
        stock=row[6], role_id=row[7], per_member_limit=row[8], active=bool(row[9]),
    )


def _order(row: Sequence[Any]) -> Order:
    return Order(*row)


def _promo(row: Sequence[Any]) -> PromoCode:
    return PromoCode(
        id=row[0], guild_id=row[1], code=row[2], amount=row[3], max_uses=row[4], uses=row[5], per_member=row[6],
        redeem_by=row[7], credit_days=row[8], credit_expires=row[9], categories=_categories(row[10]),
        one_time=bool(row[11]), role_id=row[12], min_member_days=row[13], active=bool(row[14]), created_at=row[15],
    )


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(*row)


def _card(row: Sequence[Any]) -> GiftCard:
    return GiftCard(*row)


def _schedule(row: Sequence[Any]) -> Schedule:
    return Schedule(
        id=row[0], guild_id=row[1], role_id=row[2], amount=row[3], rule=row[4], valid_days=row[5],
        categories=_categories(row[6]), kind=row[7], next_run_at=row[8], active=bool(row[9]), created_at=row[10],
    )


def _entry(row: Sequence[Any]) -> Entry:
    return Entry(*row)


class _AfterCommit:
    """Returned by a unit of work to commit what it wrote and then raise `error` to the caller.

    Used where a refusal must still be recorded (a wrong code counts toward the rate limit).
    """

    def __init__(self, error: LedgerError) -> None:
        self.error = error


class SqliteStore(Store):
    """The ledger on one SQLite file, opened in one of two modes.

    `migrate=True` (the bot, `python -m bot db upgrade`, tests): a new file is created with every
    migration; an existing one at an older schema version is first copied beside itself
    (`migrate.backup_path`, SQLite online backup), then migrated; `upgrade` says what was done.
    `migrate=False` (`backup`, `verify`, `export`, `db status`): the file must exist and is only
    read (`PRAGMA query_only`, its journal mode untouched), at whatever version it is;
    `schema_version` says which, and the caller decides whether it can work on it. Both modes
    refuse a database newer than the code (`SchemaTooNew`).
    """

    def __init__(self, path: str | Path, *, migrate: bool = True) -> None:
        self.path = Path(path)
        self.migrate = migrate
        self.schema_version = 0
        self.upgrade: Upgrade | None = None
        self._db: aiosqlite.Connection | None = None
        self._reader: sqlite3.Connection | None = None  # short reads, on the event loop's thread
        self._last_sweep_recorded = 0

    # lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        memory = str(self.path) == ":memory:"
        if self.migrate and not memory:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.migrate or memory:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
        else:  # mode=rw: a missing file is an error, not a new empty database
            if not self.path.is_file():
                # Refused before aiosqlite starts its worker thread: a connect that fails in that
                # thread leaves it behind, to report to a closed event loop later.
                raise sqlite3.OperationalError(f"unable to open database file {self.path}")
            uri = self.path.resolve().as_uri() + "?mode=rw"
            self._db = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        try:
            # The version first: a database newer than the code is refused before anything
            # (not even the switch to WAL) is written to it.
            self.schema_version = await self._run(schema_version)
            if self.schema_version > code_version():
                raise SchemaTooNew(self.schema_version, code_version())
            if self.migrate:
                backup = await self._backup_before_upgrade()
                await self._run(_configure)
                await self._migrate(backup)
            else:
                await self._run(_configure_reading)
        except BaseException:
            await self.close()  # aiosqlite's thread is not a daemon: a leaked one blocks exit
            raise
        log.info("database %s ready (schema version %d)", self.path, self.schema_version)
        if self.migrate and not memory:
            self._reader = sqlite3.connect(self.path, isolation_level=None)
            self._reader.execute("PRAGMA query_only = ON")
            self._reader.execute("PRAGMA busy_timeout = 50")

    async def _backup_before_upgrade(self) -> Path | None:
        """A copy of the file as it is (journal mode included) when migrations are pending for a
        database that has data to lose; None for a new database or one that is up to date."""
        before, target = self.schema_version, code_version()
        if not 0 < before < target or str(self.path) == ":memory:":
            return None
        backup = backup_path(self.path, target)
        await self.backup(backup)
        log.info("database %s is at schema version %d: backed up to %s before upgrading", self.path, before, backup)
        return backup

    async def _migrate(self, backup: Path | None) -> None:
        """Apply the pending migrations (another process may have applied them meanwhile)."""
        before = self.schema_version
        self.schema_version = await self._run(migrate)
        if self.schema_version != before:
            applied = tuple(pending(before))
            self.upgrade = Upgrade(before, self.schema_version, applied, backup)
            log.info(
                "database %s upgraded from schema version %d to %d (%s); %s", self.path, before,
                self.schema_version, ", ".join(applied),
                f"the database as it was is in {backup}" if backup else "a new database, nothing to back up",
            )

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def backup(self, target: str | Path) -> None:
        """SQLite online backup: a consistent copy, safe while the bot keeps writing."""
        assert self._db is not None
        dest = await aiosqlite.connect(target)
        try:
            await self._db.backup(dest)
        finally:
            await dest.close()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._db is None:
            raise RuntimeError("the store is not open")
        db = self._db
        return await db._execute(fn, db._conn, *args)  # one hop to the worker thread

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """A short indexed read on the event loop's thread, through a second connection: no hop to
        the worker thread and back (two thread wake-ups, the p99 of a read on a busy host). A WAL
        reader does not wait for the writer and sees the last committed state."""
        if self._reader is None:
            return await self._run(fn, *args)
        try:
            return fn(self._reader, *args)
        except sqlite3.OperationalError:  # busy (a WAL recovery): let the worker thread wait instead
            return await self._run(fn, *args)

    async def _write(self, fn: Callable[..., T | _AfterCommit], *args: Any) -> T:
        result = await self._run(_in_transaction, fn, *args)
        if isinstance(result, _AfterCommit):
            raise result.error
        return result

    async def _unit(
        self, operation: str, decode: Callable[[dict[str, Any]], R], key: str | None, guild_id: int,
        now: int, fn: Callable[[sqlite3.Connection], R | _AfterCommit],
    ) -> Applied[R]:
        """One idempotent write: the same key again returns the first result and writes nothing."""

        def work(conn: sqlite3.Connection) -> Applied[R] | _AfterCommit:
            if key is not None:
                row = conn.execute(
                    "SELECT operation, result FROM idempotency WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    if row[0] != operation:
                        raise Conflict("This request was already used for another action.")
                    return Applied(decode(json.loads(row[1])), fresh=False)
            result = fn(conn)
            if isinstance(result, _AfterCommit):
                return result
            if key is not None:
                conn.execute(
                    "INSERT INTO idempotency (key, guild_id, operation, result, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (key, guild_id, operation, result.to_json(), now),
                )
            return Applied(result, fresh=True)

        return await self._write(work)

    async def replayed(self, key: str, operation: str) -> dict[str, Any] | None:
        """The stored result of an earlier write with this key and operation, if any."""

        def fn(conn: sqlite3.Connection) -> dict[str, Any] | None:
            row = conn.execute(
                "SELECT result FROM idempotency WHERE key = ? AND operation = ?", (key, operation)
            ).fetchone()
            return None if row is None else dict(json.loads(row[0]))

        return await self._run(fn)

    async def operations_of_interaction(self, interaction_id: int) -> list[str]:
        def operations_of_interaction(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT operation FROM idempotency WHERE key = ? OR key LIKE ? ORDER BY created_at",
                (str(interaction_id), f"%:{interaction_id}"),
            ).fetchall()
            return [str(row[0]) for row in rows]

        return await self._run(operations_of_interaction)

    # settings and accounts ---------------------------------------------------------------------
    async def get_settings(self, guild_id: int) -> GuildSettings:
        return await self._read(_settings, guild_id)

    async def update_settings(
        self, guild_id: int, changes: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[GuildSettings]:
        unknown = set(changes) - SETTINGS_COLUMNS
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")

        def fn(conn: sqlite3.Connection) -> GuildSettings:
            before = _settings(conn, guild_id)
            if changes.get("decimals", before.decimals) != before.decimals and _guild_has_amounts(conn, guild_id):
                # Amounts are stored in minor units; a new scale would silently rescale them all.
                raise InvalidInput(
                    "Decimals can only change before any credit, item, code, gift card or recurring grant exists "
                    "in this server."
                )
            conn.execute("INSERT OR IGNORE INTO guild_settings (guild_id) VALUES (?)", (guild_id,))
            values = dict(changes)
            if "reminder_leads" in values:
                values["reminder_leads"] = ",".join(str(s) for s in values["reminder_leads"])
            if "promo_excluded_categories" in values:
                values["promo_excluded_categories"] = json.dumps(list(values["promo_excluded_categories"]))
            if values:
                assignments = ", ".join(f"{column} = ?" for column in values)
                conn.execute(
                    f"UPDATE guild_settings SET {assignments} WHERE guild_id = ?",
                    (*values.values(), guild_id),
                )
            after = _settings(conn, guild_id)
            if after.reminder_leads != before.reminder_leads:
                _reschedule_reminders(conn, guild_id, after.reminder_leads, now)
            if after.timezone != before.timezone:  # recurring rules are read in the guild's timezone
                conn.executemany(
                    "UPDATE schedules SET next_run_at = ? WHERE id = ?",
                    [(next_run(rule, after.timezone, now), schedule_id) for schedule_id, rule in conn.execute(
                        "SELECT id, rule FROM schedules WHERE guild_id = ? AND active = 1", (guild_id,)
                    ).fetchall()],
                )
            _audit(conn, guild_id, audit, now)
            return after

        return await self._unit("settings", GuildSettings.from_dict, key, guild_id, now, fn)

    async def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool, now: int) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            _ensure_accounts(conn, guild_id, (user_id,), now)
            # Turning reminders on is also the member saying "try my DMs again" after a 50007.
            conn.execute(
                "UPDATE accounts SET reminders_enabled = ?,"
                " dm_closed_at = CASE WHEN ? THEN NULL ELSE dm_closed_at END WHERE guild_id = ? AND user_id = ?",
                (int(enabled), int(enabled), guild_id, user_id),
            )

        await self._write(fn)

    async def reminders_enabled(self, guild_id: int, user_id: int) -> bool:
        def fn(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT reminders_enabled FROM accounts WHERE guild_id = ? AND user_id = ?",
                (guild_id, user_id),
            ).fetchone()
            return True if row is None else bool(row[0])

        return await self._run(fn)

    # credit ------------------------------------------------------------------------------------
    async def grant(
        self, guild_id: int, user_ids: Sequence[int], spec: LotSpec, audit: AuditRecord | None,
        key: str | None, now: int,
    ) -> Applied[GrantResult]:
        def fn(conn: sqlite3.Connection) -> GrantResult:
            actor = audit.actor_id if audit else None
            first = _insert_lots(conn, guild_id, user_ids, spec, actor, key, now)
            if audit is not None:
                _audit(conn, guild_id, audit, now)
            return GrantResult(
                first_lot_id=first, count=len(user_ids), amount=spec.amount, kind=spec.kind,
                starts_at=spec.starts_at if spec.starts_at is not None else now, expires_at=spec.expires_at,
            )

        return await self._unit("grant", GrantResult.from_dict, key, guild_id, now, fn)

    async def revoke(
        self, guild_id: int, user_id: int, lot_id: int | None, amount: int | None,
        audit: AuditRecord, key: str | None, now: int,
    ) -> Applied[RevokeResult]:
        def fn(conn: sqlite3.Connection) -> RevokeResult:
            currency = _settings(conn, guild_id).currency
            if lot_id is not None:
                lot = _lot_by_id(conn, guild_id, lot_id)
                if lot is None or lot.user_id != user_id:
                    raise NotFound(f"Lot #{lot_id} is not one of <@{user_id}>'s lots.")
                if lot.status != "active" or lot.is_expired_at(now):
                    state = "expired" if lot.is_expired_at(now) else lot.status
                    raise Conflict(f"Lot #{lot_id} is {state}: there is nothing left to revoke.")
                take = lot.remaining if amount is None else amount
                if take > lot.remaining:
                    raise Conflict(
                        f"Lot #{lot_id} has only {format_amount(lot.remaining, currency)} left."
                    )
                pieces = [(lot, take)]
            else:
                if amount is None:
                    raise InvalidInput("Name a lot or an amount to revoke.")
                pieces = allocate_revoke(_member_lots(conn, guild_id, user_id), amount, now, currency)
            changes = _debit(conn, pieces, "void", None, audit.actor_id, audit.details.get("reason"), key, now)
            if lot_id is not None and amount is None:  # the lot itself is cancelled, not just emptied
                conn.execute("UPDATE lots SET revoked_at = ? WHERE id = ?", (now, lot_id))
            _audit(conn, guild_id, audit, now)
            return RevokeResult(user_id, sum(t for _, t in pieces), tuple(changes))

        return await self._unit("revoke", RevokeResult.from_dict, key, guild_id, now, fn)

    async def extend(
        self, guild_id: int, lot_id: int, expires_at: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[ExtendResult]:
        def fn(conn: sqlite3.Connection) -> ExtendResult:
            lot = _lot_by_id(conn, guild_id, lot_id)
            if lot is None:
                raise NotFound(f"There is no lot #{lot_id} in this server.")
            if lot.is_expired_at(now) or lot.status == "expired":
                raise Conflict(f"Lot #{lot_id} has already expired; expired credit cannot be revived.")
            if lot.status != "active":
                raise Conflict(f"Lot #{lot_id} is {lot.status}: only active lots can be extended.")
            if expires_at <= lot.starts_at:
                raise InvalidInput(f"The new expiry must come after the lot starts ({_ts(lot.starts_at)}).")
            conn.execute("UPDATE lots SET expires_at = ? WHERE id = ?", (expires_at, lot_id))
            _advance_reminder(conn, lot_id, _settings(conn, guild_id).reminder_leads, now)
            _entry_insert(
                conn, lot, "expiry_change", 0, None, audit.actor_id, audit.details.get("reason"), key, now
            )
            _audit(conn, guild_id, audit, now)
            return ExtendResult(lot_id, lot.user_id, lot.expires_at, expires_at)

        return await self._unit("extend", ExtendResult.from_dict, key, guild_id, now, fn)

    async def member_lots(self, guild_id: int, user_id: int, active_only: bool = True) -> list[Lot]:
        return await self._read(_member_lots, guild_id, user_id, active_only)

    async def get_lot(self, guild_id: int, lot_id: int) -> Lot | None:
        return await self._run(_lot_by_id, guild_id, lot_id)

    async def history(self, guild_id: int, user_id: int, page: int, per_page: int) -> Page[Entry]:
        def fn(conn: sqlite3.Connection) -> Page[Entry]:
            (total,) = conn.execute(
                "SELECT COUNT(*) FROM entries WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
            ).fetchone()
            page_no = clamp_page(page, total, per_page)
            rows = conn.execute(
                ENTRY_SELECT + " WHERE e.guild_id = ? AND e.user_id = ? ORDER BY e.id DESC LIMIT ? OFFSET ?",
                (guild_id, user_id, per_page, (page_no - 1) * per_page),
            ).fetchall()
            return Page(tuple(map(_entry, rows)), page_no, page_count(total, per_page), total)

        return await self._read(_snapshot, fn)

    # shop --------------------------------------------------------------------------------------
    async def add_item(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[ShopItem]:
        def fn(conn: sqlite3.Connection) -> ShopItem:
            values = {k: v for k, v in fields.items() if k in ITEM_FIELDS}
            values["name_key"] = values["name"].casefold()
            columns = ", ".join(values)
            try:
                cursor = conn.execute(
                    f"INSERT INTO shop_items (guild_id, created_at, {columns})"
                    f" VALUES (?, ?, {', '.join('?' * len(values))})",
                    (guild_id, now, *values.values()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"The shop already has an item named **{values['name']}**.") from exc
            _audit(conn, guild_id, audit, now)
            item = _item_by_id(conn, guild_id, cursor.lastrowid or 0)
            assert item is not None
            return item

        return await self._unit("add_item", ShopItem.from_dict, key, guild_id, now, fn)

    async def edit_item(
        self, guild_id: int, item_id: int, changes: Mapping[str, Any], audit: AuditRecord,
        key: str | None, now: int,
    ) -> Applied[ShopItem]:
        def fn(conn: sqlite3.Connection) -> ShopItem:
            if _item_by_id(conn, guild_id, item_id) is None:
                raise NotFound("There is no such item in this server's shop.")
            values = {k: v for k, v in changes.items() if k in ITEM_FIELDS}
            if "name" in values:
                values["name_key"] = values["name"].casefold()
            if values:
                try:
                    conn.execute(
                        f"UPDATE shop_items SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                        (*values.values(), item_id),
                    )
                except sqlite3.IntegrityError as exc:
                    raise Conflict(f"The shop already has an item named **{values.get('name')}**.") from exc
            _audit(conn, guild_id, audit, now)
            item = _item_by_id(conn, guild_id, item_id)
            assert item is not None
            return item

        return await self._unit("edit_item", ShopItem.from_dict, key, guild_id, now, fn)

    async def list_items(
        self, guild_id: int, category: str | None = None, include_inactive: bool = False
    ) -> list[ShopItem]:
        def fn(conn: sqlite3.Connection) -> list[ShopItem]:
            sql = f"SELECT {ITEM_COLUMNS} FROM shop_items WHERE guild_id = ?"
            args: list[Any] = [guild_id]
            if not include_inactive:
                sql += " AND active = 1"
            if category is not None:
                sql += " AND category = ? COLLATE NOCASE"
                args.append(category)
            rows = conn.execute(sql + " ORDER BY category COLLATE NOCASE, name_key", args).fetchall()
            return [_item(r) for r in rows]

        return await self._run(fn)

    async def get_item(self, guild_id: int, item_id: int) -> ShopItem | None:
        return await self._run(_item_by_id, guild_id, item_id)

    async def preview(
        self, guild_id: int, user_id: int, item_id: int, quantity: int, now: int
    ) -> CheckoutPreview:
        def fn(conn: sqlite3.Connection) -> CheckoutPreview:
            return _plan_purchase(conn, guild_id, user_id, item_id, quantity, now)[0]

        return await self._run(_snapshot, fn)

    async def checkout(
        self, guild_id: int, user_id: int, item_id: int, quantity: int, key: str | None, now: int,
        expected: PurchasePlan | None = None,
    ) -> Applied[Order]:
        def fn(conn: sqlite3.Connection) -> Order:
            preview, allocation, currency = _plan_purchase(conn, guild_id, user_id, item_id, quantity, now)
            if expected is not None:
                check_plan_unchanged(expected, preview, currency)
            item, total = preview.item, preview.total
            if item.stock is not None:
                conn.execute("UPDATE shop_items SET stock = stock - ? WHERE id = ?", (quantity, item.id))
            cursor = conn.execute(
                "INSERT INTO orders (guild_id, user_id, item_id, item_name, quantity, unit_price, total,"
                " promo_applied, gift_applied, forfeited, role_id, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?)",
                (
                    guild_id, user_id, item.id, item.name, quantity, item.price, total,
                    allocation.promo_applied, allocation.gift_applied, allocation.forfeited,
                    item.role_id, now,
                ),
            )
            order_id = cursor.lastrowid
            reason = f"{quantity} × {item.name}"
            _debit(conn, allocation.takes + allocation.forfeits, "spend", order_id, user_id, reason, key, now,
                   forfeits=len(allocation.takes))
            order = _order_by_id(conn, guild_id, order_id or 0)
            assert order is not None
            if order.role_id is not None:  # given by the delivery worker, from this record (SPEC §3)
                _add_delivery(conn, order, deliveries.ADD_ROLE, now)
            return order

        return await self._unit("checkout", Order.from_dict, key, guild_id, now, fn)

    async def refund(
        self, guild_id: int, order_id: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[RefundResult]:
        def fn(conn: sqlite3.Connection) -> RefundResult:
            return _refund_order(conn, guild_id, order_id, audit, key, now)

        return await self._unit("refund", RefundResult.from_dict, key, guild_id, now, fn)

    async def orders(self, guild_id: int, user_id: int | None, page: int, per_page: int) -> Page[Order]:
        def fn(conn: sqlite3.Connection) -> Page[Order]:
            where, args = ("guild_id = ?", [guild_id]) if user_id is None else (
                "guild_id = ? AND user_id = ?", [guild_id, user_id])
            (total,) = conn.execute(f"SELECT COUNT(*) FROM orders WHERE {where}", args).fetchone()
            page_no = clamp_page(page, total, per_page)
            rows = conn.execute(
                f"SELECT {ORDER_COLUMNS} FROM orders WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
                (*args, per_page, (page_no - 1) * per_page),
            ).fetchall()
            return Page(tuple(map(_order, rows)), page_no, page_count(total, per_page), total)

        return await self._run(_snapshot, fn)

    async def get_order(self, guild_id: int, order_id: int) -> Order | None:
        return await self._run(_order_by_id, guild_id, order_id)

    # deliveries: what orders must still do in Discord ------------------------------------------
    async def due_deliveries(self, now: int, limit: int = 100) -> list[Delivery]:
        def fn(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {', '.join('d.' + c.strip() for c in DELIVERY_COLUMNS.split(','))} FROM deliveries d"
                f" WHERE {_CLAIMABLE} ORDER BY d.due_at, d.id LIMIT ?",
                (now, limit),
            ).fetchall()
            return [_delivery(r) for r in rows]

        return await self._run(fn)

    async def order_deliveries(self, guild_id: int, order_id: int) -> list[Delivery]:
        def fn(conn: sqlite3.Connection) -> list[Delivery]:
            rows = conn.execute(
                f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE guild_id = ? AND order_id = ? ORDER BY id",
                (guild_id, order_id),
            ).fetchall()
            return [_delivery(r) for r in rows]

        return await self._run(fn)

    async def claim_delivery(self, delivery_id: int, worker: str, now: int) -> Delivery | None:
        """Claim a claimable delivery for `worker` (one attempt more), or None when it is not
        claimable (done, claimed by another run, not due, waiting for an earlier one)."""

        def fn(conn: sqlite3.Connection) -> Delivery | None:
            cursor = conn.execute(
                "UPDATE deliveries AS d SET claimed_by = ?, claimed_at = ?, attempts = attempts + 1"
                f" WHERE d.id = ? AND {_CLAIMABLE}",
                (worker, now, delivery_id, now),
            )
            return _delivery_by_id(conn, delivery_id) if cursor.rowcount == 1 else None

        return await self._write(fn)

    async def release_deliveries(self, worker: str, now: int, resend_window: int) -> int:
        """Release the claims of every other worker: exactly one process serves a database (SPEC
        §5), so they are the claims of a process that died while delivering. A grant or removal is
        tried again (Discord applies it once however often it is asked). A DM claimed longer ago
        than Discord's nonce window is settled 'failed' (reason 'unknown') rather than sent twice."""

        def fn(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE deliveries SET status = 'failed', reason = 'unknown', claimed_by = NULL, claimed_at = NULL,"
                " settled_at = ? WHERE claimed_by IS NOT NULL AND claimed_by <> ? AND action = ? AND claimed_at < ?",
                (now, worker, deliveries.DM_REFUND, now - resend_window),
            )
            cursor = conn.execute(
                "UPDATE deliveries SET claimed_by = NULL, claimed_at = NULL"
                " WHERE claimed_by IS NOT NULL AND claimed_by <> ?",
                (worker,),
            )
            return cursor.rowcount

        return await self._write(fn)

    async def settle_delivery(
        self, delivery_id: int, worker: str, status: str, now: int, *, retry_at: int | None = None,
        reason: str | None = None, error: str | None = None,
    ) -> Delivery | None:
        """Settle a delivery `worker` claimed: 'done', 'failed' (with `reason`; no refund: see
        fail_delivery), or 'pending' again at `retry_at` after a passing `error`. None when the
        claim is no longer this worker's (a restart released it): nothing is changed then."""

        def fn(conn: sqlite3.Connection) -> Delivery | None:
            if status == "pending":
                assert retry_at is not None
                cursor = conn.execute(
                    "UPDATE deliveries SET claimed_by = NULL, claimed_at = NULL, due_at = ?, last_error = ?"
                    " WHERE id = ? AND claimed_by = ?",
                    (retry_at, error, delivery_id, worker),
                )
            else:
                cursor = conn.execute(
                    "UPDATE deliveries SET status = ?, reason = COALESCE(?, reason),"
                    " last_error = COALESCE(?, last_error), claimed_by = NULL, claimed_at = NULL, settled_at = ?"
                    " WHERE id = ? AND claimed_by = ?",
                    (status, reason, error, now, delivery_id, worker),
                )
            return _delivery_by_id(conn, delivery_id) if cursor.rowcount == 1 else None

        return await self._write(fn)

    async def fail_delivery(
        self, delivery: Delivery, worker: str, reason: str, refund: bool, audit: AuditRecord, key: str, now: int
    ) -> Applied[DeliveryFailure]:
        """Settle an impossible delivery `worker` claimed as 'failed' and, when `refund`, refund its
        order in the same transaction (once: an order refunded meanwhile is left as it is) and
        record the DM that tells the member. The key makes a replay return the first result."""

        def fn(conn: sqlite3.Connection) -> DeliveryFailure:
            cursor = conn.execute(
                "UPDATE deliveries SET status = 'failed', reason = ?, claimed_by = NULL, claimed_at = NULL,"
                " settled_at = ? WHERE id = ? AND claimed_by = ? AND status = 'pending'",
                (reason, now, delivery.id, worker),
            )
            current = _delivery_by_id(conn, delivery.id)
            assert current is not None
            if cursor.rowcount == 0:  # not ours any more: whoever holds it settles it
                return DeliveryFailure(current, None)
            order = _order_by_id(conn, delivery.guild_id, delivery.order_id)
            assert order is not None
            if not refund:
                return DeliveryFailure(current, None)
            if order.status == "refunded":
                # Refunded while the role was being given, which failed: there is nothing to take back.
                if reason != deliveries.GAVE_UP:
                    conn.execute(
                        "UPDATE deliveries SET status = 'cancelled', settled_at = ? WHERE order_id = ?"
                        " AND action = ? AND status = 'pending' AND claimed_by IS NULL",
                        (now, order.id, deliveries.REMOVE_ROLE),
                    )
                return DeliveryFailure(current, None)
            refunded = _refund_order(conn, delivery.guild_id, order.id, audit, key, now)
            _add_delivery(conn, refunded.order, deliveries.DM_REFUND, now, reason)
            return DeliveryFailure(current, refunded)

        return await self._unit("delivery_failure", DeliveryFailure.from_dict, key, delivery.guild_id, now, fn)

    # codes -------------------------------------------------------------------------------------
    async def create_promo(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[PromoCode]:
        def fn(conn: sqlite3.Connection) -> PromoCode:
            values = {k: v for k, v in fields.items() if k in PROMO_FIELDS}
            values["categories"] = _categories_json(values.get("categories"))
            columns = ", ".join(values)
            try:
                cursor = conn.execute(
                    f"INSERT INTO promo_codes (guild_id, created_by, created_at, {columns})"
                    f" VALUES (?, ?, ?, {', '.join('?' * len(values))})",
                    (guild_id, audit.actor_id, now, *values.values()),
                )
            except sqlite3.IntegrityError as exc:
                raise Conflict(f"A code `{values['code']}` already exists in this server.") from exc
            _audit(conn, guild_id, audit, now)
            row = conn.execute(
                f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return _promo(row)

        return await self._unit("create_promo", PromoCode.from_dict, key, guild_id, now, fn)

    async def list_promos(self, guild_id: int) -> list[PromoCode]:
        def fn(conn: sqlite3.Connection) -> list[PromoCode]:
            rows = conn.execute(
                f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE guild_id = ? ORDER BY active DESC, code",
                (guild_id,),
            ).fetchall()
            return [_promo(r) for r in rows]

        return await self._run(fn)

    async def set_promo_active(
        self, guild_id: int, code_key: str, active: bool, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[PromoCode]:
        def fn(conn: sqlite3.Connection) -> PromoCode:
            promo = _promo_by_key(conn, guild_id, code_key)
            if promo is None:
                raise NotFound("There is no such promo code in this server.")
            conn.execute("UPDATE promo_codes SET active = ? WHERE id = ?", (int(active), promo.id))
            _audit(conn, guild_id, audit, now)
            updated = _promo_by_key(conn, guild_id, code_key)
            assert updated is not None
            return updated

        return await self._unit("set_promo_active", PromoCode.from_dict, key, guild_id, now, fn)

    async def issue_gift_cards(
        self, guild_id: int, hashes: Sequence[tuple[str, str]], amount: int, claim_by: int | None,
        audit: AuditRecord, key: str | None, now: int,
    ) -> Applied[IssuedGiftCards]:
        def fn(conn: sqlite3.Connection) -> IssuedGiftCards:
            ids = []
            for code_hash, last4 in hashes:
                cursor = conn.execute(
                    "INSERT INTO gift_cards (guild_id, code_hash, last4, amount, claim_by, issued_by,"
                    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (guild_id, code_hash, last4, amount, claim_by, audit.actor_id, now),
                )
                ids.append(cursor.lastrowid or 0)
            _audit(conn, guild_id, audit, now)
            return IssuedGiftCards(tuple(ids), tuple(last4 for _, last4 in hashes), amount, claim_by)

        return await self._unit("issue_gift_cards", IssuedGiftCards.from_dict, key, guild_id, now, fn)

    async def list_gift_cards(self, guild_id: int, status: str | None = None) -> list[GiftCard]:
        def fn(conn: sqlite3.Connection) -> list[GiftCard]:
            sql = f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE guild_id = ?"
            args: list[Any] = [guild_id]
            if status is not None:
                sql += " AND status = ?"
                args.append(status)
            return [_card(r) for r in conn.execute(sql + " ORDER BY id DESC", args).fetchall()]

        return await self._run(fn)

    async def void_gift_card(
        self, guild_id: int, last4: str, audit: AuditRecord, key: str | None, now: int, card_id: int | None = None
    ) -> Applied[GiftCard]:
        """Void the unredeemed card ending in `last4` (or the card `card_id` when several do)."""

        def fn(conn: sqlite3.Connection) -> GiftCard:
            sql = f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE guild_id = ? AND last4 = ? AND status = 'unredeemed'"
            args: list[Any] = [guild_id, last4]
            if card_id is not None:
                sql += " AND id = ?"
                args.append(card_id)
            rows = conn.execute(sql + " ORDER BY id", args).fetchall()
            if not rows:
                raise NotFound(f"No unredeemed gift card ending in `{last4}` in this server.")
            if len(rows) > 1:
                ids = ", ".join(f"`#{row[0]}`" for row in rows[:10])
                raise Conflict(
                    f"{len(rows)} unredeemed cards end in `{last4}` ({ids}); give the card's number too, "
                    f"like `last4:{last4} card:{rows[0][0]}`."
                )
            card = _card(rows[0])
            conn.execute("UPDATE gift_cards SET status = 'voided' WHERE id = ?", (card.id,))
            _audit(conn, guild_id, audit, now)
            return GiftCard(**{**card.to_dict(), "status": "voided"})

        return await self._unit("void_gift_card", GiftCard.from_dict, key, guild_id, now, fn)

    async def redeem(
        self, guild_id: int, user_id: int, promo_key: str, gift_hash: str | None,
        member: MemberFacts, key: str | None, now: int,
    ) -> Applied[Redemption]:
        def recent_failures(conn: sqlite3.Connection) -> list[int]:
            return [t for (t,) in conn.execute(
                "SELECT at FROM failed_redemptions WHERE guild_id = ? AND user_id = ? AND at > ?",
                (guild_id, user_id, now - RATE_LIMIT_WINDOW),
            )]

        def fn(conn: sqlite3.Connection) -> Redemption | _AfterCommit:
            raise_if_rate_limited(recent_failures(conn), now)
            promo = _promo_by_key(conn, guild_id, promo_key) if promo_key else None
            if promo is not None:
                return _redeem_promo(conn, promo, user_id, member, key, now)
            if gift_hash is not None:
                row = conn.execute(
                    f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE code_hash = ? AND guild_id = ?",
                    (gift_hash, guild_id),
                ).fetchone()
                if row is not None:
                    return _redeem_card(conn, _card(row), user_id, key, now)
            # Under the interaction's key: a second delivery of this attempt finds it recorded.
            conn.execute(
                "INSERT INTO failed_redemptions (guild_id, user_id, at, key) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING",
                (guild_id, user_id, now, key),
            )
            failures = recent_failures(conn)
            try:
                raise_if_rate_limited(failures, now)
            except LedgerError as exc:
                return _AfterCommit(exc)
            left = RATE_LIMIT_FAILURES - len(failures)
            return _AfterCommit(NotFound(
                "That code doesn't exist in this server. Check it for typos "
                f"({left} {'try' if left == 1 else 'tries'} left before a short pause)."
            ))

        return await self._unit("redeem", Redemption.from_dict, key, guild_id, now, fn)

    # recurring grants --------------------------------------------------------------------------
    async def add_schedule(
        self, guild_id: int, fields: Mapping[str, Any], audit: AuditRecord, key: str | None, now: int
    ) -> Applied[Schedule]:
        def fn(conn: sqlite3.Connection) -> Schedule:
            cursor = conn.execute(
                "INSERT INTO schedules (guild_id, role_id, amount, rule, valid_days, categories, kind,"
                " next_run_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    guild_id, fields["role_id"], fields["amount"], fields["rule"], fields.get("valid_days"),
                    _categories_json(fields.get("categories")), fields.get("kind", "promo"),
                    fields["next_run_at"], audit.actor_id, now,
                ),
            )
            _audit(conn, guild_id, audit, now)
            schedule = _schedule_by_id(conn, guild_id, cursor.lastrowid or 0)
            assert schedule is not None
            return schedule

        return await self._unit("add_schedule", Schedule.from_dict, key, guild_id, now, fn)

    async def list_schedules(self, guild_id: int) -> list[Schedule]:
        def fn(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(
                f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE guild_id = ? AND active = 1 ORDER BY id",
                (guild_id,),
            ).fetchall()
            return [_schedule(r) for r in rows]

        return await self._run(fn)

    async def remove_schedule(
        self, guild_id: int, schedule_id: int, audit: AuditRecord, key: str | None, now: int
    ) -> Applied[Schedule]:
        def fn(conn: sqlite3.Connection) -> Schedule:
            schedule = _schedule_by_id(conn, guild_id, schedule_id)
            if schedule is None or not schedule.active:
                raise NotFound(f"There is no recurring grant #{schedule_id} in this server.")
            conn.execute("UPDATE schedules SET active = 0 WHERE id = ?", (schedule_id,))
            _audit(conn, guild_id, audit, now)
            return Schedule(**{**schedule.to_dict(), "active": False})

        return await self._unit("remove_schedule", Schedule.from_dict, key, guild_id, now, fn)

    async def due_schedules(self, now: int) -> list[Schedule]:
        def fn(conn: sqlite3.Connection) -> list[Schedule]:
            rows = conn.execute(
                f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE active = 1 AND next_run_at <= ?"
                " ORDER BY next_run_at",
                (now,),
            ).fetchall()
            return [_schedule(r) for r in rows]

        return await self._run(fn)

    async def run_schedule(
        self, schedule: Schedule, user_ids: Sequence[int], next_run_at: int, now: int
    ) -> GrantResult | None:
        """Grant one due run and move the schedule to its next due time, in one transaction.

        Runs only if the schedule is still due at the time the caller saw: a second caller (or a
        restart racing the first) finds it moved on and grants nothing. None = nothing granted.
        """
        key = f"schedule:{schedule.id}:{schedule.next_run_at}"

        def fn(conn: sqlite3.Connection) -> GrantResult | None:
            moved = conn.execute(
                "UPDATE schedules SET next_run_at = ? WHERE id = ? AND active = 1 AND next_run_at = ?",
                (next_run_at, schedule.id, schedule.next_run_at),
            )
            if moved.rowcount != 1 or not user_ids:
                return None
            spec = LotSpec(
                amount=schedule.amount, kind=schedule.kind,
                expires_at=now + schedule.valid_days * 86400 if schedule.valid_days else None,
                categories=schedule.categories, source="grant", source_ref=f"schedule:{schedule.id}",
                memo=f"recurring grant #{schedule.id}",
            )
            first = _insert_lots(conn, schedule.guild_id, user_ids, spec, None, key, now)
            return GrantResult(first, len(user_ids), spec.amount, spec.kind, now, spec.expires_at)

        return await self._write(fn)

    # time-driven work --------------------------------------------------------------------------
    async def sweep_expired(self, now: int, batch: int = 10_000) -> list[ExpiredLot]:
        """Expire every active lot past its expiry, `batch` lots per transaction."""
        expired: list[ExpiredLot] = []
        while True:
            chunk = await self._write(_sweep_batch, now, batch)
            expired.extend(chunk)
            if len(chunk) < batch:
                break
        # `verify` trusts that no active lot expired before last_sweep_at. Recording it costs an
        # fsync, so an idle sweep records it only every few minutes: the check stays true, and a
        # sweep with nothing due stays a sub-millisecond read.
        if expired or now - self._last_sweep_recorded >= SWEEP_RECORD_INTERVAL:
            await self.set_state("last_sweep_at", str(now))
            self._last_sweep_recorded = now
        return expired

    async def prune_idempotency(self, before: int, batch: int = 10_000) -> int:
        """Forget idempotency keys older than `before`, `batch` per transaction; returns how many."""

        def fn(conn: sqlite3.Connection) -> int:
            return conn.execute(
                "DELETE FROM idempotency WHERE key IN"
                " (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)",
                (before, batch),
            ).rowcount

        pruned = 0
        while True:
            count = await self._write(fn)
            pruned += count
            if count < batch:
                return pruned

    async def due_reminders(self, now: int, limit: int = 10_000) -> list[DueReminder]:
        return await self._run(_due_reminders, now, limit)

    async def claim_reminder(
        self, due: DueReminder, nonce: str, resend_window: int, now: int, run_id: str
    ) -> ReminderClaim:
        """Claim a due reminder for run `run_id` before sending it, so it is sent at most once.

        Lots whose earlier claim is still 'pending' are judged by pending_claim: this run's
        own claim is left alone; an earlier run's (it died while sending) is resent with the same
        nonce if that was within `resend_window` (Discord drops a repeated nonce); and past that
        window a claim is settled 'unknown' and never resent: a lost reminder is the rarer failure
        we accept, a doubled one is not."""

        def fn(conn: sqlite3.Connection) -> ReminderClaim:
            leads = _settings(conn, due.guild_id).reminder_leads
            send: list[int] = []
            settled: list[int] = []
            reuse: str | None = None
            attempts = 0
            # `due` was read at the start of a batch that pacing spreads over minutes: re-check it
            # here, so credit spent, voided, expired or extended since, or a member who opted out
            # since, is not DMed from that stale read. Skipped lots are left to the next tick.
            enabled, closed_at = conn.execute(
                "SELECT reminders_enabled, dm_closed_at FROM accounts WHERE guild_id = ? AND user_id = ?",
                (due.guild_id, due.user_id),
            ).fetchone()
            skipped = "dm_closed" if closed_at is not None else None if enabled else "opted_out"
            fresh: dict[int, Lot] = {}
            for lot_id in due.lot_ids:
                current = conn.execute(
                    f"SELECT {LOT_COLUMNS} FROM lots WHERE id = ? AND status = 'active' AND expires_at > ?"
                    " AND next_reminder_at <= ?",
                    (lot_id, now, now),
                ).fetchone()
                if current is None:
                    continue
                lot = fresh[lot_id] = _lot(current)
                if skipped is not None:  # no DM: record why, and move on to the next window
                    _settle(conn, lot_id, due.lead_seconds, skipped, leads, now)
                    continue
                row = conn.execute(
                    "SELECT status, attempts, nonce, updated_at, claimed_by FROM reminders"
                    " WHERE lot_id = ? AND lead_seconds = ?",
                    (lot.id, due.lead_seconds),
                ).fetchone()
                if row is not None and row[0] not in ("pending", "retry"):
                    _advance_reminder(conn, lot.id, leads, now)  # settled already: just move on
                    continue
                if row is not None and row[0] == "pending":
                    verdict = pending_claim(row[4], run_id, row[3], now, resend_window)
                    if verdict == "wait":  # this run's own send: never a second time
                        continue
                    if verdict == "unknown":
                        conn.execute(
                            "UPDATE reminders SET status = 'unknown', updated_at = ? WHERE lot_id = ?"
                            " AND lead_seconds = ?",
                            (now, lot.id, due.lead_seconds),
                        )
                        _advance_reminder(conn, lot.id, leads, now)
                        settled.append(lot.id)
                        continue
                    reuse = reuse or row[2]
                attempts = max(attempts, (row[1] if row else 0) + 1)
                send.append(lot.id)
            chosen = reuse or nonce
            conn.executemany(
                "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, nonce, updated_at, claimed_by)"
                " VALUES (?, ?, 'pending', 1, ?, ?, ?) ON CONFLICT (lot_id, lead_seconds) DO UPDATE SET"
                " status = 'pending', attempts = attempts + 1, nonce = excluded.nonce,"
                " updated_at = excluded.updated_at, claimed_by = excluded.claimed_by",
                ((lot_id, due.lead_seconds, chosen, now, run_id) for lot_id in send),
            )
            return ReminderClaim(
                tuple(fresh[lot_id] for lot_id in send), chosen, attempts, tuple(settled), skipped
            )

        return await self._write(fn)

    async def settle_reminder(
        self, lot_ids: Sequence[int], lead_seconds: int, status: str, now: int, retry_at: int | None = None
    ) -> None:
        """Record how a claimed reminder ended. 'retry' keeps it due again at `retry_at`;
        anything else is final and moves each lot on to its next lead window."""

        def fn(conn: sqlite3.Connection) -> None:
            if not lot_ids:
                return
            guild_id = conn.execute("SELECT guild_id FROM lots WHERE id = ?", (lot_ids[0],)).fetchone()[0]
            leads = _settings(conn, guild_id).reminder_leads
            for lot_id in lot_ids:
                _settle(conn, lot_id, lead_seconds, status, leads, now, retry_at)

        await self._write(fn)

    async def mark_dm_closed(self, guild_id: int, user_id: int, now: int) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            _ensure_accounts(conn, guild_id, (user_id,), now)
            conn.execute(
                "UPDATE accounts SET dm_closed_at = ? WHERE guild_id = ? AND user_id = ?",
                (now, guild_id, user_id),
            )

        await self._write(fn)

    # reading the books -------------------------------------------------------------------------
    async def report(self, guild_id: int, now: int) -> Report:
        return await self._run(_snapshot, _report, guild_id, now)

    async def export_entries(self, guild_id: int, after_id: int, limit: int) -> list[Entry]:
        def fn(conn: sqlite3.Connection) -> list[Entry]:
            rows = conn.execute(
                ENTRY_SELECT + " WHERE e.guild_id = ? AND e.id > ? ORDER BY e.id LIMIT ?",
                (guild_id, after_id, limit),
            ).fetchall()
            return [_entry(r) for r in rows]

        return await self._run(fn)

    async def audit_log(self, guild_id: int, page: int, per_page: int) -> Page[dict[str, Any]]:
        def fn(conn: sqlite3.Connection) -> Page[dict[str, Any]]:
            (total,) = conn.execute("SELECT COUNT(*) FROM audit_log WHERE guild_id = ?", (guild_id,)).fetchone()
            page_no = clamp_page(page, total, per_page)
            rows = conn.execute(
                "SELECT id, actor_id, action, details, created_at FROM audit_log WHERE guild_id = ?"
                " ORDER BY id DESC LIMIT ? OFFSET ?",
                (guild_id, per_page, (page_no - 1) * per_page),
            ).fetchall()
            items = tuple(
                {"id": r[0], "actor_id": r[1], "action": r[2], "details": json.loads(r[3]), "created_at": r[4]}
                for r in rows
            )
            return Page(items, page_no, page_count(total, per_page), total)

        return await self._run(_snapshot, fn)

    async def verify(self, now: int) -> list[str]:
        return await self._run(_snapshot, _verify, now)

    async def get_state(self, key: str) -> str | None:
        def fn(conn: sqlite3.Connection) -> str | None:
            row = conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
            return None if row is None else str(row[0])

        return await self._run(fn)

    async def set_state(self, key: str, value: str) -> None:
        def fn(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO bot_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

        await self._write(fn)


# --- functions run on the worker thread -----------------------------------------------------------


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA busy_timeout = 5000")
    # Switching a new file to WAL needs an exclusive lock, and SQLite does not wait for it through
    # the busy timeout: when the bot and the CLI open a new database together, retry briefly.
    for attempt in range(50):
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 49:
                raise
            time.sleep(0.1)
    # FULL: a committed purchase survives a power cut (WAL fsyncs at every commit).
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")


def _configure_reading(conn: sqlite3.Connection) -> None:
    """For a connection that only reads: no journal-mode switch (that would write the header)."""
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA query_only = ON")


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result


def _snapshot(conn: sqlite3.Connection, fn: Callable[..., T], *args: Any) -> T:
    """A read of several statements that sees one consistent state."""
    conn.execute("BEGIN")
    try:
        return fn(conn, *args)
    finally:
        conn.execute("COMMIT")


def _ts(unix: int, style: str = "R") -> str:
    return discord_timestamp(from_unix(unix), style)


def _settings(conn: sqlite3.Connection, guild_id: int) -> GuildSettings:
    row = conn.execute(
        "SELECT currency_name, currency_symbol, decimals, timezone, reminder_leads, mod_role_id,"
        " audit_channel_id, promo_excluded_categories FROM guild_settings WHERE guild_id = ?",
        (guild_id,),
    ).fetchone()
    if row is None:
        return GuildSettings(guild_id)
    return GuildSettings(
        guild_id, row[0], row[1], row[2], row[3],
        tuple(int(s) for s in row[4].split(",") if s), row[5], row[6], tuple(json.loads(row[7])),
    )


def _guild_has_amounts(conn: sqlite3.Connection, guild_id: int) -> bool:
    return any(
        conn.execute(f"SELECT 1 FROM {table} WHERE guild_id = ? LIMIT 1", (guild_id,)).fetchone()
        for table in ("lots", "shop_items", "promo_codes", "gift_cards", "schedules")
    )


def _audit(conn: sqlite3.Connection, guild_id: int, audit: AuditRecord, now: int) -> None:
    conn.execute(
        "INSERT INTO audit_log (guild_id, actor_id, action, details, created_at) VALUES (?, ?, ?, ?, ?)",
        (guild_id, audit.actor_id, audit.action, json.dumps(audit.details, default=str), now),
    )


def _ensure_accounts(conn: sqlite3.Connection, guild_id: int, user_ids: Iterable[int], now: int) -> None:
    conn.executemany(
        "INSERT OR IGNORE INTO accounts (guild_id, user_id, created_at) VALUES (?, ?, ?)",
        ((guild_id, user_id, now) for user_id in user_ids),
    )


def _insert_lots(
    conn: sqlite3.Connection, guild_id: int, user_ids: Sequence[int], spec: LotSpec,
    actor_id: int | None, key: str | None, now: int,
) -> int:
    """Create one lot per member with its grant entry; returns the first of their consecutive ids."""
    starts_at = spec.starts_at if spec.starts_at is not None else now
    leads = _settings(conn, guild_id).reminder_leads
    next_reminder = next_reminder_at(spec.expires_at, leads, now)
    # We hold the write lock, so ids after MAX(id) are ours: one executemany instead of n inserts.
    (first,) = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM lots").fetchone()
    categories = _categories_json(spec.categories)
    _ensure_accounts(conn, guild_id, user_ids, now)
    conn.executemany(
        "INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, expires_at,"
        " categories, one_time, source, source_ref, memo, created_by, created_at, status, next_reminder_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
        (
            (first + i, guild_id, user_id, spec.kind, spec.amount, spec.amount, starts_at, spec.expires_at,
             categories, int(spec.one_time), spec.source, spec.source_ref, spec.memo, actor_id, now,
             next_reminder)
            for i, user_id in enumerate(user_ids)
        ),
    )
    conn.executemany(
        "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, actor_id, reason, created_at,"
        " idempotency_key) VALUES (?, ?, ?, 'grant', ?, ?, ?, ?, ?)",
        (
            (guild_id, user_id, first + i, spec.amount, actor_id, spec.memo, now, key)
            for i, user_id in enumerate(user_ids)
        ),
    )
    return int(first)


def _entry_insert(
    conn: sqlite3.Connection, lot: Lot, type_: str, amount: int, order_id: int | None,
    actor_id: int | None, reason: str | None, key: str | None, now: int,
) -> None:
    conn.execute(
        "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, order_id, actor_id, reason,"
        " created_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (lot.guild_id, lot.user_id, lot.id, type_, amount, order_id, actor_id, reason, now, key),
    )


def _debit(
    conn: sqlite3.Connection, pieces: Sequence[tuple[Lot, int]], type_: str, order_id: int | None,
    actor_id: int | None, reason: str | None, key: str | None, now: int, forfeits: int | None = None,
) -> list[LotChange]:
    """Take amounts from lots, one entry each; pieces from index `forfeits` on are forfeits."""
    remaining: dict[int, int] = {}
    changes = []
    for index, (lot, amount) in enumerate(pieces):
        kind = "forfeit" if forfeits is not None and index >= forfeits else type_
        before = remaining.get(lot.id, lot.remaining)
        after = before - amount
        status = EMPTY_STATUS[kind] if after == 0 else "active"
        cursor = conn.execute(
            "UPDATE lots SET remaining = ?, status = ?,"
            " next_reminder_at = CASE WHEN ? = 'active' THEN next_reminder_at END"
            " WHERE id = ? AND remaining = ? AND status = 'active'",
            (after, status, status, lot.id, before),
        )
        if cursor.rowcount != 1:  # the single writer makes this impossible; refuse loudly if not
            raise RuntimeError(f"lot {lot.id} changed under a transaction")
        remaining[lot.id] = after
        _entry_insert(conn, lot, kind, -amount, order_id, actor_id, reason, key, now)
        changes.append(LotChange(lot.id, lot.user_id, lot.kind, kind, -amount))  # type: ignore[arg-type]
    return changes


def _member_lots(
    conn: sqlite3.Connection, guild_id: int, user_id: int, active_only: bool = True
) -> list[Lot]:
    sql = f"SELECT {LOT_COLUMNS} FROM lots WHERE guild_id = ? AND user_id = ?"
    if active_only:
        sql += " AND status = 'active'"
    return [_lot(r) for r in conn.execute(sql + " ORDER BY id", (guild_id, user_id))]


def _lot_by_id(conn: sqlite3.Connection, guild_id: int, lot_id: int) -> Lot | None:
    row = conn.execute(
        f"SELECT {LOT_COLUMNS} FROM lots WHERE id = ? AND guild_id = ?", (lot_id, guild_id)
    ).fetchone()
    return None if row is None else _lot(row)


def _item_by_id(conn: sqlite3.Connection, guild_id: int, item_id: int) -> ShopItem | None:
    row = conn.execute(
        f"SELECT {ITEM_COLUMNS} FROM shop_items WHERE id = ? AND guild_id = ?", (item_id, guild_id)
    ).fetchone()
    return None if row is None else _item(row)


def _order_by_id(conn: sqlite3.Connection, guild_id: int, order_id: int) -> Order | None:
    row = conn.execute(
        f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ? AND guild_id = ?", (order_id, guild_id)
    ).fetchone()
    return None if row is None else _order(row)


def _schedule_by_id(conn: sqlite3.Connection, guild_id: int, schedule_id: int) -> Schedule | None:
    row = conn.execute(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ? AND guild_id = ?", (schedule_id, guild_id)
    ).fetchone()
    return None if row is None else _schedule(row)


def _promo_by_key(conn: sqlite3.Connection, guild_id: int, code_key: str) -> PromoCode | None:
    row = conn.execute(
        f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE guild_id = ? AND code_key = ?", (guild_id, code_key)
    ).fetchone()
    return None if row is None else _promo(row)


SETTLED_REMINDERS = "('sent', 'dm_closed', 'opted_out', 'failed', 'unknown')"


def _smallest_reminded_lead(conn: sqlite3.Connection, lot_id: int) -> int | None:
    (lead,) = conn.execute(
        f"SELECT MIN(lead_seconds) FROM reminders WHERE lot_id = ? AND status IN {SETTLED_REMINDERS}", (lot_id,)
    ).fetchone()
    return lead


def _settle(
    conn: sqlite3.Connection, lot_id: int, lead_seconds: int, status: str, leads: Sequence[int], now: int,
    retry_at: int | None = None,
) -> None:
    """Record a reminder's outcome. 'retry' makes it due again at `retry_at`; any other outcome
    is final and moves the lot on to its next lead window."""
    conn.execute(
        "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, updated_at) VALUES (?, ?, ?, 0, ?)"
        " ON CONFLICT (lot_id, lead_seconds) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at",
        (lot_id, lead_seconds, status, now),
    )
    if status == "retry":
        conn.execute("UPDATE lots SET next_reminder_at = ? WHERE id = ? AND status = 'active'", (retry_at, lot_id))
    else:
        _advance_reminder(conn, lot_id, leads, now)


def _advance_reminder(conn: sqlite3.Connection, lot_id: int, leads: Sequence[int], now: int) -> None:
    (expires_at,) = conn.execute("SELECT expires_at FROM lots WHERE id = ?", (lot_id,)).fetchone()
    conn.execute(
        "UPDATE lots SET next_reminder_at = ? WHERE id = ? AND status = 'active'",
        (next_reminder_at(expires_at, leads, now, _smallest_reminded_lead(conn, lot_id)), lot_id),
    )


def _reschedule_reminders(conn: sqlite3.Connection, guild_id: int, leads: tuple[int, ...], now: int) -> None:
    rows = conn.execute(
        "SELECT l.id, l.expires_at, (SELECT MIN(lead_seconds) FROM reminders r WHERE r.lot_id = l.id"
        f" AND r.status IN {SETTLED_REMINDERS})"
        " FROM lots l WHERE l.guild_id = ? AND l.status = 'active' AND l.expires_at IS NOT NULL",
        (guild_id,),
    ).fetchall()
    conn.executemany(
        "UPDATE lots SET next_reminder_at = ? WHERE id = ?",
        ((next_reminder_at(expires, leads, now, after), lot_id) for lot_id, expires, after in rows),
    )


def _refund_order(
    conn: sqlite3.Connection, guild_id: int, order_id: int, audit: AuditRecord, key: str | None, now: int
) -> RefundResult:
    """Reverse an order entirely (a moderator's refund, or the automatic one of an undeliverable
    order): spends and forfeits back to their lots, stock back, and its role taken back."""
    order = _order_by_id(conn, guild_id, order_id)
    if order is None:
        raise NotFound(f"There is no order #{order_id} in this server.")
    if order.status == "refunded":
        raise Conflict(f"Order #{order_id} was already refunded {_ts(order.refunded_at or now)}.")
    leads = _settings(conn, guild_id).reminder_leads
    reason = audit.details.get("reason") or f"refund of order #{order_id}"
    returned = expired_again = revoked_again = 0
    spent = conn.execute(
        "SELECT lot_id, -amount FROM entries WHERE order_id = ? AND type IN ('spend', 'forfeit')"
        " ORDER BY id",
        (order_id,),
    ).fetchall()
    for lot_id, amount in spent:
        lot = _lot_by_id(conn, guild_id, lot_id)
        assert lot is not None
        _entry_insert(conn, lot, "refund", amount, order_id, audit.actor_id, reason, key, now)
        (revoked_at,) = conn.execute("SELECT revoked_at FROM lots WHERE id = ?", (lot_id,)).fetchone()
        if lot.status == "expired" or lot.is_expired_at(now):
            # A refund never resurrects expired credit: it is expired again at once.
            _entry_insert(conn, lot, "expire", -amount, order_id, audit.actor_id, reason, key, now)
            if lot.status in ("spent", "forfeited", "voided"):
                conn.execute("UPDATE lots SET status = 'expired' WHERE id = ?", (lot_id,))
            expired_again += amount
        elif revoked_at is not None:
            # A lot a moderator revoked as a whole stays revoked. (A revoke of an amount only
            # took what was there then: credit of such a lot does come back.)
            _entry_insert(conn, lot, "void", -amount, order_id, audit.actor_id, reason, key, now)
            revoked_again += amount
        else:
            conn.execute(
                "UPDATE lots SET remaining = remaining + ?, status = 'active' WHERE id = ?", (amount, lot_id)
            )
            _advance_reminder(conn, lot_id, leads, now)
            returned += amount
    conn.execute(
        "UPDATE shop_items SET stock = stock + ? WHERE id = ? AND stock IS NOT NULL",
        (order.quantity, order.item_id),
    )
    conn.execute(
        "UPDATE orders SET status = 'refunded', refunded_at = ?, refund_reason = ? WHERE id = ?",
        (now, reason, order_id),
    )
    _take_back_role(conn, order, now)
    _audit(conn, guild_id, audit, now)
    refunded = _order_by_id(conn, guild_id, order_id)
    assert refunded is not None
    return RefundResult(refunded, returned, expired_again, revoked_again)


def _add_delivery(
    conn: sqlite3.Connection, order: Order, action: str, now: int, reason: str | None = None
) -> None:
    """Record what `order` must still do in Discord, due now, in the caller's transaction."""
    conn.execute(
        "INSERT INTO deliveries (guild_id, user_id, order_id, action, role_id, due_at, reason, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (order.guild_id, order.user_id, order.id, action,
         None if action == deliveries.DM_REFUND else order.role_id, now, reason, now),
    )


def _take_back_role(conn: sqlite3.Connection, order: Order, now: int) -> None:
    """A refund takes the order's role back. A grant not sent yet is cancelled instead (there is
    nothing to take back); a grant that was given, is being given or may have reached Discord (a
    passing failure, an order from before deliveries were recorded) is followed by a removal,
    which the worker carries out only after that grant has settled."""
    if order.role_id is None:
        return
    row = conn.execute(
        "SELECT id, status, attempts, claimed_by, reason FROM deliveries WHERE order_id = ? AND action = ?",
        (order.id, deliveries.ADD_ROLE),
    ).fetchone()
    if row is not None:
        delivery_id, status, attempts, claimed_by, reason = row
        if status == "cancelled" or (status == "failed" and reason != deliveries.GAVE_UP):
            return  # never given
        if status == "pending" and claimed_by is None:
            conn.execute(
                "UPDATE deliveries SET status = 'cancelled', settled_at = ? WHERE id = ?", (now, delivery_id)
            )
            if attempts == 0:
                return  # never sent to Discord
    _add_delivery(conn, order, deliveries.REMOVE_ROLE, now)


def _delivery_by_id(conn: sqlite3.Connection, delivery_id: int) -> Delivery | None:
    row = conn.execute(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
    return None if row is None else _delivery(row)


#: A delivery the worker may claim: pending, due, not claimed, and nothing earlier of its order still
#: pending (a removal waits for the grant it takes back; a grant being sent is never overtaken).
_CLAIMABLE = (
    "d.status = 'pending' AND d.claimed_by IS NULL AND d.due_at <= ? AND NOT EXISTS ("
    "SELECT 1 FROM deliveries p WHERE p.order_id = d.order_id AND p.id < d.id AND p.status = 'pending')"
)


def _plan_purchase(
    conn: sqlite3.Connection, guild_id: int, user_id: int, item_id: int, quantity: int, now: int
) -> tuple[CheckoutPreview, Allocation, Currency]:
    settings = _settings(conn, guild_id)
    item = _item_by_id(conn, guild_id, item_id)
    if item is None:
        raise NotFound("There is no such item in this server's shop.")
    (bought,) = conn.execute(
        "SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND user_id = ? AND status = 'completed'",
        (item.id, user_id),
    ).fetchone()
    lots = _member_lots(conn, guild_id, user_id)
    preview, allocation = preview_purchase(
        item, quantity, bought, lots, settings.promo_excluded_categories, now, settings.currency
    )
    return preview, allocation, settings.currency


def _redeem_promo(
    conn: sqlite3.Connection, promo: PromoCode, user_id: int, member: MemberFacts, key: str | None, now: int
) -> Redemption:
    (uses,) = conn.execute(
        "SELECT COUNT(*) FROM promo_redemptions WHERE code_id = ? AND user_id = ?", (promo.id, user_id)
    ).fetchone()
    check_promo_redeemable(promo, uses, member, now)
    expires_at = promo_credit_expiry(promo, now)
    if expires_at is not None and expires_at <= now:
        raise Conflict("The credit of that code has already expired.")
    claimed = conn.execute(
        "UPDATE promo_codes SET uses = uses + 1 WHERE id = ? AND (max_uses IS NULL OR uses < max_uses)",
        (promo.id,),
    )
    if claimed.rowcount != 1:
        raise Conflict("That code has been used up.")
    spec = LotSpec(
        amount=promo.amount, kind="promo", expires_at=expires_at, categories=promo.categories,
        one_time=promo.one_time, source="promo_code", source_ref=promo.code, memo=f"promo code {promo.code}",
    )
    lot_id = _insert_lots(conn, promo.guild_id, (user_id,), spec, None, key, now)
    conn.execute(
        "INSERT INTO promo_redemptions (code_id, guild_id, user_id, lot_id, created_at) VALUES (?, ?, ?, ?, ?)",
        (promo.id, promo.guild_id, user_id, lot_id, now),
    )
    lot = _lot_by_id(conn, promo.guild_id, lot_id)
    assert lot is not None
    return Redemption("promo_code", lot, promo.code)


def _redeem_card(conn: sqlite3.Connection, card: GiftCard, user_id: int, key: str | None, now: int) -> Redemption:
    if card.status == "redeemed":
        if card.redeemed_by == user_id:
            raise Conflict(f"You already redeemed this gift card {_ts(card.redeemed_at or now)}.")
        raise Conflict("That gift card has already been redeemed.")
    if card.status == "voided":
        raise Conflict("That gift card was cancelled by this server's moderators.")
    if card.claim_by is not None and now > card.claim_by:
        raise Conflict(f"That gift card had to be claimed by {_ts(card.claim_by, 'f')}.")
    label = f"gift card …{card.last4}"
    spec = LotSpec(amount=card.amount, kind="gift", source="gift_card", source_ref=str(card.id), memo=label)
    lot_id = _insert_lots(conn, card.guild_id, (user_id,), spec, None, key, now)
    conn.execute(
        "UPDATE gift_cards SET status = 'redeemed', redeemed_by = ?, redeemed_at = ?, lot_id = ?"
        " WHERE id = ? AND status = 'unredeemed'",
        (user_id, now, lot_id, card.id),
    )
    lot = _lot_by_id(conn, card.guild_id, lot_id)
    assert lot is not None
    return Redemption("gift_card", lot, label)


def _sweep_batch(conn: sqlite3.Connection, now: int, batch: int) -> list[ExpiredLot]:
    rows = conn.execute(
        "SELECT id, guild_id, user_id, kind, remaining, expires_at FROM lots"
        " WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?",
        (now, batch),
    ).fetchall()
    if not rows:
        return []
    conn.executemany(
        "UPDATE lots SET remaining = 0, status = 'expired', next_reminder_at = NULL WHERE id = ?",
        ((r[0],) for r in rows),
    )
    conn.executemany(
        "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, reason, created_at)"
        " VALUES (?, ?, ?, 'expire', ?, 'expired', ?)",
        ((r[1], r[2], r[0], -r[4], now) for r in rows),
    )
    return [ExpiredLot(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


def _due_reminders(conn: sqlite3.Connection, now: int, limit: int) -> list[DueReminder]:
    # Only columns of the covering index lots_due_reminder: no lot row is read. Opt-outs and closed
    # DMs are looked at when each reminder is claimed, so this stays one index range scan.
    rows = conn.execute(
        "SELECT guild_id, user_id, id, expires_at FROM lots INDEXED BY lots_due_reminder"
        " WHERE status = 'active' AND next_reminder_at IS NOT NULL AND next_reminder_at <= ?"
        " ORDER BY next_reminder_at LIMIT ?",
        (now, limit),
    ).fetchall()
    leads_by_guild: dict[int, tuple[int, ...]] = {}
    groups: dict[tuple[int, int, int], list[int]] = {}
    for guild_id, user_id, lot_id, expires_at in rows:
        leads = leads_by_guild.get(guild_id)
        if leads is None:
            leads = leads_by_guild[guild_id] = _settings(conn, guild_id).reminder_leads
        lead = reminder_lead_due(expires_at or 0, leads, now)
        if lead is not None:  # None: expired (the sweep takes it) or no window open
            groups.setdefault((guild_id, user_id, lead), []).append(lot_id)
    return [DueReminder(g, u, lead, tuple(ids)) for (g, u, lead), ids in groups.items()]


def _report(conn: sqlite3.Connection, guild_id: int, now: int) -> Report:
    outstanding = dict(conn.execute(
        "SELECT kind, COALESCE(SUM(remaining), 0) FROM lots WHERE guild_id = ? AND status = 'active'"
        " AND starts_at <= ? AND (expires_at IS NULL OR expires_at > ?) GROUP BY kind",
        (guild_id, now, now),
    ).fetchall())

    def expiring(within: int) -> int:
        (total,) = conn.execute(
            "SELECT COALESCE(SUM(remaining), 0) FROM lots WHERE guild_id = ? AND status = 'active'"
            " AND expires_at > ? AND expires_at <= ?",
            (guild_id, now, now + within),
        ).fetchone()
        return int(total)

    week = 7 * 86400
    start = now - 12 * week  # twelve weeks; the current second belongs to the last one
    figures = {i: {"grant": 0, "spend": 0, "refunded": 0, "expire": 0} for i in range(12)}
    for index, type_, amount in conn.execute(
        "SELECT (created_at - ?) / ?, type, SUM(amount) FROM entries WHERE guild_id = ? AND created_at >= ?"
        " AND type IN ('grant', 'spend', 'expire') GROUP BY 1, 2",
        (start, week, guild_id, start),
    ):
        figures[min(index, 11)][type_] += abs(amount)
    # A refund gives back what the order spent (its total); forfeits it returns were never spending.
    for index, total in conn.execute(
        "SELECT (refunded_at - ?) / ?, SUM(total) FROM orders WHERE guild_id = ? AND status = 'refunded'"
        " AND refunded_at >= ? GROUP BY 1",
        (start, week, guild_id, start),
    ):
        figures[min(index, 11)]["refunded"] += total
    weeks = tuple(
        WeekFigures(start + i * week, f["grant"], max(f["spend"] - f["refunded"], 0), f["expire"])
        for i, f in figures.items()
    )
    per_code = tuple(
        (code, count) for code, count in conn.execute(
            "SELECT p.code, COUNT(r.id) FROM promo_codes p LEFT JOIN promo_redemptions r ON r.code_id = p.id"
            " WHERE p.guild_id = ? GROUP BY p.id ORDER BY COUNT(r.id) DESC, p.code",
            (guild_id,),
        )
    )
    (cards,) = conn.execute(
        "SELECT COUNT(*) FROM gift_cards WHERE guild_id = ? AND status = 'redeemed'", (guild_id,)
    ).fetchone()
    return Report(
        guild_id, outstanding.get("promo", 0), outstanding.get("gift", 0), expiring(7 * 86400),
        expiring(30 * 86400), weeks, per_code, cards,
    )


def _verify(conn: sqlite3.Connection, now: int) -> list[str]:
    """Every invariant of SPEC §2, as a list of human-readable problems (empty = healthy)."""
    problems: list[str] = []

    def check(sql: str, args: Sequence[Any], describe: Callable[[Sequence[Any]], str]) -> None:
        for row in conn.execute(sql, args).fetchmany(100):
            problems.append(describe(row))

    check(
        "SELECT l.id, l.remaining, COALESCE(SUM(e.amount), 0) FROM lots l LEFT JOIN entries e ON e.lot_id = l.id"
        " GROUP BY l.id HAVING l.remaining <> COALESCE(SUM(e.amount), 0)",
        (),
        lambda r: f"lot {r[0]}: remaining {r[1]} but its entries sum to {r[2]}",
    )
    check(
        "SELECT id, remaining, original FROM lots WHERE remaining < 0 OR remaining > original",
        (),
        lambda r: f"lot {r[0]}: remaining {r[1]} outside 0..{r[2]}",
    )
    check(
        "SELECT id, status, remaining FROM lots WHERE (status = 'active') <> (remaining > 0)",
        (),
        lambda r: f"lot {r[0]}: status {r[1]} with remaining {r[2]}",
    )
    check(
        "SELECT l.id, l.original, COALESCE(SUM(e.amount), 0) FROM lots l LEFT JOIN entries e"
        " ON e.lot_id = l.id AND e.type = 'grant' GROUP BY l.id HAVING l.original <> COALESCE(SUM(e.amount), 0)",
        (),
        lambda r: f"lot {r[0]}: original {r[1]} but granted {r[2]}",
    )
    row = conn.execute("SELECT value FROM bot_state WHERE key = 'last_sweep_at'").fetchone()
    if row is not None:
        check(
            "SELECT id, expires_at FROM lots WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?",
            (int(row[0]),),
            lambda r: f"lot {r[0]}: still active though it expired at {r[1]}, before the last sweep",
        )
    check(
        "SELECT o.id, o.total, COALESCE(-SUM(e.amount), 0) FROM orders o LEFT JOIN entries e"
        " ON e.order_id = o.id AND e.type = 'spend' GROUP BY o.id HAVING o.total <> COALESCE(-SUM(e.amount), 0)",
        (),
        lambda r: f"order {r[0]}: total {r[1]} but its spend entries sum to {r[2]}",
    )
    check(
        "SELECT o.id, o.promo_applied, COALESCE(-SUM(e.amount), 0) FROM orders o LEFT JOIN entries e"
        " ON e.order_id = o.id AND e.type = 'spend' AND e.lot_id IN (SELECT id FROM lots WHERE kind = 'promo')"
        " GROUP BY o.id HAVING o.promo_applied <> COALESCE(-SUM(e.amount), 0)",
        (),
        lambda r: f"order {r[0]}: promo applied {r[1]} but promo spend entries sum to {r[2]}",
    )
    check(
        "SELECT o.id FROM orders o WHERE o.status = 'refunded' AND (SELECT COALESCE(SUM(amount), 0)"
        " FROM entries e WHERE e.order_id = o.id AND e.type = 'refund') <> (SELECT COALESCE(-SUM(amount), 0)"
        " FROM entries e WHERE e.order_id = o.id AND e.type IN ('spend', 'forfeit'))",
        (),
        lambda r: f"order {r[0]}: refunded, but its refund entries do not match what it took",
    )
    check(
        "SELECT p.code, p.uses, COUNT(r.id) FROM promo_codes p LEFT JOIN promo_redemptions r ON r.code_id = p.id"
        " GROUP BY p.id HAVING p.uses <> COUNT(r.id) OR (p.max_uses IS NOT NULL AND p.uses > p.max_uses)",
        (),
        lambda r: f"promo code {r[0]}: uses {r[1]} but {r[2]} redemptions",
    )
    check(
        "SELECT e.id FROM entries e JOIN lots l ON l.id = e.lot_id"
        " WHERE e.guild_id <> l.guild_id OR e.user_id <> l.user_id",
        (),
        lambda r: f"entry {r[0]}: guild or member differs from its lot's",
    )
    check(
        "SELECT d.id, d.order_id FROM deliveries d JOIN orders o ON o.id = d.order_id"
        " WHERE d.guild_id <> o.guild_id OR d.user_id <> o.user_id"
        " OR (d.action = 'add_role' AND d.status = 'pending' AND d.claimed_by IS NULL AND o.status = 'refunded')",
        (),
        lambda r: f"delivery {r[0]}: not that of its order #{r[1]} (another member, or the role of a refunded order)",
    )
    return problems
