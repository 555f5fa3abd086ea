"""Versioned SQL migrations tracked by PRAGMA user_version (STYLE.md point 8).

A fresh file gets every migration; reopening changes nothing; a file from a newer release is
refused; a migration that fails half-way leaves the previous version and no trace of itself.

SQLite only: PostgreSQL's own migrations are tested in tests/store/test_postgres.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

import bot.store.migrate as migrate_mod
from bot.app.ledger import Ledger
from bot.app.upkeep import set_state
from bot.store.ports import Tx
from bot.store.sqlite import SqliteStore
from tests.conftest import ALICE, GUILD, MOD

SHIPPED = migrate_mod.MIGRATIONS
SHIPPED_FILES = sorted(p.name for p in SHIPPED.iterdir() if re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", p.name))


def user_version(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def schema(db: Path) -> list[tuple[str, str, str | None]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


async def open_store(db: Path) -> SqliteStore:
    store = SqliteStore(db)
    await store.open()
    return store


@pytest.fixture
def migrations_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped migrations that the test may extend; migrate() reads it."""
    folder = tmp_path / "migrations"
    folder.mkdir()
    for name in SHIPPED_FILES:
        shutil.copy(SHIPPED / name, folder / name)
    monkeypatch.setattr(migrate_mod, "MIGRATIONS", folder)
    return folder


def test_shipped_migrations_are_numbered_from_one_without_gaps():
    assert SHIPPED_FILES, "no migration files found"
    assert [int(name[:4]) for name in SHIPPED_FILES] == list(range(1, len(SHIPPED_FILES) + 1))
    assert [n for n, _ in migrate_mod.migrations()] == list(range(1, len(SHIPPED_FILES) + 1))


async def test_fresh_database_gets_every_migration(tmp_path: Path):
    db = tmp_path / "fresh.sqlite3"
    store = await open_store(db)
    await store.close()

    assert user_version(db) == len(SHIPPED_FILES)
    tables = {name for kind, name, _ in schema(db) if kind == "table"}
    assert {"lots", "entries", "orders", "idempotency", "promo_codes", "gift_cards"} <= tables


async def test_reopening_is_a_no_op(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    db = tmp_path / "ledger.sqlite3"
    store = await open_store(db)
    try:
        await Ledger(store).grant(GUILD, ALICE, 42, actor_id=MOD, key="k1")
    finally:
        await store.close()
    before = schema(db)

    caplog.set_level(logging.INFO, logger="bot.store.migrate")
    for _ in range(2):
        store = await open_store(db)
        try:
            assert (await Ledger(store).balance(GUILD, ALICE)).total == 42
        finally:
            await store.close()

    assert [r for r in caplog.records if "applying migration" in r.getMessage()] == []
    assert schema(db) == before
    assert user_version(db) == len(SHIPPED_FILES)


def _newer_database(tmp_path: Path) -> Path:
    db = tmp_path / "from-the-future.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future_thing (x INTEGER)")
    conn.execute(f"PRAGMA user_version = {len(SHIPPED_FILES) + 1}")
    conn.commit()
    conn.close()
    return db


async def test_newer_schema_is_refused_with_a_clear_error(tmp_path: Path):
    db = _newer_database(tmp_path)
    before = schema(db)
    store = SqliteStore(db)
    try:
        with pytest.raises(RuntimeError, match=r"schema version \d+, newer than this code.*upgrade Promo Balance"):
            await store.open()
    finally:
        await store.close()
    assert user_version(db) == len(SHIPPED_FILES) + 1
    assert schema(db) == before  # nothing was applied to it


async def test_a_refused_open_leaves_no_connection_behind(tmp_path: Path):
    db = _newer_database(tmp_path)
    before = set(threading.enumerate())
    store = SqliteStore(db)
    try:
        with pytest.raises(RuntimeError, match="newer than this code"):
            await store.open()
        leftover: list[threading.Thread] = []
        for _ in range(50):  # a closed aiosqlite connection's thread ends at once
            leftover = [t for t in threading.enumerate() if t not in before and t.is_alive()]
            if not leftover:
                break
            await asyncio.sleep(0.01)
        assert leftover == []
    finally:
        await store.close()  # the test itself must not leave the thread running


