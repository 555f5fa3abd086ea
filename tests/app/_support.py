"""Helpers shared by the ledger service tests (tests/app/test_*.py): DB snapshots, bad inputs."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest

from bot.app.ledger import Ledger
from bot.domain.errors import InvalidInput
from bot.domain.timeparse import to_unix
from bot.store.ports import Engine as Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests import rawsql
from tests.conftest import ALICE, BOB, GUILD, MOD, OTHER_GUILD, START

CAROL = 13
DAY = 86400
NOW = to_unix(START)

# SPEC §1: "0, negative, NaN, 1e99, 12.345 with 2 decimals, empty" and > 10^12; with 0 decimals also 12.50.
BAD_AMOUNTS_DECIMALS_0: list[Any] = [
    "0",
    "-5",
    "−5",
    "NaN",
    "nan",
    "inf",
    "1e99",
    "1E3",
    "",
    "   ",
    "12.50",
    "12,5",
    "abc",
    "1000000000001",
    "1,000,000,000,001",
    0,
    -1,
    10**12 + 1,
    float("nan"),
    12.5,
    True,
    None,
]
BAD_AMOUNTS_DECIMALS_2: list[Any] = ["12.345", "0.00", "0.001", "-0.01", "", "NaN", "1e99", "10000000000.01"]


def unix(dt: datetime) -> int:
    return to_unix(dt)


#: What a write behind the ledger's back raises when the schema refuses it, on either store.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, psycopg.IntegrityError)
DATABASE_ERRORS = (sqlite3.DatabaseError, psycopg.Error)


@contextlib.contextmanager
def _query(store: Store, commit: bool = True) -> Iterator[Callable[[str, tuple[Any, ...]], list[tuple[Any, ...]]]]:
    """A connection of its own to the store's database, as `run(sql, args) -> rows` for SQL in
    SQLite's spelling (`?` placeholders), in one transaction committed (or, with `commit=False`,
    rolled back) when the block ends."""
    with rawsql.connect(store, autocommit=False) as conn:
        yield lambda sql, args: rawsql.fetched(conn.execute(sql, args))
        conn.commit() if commit else conn.rollback()


def db_rows(store: Store, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with _query(store) as run:
        return run(sql, args)


def db_value(store: Store, sql: str, args: tuple[Any, ...] = ()) -> Any:
    rows = db_rows(store, sql, args)
    assert len(rows) == 1, rows
    return rows[0][0]


def db_execute(store: Store, sql: str, args: tuple[Any, ...] = (), *, commit: bool = True) -> None:
    """A write behind the ledger's back, as a hand-edit or a bug would do it (`commit=False`: tried,
    then rolled back)."""
    with _query(store, commit) as run:
        run(sql, args)


def db_execute_unchecked(store: Store, sql: str) -> None:
    """A write that even the CHECKs let through (a bug, a hand edit). SQLite can ignore its CHECKs
    for a session; PostgreSQL cannot, so there they are dropped first (the test's database is
    broken on purpose anyway)."""
    with _query(store) as run:
        if isinstance(store, SqliteStore):
            run("PRAGMA ignore_check_constraints = ON", ())
        else:
            for table, name in run(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint WHERE contype = 'c'"
                " AND connamespace = 'public'::regnamespace",
                (),
            ):
                run(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"', ())
        run(sql, ())


def tables(store: Store) -> list[str]:
    return rawsql.tables(store)


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: equal dumps mean nothing at all was written."""
    return rawsql.dump(store)


def count(store: Store, table: str, where: str = "1 = 1", args: tuple[Any, ...] = ()) -> int:
    return int(db_value(store, f"SELECT COUNT(*) FROM {table} WHERE {where}", args))


async def observe(ledger: Ledger, store: Store, members: tuple[int, ...] = (ALICE, BOB)) -> dict[str, Any]:
    """What the books look like from the outside (API) and the inside (every row)."""
    view: dict[str, Any] = {"db": dump(store), "verify": await ledger.verify()}
    for guild in (GUILD, OTHER_GUILD):
        for member in members:
            bal = await ledger.balance(guild, member)
            hist = await ledger.history(guild, member, per_page=1000)
            view[f"{guild}/{member}"] = (bal.gift, bal.promo, bal.upcoming, hist.total, hist.items)
    return view


async def assert_refused_writes_nothing(
    ledger: Ledger,
    store: Store,
    call: Callable[[], Awaitable[Any]],
    error: type[BaseException] = InvalidInput,
    match: str | None = None,
) -> pytest.ExceptionInfo[Any]:
    """Run `call`, expect `error`, and check that neither the API nor the database changed."""
    before = await observe(ledger, store)
    with pytest.raises(error, match=match) as info:
        await call()
    after = await observe(ledger, store)
    assert after == before
    assert after["verify"] == []
    return info


async def assert_each_refused_writes_nothing(
    ledger: Ledger,
    store: Store,
    values: list[Any],
    make_call: Callable[[Any], Awaitable[Any]],
    error: type[BaseException] = InvalidInput,
) -> None:
    """`make_call(value)` is refused with `error` for every value, and none of them writes anything."""
    before = await observe(ledger, store)
    for value in values:
        try:
            await make_call(value)
        except error as exc:
            message = str(exc)
        else:
            pytest.fail(f"{value!r} was accepted")
        assert message, f"{value!r}: refused without a message"
        assert dump(store) == before["db"], f"{value!r} was refused but wrote something"
    after = await observe(ledger, store)
    assert after == before
    assert after["verify"] == []


async def healthy(ledger: Ledger) -> None:
    """Every scenario ends with the books balancing (SPEC §2 invariants)."""
    assert await ledger.verify() == []


def corrupts_db(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a test that breaks the database on purpose: `books_balance_after_each_test` leaves it alone."""
    fn.corrupts_db = True  # type: ignore[attr-defined]
    return fn


@pytest.fixture(autouse=True)
async def books_balance_after_each_test(request: pytest.FixtureRequest, ledger: Ledger) -> AsyncIterator[None]:
    """Imported by every test module here: `verify` must come back clean after every scenario."""
    yield
    if not getattr(request.function, "corrupts_db", False):
        assert await ledger.verify() == [], "the books do not balance after this test"


async def use_decimals(ledger: Ledger, decimals: int, guild: int = GUILD) -> None:
    settings = await ledger.update_settings(guild, actor_id=MOD, key=None, decimals=decimals)
    assert settings.decimals == decimals


def another_store(store: Store, *, migrate: bool = True) -> Store:
    """A second store on the same database, as another process (or `python -m bot verify`) opens it."""
    if isinstance(store, SqliteStore):
        return SqliteStore(store.path, migrate=migrate)
    assert isinstance(store, PostgresStore), store
    return PostgresStore(store.url, migrate=migrate)
