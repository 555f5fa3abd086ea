"""`python -m bot copy-db --to URL`: a busy SQLite ledger copied into an empty PostgreSQL database,
then checked (invariants, every guild's export); and the refusals: a target with rows, a bad URL, a
missing SQLite file. The copy runs in-process through bot.cli.main, as `python -m bot` runs it."""

from __future__ import annotations

import concurrent.futures
import sqlite3
from pathlib import Path

import psycopg
import pytest

from bot import cli
from bot.app.ledger import Ledger
from bot.config import redact_url
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.conftest import MOD, Clock

GUILDS = (1001, 2002, 3003, 4004)
MEMBERS = 40  # per guild


async def busy_ledger(path: Path, clock: Clock) -> None:
    """Several guilds with settings, a shop, lots (single and bulk grants), purchases and a refund,
    promo codes and gift cards redeemed, expiries swept: every table the copy has to carry."""
    store = SqliteStore(path)
    await store.open()
    try:
        ledger = Ledger(store, clock=clock)
        for g, guild in enumerate(GUILDS):
            members = [guild * 1000 + n for n in range(MEMBERS)]
            if g % 2:
                await ledger.update_settings(guild, actor_id=MOD, key=f"s{g}", currency_name="gems", decimals=2)
            items = [
                await ledger.add_item(guild, f"Item {n}", 5 + n, "games", actor_id=MOD, key=f"i{g}{n}", stock=1000)
                for n in range(3)
            ]
            await ledger.add_item(guild, "Staff thing", 7, "merch", actor_id=MOD, key=f"st{g}", delivery="staff")
            await ledger.grant_many(guild, members, 100, actor_id=MOD, key=f"all{g}", expires="30d", reason="all")
            for n, user in enumerate(members[:10]):
                await ledger.grant(guild, user, 50 + n, actor_id=MOD, key=f"g{g}{n}", kind="gift", reason="gift")
                await ledger.grant(guild, user, 20, actor_id=MOD, key=f"short{g}{n}", expires="1d")
            await ledger.create_promo(guild, f"PROMO{g}", 25, actor_id=MOD, key=f"p{g}", uses=100)
            cards = await ledger.issue_gift_cards(guild, 40, 3, actor_id=MOD, key=f"c{g}")
            for n, user in enumerate(members[10:20]):
                await ledger.redeem(guild, user, f"PROMO{g}", key=f"r{g}{n}")
            for n, code in enumerate(cards.codes[:2]):
                await ledger.redeem(guild, members[20 + n], code, key=f"gc{g}{n}")
            orders = []
            for n, user in enumerate(members[:15]):
                orders.append(await ledger.checkout(guild, user, items[n % 3].id, 1, key=f"o{g}{n}"))
            await ledger.refund(guild, orders[0].id, actor_id=MOD, key=f"rf{g}", reason="test")
        clock.advance(days=2)
        while await ledger.sweep_expired():
            pass
        assert await ledger.verify() == []
    finally:
        await store.close()


def row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: conn.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables if not t.startswith("sqlite_")
        }
    finally:
        conn.close()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data" / "bot.sqlite3"
    path.parent.mkdir()
    for name in ("DATABASE_URL", "SHARD_COUNT", "SHARD_IDS", "DISCORD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_PATH", str(path))
    return path