async def test_a_failing_migration_is_rolled_back_entirely(tmp_path: Path, migrations_dir: Path):
    db = tmp_path / "ledger.sqlite3"
    store = await open_store(db)
    try:
        await Ledger(store).grant(GUILD, ALICE, 42, actor_id=MOD, key="k1")
    finally:
        await store.close()
    version = len(SHIPPED_FILES)
    before = schema(db)

    broken = migrations_dir / f"{version + 1:04d}_broken.sql"
    broken.write_text(
        "CREATE TABLE half_done (x INTEGER);\n"
        "INSERT INTO half_done VALUES (1);\n"
        "ALTER TABLE lots ADD COLUMN note TEXT;\n"
        "UPDATE lots SET note = 'touched';\n"
        "INSERT INTO no_such_table VALUES (1);\n",  # fails here, after four statements succeeded
        encoding="utf-8",
    )
    store = SqliteStore(db)
    try:
        with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
            await store.open()
    finally:
        await store.close()

    assert user_version(db) == version
    assert schema(db) == before  # no half_done table, no new column
    # The next start, with the migration fixed, applies it (and only it) and the data is intact.
    broken.write_text("CREATE TABLE half_done (x INTEGER);\n", encoding="utf-8")
    store = await open_store(db)
    try:
        assert (await Ledger(store).balance(GUILD, ALICE)).total == 42
        assert await Ledger(store).verify() == []
    finally:
        await store.close()
    assert user_version(db) == version + 1
    assert "half_done" in {name for _, name, _ in schema(db)}


async def test_a_fresh_database_stops_at_the_last_good_migration(tmp_path: Path, migrations_dir: Path):
    version = len(SHIPPED_FILES)
    (migrations_dir / f"{version + 1:04d}_broken.sql").write_text(
        "CREATE TABLE half_done (x INTEGER);\nTHIS IS NOT SQL;\n", encoding="utf-8"
    )
    db = tmp_path / "fresh.sqlite3"
    store = SqliteStore(db)
    try:
        with pytest.raises(sqlite3.OperationalError):
            await store.open()
    finally:
        await store.close()
    assert user_version(db) == version
    names = {name for _, name, _ in schema(db)}
    assert "lots" in names
    assert "half_done" not in names


async def test_a_gap_in_the_numbering_is_refused(tmp_path: Path, migrations_dir: Path):
    (migrations_dir / f"{len(SHIPPED_FILES) + 2:04d}_skipped_one.sql").write_text(
        "CREATE TABLE t (x INTEGER);\n", encoding="utf-8"
    )
    store = SqliteStore(tmp_path / "gap.sqlite3")
    try:
        with pytest.raises(RuntimeError, match="without gaps"):
            await store.open()
    finally:
        await store.close()


