"""Shared fixtures: a real SQLite file (or PostgreSQL database) per test, a ledger with a clock the test controls."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app.ledger import Ledger
from bot.store.ports import Engine as Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests import pgserver

# The end-to-end fixtures (the real bot against the fake Discord) for tests/cogs and tests/discordbot.
pytest_plugins = ["tests.e2e", "tests.processes"]

GUILD = 1001
OTHER_GUILD = 2002
MOD = 9
ALICE = 11
BOB = 12
START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand: no sleeping through real minutes."""

    def __init__(self, start: datetime = START) -> None:
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


# Every store implementation runs the same tests. Each factory gets the test's request and its
# tmp_path; the PostgreSQL one asks for `pg_url` only then, so a SQLite run needs no server.
STORE_FACTORIES: dict[str, Callable[[pytest.FixtureRequest, Path], Store]] = {
    "sqlite": lambda request, tmp: SqliteStore(tmp / "ledger.sqlite3"),
    "postgres": lambda request, tmp: PostgresStore(request.getfixturevalue("pg_url")),
}


# --- PostgreSQL: one server for the run, a new database for each test that asks -----------------
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The admin URL of this run's PostgreSQL server (tests/pgserver.py). Without one the test is
    skipped with the reason, unless REQUIRE_POSTGRES=1 (.ci/run): then it fails."""
    reason = pgserver.unavailable()
    if reason is not None:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    with pgserver.server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A new, empty database on the run's server, dropped after the test."""
    name = f"promo_test_{os.getpid()}_{next(_database_numbers)}"
    url = pgserver.create_database(pg_server, name)
    try:
        yield url
    finally:
        pgserver.drop_database(pg_server, name)


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s = STORE_FACTORIES[request.param](request, tmp_path)
    await s.open()
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def events() -> list[tuple[str, dict]]:
    return []


@pytest.fixture
def ledger(store: Store, clock: Clock, events: list) -> Ledger:
    return Ledger(store, clock=clock, events=lambda name, payload: events.append((name, payload)))


class Keys:
    """Fresh idempotency keys, like Discord interaction ids."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self) -> str:
        self.n += 1
        return f"k{self.n}"


@pytest.fixture
def key() -> Keys:
    return Keys()


# --- CI: the PostgreSQL half must have run, not been skipped ---------------------------------------
_postgres_results = {"passed": 0, "skipped": 0}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "postgres" not in report.nodeid:
        return
    if report.when == "call" and report.passed:
        _postgres_results["passed"] += 1
    elif report.skipped:
        _postgres_results["skipped"] += 1


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With REQUIRE_POSTGRES=1 (.ci/run), a whole run whose PostgreSQL tests were skipped, or that
    ran none, fails: green must mean both backends passed."""
    if os.environ.get("REQUIRE_POSTGRES") != "1" or session.config.option.collectonly:
        return
    whole_suite = not session.config.args or session.config.args == ["tests"]
    if _postgres_results["skipped"] or (whole_suite and not _postgres_results["passed"]):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(
            f"\nREQUIRE_POSTGRES=1: {_postgres_results['passed']} PostgreSQL tests passed and"
            f" {_postgres_results['skipped']} were skipped; the PostgreSQL half must run in full."
        )