async def test_a_busy_ledger_is_copied_whole_and_verified(sqlite_env: Path, pg_url: str, capsys):
    clock = Clock()
    await busy_ledger(sqlite_env, clock)
    counts = row_counts(sqlite_env)
    assert counts["lots"] > 200
    assert counts["orders"] >= 60
    assert counts["promo_redemptions"] >= 40

    code = await_cli(["copy-db", "--to", pg_url])
    out, err = capsys.readouterr()
    assert code == cli.EXIT_OK, out + err
    assert f"Verified: every ledger invariant holds on the copy; the export of all {len(GUILDS)} guild(s)" in out
    for table in ("lots", "entries", "orders", "promo_codes", "gift_cards", "audit_log"):
        assert f"  {table:<20} {counts[table]:>12,}" in out, out
    assert redact_url(pg_url) in out

    with psycopg.connect(pg_url) as conn:  # ids kept, and the sequences follow on
        for table in ("lots", "entries", "orders", "audit_log"):
            (ids,) = conn.execute(f"SELECT array_agg(id ORDER BY id) FROM {table}").fetchone()
            src = sqlite3.connect(sqlite_env)
            want = [i for (i,) in src.execute(f"SELECT id FROM {table} ORDER BY id")]
            src.close()
            assert ids == want, table
    store = PostgresStore(pg_url)
    await store.open()
    try:
        ledger = Ledger(store, clock=clock)
        grant = await ledger.grant(GUILDS[0], 777, 10, actor_id=MOD, key="after-copy")
        assert grant.first_lot_id == max(want_ids(sqlite_env, "lots")) + 1
        item = await ledger.add_item(GUILDS[0], "New item", 3, "games", actor_id=MOD, key="after-copy-item")
        assert item.id == max(want_ids(sqlite_env, "shop_items")) + 1
        assert await ledger.verify() == []
    finally:
        await store.close()


def want_ids(path: Path, table: str) -> list[int]:
    conn = sqlite3.connect(path)
    try:
        return [i for (i,) in conn.execute(f"SELECT id FROM {table}")]
    finally:
        conn.close()


def await_cli(argv: list[str]) -> int:
    """bot.cli.main runs its own event loop: run it on a thread, off the test's loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(cli.main, argv).result()


async def test_a_target_with_rows_is_refused_and_left_as_it_was(sqlite_env: Path, pg_url: str, capsys):
    await busy_ledger(sqlite_env, Clock())
    assert await_cli(["copy-db", "--to", pg_url]) == cli.EXIT_OK
    capsys.readouterr()
    with psycopg.connect(pg_url) as conn:
        (before,) = conn.execute("SELECT COUNT(*) FROM entries").fetchone()

    assert await_cli(["copy-db", "--to", pg_url]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "Refused: the PostgreSQL database is not empty" in err, err
    assert "entries" in err, err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM entries").fetchone() == (before,)


async def test_a_table_of_someone_else_with_rows_is_refused_too(sqlite_env: Path, pg_url: str, capsys):
    await busy_ledger(sqlite_env, Clock())
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
        conn.execute("INSERT INTO notes VALUES ('keep me')")
    assert await_cli(["copy-db", "--to", pg_url]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "not empty (rows in notes)" in err, err
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('lots')").fetchone() == (None,)  # nothing created


async def test_bad_urls_are_refused_without_showing_the_password(sqlite_env: Path, pg_url: str, capsys):
    await busy_ledger(sqlite_env, Clock())
    assert await_cli(["copy-db", "--to", "mysql://u:hunter2@localhost/db"]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "is not a PostgreSQL URL" in err, err
    assert "hunter2" not in err, err

    unreachable = "postgresql://bench:hunter2@127.0.0.1:1/nowhere"
    assert await_cli(["copy-db", "--to", unreachable]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "Refused: cannot connect to the PostgreSQL database" in err, err
    assert "hunter2" not in err, err

    missing_db = pg_url.rsplit("/", 1)[0] + "/no_such_database_here"
    assert await_cli(["copy-db", "--to", missing_db]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert "cannot connect" in err, err
    assert "no_such_database_here" in err, err


def test_a_missing_sqlite_file_is_refused(sqlite_env: Path, pg_url: str, capsys):
    assert not sqlite_env.exists()
    assert await_cli(["copy-db", "--to", pg_url]) == cli.EXIT_USAGE
    _, err = capsys.readouterr()
    assert f"Refused: no SQLite database at {sqlite_env}" in err, err
    assert not sqlite_env.exists()  # not created by the refusal either
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('lots')").fetchone() == (None,)
