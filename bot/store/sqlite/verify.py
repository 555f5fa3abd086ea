"""The invariants of SPEC §2 checked in SQL over the whole database (`python -m bot verify`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any


def verify_invariants(conn: sqlite3.Connection, now: int) -> list[str]:
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
