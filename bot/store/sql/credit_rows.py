"""The rows of the books: settings, accounts, lots, entries, the audit log, bot state and
idempotency keys (bot/store/ports.py says what each method promises)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from bot.domain.models import AuditRecord, Entry, ExpiredLot, GuildSettings, Lot, LotSpec
from bot.store.sql import Connection
from bot.store.sql.rows import (
    ENTRY_SELECT,
    LOT_COLUMNS,
    SETTINGS_SELECT,
    categories_json,
    entry_of,
    lot_of,
    settings_of,
    settings_values,
)

SETTINGS_COLUMNS = frozenset(
    {
        "currency_name",
        "currency_symbol",
        "decimals",
        "timezone",
        "reminder_leads",
        "mod_role_id",
        "audit_channel_id",
        "promo_excluded_categories",
        "fulfilment_channel_id",
    }
)
#: Tables whose rows hold amounts in the guild's minor units.
AMOUNT_TABLES = ("lots", "shop_items", "promo_codes", "gift_cards", "schedules")
SETTLED_REMINDERS = "('sent', 'dm_closed', 'opted_out', 'failed', 'unknown')"


class Rows:
    __slots__ = ("conn",)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn


class SettingsRows(Rows):
    __slots__ = ()

    def get(self, guild_id: int) -> GuildSettings:
        return settings_of(guild_id, self.conn.execute(SETTINGS_SELECT, (guild_id,)).fetchone())

    def update(self, guild_id: int, values: Mapping[str, Any]) -> None:
        unknown = set(values) - SETTINGS_COLUMNS
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        self.conn.execute("INSERT INTO guild_settings (guild_id) VALUES (?) ON CONFLICT DO NOTHING", (guild_id,))
        columns = settings_values(dict(values))
        if columns:
            self.conn.execute(
                f"UPDATE guild_settings SET {', '.join(f'{column} = ?' for column in columns)} WHERE guild_id = ?",
                (*columns.values(), guild_id),
            )

    def has_amounts(self, guild_id: int) -> bool:
        return any(
            self.conn.execute(f"SELECT 1 FROM {table} WHERE guild_id = ? LIMIT 1", (guild_id,)).fetchone()
            for table in AMOUNT_TABLES
        )


class AccountRows(Rows):
    __slots__ = ()

    def ensure(self, guild_id: int, user_ids: Iterable[int], now: int) -> None:
        self.conn.executemany(
            "INSERT INTO accounts (guild_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            ((guild_id, user_id, now) for user_id in user_ids),
        )

    def reminder_prefs(self, guild_id: int, user_id: int) -> tuple[bool, int | None] | None:
        row = self.conn.execute(
            "SELECT reminders_enabled, dm_closed_at FROM accounts WHERE guild_id = ? AND user_id = ?",
            (guild_id, user_id),
        ).fetchone()
        return None if row is None else (bool(row[0]), row[1])

    def set_reminders_enabled(self, guild_id: int, user_id: int, enabled: bool) -> None:
        self.conn.execute(
            "UPDATE accounts SET reminders_enabled = ? WHERE guild_id = ? AND user_id = ?",
            (int(enabled), guild_id, user_id),
        )

    def set_dm_closed(self, guild_id: int, user_id: int, at: int | None) -> None:
        self.conn.execute(
            "UPDATE accounts SET dm_closed_at = ? WHERE guild_id = ? AND user_id = ?", (at, guild_id, user_id)
        )


class LotRows(Rows):
    __slots__ = ()
    #: Run after a grant to several members, with the last id it used (PostgreSQL moves its sequence on).
    AFTER_INSERT: str | None = None

    def next_id(self) -> int:
        # Under the write lock the ids after MAX(id) are the writer's: one executemany, not n inserts.
        (first,) = self.conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM lots").fetchone()
        return int(first)

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
        categories = categories_json(spec.categories)
        self.conn.executemany(
            "INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, expires_at,"
            " categories, one_time, source, source_ref, memo, created_by, created_at, status, next_reminder_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)",
            (
                (
                    first_id + i,
                    guild_id,
                    user_id,
                    spec.kind,
                    spec.amount,
                    spec.amount,
                    starts_at,
                    spec.expires_at,
                    categories,
                    int(spec.one_time),
                    spec.source,
                    spec.source_ref,
                    spec.memo,
                    actor_id,
                    now,
                    next_reminder_at,
                )
                for i, user_id in enumerate(user_ids)
            ),
        )
        if self.AFTER_INSERT is not None and len(user_ids) > 1:
            self.conn.execute(self.AFTER_INSERT, (first_id + len(user_ids) - 1,))

    def of_member(self, guild_id: int, user_id: int, active_only: bool = True) -> list[Lot]:
        sql = f"SELECT {LOT_COLUMNS} FROM lots WHERE guild_id = ? AND user_id = ?"
        if active_only:
            sql += " AND status = 'active'"
        return [lot_of(r) for r in self.conn.execute(sql + " ORDER BY id", (guild_id, user_id))]

    def by_id(self, guild_id: int, lot_id: int) -> Lot | None:
        row = self.conn.execute(
            f"SELECT {LOT_COLUMNS} FROM lots WHERE id = ? AND guild_id = ?", (lot_id, guild_id)
        ).fetchone()
        return None if row is None else lot_of(row)

    def guild_of(self, lot_id: int) -> int:
        (guild_id,) = self.conn.execute("SELECT guild_id FROM lots WHERE id = ?", (lot_id,)).fetchone()
        return int(guild_id)

    def take(self, lot_id: int, before: int, after: int, status: str) -> bool:
        cursor = self.conn.execute(
            "UPDATE lots SET remaining = ?, status = ?,"
            " next_reminder_at = CASE WHEN ? = 'active' THEN next_reminder_at END"
            " WHERE id = ? AND remaining = ? AND status = 'active'",
            (after, status, status, lot_id, before),
        )
        return cursor.rowcount == 1

    def put_back(self, lot_id: int, amount: int) -> None:
        self.conn.execute("UPDATE lots SET remaining = remaining + ?, status = 'active' WHERE id = ?", (amount, lot_id))

    def set_status(self, lot_id: int, status: str) -> None:
        self.conn.execute("UPDATE lots SET status = ? WHERE id = ?", (status, lot_id))

    def revoked_at(self, lot_id: int) -> int | None:
        (revoked_at,) = self.conn.execute("SELECT revoked_at FROM lots WHERE id = ?", (lot_id,)).fetchone()
        return None if revoked_at is None else int(revoked_at)

    def mark_revoked(self, lot_id: int, at: int) -> None:
        self.conn.execute("UPDATE lots SET revoked_at = ? WHERE id = ?", (at, lot_id))

    def set_expiry(self, lot_id: int, expires_at: int) -> None:
        self.conn.execute("UPDATE lots SET expires_at = ? WHERE id = ?", (expires_at, lot_id))

    def expiry(self, lot_id: int) -> int | None:
        (expires_at,) = self.conn.execute("SELECT expires_at FROM lots WHERE id = ?", (lot_id,)).fetchone()
        return None if expires_at is None else int(expires_at)

    def set_next_reminder(self, lot_id: int, at: int | None) -> None:
        self.conn.execute("UPDATE lots SET next_reminder_at = ? WHERE id = ? AND status = 'active'", (at, lot_id))

    def set_next_reminders(self, pairs: Iterable[tuple[int | None, int]]) -> None:
        self.conn.executemany("UPDATE lots SET next_reminder_at = ? WHERE id = ?", pairs)

    def active_expiring(self, guild_id: int) -> list[tuple[int, int, int | None]]:
        return self.conn.execute(
            "SELECT l.id, l.expires_at, (SELECT MIN(lead_seconds) FROM reminders r WHERE r.lot_id = l.id"
            f" AND r.status IN {SETTLED_REMINDERS})"
            " FROM lots l WHERE l.guild_id = ? AND l.status = 'active' AND l.expires_at IS NOT NULL",
            (guild_id,),
        ).fetchall()

    def due_to_expire(self, now: int, limit: int) -> list[ExpiredLot]:
        rows = self.conn.execute(
            "SELECT id, guild_id, user_id, kind, remaining, expires_at FROM lots"
            " WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?",
            (now, limit),
        ).fetchall()
        return [ExpiredLot(*row) for row in rows]

    def expire(self, lots: Sequence[ExpiredLot], now: int) -> None:
        self.conn.executemany(
            "UPDATE lots SET remaining = 0, status = 'expired', next_reminder_at = NULL WHERE id = ?",
            ((lot.lot_id,) for lot in lots),
        )
        self.conn.executemany(
            "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, reason, created_at)"
            " VALUES (?, ?, ?, 'expire', ?, 'expired', ?)",
            ((lot.guild_id, lot.user_id, lot.lot_id, -lot.amount, now) for lot in lots),
        )

    def due_for_reminder(self, now: int, limit: int) -> list[tuple[int, int, int, int | None]]:
        # Only columns of the covering index lots_due_reminder: no lot row is read.
        return self.conn.execute(
            "SELECT guild_id, user_id, id, expires_at FROM lots INDEXED BY lots_due_reminder"
            " WHERE status = 'active' AND next_reminder_at IS NOT NULL AND next_reminder_at <= ?"
            " ORDER BY next_reminder_at LIMIT ?",
            (now, limit),
        ).fetchall()

    def still_due_for_reminder(self, lot_id: int, now: int) -> Lot | None:
        row = self.conn.execute(
            f"SELECT {LOT_COLUMNS} FROM lots WHERE id = ? AND status = 'active' AND expires_at > ?"
            " AND next_reminder_at <= ?",
            (lot_id, now, now),
        ).fetchone()
        return None if row is None else lot_of(row)


class EntryRows(Rows):
    __slots__ = ()

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
    ) -> None:
        self.conn.execute(
            "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, order_id, actor_id, reason,"
            " created_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (lot.guild_id, lot.user_id, lot.id, type_, amount, order_id, actor_id, reason, now, key),
        )

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
    ) -> None:
        self.conn.executemany(
            "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, actor_id, reason, created_at,"
            " idempotency_key) VALUES (?, ?, ?, 'grant', ?, ?, ?, ?, ?)",
            (
                (guild_id, user_id, first_id + i, amount, actor_id, reason, now, key)
                for i, user_id in enumerate(user_ids)
            ),
        )

    def taken_by_order(self, order_id: int) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT lot_id, -amount FROM entries WHERE order_id = ? AND type IN ('spend', 'forfeit') ORDER BY id",
            (order_id,),
        ).fetchall()

    def count_of_member(self, guild_id: int, user_id: int) -> int:
        (total,) = self.conn.execute(
            "SELECT COUNT(*) FROM entries WHERE guild_id = ? AND user_id = ?", (guild_id, user_id)
        ).fetchone()
        return int(total)

    def page_of_member(self, guild_id: int, user_id: int, offset: int, limit: int) -> list[Entry]:
        rows = self.conn.execute(
            ENTRY_SELECT + " WHERE e.guild_id = ? AND e.user_id = ? ORDER BY e.id DESC LIMIT ? OFFSET ?",
            (guild_id, user_id, limit, offset),
        ).fetchall()
        return [entry_of(r) for r in rows]

    def after(self, guild_id: int, after_id: int, limit: int) -> list[Entry]:
        rows = self.conn.execute(
            ENTRY_SELECT + " WHERE e.guild_id = ? AND e.id > ? ORDER BY e.id LIMIT ?", (guild_id, after_id, limit)
        ).fetchall()
        return [entry_of(r) for r in rows]


class AuditRows(Rows):
    __slots__ = ()

    def add(self, guild_id: int, audit: AuditRecord, now: int) -> None:
        self.conn.execute(
            "INSERT INTO audit_log (guild_id, actor_id, action, details, created_at) VALUES (?, ?, ?, ?, ?)",
            (guild_id, audit.actor_id, audit.action, json.dumps(audit.details, default=str), now),
        )

    def count(self, guild_id: int) -> int:
        (total,) = self.conn.execute("SELECT COUNT(*) FROM audit_log WHERE guild_id = ?", (guild_id,)).fetchone()
        return int(total)

    def page(self, guild_id: int, offset: int, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT id, actor_id, action, details, created_at FROM audit_log WHERE guild_id = ?"
            " ORDER BY id DESC LIMIT ? OFFSET ?",
            (guild_id, limit, offset),
        ).fetchall()
        return [
            {"id": r[0], "actor_id": r[1], "action": r[2], "details": json.loads(r[3]), "created_at": r[4]}
            for r in rows
        ]


class StateRows(Rows):
    __slots__ = ()

    def get(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO bot_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


class IdempotencyRows(Rows):
    __slots__ = ()

    def find(self, key: str) -> tuple[str, dict[str, Any]] | None:
        row = self.conn.execute("SELECT operation, result FROM idempotency WHERE key = ?", (key,)).fetchone()
        return None if row is None else (str(row[0]), dict(json.loads(row[1])))

    def record(self, key: str, guild_id: int, operation: str, result: str, now: int) -> None:
        self.conn.execute(
            "INSERT INTO idempotency (key, guild_id, operation, result, created_at) VALUES (?, ?, ?, ?, ?)",
            (key, guild_id, operation, result, now),
        )

    def operations_of_interaction(self, interaction_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT operation FROM idempotency WHERE key = ? OR key LIKE ? ORDER BY created_at",
            (str(interaction_id), f"%:{interaction_id}"),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def prune(self, before: int, limit: int) -> int:
        return self.conn.execute(
            "DELETE FROM idempotency WHERE key IN"
            " (SELECT key FROM idempotency WHERE created_at < ? ORDER BY created_at LIMIT ?)",
            (before, limit),
        ).rowcount