async def test_two_stores_opening_a_fresh_file_at_once_both_succeed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The bot and `python -m bot verify` started together on a new install."""
    barrier = threading.Barrier(2)
    real = migrate_mod.migrations

    def in_step() -> list[tuple[int, Path]]:
        # Both worker threads meet here, inside migrate(), after each has read user_version: the
        # race made certain. A fixed migrate() that reads the version under the write lock just
        # times out here. Calls on the event loop's thread (open()'s version checks) pass by.
        if threading.current_thread() is not threading.main_thread():
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=2)
        return real()

    monkeypatch.setattr(migrate_mod, "migrations", in_step)
    db = tmp_path / "new-install.sqlite3"
    stores = [SqliteStore(db), SqliteStore(db)]
    try:
        results = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
        assert results == [None, None]
    finally:
        for s in stores:
            await s.close()
    assert user_version(db) == len(SHIPPED_FILES)


async def test_old_idempotency_keys_are_pruned_and_recent_ones_kept(tmp_path: Path):
    """Keys only matter while Discord can redeliver an interaction; a month later they are garbage."""
    from bot.app.ledger import KEEP_KEYS_SECONDS, Ledger
    from tests.conftest import Clock

    store = SqliteStore(tmp_path / "keys.sqlite3")
    await store.open()
    try:
        clock = Clock()
        ledger = Ledger(store, clock=clock)
        first = await ledger.grant(1, 11, 10, actor_id=9, key="old")
        clock.advance(seconds=KEEP_KEYS_SECONDS + 1)
        await ledger.grant(1, 11, 10, actor_id=9, key="new")
        assert await ledger.prune_idempotency() == 1
        assert await store.read(find_key, "old") is None
        assert await store.read(find_key, "new") is not None
        assert (await ledger.grant(1, 11, 10, actor_id=9, key="new")).count == 1  # still a replay
        assert len(await ledger.lots(1, 11)) == 2
        assert first.first_lot_id in {lot.id for lot in await ledger.lots(1, 11)}
        assert await ledger.verify() == []
    finally:
        await store.close()


def _version_1_database_with_a_role_order(db: Path, migrations: Path) -> None:
    """Version 1 gave roles in memory: its paid orders have no delivery rows."""
    for path in migrations.iterdir():
        if not path.name.startswith("0001_"):
            path.unlink()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        assert migrate_mod.migrate(conn) == 1
        conn.executescript(
            f"""
            BEGIN;
            INSERT INTO accounts (guild_id, user_id, created_at) VALUES ({GUILD}, {ALICE}, 0);
            INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, source, created_at)
                VALUES (1, {GUILD}, {ALICE}, 'promo', 100, 40, 0, 'grant', 0);
            INSERT INTO shop_items (id, guild_id, name, name_key, price, category, role_id, created_at)
                VALUES (1, {GUILD}, 'VIP', 'vip', 60, 'perks', 777, 0);
            INSERT INTO orders (id, guild_id, user_id, item_id, item_name, quantity, unit_price, total,
                                promo_applied, gift_applied, role_id, created_at)
                VALUES (1, {GUILD}, {ALICE}, 1, 'VIP', 1, 60, 60, 60, 0, 777, 0);
            INSERT INTO entries (guild_id, user_id, lot_id, type, amount, created_at)
                VALUES ({GUILD}, {ALICE}, 1, 'grant', 100, 0);
            INSERT INTO entries (guild_id, user_id, lot_id, type, amount, order_id, created_at)
                VALUES ({GUILD}, {ALICE}, 1, 'spend', -60, 1, 0);
            COMMIT;
            """
        )
    finally:
        conn.close()


async def test_a_database_from_before_deliveries_upgrades_and_its_orders_still_lose_their_role_on_refund(
    tmp_path: Path, migrations_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """After the upgrade, a refund of an order from version 1 still takes its role back, now
    through the delivery worker."""
    db = tmp_path / "v1.sqlite3"
    _version_1_database_with_a_role_order(db, migrations_dir)
    monkeypatch.setattr(migrate_mod, "MIGRATIONS", SHIPPED)

    store = await open_store(db)
    try:
        ledger = Ledger(store)
        assert await ledger.verify() == []
        assert await ledger.order_deliveries(GUILD, 1) == []  # nothing owed: it was delivered then
        await ledger.refund(GUILD, 1, actor_id=MOD, key="refund")
        [removal, dm] = await ledger.order_deliveries(GUILD, 1)
        assert (removal.action, removal.role_id, removal.user_id, removal.status) == (
            "remove_role",
            777,
            ALICE,
            "pending",
        )
        assert (dm.action, dm.user_id, dm.status) == ("dm_refunded", ALICE, "pending")
        assert (await ledger.balance(GUILD, ALICE)).total == 100
        assert await ledger.verify() == []
    finally:
        await store.close()
    assert user_version(db) == len(SHIPPED_FILES)


async def test_opened_without_migrating_an_old_database_stays_as_it_is(tmp_path: Path):
    """SqliteStore(migrate=False), as `backup`, `verify`, `export` and `db status` open it."""
    from tests.store.versions import file_state, old_database, siblings

    db = old_database(tmp_path / "old.sqlite3")
    before = file_state(db)
    store = SqliteStore(db, migrate=False)
    await store.open()
    try:
        assert store.schema_version == 1
        assert store.upgrade is None
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await store.write(set_state, "k", "v")
    finally:
        await store.close()
    assert file_state(db) == before
    assert siblings(db) == set()


async def test_opened_without_migrating_a_missing_database_is_an_error_and_creates_nothing(tmp_path: Path):
    db = tmp_path / "none" / "missing.sqlite3"
    store = SqliteStore(db, migrate=False)
    with pytest.raises(sqlite3.OperationalError, match="unable to open"):
        await store.open()
    await store.close()
    assert not db.parent.exists()


async def test_opened_for_writing_an_old_database_is_backed_up_first_and_says_what_it_did(tmp_path: Path):
    from tests.store.versions import old_database, siblings

    db = old_database(tmp_path / "old.sqlite3")
    store = SqliteStore(db)
    await store.open()
    try:
        upgrade = store.upgrade
        assert upgrade is not None
        assert (upgrade.from_version, upgrade.to_version) == (1, len(SHIPPED_FILES))
        assert upgrade.applied == tuple(name.removesuffix(".sql") for name in SHIPPED_FILES[1:])
        assert upgrade.backup is not None
        assert upgrade.backup.parent == tmp_path
        assert re.fullmatch(rf"old\.before-v{len(SHIPPED_FILES)}-\d{{8}}T\d{{6}}Z\.sqlite3", upgrade.backup.name)
        assert user_version(upgrade.backup) == 1
    finally:
        await store.close()
    assert siblings(db) == {upgrade.backup.name}


def test_backup_names_never_reuse_a_file(tmp_path: Path):
    from datetime import UTC, datetime

    db = tmp_path / "pb.sqlite3"
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    first = migrate_mod.backup_path(db, 3, now)
    assert first.name == "pb.before-v3-20260102T030405Z.sqlite3"
    first.write_bytes(b"")
    assert migrate_mod.backup_path(db, 3, now).name == "pb.before-v3-20260102T030405Z-2.sqlite3"


def find_key(tx: Tx, key: str) -> object:
    return tx.idempotency.find(key)


# --- 0004: fulfilment (issue 10) ---------------------------------------------------------------------

V3_ORDER_COLUMNS = (
    "id, guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied, gift_applied,"
    " forfeited, role_id, status, created_at, refunded_at, refund_reason"
)
V3_DELIVERY_COLUMNS = (
    "id, guild_id, user_id, order_id, action, role_id, status, attempts, due_at, claimed_by, claimed_at, reason,"
    " last_error, created_at, settled_at"
)


def rows_of(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_a_shop_from_before_fulfilment_upgrades_with_every_row_and_id_intact(tmp_path: Path):
    """Version 3 had orders, their entries and deliveries: the rebuilt tables keep every row and
    id, entries and deliveries still point at their orders, items become instant, orders keep their
    status, and the file as it was is backed up first."""
    from bot.domain.errors import Conflict
    from tests.store.versions import shop_database, siblings

    db = shop_database(tmp_path / "v3.sqlite3")
    orders_before = rows_of(db, f"SELECT {V3_ORDER_COLUMNS} FROM orders ORDER BY id")
    deliveries_before = rows_of(db, f"SELECT {V3_DELIVERY_COLUMNS} FROM deliveries ORDER BY id")
    kept = {table: rows_of(db, f"SELECT * FROM {table} ORDER BY 1") for table in ("entries", "lots", "audit_log")}
    items_before = rows_of(db, "SELECT * FROM shop_items ORDER BY id")
    assert len(orders_before) == 3
    assert len(deliveries_before) == 2

    store = await open_store(db)
    try:
        upgrade = store.upgrade
        assert upgrade is not None
        assert (upgrade.from_version, upgrade.applied) == (3, ("0004_fulfilment",))
        assert upgrade.backup is not None
        assert user_version(upgrade.backup) == 3
        assert rows_of(upgrade.backup, f"SELECT {V3_ORDER_COLUMNS} FROM orders ORDER BY id") == orders_before
        assert siblings(db) >= {upgrade.backup.name}

        assert rows_of(db, f"SELECT {V3_ORDER_COLUMNS} FROM orders ORDER BY id") == orders_before
        assert rows_of(db, f"SELECT {V3_DELIVERY_COLUMNS} FROM deliveries ORDER BY id") == deliveries_before
        assert {table: rows_of(db, f"SELECT * FROM {table} ORDER BY 1") for table in kept} == kept
        assert [(*row, "instant") for row in items_before] == rows_of(db, "SELECT * FROM shop_items ORDER BY id")
        # The new columns: instant orders, nobody acted on them but a refund (whose time is kept).
        assert rows_of(db, "SELECT id, delivery, acted_by, acted_at, note, post_channel_id FROM orders") == [
            (7, "instant", None, None, None, None),
            (9, "instant", None, None, None, None),
            (12, "instant", None, 40, None, None),
        ]
        assert rows_of(db, "SELECT channel_id FROM deliveries") == [(None,), (None,)]
        assert rows_of(db, "PRAGMA foreign_key_check") == []
        assert rows_of(db, "PRAGMA integrity_check") == [("ok",)]
        indexes = {name for (name,) in rows_of(db, "SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {
            "orders_member",
            "orders_item_member",
            "orders_pending",
            "deliveries_due",
            "deliveries_claimed",
            "item_codes_unused",
        } <= indexes
        assert not {name for (name,) in rows_of(db, "SELECT name FROM sqlite_master") if "before_v4" in name}

        ledger = Ledger(store)
        assert await ledger.verify() == []
        old = await ledger.order(GUILD, 7)
        assert old is not None
        assert (old.status, old.delivery, old.role_id) == ("completed", "instant", 777)
        # A click Discord delivers again gets its first answer, stored by the old release.
        assert await ledger.checkout(GUILD, ALICE, 1, key="old-buy") == old
        with pytest.raises(Conflict, match="not waiting for staff"):
            await ledger.fulfil(GUILD, 7, actor_id=MOD, key="f")
        with pytest.raises(Conflict, match="already refunded"):
            await ledger.refund(GUILD, 12, actor_id=MOD, key="r0")
        # The old orders refund as before (and now tell the member); new ids follow the old ones.
        refund = await ledger.refund(GUILD, 9, actor_id=MOD, key="r1")
        assert refund.returned == 30
        assert (await ledger.item(GUILD, 2)).stock == 5
        assert [d.action for d in await ledger.order_deliveries(GUILD, 9)] == ["dm_refunded"]
        staff = await ledger.add_item(GUILD, "Emoji", 5, "perks", actor_id=MOD, key="i", delivery="staff")
        order = await ledger.checkout(GUILD, ALICE, staff.id, key="c")
        assert (order.id, order.status) == (13, "pending")
        assert await ledger.verify() == []
    finally:
        await store.close()
    # The foreign keys still hold after the rebuild.
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            conn.execute(
                "INSERT INTO deliveries (guild_id, user_id, order_id, action, due_at, created_at)"
                " VALUES (1, 1, 999, 'dm_refunded', 0, 0)"
            )
        with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
            conn.execute("UPDATE orders SET status = 'pending' WHERE id = 7")  # an instant order never waits
    finally:
        conn.close()


async def test_an_upgraded_database_has_the_schema_of_a_new_one(tmp_path: Path):
    from tests.store.versions import shop_database

    fresh = tmp_path / "fresh.sqlite3"
    for db in (fresh, shop_database(tmp_path / "v3.sqlite3")):
        store = await open_store(db)
        await store.close()
    assert schema(tmp_path / "v3.sqlite3") == schema(fresh)
