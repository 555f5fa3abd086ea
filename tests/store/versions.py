"""Databases at other schema versions, built for real: an "old" one with only 0001 applied by the
migrate module, and a "newer" one whose user_version is above the code's."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import bot.store.migrate as migrate_mod

GUILD = 1001
ALICE = 11


def migrated_to(db: Path, version: int) -> Path:
    """Apply migrations 1..`version` only, as that release did."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        for _, path in migrate_mod.migrations()[:version]:
            shutil.copy(path, folder)
        with (
            mock.patch.object(migrate_mod, "MIGRATIONS", Path(folder)),
            contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn,
        ):
            assert migrate_mod.migrate(conn) == version
    return db


def old_database(db: Path, version: int = 1, guild_id: int = GUILD, user_id: int = ALICE) -> Path:
    """Apply migrations 1..`version` only, as that release did, and write a member's grant of 100."""
    migrated_to(db, version)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executescript(
            f"""
            BEGIN;
            INSERT INTO accounts (guild_id, user_id, created_at) VALUES ({guild_id}, {user_id}, 0);
            INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, source, created_at)
                VALUES (1, {guild_id}, {user_id}, 'promo', 100, 100, 0, 'grant', 0);
            INSERT INTO entries (guild_id, user_id, lot_id, type, amount, created_at)
                VALUES ({guild_id}, {user_id}, 1, 'grant', 100, 0);
            COMMIT;
            """
        )
    return db


#: The shop of `shop_database`: what a server had before fulfilment (schema version 3).
V3_SHOP = f"""
BEGIN;
INSERT INTO accounts (guild_id, user_id, created_at) VALUES ({GUILD}, {ALICE}, 0), ({GUILD}, 12, 0);
INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, source, created_at, status)
    VALUES (1, {GUILD}, {ALICE}, 'promo', 100, 10, 0, 'grant', 0, 'active'),
           (2, {GUILD}, 12, 'gift', 50, 50, 0, 'grant', 0, 'active');
INSERT INTO entries (id, guild_id, user_id, lot_id, type, amount, created_at)
    VALUES (1, {GUILD}, {ALICE}, 1, 'grant', 100, 0), (2, {GUILD}, 12, 2, 'grant', 50, 0);
INSERT INTO shop_items (id, guild_id, name, name_key, price, category, stock, role_id, created_at)
    VALUES (1, {GUILD}, 'VIP', 'vip', 60, 'perks', NULL, 777, 0),
           (2, {GUILD}, 'Mug', 'mug', 30, 'merch', 4, NULL, 0);
INSERT INTO orders (id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,
                    gift_applied, forfeited, role_id, status, created_at, refunded_at, refund_reason)
    VALUES (7, {GUILD}, {ALICE}, 1, 'VIP', 1, 60, 60, 60, 0, 0, 777, 'completed', 10, NULL, NULL),
           (9, {GUILD}, {ALICE}, 2, 'Mug', 1, 30, 30, 30, 0, 0, NULL, 'completed', 20, NULL, NULL),
           (12, {GUILD}, {ALICE}, 2, 'Mug', 1, 30, 30, 30, 0, 0, NULL, 'refunded', 30, 40, 'broken');
INSERT INTO entries (id, guild_id, user_id, lot_id, type, amount, order_id, created_at)
    VALUES (3, {GUILD}, {ALICE}, 1, 'spend', -60, 7, 10), (4, {GUILD}, {ALICE}, 1, 'spend', -30, 9, 20),
           (5, {GUILD}, {ALICE}, 1, 'spend', -30, 12, 30), (6, {GUILD}, {ALICE}, 1, 'refund', 30, 12, 40);
INSERT INTO deliveries (id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, created_at,
                        settled_at, reason)
    VALUES (3, {GUILD}, {ALICE}, 7, 'add_role', 777, 'done', 1, 10, 10, 11, NULL),
           (5, {GUILD}, {ALICE}, 12, 'dm_refund', NULL, 'pending', 2, 50, 40, NULL, 'role_deleted');
INSERT INTO audit_log (guild_id, actor_id, action, details, created_at) VALUES ({GUILD}, 9, 'refund', '{{}}', 40);
INSERT INTO idempotency (key, guild_id, operation, result, created_at) VALUES ('old-buy', {GUILD}, 'checkout',
    '{{"id":7,"guild_id":{GUILD},"user_id":{ALICE},"item_id":1,"item_name":"VIP","quantity":1,"unit_price":60,'
    || '"total":60,"promo_applied":60,"gift_applied":0,"forfeited":0,"role_id":777,"status":"completed",'
    || '"created_at":10,"refunded_at":null}}', 10);
COMMIT;
"""


def shop_database(db: Path) -> Path:
    """A database of schema version 3 (the last before fulfilment) with a shop: items, orders
    completed and refunded (ids with gaps), their entries and deliveries."""
    migrated_to(db, 3)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.executescript(V3_SHOP)
    return db


def newer_database(db: Path) -> Path:
    """A file from a release after this one: the current schema and then some."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        migrate_mod.migrate(conn)
        conn.execute("CREATE TABLE future_thing (x INTEGER)")
        conn.execute(f"PRAGMA user_version = {migrate_mod.code_version() + 1}")
    return db


def user_version(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@dataclass(frozen=True)
class FileState:
    """What "the file was not modified" means: same bytes, same mtime, same schema version."""

    digest: str
    mtime_ns: int
    version: int


def file_state(db: Path) -> FileState:
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    mtime = db.stat().st_mtime_ns
    return FileState(digest, mtime, user_version(db))


def siblings(db: Path) -> set[str]:
    """The files beside the database, other than it and its lock."""
    return {p.name for p in db.parent.iterdir()} - {db.name, f"{db.name}.lock"}
