"""The invariants of SPEC §2 checked in SQL over the whole database (`python -m bot verify`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.store.sql import Connection


def verify_invariants(conn: Connection, now: int) -> list[str]:
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
        "SELECT o.id, o.status FROM orders o WHERE o.status IN ('refunded', 'cancelled')"
        " AND (SELECT COALESCE(SUM(amount), 0) FROM entries e WHERE e.order_id = o.id AND e.type = 'refund')"
        " <> (SELECT COALESCE(-SUM(amount), 0) FROM entries e WHERE e.order_id = o.id"
        " AND e.type IN ('spend', 'forfeit'))",
        (),
        lambda r: f"order {r[0]}: {r[1]}, but its refund entries do not match what it took",
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
        " OR (d.action = 'add_role' AND d.status = 'pending' AND d.claimed_by IS NULL"
        " AND o.status IN ('refunded', 'cancelled'))",
        (),
        lambda r: f"delivery {r[0]}: not that of its order #{r[1]} (another member, or the role of a refunded order)",
    )
    fulfilment_invariants(check)
    return problems


def fulfilment_invariants(check: Callable[[str, Sequence[Any], Callable[[Sequence[Any]], str]], None]) -> None:
    """Delivery and fulfilment (SPEC §3): an order's status fits its delivery and its entries, a
    code item's stock is its unused codes, and each sold code belongs to one order of its item.
    (The problems name ids, never a code.)"""
    check(
        "SELECT o.id, o.delivery, i.delivery FROM orders o JOIN shop_items i ON i.id = o.item_id"
        " WHERE o.delivery <> i.delivery OR o.guild_id <> i.guild_id",
        (),
        lambda r: f"order {r[0]}: delivery {r[1]} but its item's is {r[2]} (or the item is of another server)",
    )
    check(
        "SELECT id, status, delivery FROM orders WHERE (delivery = 'staff' AND status = 'completed')"
        " OR (delivery <> 'staff' AND status IN ('pending', 'fulfilled', 'cancelled'))",
        (),
        lambda r: f"order {r[0]}: status {r[1]} is not one a {r[2]} order can have",
    )
    check(
        "SELECT id FROM orders WHERE status = 'pending' AND (acted_by IS NOT NULL OR acted_at IS NOT NULL"
        " OR note IS NOT NULL OR refunded_at IS NOT NULL OR refund_reason IS NOT NULL)",
        (),
        lambda r: f"order {r[0]}: pending, but marked as acted on, fulfilled or refunded",
    )
    check(
        "SELECT id, status FROM orders WHERE (status IN ('fulfilled', 'cancelled') AND acted_at IS NULL)"
        " OR (status IN ('refunded', 'cancelled') AND refunded_at IS NULL)"
        " OR (status IN ('completed', 'pending', 'fulfilled') AND refunded_at IS NOT NULL)",
        (),
        lambda r: f"order {r[0]}: {r[1]}, but its times say otherwise (acted_at, refunded_at)",
    )
    check(
        "SELECT o.id, o.status FROM orders o WHERE o.status IN ('completed', 'pending', 'fulfilled')"
        " AND EXISTS (SELECT 1 FROM entries e WHERE e.order_id = o.id AND e.type = 'refund')",
        (),
        lambda r: f"order {r[0]}: {r[1]}, but it has refund entries",
    )
    check(
        "SELECT d.id, d.action, o.id, o.status FROM deliveries d JOIN orders o ON o.id = d.order_id WHERE"
        " (d.action IN ('post_order', 'edit_post', 'dm_fulfilled', 'dm_denied', 'dm_cancelled')"
        " AND o.delivery <> 'staff')"
        " OR (d.action IN ('edit_post', 'dm_fulfilled', 'dm_denied', 'dm_cancelled', 'dm_refunded', 'dm_refund')"
        " AND o.status = 'pending')"
        " OR (d.action = 'dm_cancelled' AND o.status <> 'cancelled')"
        " OR (d.action IN ('dm_denied', 'dm_refunded', 'dm_refund') AND o.status <> 'refunded')"
        " OR (d.action = 'dm_fulfilled' AND o.status NOT IN ('fulfilled', 'refunded'))",
        (),
        lambda r: f"delivery {r[0]}: {r[1]} does not fit its order #{r[2]} ({r[3]})",
    )
    check(
        "SELECT * FROM (SELECT i.id, i.stock, (SELECT COUNT(*) FROM item_codes c WHERE c.item_id = i.id"
        " AND c.order_id IS NULL) AS unused FROM shop_items i WHERE i.delivery = 'code') AS s"
        " WHERE s.stock IS NULL OR s.stock <> s.unused",
        (),
        lambda r: f"item {r[0]}: a code item with stock {r[1]} but {r[2]} unused codes",
    )
    check(
        "SELECT c.item_id, COUNT(*) FROM item_codes c JOIN shop_items i ON i.id = c.item_id"
        " WHERE i.delivery <> 'code' OR i.guild_id <> c.guild_id GROUP BY c.item_id",
        (),
        lambda r: f"item {r[0]}: {r[1]} codes, but it is not a code item of their server",
    )
    check(
        "SELECT c.id, c.order_id FROM item_codes c LEFT JOIN orders o ON o.id = c.order_id"
        " WHERE c.order_id IS NOT NULL AND (o.id IS NULL OR o.item_id <> c.item_id OR o.delivery <> 'code'"
        " OR o.status NOT IN ('completed', 'refunded'))",
        (),
        lambda r: f"code {r[0]}: sold to order #{r[1]}, which is no completed or refunded order of its item",
    )
    check(
        "SELECT * FROM (SELECT o.id, o.quantity, (SELECT COUNT(*) FROM item_codes c WHERE c.order_id = o.id)"
        " AS codes FROM orders o WHERE o.delivery = 'code') AS s WHERE s.quantity <> 1 OR s.codes <> 1",
        (),
        lambda r: f"order {r[0]}: a code order of quantity {r[1]} with {r[2]} codes (one each)",
    )
