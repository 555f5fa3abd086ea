"""What is PostgreSQL's own in the PostgreSQL store (the ledger suites, tests/app and
tests/store/test_concurrency.py, run on both stores): the schema guarding itself (append-only
entries, CHECKs, unique and foreign keys), the migration runner, the read-only mode, retries of a
serialization failure, backups with pg_dump, the password kept out of the logs, and `make_store`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from bot.app.ledger import Ledger
from bot.config import Settings
from bot.store import factory
from bot.store.migrate import SchemaTooNew
from bot.store.ports import Tx
from bot.store.postgres import PostgresStore
from bot.store.postgres import migrate as pg_migrate
from bot.store.postgres.connection import pg_sql
from bot.store.sqlite import SqliteStore
from tests import pgserver
from tests.conftest import ALICE, GUILD, MOD, Clock


@pytest.fixture
async def pg_store(pg_url: str):
    store = PostgresStore(pg_url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def sql(url: str, statement: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """One statement (SQLite's spelling) in a transaction of its own, behind the store's back."""
    with psycopg.connect(url, cursor_factory=psycopg.ClientCursor) as conn:
        cursor = conn.execute(pg_sql(statement), args)
        return [tuple(row) for row in cursor.fetchall()] if cursor.description else []


# --- the schema guards itself ---------------------------------------------------------------------


async def test_entries_are_append_only_even_for_truncate(pg_store: PostgresStore):
    await Ledger(pg_store).grant(GUILD, ALICE, 20, actor_id=MOD, key="g")
    for statement in ("UPDATE entries SET amount = 1000", "DELETE FROM entries", "TRUNCATE entries CASCADE"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            sql(pg_store.url, statement)
    assert sql(pg_store.url, "SELECT amount FROM entries") == [(20,)]


REFUSED = {
    "a second item of the same name": (
        "INSERT INTO shop_items (guild_id, name, name_key, price, category, created_at)"
        " VALUES (1001, 'Cap', 'sticker', 5, 'merch', 1)",
        psycopg.errors.UniqueViolation,
    ),
    "an order over its price": (
        "INSERT INTO orders (guild_id, user_id, item_id, item_name, quantity, unit_price, total, promo_applied,"
        " gift_applied, created_at) VALUES (1001, 11, 1, 'Sticker', 1, 20, 21, 0, 21, 1)",
        psycopg.errors.CheckViolation,
    ),
    "an entry of no lot": (
        "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, created_at)"
        " VALUES (1001, 11, 999, 'grant', 5, 1)",
        psycopg.errors.ForeignKeyViolation,
    ),
    "a lot of no account": (
        "INSERT INTO lots (guild_id, user_id, kind, original, remaining, starts_at, source, created_at)"
        " VALUES (1001, 424242, 'gift', 5, 5, 1, 'grant', 1)",
        psycopg.errors.ForeignKeyViolation,
    ),
    "a wrong code counted twice under one key": (
        "INSERT INTO failed_redemptions (guild_id, user_id, at, key) VALUES (1001, 11, 2, 'same')",
        psycopg.errors.UniqueViolation,
    ),
    "a redeemed card without its lot": (
        "UPDATE gift_cards SET status = 'redeemed'",
        psycopg.errors.CheckViolation,
    ),
    "a delivery of an unknown action": (
        "INSERT INTO deliveries (guild_id, user_id, order_id, action, due_at, created_at)"
        " VALUES (1001, 11, 1, 'teleport', 1, 1)",
        psycopg.errors.CheckViolation,
    ),
    "a staff order completed at once": (
        "UPDATE orders SET delivery = 'staff'",
        psycopg.errors.CheckViolation,
    ),
    "an empty code": (
        "INSERT INTO item_codes (guild_id, item_id, code, created_at) VALUES (1001, 1, '', 1)",
        psycopg.errors.CheckViolation,
    ),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
async def test_the_schema_refuses_what_breaks_an_invariant(pg_store: PostgresStore, name: str):
    ledger = Ledger(pg_store, clock=Clock())
    await ledger.grant(GUILD, ALICE, 50, actor_id=MOD, key="g", kind="gift")
    item = await ledger.add_item(GUILD, "Sticker", 20, "merch", actor_id=MOD, key="i")
    await ledger.checkout(GUILD, ALICE, item.id, key="c")
    await ledger.issue_gift_cards(GUILD, 5, 1, actor_id=MOD, key="card")
    sql(pg_store.url, "INSERT INTO failed_redemptions (guild_id, user_id, at, key) VALUES (1001, 11, 1, 'same')")
    statement, error = REFUSED[name]
    with pytest.raises(error):
        sql(pg_store.url, statement)
    assert await ledger.verify() == []


async def test_null_keys_of_wrong_codes_each_count(pg_store: PostgresStore):
    """The unique key on failed_redemptions.key is partial: attempts without a key are all kept."""
    for at in range(3):
        sql(pg_store.url, "INSERT INTO failed_redemptions (guild_id, user_id, at) VALUES (1001, 11, ?)", (at,))
    assert sql(pg_store.url, "SELECT COUNT(*) FROM failed_redemptions") == [(3,)]


# --- migrations -------------------------------------------------------------------------------------


async def test_a_new_database_gets_the_schema_and_reopening_changes_nothing(pg_url: str):
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    assert store.schema_version == pg_migrate.code_version() == 1
    assert store.upgrade is not None
    assert store.upgrade.applied == ("0001_init",)
    assert store.upgrade.backup is None
    again = PostgresStore(pg_url)
    await again.open()
    await again.close()
    assert again.upgrade is None
    assert sql(pg_url, "SELECT version, name FROM schema_version") == [(1, "0001_init")]


async def test_two_stores_opening_a_new_database_at_once_migrate_it_once(pg_url: str):
    stores = [PostgresStore(pg_url) for _ in range(4)]
    try:
        assert await asyncio.gather(*(s.open() for s in stores)) == [None] * 4
    finally:
        for s in stores:
            await s.close()
    assert sum(s.upgrade is not None for s in stores) == 1
    assert sql(pg_url, "SELECT COUNT(*) FROM schema_version") == [(1,)]


async def test_a_database_newer_than_the_code_is_refused_in_both_modes(pg_store: PostgresStore):
    sql(pg_store.url, "INSERT INTO schema_version (version, name) VALUES (2, '0002_from_the_future')")
    for migrate in (True, False):
        store = PostgresStore(pg_store.url, migrate=migrate)
        with pytest.raises(SchemaTooNew, match="schema version 2"):
            await store.open()


async def test_read_only_mode_leaves_an_empty_database_empty(pg_url: str):
    store = PostgresStore(pg_url, migrate=False)
    await store.open()
    try:
        assert store.schema_version == 0
    finally:
        await store.close()
    assert sql(pg_url, "SELECT to_regclass('schema_version') IS NULL") == [(True,)]


async def test_read_only_mode_reads_and_refuses_writes(pg_store: PostgresStore):
    await Ledger(pg_store).grant(GUILD, ALICE, 20, actor_id=MOD, key="g")
    reader = PostgresStore(pg_store.url, migrate=False)
    await reader.open()
    try:
        ledger = Ledger(reader)
        assert (await ledger.balance(GUILD, ALICE)).total == 20
        assert await ledger.verify() == []
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await ledger.grant(GUILD, ALICE, 5, actor_id=MOD, key="g2")
    finally:
        await reader.close()


# --- transactions -----------------------------------------------------------------------------------


async def test_a_serialization_failure_is_retried_and_logged_at_debug(pg_url: str, caplog):
    """Write skew between two stores (two processes): each reads what the other writes. SERIALIZABLE
    aborts one; the store runs its unit again, and both land."""
    first, second = PostgresStore(pg_url), PostgresStore(pg_url)
    await first.open()
    await second.open()
    both_read = threading.Barrier(2, timeout=10)
    attempts: Counter[str] = Counter()

    def skew(tx: Tx, reads: str, writes: str) -> str | None:
        seen = tx.state.get(reads)
        attempts[writes] += 1
        if attempts[writes] == 1:  # the first attempts meet here: each has read, neither has written
            both_read.wait()
        tx.state.set(writes, f"{writes} saw {seen}")
        return seen

    caplog.set_level(logging.DEBUG, logger="bot.store.postgres.engine")
    try:
        first_task = first.write(skew, "b", "a")
        second_task = second.write(skew, "a", "b")
        seen = await asyncio.wait_for(asyncio.gather(first_task, second_task), 30)
    finally:
        both_read.abort()
        await first.close()
        await second.close()
    assert sorted(seen, key=str) in ([None, "a saw None"], [None, "b saw None"])  # as if one ran first
    assert sorted(attempts.values()) == [1, 2]
    assert any("trying again" in r.getMessage() and "SerializationFailure" in r.getMessage() for r in caplog.records)


async def test_lot_ids_of_concurrent_grants_to_many_never_collide(pg_url: str):
    stores = [PostgresStore(pg_url) for _ in range(3)]
    for s in stores:
        await s.open()
    try:
        ledgers = [Ledger(s) for s in stores]
        grants = await asyncio.gather(
            *(
                ledgers[n % 3].grant_many(GUILD, range(n * 100, n * 100 + 50), 1, actor_id=MOD, key=f"g{n}")
                for n in range(9)
            )
        )
        ids = sorted(lot for g in grants for lot in range(g.first_lot_id, g.first_lot_id + 50))
        assert len(set(ids)) == 450
        assert sql(pg_url, "SELECT COUNT(*), COUNT(DISTINCT id) FROM lots") == [(450, 450)]
        assert await ledgers[0].verify() == []
    finally:
        for s in stores:
            await s.close()


# --- backup, logs, factory ----------------------------------------------------------------------------


async def test_backup_is_a_pg_dump_that_restores(pg_store: PostgresStore, pg_server: str, tmp_path: Path, monkeypatch):
    bindir = pgserver._bindir()
    if bindir is None or not (bindir / "pg_dump").is_file():
        pytest.skip("no pg_dump beside the test server")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}")
    await Ledger(pg_store).grant(GUILD, ALICE, 20, actor_id=MOD, key="g")
    target = tmp_path / "ledger.dump"
    await pg_store.backup(target)
    assert target.read_bytes()[:5] == b"PGDMP"  # the custom format
    restored = pgserver.create_database(pg_server, "promo_restored")
    try:
        done = await asyncio.create_subprocess_exec(
            str(bindir / "pg_restore"), "--dbname", restored, str(target), stderr=asyncio.subprocess.PIPE
        )
        _, err = await done.communicate()
        assert done.returncode == 0, err.decode()
        copy = PostgresStore(restored, migrate=False)
        await copy.open()
        try:
            assert (await Ledger(copy).balance(GUILD, ALICE)).total == 20
        finally:
            await copy.close()
    finally:
        pgserver.drop_database(pg_server, "promo_restored")


async def test_backup_without_pg_dump_says_what_to_install(pg_store: PostgresStore, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="pg_dump"):
        await pg_store.backup(tmp_path / "ledger.dump")


async def test_the_password_never_reaches_the_logs(pg_url: str, caplog):
    """The test server trusts local connections, so a password in the URL is accepted and unused."""
    url = pg_url.replace("://", "://postgres:hunter2-secret@", 1) if "@" not in pg_url else pg_url
    caplog.set_level(logging.DEBUG)
    store = PostgresStore(url)
    await store.open()
    try:
        await Ledger(store).grant(GUILD, ALICE, 20, actor_id=MOD, key="g")
        assert "hunter2" not in repr(store)
    finally:
        await store.close()
    assert caplog.records
    assert not [r for r in caplog.records if "hunter2" in r.getMessage() + repr(r.args)]


def test_make_store_follows_database_url(tmp_path: Path):
    settings = Settings("", tmp_path / "x.sqlite3", None, "INFO", None, None)
    sqlite = factory.make_store(settings)
    assert isinstance(sqlite, SqliteStore)
    assert sqlite.path == tmp_path / "x.sqlite3"
    pg = factory.make_store(replace(settings, database_url="postgresql://db.example/promo"), migrate=False)
    assert isinstance(pg, PostgresStore)
    assert (pg.url, pg.migrate) == ("postgresql://db.example/promo", False)
