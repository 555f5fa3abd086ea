"""The rows of codes, recurring grants, reminders and the report's figures (bot/store/ports.py
says what each method promises)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from bot.domain.models import GiftCard, PromoCode, Schedule
from bot.store.ports import DuplicateKey
from bot.store.sql import inserted_id
from bot.store.sql.credit_rows import SETTLED_REMINDERS, Rows
from bot.store.sql.rows import (
    CARD_COLUMNS,
    PROMO_COLUMNS,
    SCHEDULE_COLUMNS,
    card_of,
    categories_json,
    promo_of,
    schedule_of,
)

PROMO_FIELDS = frozenset(
    {
        "code",
        "code_key",
        "amount",
        "max_uses",
        "per_member",
        "redeem_by",
        "credit_days",
        "credit_expires",
        "categories",
        "one_time",
        "role_id",
        "min_member_days",
    }
)


class CodeRows(Rows):
    __slots__ = ()

    def insert_promo(self, guild_id: int, values: Mapping[str, Any], actor_id: int | None, now: int) -> int:
        columns = {k: v for k, v in values.items() if k in PROMO_FIELDS}
        columns["categories"] = categories_json(columns.get("categories"))
        try:
            cursor = self.conn.execute(
                f"INSERT INTO promo_codes (guild_id, created_by, created_at, {', '.join(columns)})"
                f" VALUES (?, ?, ?, {', '.join('?' * len(columns))}) RETURNING id",
                (guild_id, actor_id, now, *columns.values()),
            )
            return inserted_id(cursor) or 0
        except self.conn.IntegrityError as exc:
            raise DuplicateKey("code") from exc

    def promo_by_id(self, promo_id: int) -> PromoCode:
        return promo_of(
            self.conn.execute(f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE id = ?", (promo_id,)).fetchone()
        )

    def promo_by_key(self, guild_id: int, code_key: str) -> PromoCode | None:
        row = self.conn.execute(
            f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE guild_id = ? AND code_key = ?", (guild_id, code_key)
        ).fetchone()
        return None if row is None else promo_of(row)

    def promos(self, guild_id: int) -> list[PromoCode]:
        rows = self.conn.execute(
            f"SELECT {PROMO_COLUMNS} FROM promo_codes WHERE guild_id = ? ORDER BY active DESC, code", (guild_id,)
        ).fetchall()
        return [promo_of(r) for r in rows]

    def set_promo_active(self, promo_id: int, active: bool) -> None:
        self.conn.execute("UPDATE promo_codes SET active = ? WHERE id = ?", (int(active), promo_id))

    def promo_uses_of(self, promo_id: int, user_id: int) -> int:
        (uses,) = self.conn.execute(
            "SELECT COUNT(*) FROM promo_redemptions WHERE code_id = ? AND user_id = ?", (promo_id, user_id)
        ).fetchone()
        return int(uses)

    def use_promo(self, promo_id: int) -> bool:
        cursor = self.conn.execute(
            "UPDATE promo_codes SET uses = uses + 1 WHERE id = ? AND (max_uses IS NULL OR uses < max_uses)",
            (promo_id,),
        )
        return cursor.rowcount == 1

    def record_promo_redemption(self, promo: PromoCode, user_id: int, lot_id: int, now: int) -> None:
        self.conn.execute(
            "INSERT INTO promo_redemptions (code_id, guild_id, user_id, lot_id, created_at) VALUES (?, ?, ?, ?, ?)",
            (promo.id, promo.guild_id, user_id, lot_id, now),
        )

    def insert_card(
        self,
        guild_id: int,
        code_hash: str,
        last4: str,
        amount: int,
        claim_by: int | None,
        actor_id: int | None,
        now: int,
    ) -> int:
        cursor = self.conn.execute(
            "INSERT INTO gift_cards (guild_id, code_hash, last4, amount, claim_by, issued_by, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (guild_id, code_hash, last4, amount, claim_by, actor_id, now),
        )
        return inserted_id(cursor) or 0

    def card_by_hash(self, guild_id: int, code_hash: str) -> GiftCard | None:
        row = self.conn.execute(
            f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE code_hash = ? AND guild_id = ?", (code_hash, guild_id)
        ).fetchone()
        return None if row is None else card_of(row)

    def unredeemed_cards(self, guild_id: int, last4: str, card_id: int | None) -> list[GiftCard]:
        sql = f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE guild_id = ? AND last4 = ? AND status = 'unredeemed'"
        args: list[Any] = [guild_id, last4]
        if card_id is not None:
            sql += " AND id = ?"
            args.append(card_id)
        return [card_of(r) for r in self.conn.execute(sql + " ORDER BY id", args)]

    def cards(self, guild_id: int, status: str | None) -> list[GiftCard]:
        sql = f"SELECT {CARD_COLUMNS} FROM gift_cards WHERE guild_id = ?"
        args: list[Any] = [guild_id]
        if status is not None:
            sql += " AND status = ?"
            args.append(status)
        return [card_of(r) for r in self.conn.execute(sql + " ORDER BY id DESC", args)]

    def set_card_status(self, card_id: int, status: str) -> None:
        self.conn.execute("UPDATE gift_cards SET status = ? WHERE id = ?", (status, card_id))

    def mark_card_redeemed(self, card_id: int, user_id: int, lot_id: int, now: int) -> None:
        self.conn.execute(
            "UPDATE gift_cards SET status = 'redeemed', redeemed_by = ?, redeemed_at = ?, lot_id = ?"
            " WHERE id = ? AND status = 'unredeemed'",
            (user_id, now, lot_id, card_id),
        )

    def record_failure(self, guild_id: int, user_id: int, now: int, key: str | None) -> None:
        self.conn.execute(
            "INSERT INTO failed_redemptions (guild_id, user_id, at, key) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING",
            (guild_id, user_id, now, key),
        )

    def failures_since(self, guild_id: int, user_id: int, since: int) -> list[int]:
        return [
            t
            for (t,) in self.conn.execute(
                "SELECT at FROM failed_redemptions WHERE guild_id = ? AND user_id = ? AND at > ?",
                (guild_id, user_id, since),
            )
        ]


class ScheduleRows(Rows):
    __slots__ = ()

    def insert(self, guild_id: int, fields: Mapping[str, Any], actor_id: int | None, now: int) -> int:
        cursor = self.conn.execute(
            "INSERT INTO schedules (guild_id, role_id, amount, rule, valid_days, categories, kind,"
            " next_run_at, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                guild_id,
                fields["role_id"],
                fields["amount"],
                fields["rule"],
                fields.get("valid_days"),
                categories_json(fields.get("categories")),
                fields.get("kind", "promo"),
                fields["next_run_at"],
                actor_id,
                now,
            ),
        )
        return inserted_id(cursor) or 0

    def by_id(self, guild_id: int, schedule_id: int) -> Schedule | None:
        row = self.conn.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ? AND guild_id = ?", (schedule_id, guild_id)
        ).fetchone()
        return None if row is None else schedule_of(row)

    def active(self, guild_id: int) -> list[Schedule]:
        rows = self.conn.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE guild_id = ? AND active = 1 ORDER BY id", (guild_id,)
        ).fetchall()
        return [schedule_of(r) for r in rows]

    def due(self, now: int) -> list[Schedule]:
        rows = self.conn.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE active = 1 AND next_run_at <= ? ORDER BY next_run_at",
            (now,),
        ).fetchall()
        return [schedule_of(r) for r in rows]

    def deactivate(self, schedule_id: int) -> None:
        self.conn.execute("UPDATE schedules SET active = 0 WHERE id = ?", (schedule_id,))

    def set_next_runs(self, pairs: Iterable[tuple[int, int]]) -> None:
        self.conn.executemany("UPDATE schedules SET next_run_at = ? WHERE id = ?", pairs)

    def advance(self, schedule_id: int, seen_next_run_at: int, next_run_at: int) -> bool:
        cursor = self.conn.execute(
            "UPDATE schedules SET next_run_at = ? WHERE id = ? AND active = 1 AND next_run_at = ?",
            (next_run_at, schedule_id, seen_next_run_at),
        )
        return cursor.rowcount == 1


class ReminderRows(Rows):
    __slots__ = ()

    def state(self, lot_id: int, lead_seconds: int) -> tuple[str, int, str | None, int, str | None] | None:
        row = self.conn.execute(
            "SELECT status, attempts, nonce, updated_at, claimed_by FROM reminders"
            " WHERE lot_id = ? AND lead_seconds = ?",
            (lot_id, lead_seconds),
        ).fetchone()
        return cast("tuple[str, int, str | None, int, str | None] | None", row)

    def smallest_settled_lead(self, lot_id: int) -> int | None:
        (lead,) = self.conn.execute(
            f"SELECT MIN(lead_seconds) FROM reminders WHERE lot_id = ? AND status IN {SETTLED_REMINDERS}", (lot_id,)
        ).fetchone()
        return None if lead is None else int(lead)

    def record(self, lot_id: int, lead_seconds: int, status: str, now: int) -> None:
        self.conn.execute(
            "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, updated_at) VALUES (?, ?, ?, 0, ?)"
            " ON CONFLICT (lot_id, lead_seconds) DO UPDATE SET status = excluded.status,"
            " updated_at = excluded.updated_at",
            (lot_id, lead_seconds, status, now),
        )

    def claim(self, lot_ids: Iterable[int], lead_seconds: int, nonce: str, now: int, run_id: str) -> None:
        self.conn.executemany(
            "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, nonce, updated_at, claimed_by)"
            " VALUES (?, ?, 'pending', 1, ?, ?, ?) ON CONFLICT (lot_id, lead_seconds) DO UPDATE SET"
            " status = 'pending', attempts = reminders.attempts + 1, nonce = excluded.nonce,"
            " updated_at = excluded.updated_at, claimed_by = excluded.claimed_by",
            ((lot_id, lead_seconds, nonce, now, run_id) for lot_id in lot_ids),
        )


class ReportRows(Rows):
    __slots__ = ()

    def outstanding_by_kind(self, guild_id: int, now: int) -> dict[str, int]:
        return dict(
            self.conn.execute(
                "SELECT kind, COALESCE(SUM(remaining), 0) FROM lots WHERE guild_id = ? AND status = 'active'"
                " AND starts_at <= ? AND (expires_at IS NULL OR expires_at > ?) GROUP BY kind",
                (guild_id, now, now),
            ).fetchall()
        )

    def expiring_within(self, guild_id: int, now: int, within: int) -> int:
        (total,) = self.conn.execute(
            "SELECT COALESCE(SUM(remaining), 0) FROM lots WHERE guild_id = ? AND status = 'active'"
            " AND expires_at > ? AND expires_at <= ?",
            (guild_id, now, now + within),
        ).fetchone()
        return int(total)

    def entry_totals_by_week(self, guild_id: int, start: int, week: int) -> list[tuple[int, str, int]]:
        return self.conn.execute(
            "SELECT (created_at - ?) / ?, type, SUM(amount) FROM entries WHERE guild_id = ? AND created_at >= ?"
            " AND type IN ('grant', 'spend', 'expire') GROUP BY 1, 2",
            (start, week, guild_id, start),
        ).fetchall()

    def refunds_by_week(self, guild_id: int, start: int, week: int) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT (refunded_at - ?) / ?, SUM(total) FROM orders WHERE guild_id = ?"
            " AND status IN ('refunded', 'cancelled') AND refunded_at >= ? GROUP BY 1",
            (start, week, guild_id, start),
        ).fetchall()

    def redemptions_per_code(self, guild_id: int) -> list[tuple[str, int]]:
        return self.conn.execute(
            "SELECT p.code, COUNT(r.id) FROM promo_codes p LEFT JOIN promo_redemptions r ON r.code_id = p.id"
            " WHERE p.guild_id = ? GROUP BY p.id ORDER BY COUNT(r.id) DESC, p.code",
            (guild_id,),
        ).fetchall()

    def pending_orders(self, guild_id: int) -> tuple[int, int]:
        (count, value) = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(total), 0) FROM orders INDEXED BY orders_pending"
            " WHERE guild_id = ? AND status = 'pending'",
            (guild_id,),
        ).fetchone()
        return int(count), int(value)

    def redeemed_cards(self, guild_id: int) -> int:
        (cards,) = self.conn.execute(
            "SELECT COUNT(*) FROM gift_cards WHERE guild_id = ? AND status = 'redeemed'", (guild_id,)
        ).fetchone()
        return int(cards)
