"""The rows of the shop: items, their codes, orders and their deliveries (bot/store/ports.py says
what each method promises)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from bot.domain.models import Delivery, Order, ShopItem
from bot.store.ports import DuplicateKey
from bot.store.sql import inserted_id
from bot.store.sql.credit_rows import Rows
from bot.store.sql.rows import DELIVERY_COLUMNS, ITEM_COLUMNS, ORDER_COLUMNS, delivery_of, item_of, order_of

ITEM_FIELDS = frozenset({"name", "description", "price", "category", "stock", "role_id", "per_member_limit", "active"})
#: What an insert may set besides: an item's delivery is fixed once it exists.
NEW_ITEM_FIELDS = ITEM_FIELDS | {"delivery"}
#: A delivery the worker may claim: pending, due, not claimed, and nothing earlier of its order still
#: pending (a removal waits for the grant it takes back; a grant being sent is never overtaken).
CLAIMABLE = (
    "d.status = 'pending' AND d.claimed_by IS NULL AND d.due_at <= ? AND NOT EXISTS ("
    "SELECT 1 FROM deliveries p WHERE p.order_id = d.order_id AND p.id < d.id AND p.status = 'pending')"
)


class ItemRows(Rows):
    __slots__ = ()

    def insert(self, guild_id: int, values: Mapping[str, Any], now: int) -> int:
        columns = {k: v for k, v in values.items() if k in NEW_ITEM_FIELDS}
        columns["name_key"] = columns["name"].casefold()
        try:
            cursor = self.conn.execute(
                f"INSERT INTO shop_items (guild_id, created_at, {', '.join(columns)})"
                f" VALUES (?, ?, {', '.join('?' * len(columns))}) RETURNING id",
                (guild_id, now, *columns.values()),
            )
            return inserted_id(cursor) or 0
        except self.conn.IntegrityError as exc:
            raise DuplicateKey("name") from exc

    def update(self, item_id: int, values: Mapping[str, Any]) -> None:
        columns = {k: v for k, v in values.items() if k in ITEM_FIELDS}
        if "name" in columns:
            columns["name_key"] = columns["name"].casefold()
        if not columns:
            return
        try:
            self.conn.execute(
                f"UPDATE shop_items SET {', '.join(f'{c} = ?' for c in columns)} WHERE id = ?",
                (*columns.values(), item_id),
            )
        except self.conn.IntegrityError as exc:
            raise DuplicateKey("name") from exc

    def by_id(self, guild_id: int, item_id: int) -> ShopItem | None:
        row = self.conn.execute(
            f"SELECT {ITEM_COLUMNS} FROM shop_items WHERE id = ? AND guild_id = ?", (item_id, guild_id)
        ).fetchone()
        return None if row is None else item_of(row)

    def listed(self, guild_id: int, category: str | None, include_inactive: bool) -> list[ShopItem]:
        sql = f"SELECT {ITEM_COLUMNS} FROM shop_items WHERE guild_id = ?"
        args: list[Any] = [guild_id]
        if not include_inactive:
            sql += " AND active = 1"
        if category is not None:
            sql += " AND category = ? COLLATE NOCASE"
            args.append(category)
        return [item_of(r) for r in self.conn.execute(sql + " ORDER BY category COLLATE NOCASE, name_key", args)]

    def change_stock(self, item_id: int, by: int) -> None:
        self.conn.execute("UPDATE shop_items SET stock = stock + ? WHERE id = ? AND stock IS NOT NULL", (by, item_id))


class OrderRows(Rows):
    __slots__ = ()

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
        cursor = self.conn.execute(
            "INSERT INTO orders (guild_id, user_id, item_id, item_name, quantity, unit_price, total,"
            " promo_applied, gift_applied, forfeited, role_id, status, delivery, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                guild_id,
                user_id,
                item.id,
                item.name,
                quantity,
                item.price,
                total,
                promo_applied,
                gift_applied,
                forfeited,
                item.role_id,
                status,
                item.delivery,
                now,
            ),
        )
        return inserted_id(cursor) or 0

    def by_id(self, guild_id: int, order_id: int) -> Order | None:
        row = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ? AND guild_id = ?", (order_id, guild_id)
        ).fetchone()
        return None if row is None else order_of(row)

    def bought(self, item_id: int, user_id: int) -> int:
        (bought,) = self.conn.execute(
            "SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND user_id = ?"
            " AND status IN ('completed', 'pending', 'fulfilled')",
            (item_id, user_id),
        ).fetchone()
        return int(bought)

    def move(
        self, order_id: int, from_status: str, to_status: str, actor_id: int | None, now: int, note: str | None
    ) -> bool:
        cursor = self.conn.execute(
            "UPDATE orders SET status = ?, acted_by = ?, acted_at = ?, note = COALESCE(?, note)"
            " WHERE id = ? AND status = ?",
            (to_status, actor_id, now, note, order_id, from_status),
        )
        return cursor.rowcount == 1

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
        cursor = self.conn.execute(
            "UPDATE orders SET status = ?, acted_by = ?, acted_at = ?, refunded_at = ?, refund_reason = ?,"
            " note = COALESCE(?, note) WHERE id = ? AND status = ?",
            (to_status, actor_id, now, now, reason, note, order_id, from_status),
        )
        return cursor.rowcount == 1

    def set_post(self, guild_id: int, order_id: int, channel_id: int, message_id: int) -> bool:
        cursor = self.conn.execute(
            "UPDATE orders SET post_channel_id = ?, post_message_id = ? WHERE id = ? AND guild_id = ?",
            (channel_id, message_id, order_id, guild_id),
        )
        return cursor.rowcount == 1

    def count_pending(self, guild_id: int, user_id: int | None) -> int:
        where, args = self._where(guild_id, user_id)
        (total,) = self.conn.execute(
            f"SELECT COUNT(*) FROM orders WHERE {where} AND status = 'pending'", args
        ).fetchone()
        return int(total)

    def pending(self, guild_id: int, user_id: int | None, offset: int, limit: int, newest_first: bool) -> list[Order]:
        where, args = self._where(guild_id, user_id)
        rows = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE {where} AND status = 'pending'"
            f" ORDER BY id {'DESC' if newest_first else 'ASC'} LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        return [order_of(r) for r in rows]

    @staticmethod
    def _where(guild_id: int, user_id: int | None) -> tuple[str, list[int]]:
        if user_id is None:
            return "guild_id = ?", [guild_id]
        return "guild_id = ? AND user_id = ?", [guild_id, user_id]

    def count(self, guild_id: int, user_id: int | None) -> int:
        where, args = self._where(guild_id, user_id)
        (total,) = self.conn.execute(f"SELECT COUNT(*) FROM orders WHERE {where}", args).fetchone()
        return int(total)

    def page(self, guild_id: int, user_id: int | None, offset: int, limit: int) -> list[Order]:
        where, args = self._where(guild_id, user_id)
        rows = self.conn.execute(
            f"SELECT {ORDER_COLUMNS} FROM orders WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            (*args, limit, offset),
        ).fetchall()
        return [order_of(r) for r in rows]


class DeliveryRows(Rows):
    __slots__ = ()

    def add(
        self,
        order: Order,
        action: str,
        role_id: int | None,
        now: int,
        reason: str | None = None,
        channel_id: int | None = None,
    ) -> None:
        self.conn.execute(
            "INSERT INTO deliveries (guild_id, user_id, order_id, action, role_id, due_at, reason, created_at,"
            " channel_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (order.guild_id, order.user_id, order.id, action, role_id, now, reason, now, channel_id),
        )

    def by_id(self, delivery_id: int) -> Delivery | None:
        row = self.conn.execute(f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?", (delivery_id,)).fetchone()
        return None if row is None else delivery_of(row)

    def of_action(self, order_id: int, action: str) -> tuple[int, str, int, str | None, str | None] | None:
        row = self.conn.execute(
            "SELECT id, status, attempts, claimed_by, reason FROM deliveries WHERE order_id = ? AND action = ?",
            (order_id, action),
        ).fetchone()
        return cast("tuple[int, str, int, str | None, str | None] | None", row)

    def due(self, now: int, limit: int) -> list[Delivery]:
        rows = self.conn.execute(
            f"SELECT {', '.join('d.' + c.strip() for c in DELIVERY_COLUMNS.split(','))} FROM deliveries d"
            f" WHERE {CLAIMABLE} ORDER BY d.due_at, d.id LIMIT ?",
            (now, limit),
        ).fetchall()
        return [delivery_of(r) for r in rows]

    def of_order(self, guild_id: int, order_id: int) -> list[Delivery]:
        rows = self.conn.execute(
            f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE guild_id = ? AND order_id = ? ORDER BY id",
            (guild_id, order_id),
        ).fetchall()
        return [delivery_of(r) for r in rows]

    def claim(self, delivery_id: int, worker: str, now: int) -> bool:
        cursor = self.conn.execute(
            "UPDATE deliveries AS d SET claimed_by = ?, claimed_at = ?, attempts = attempts + 1"
            f" WHERE d.id = ? AND {CLAIMABLE}",
            (worker, now, delivery_id, now),
        )
        return cursor.rowcount == 1

    def fail_claims_of_others(self, worker: str, actions: Sequence[str], claimed_before: int, now: int) -> None:
        self.conn.execute(
            "UPDATE deliveries SET status = 'failed', reason = 'unknown', claimed_by = NULL, claimed_at = NULL,"
            " settled_at = ? WHERE claimed_by IS NOT NULL AND claimed_by <> ?"
            f" AND action IN ({', '.join('?' * len(actions))}) AND claimed_at < ?",
            (now, worker, *actions, claimed_before),
        )

    def release_claims_of_others(self, worker: str) -> int:
        return self.conn.execute(
            "UPDATE deliveries SET claimed_by = NULL, claimed_at = NULL"
            " WHERE claimed_by IS NOT NULL AND claimed_by <> ?",
            (worker,),
        ).rowcount

    def reschedule(self, delivery_id: int, worker: str, due_at: int, error: str | None) -> bool:
        cursor = self.conn.execute(
            "UPDATE deliveries SET claimed_by = NULL, claimed_at = NULL, due_at = ?, last_error = ?"
            " WHERE id = ? AND claimed_by = ?",
            (due_at, error, delivery_id, worker),
        )
        return cursor.rowcount == 1

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
        cursor = self.conn.execute(
            "UPDATE deliveries SET status = ?, reason = COALESCE(?, reason), last_error = COALESCE(?, last_error),"
            " claimed_by = NULL, claimed_at = NULL, settled_at = ? WHERE id = ? AND claimed_by = ?"
            + (" AND status = 'pending'" if only_pending else ""),
            (status, reason, error, now, delivery_id, worker),
        )
        return cursor.rowcount == 1

    def cancel(self, delivery_id: int, now: int) -> None:
        self.conn.execute("UPDATE deliveries SET status = 'cancelled', settled_at = ? WHERE id = ?", (now, delivery_id))

    def cancel_unclaimed(self, order_id: int, action: str, now: int) -> None:
        self.conn.execute(
            "UPDATE deliveries SET status = 'cancelled', settled_at = ? WHERE order_id = ?"
            " AND action = ? AND status = 'pending' AND claimed_by IS NULL",
            (now, order_id, action),
        )


class ItemCodeRows(Rows):
    __slots__ = ()

    def add(self, guild_id: int, item_id: int, codes: Iterable[str], now: int) -> int:
        cursor = self.conn.executemany(
            "INSERT INTO item_codes (guild_id, item_id, code, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (item_id, code) DO NOTHING",
            ((guild_id, item_id, code, now) for code in codes),
        )
        return int(cursor.rowcount)

    def take(self, item_id: int, order_id: int) -> bool:
        cursor = self.conn.execute(
            "UPDATE item_codes SET order_id = ? WHERE id = (SELECT id FROM item_codes INDEXED BY item_codes_unused"
            " WHERE item_id = ? AND order_id IS NULL ORDER BY id LIMIT 1)",
            (order_id, item_id),
        )
        return cursor.rowcount == 1

    def of_orders(self, guild_id: int, user_id: int, order_ids: Sequence[int]) -> dict[int, str]:
        if not order_ids:
            return {}
        rows = self.conn.execute(
            "SELECT c.order_id, c.code FROM item_codes c JOIN orders o ON o.id = c.order_id"
            f" WHERE o.guild_id = ? AND o.user_id = ? AND c.order_id IN ({', '.join('?' * len(order_ids))})",
            (guild_id, user_id, *order_ids),
        ).fetchall()
        return {int(order_id): str(code) for order_id, code in rows}

    def counts(self, item_id: int) -> tuple[int, int]:
        (unused, sold) = self.conn.execute(
            "SELECT COUNT(*) - COUNT(order_id), COUNT(order_id) FROM item_codes WHERE item_id = ?", (item_id,)
        ).fetchone()
        return int(unused), int(sold)
