"""SIGKILL in the middle of a write: after a restart each unit of work is there entirely or not at all.

A child process opens a SqliteStore on a file in tmp_path and writes; the parent kills it with
SIGKILL (no cleanup, no atexit, no checkpoint) while the write is under way, then reopens the
file as the bot would after a crash and checks the books.

SQLite only: it kills the process that writes the file; PostgreSQL's durability is the server's.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bot.app.ledger import Ledger
from bot.store.sqlite import SqliteStore
from tests.conftest import ALICE, GUILD, MOD

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL"),
]

ROOT = Path(__file__).resolve().parents[2]
MEMBERS = 50_000
GRANT = 3
BIG_KEY = "big-grant"

CHILD = textwrap.dedent(
    f"""
    import asyncio, sys
    from bot.app.ledger import Ledger
    from bot.store.sqlite import SqliteStore

    async def grant_many(ledger):
        print("START", flush=True)
        await ledger.grant_many(
            {GUILD}, range(1, {MEMBERS} + 1), {GRANT}, actor_id={MOD}, key={BIG_KEY!r}, reason="crash test"
        )
        print("DONE", flush=True)

    async def checkouts(ledger, item_id):
        print("START", flush=True)
        for i in range(1_000_000):
            order = await ledger.checkout({GUILD}, {ALICE}, item_id, key=f"buy-{{i}}")
            print("ORDER", order.id, flush=True)

    async def main(path, what, *args):
        store = SqliteStore(path)
        await store.open()
        try:
            ledger = Ledger(store)
            if what == "grant_many":
                await grant_many(ledger)
            else:
                await checkouts(ledger, int(args[0]))
        finally:  # on an error too: an open store's worker thread would keep the child (and the parent's read) alive
            await store.close()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def spawn(tmp_path: Path, db: Path, *args: str) -> subprocess.Popen[str]:
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(db), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline().strip()
    if first != "START":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        pytest.fail(f"child did not start: {first!r}\n{err}")
    return proc


def kill(proc: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGKILL (if still running) and return what the child printed after START."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    assert proc.stdout is not None
    assert proc.stderr is not None
    # Read through the same buffered files readline() used: communicate() reads the raw pipes and would
    # drop lines readline() already buffered, so the test would count fewer orders than the child printed.
    out, err = proc.stdout.read(), proc.stderr.read()
    proc.wait(timeout=20)
    return out, err


def wal_size(db: Path) -> int:
    try:
        return db.with_name(db.name + "-wal").stat().st_size
    except FileNotFoundError:
        return 0


def counts(db: Path) -> dict[str, int]:
    """Raw row counts, read with plain sqlite3 (WAL recovery happens on open)."""
    conn = sqlite3.connect(db)
    try:
        return {
            table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("lots", "entries", "accounts", "audit_log", "idempotency", "orders")
        }
    finally:
        conn.close()


async def prepare(db: Path) -> None:
    store = SqliteStore(db)
    await store.open()
    await store.close()  # schema in place, WAL checkpointed and removed


async def reopen(db: Path, retry_grant: bool = False) -> tuple[list[str], int]:
    store = SqliteStore(db)
    await store.open()
    try:
        ledger = Ledger(store)
        problems = await ledger.verify()
        if retry_grant:  # the moderator presses the button again: the same key applies once
            await ledger.grant_many(GUILD, range(1, MEMBERS + 1), GRANT, actor_id=MOD, key=BIG_KEY, reason="crash test")
        report = await ledger.report(GUILD)
        return problems, report.outstanding_promo
    finally:
        await store.close()


def test_sigkill_during_a_50000_member_grant_is_all_or_nothing(tmp_path: Path):
    # Kill once the uncommitted transaction spills into the WAL (+256 KiB), a little later, and once
    # near its end (+6 MiB of the ~9 MiB it writes), where the kill may land before, in or after COMMIT.
    plan = ((256 * 1024, 0.0), (256 * 1024, 0.15), (6 * 1024 * 1024, 0.0))
    killed_mid_write = 0
    retried = False
    for run, (grown, delay) in enumerate(plan):
        db = tmp_path / f"run{run}.sqlite3"
        asyncio.run(prepare(db))
        proc = spawn(tmp_path, db, "grant_many")
        baseline = wal_size(db)
        deadline = time.monotonic() + 20
        while proc.poll() is None and wal_size(db) < baseline + grown and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        out, err = kill(proc)
        finished = "DONE" in out
        assert "Traceback" not in err, err

        found = counts(db)
        if finished:
            assert found["lots"] == MEMBERS, f"run {run}: the child said DONE but {found}"
        else:
            killed_mid_write += 1
            assert proc.returncode == -signal.SIGKILL
            assert found["lots"] in (0, MEMBERS), f"run {run}: a partial grant survived: {found}"
        # Everything of the unit of work, or nothing of it: lots, entries, accounts, audit, key.
        whole = found["lots"] == MEMBERS
        assert found == {
            "lots": MEMBERS if whole else 0,
            "entries": MEMBERS if whole else 0,
            "accounts": MEMBERS if whole else 0,
            "audit_log": 1 if whole else 0,
            "idempotency": 1 if whole else 0,
            "orders": 0,
        }

        retry = not finished and not retried
        retried = retried or retry
        problems, outstanding = asyncio.run(reopen(db, retry_grant=retry))
        assert problems == []
        if retry:
            assert outstanding == MEMBERS * GRANT  # retried with the same key: applied exactly once
            assert counts(db)["lots"] == MEMBERS
        else:
            assert outstanding == (MEMBERS * GRANT if whole else 0)

    assert killed_mid_write >= 1, "every run finished before the kill: the test proved nothing"


async def _shop(db: Path) -> int:
    store = SqliteStore(db)
    await store.open()
    try:
        ledger = Ledger(store)
        await ledger.grant(GUILD, ALICE, 100_000, actor_id=MOD, key="gift", kind="gift")
        await ledger.grant(GUILD, ALICE, 10, actor_id=MOD, key="one-time", one_time=True)
        item = await ledger.add_item(GUILD, "Pin", 3, "merch", actor_id=MOD, key="add", stock=1_000_000)
        return item.id
    finally:
        await store.close()


async def _books(db: Path, item_id: int) -> tuple[list[str], int, int, int, int]:
    store = SqliteStore(db)
    await store.open()
    try:
        ledger = Ledger(store)
        page = await ledger.orders(GUILD, ALICE, per_page=1)
        item = await ledger.item(GUILD, item_id)
        assert item is not None
        assert item.stock is not None
        balance = await ledger.balance(GUILD, ALICE)
        return await ledger.verify(), page.total, balance.total, item.stock, page.items[0].id if page.items else 0
    finally:
        await store.close()


def test_sigkill_during_a_loop_of_checkouts_leaves_whole_orders(tmp_path: Path):
    for run, acknowledged_before_kill in enumerate((25, 60)):
        db = tmp_path / f"shop{run}.sqlite3"
        item_id = asyncio.run(_shop(db))
        proc = spawn(tmp_path, db, "checkouts", str(item_id))
        assert proc.stdout is not None
        for _ in range(acknowledged_before_kill):
            line = proc.stdout.readline()
            assert line.startswith("ORDER"), line or kill(proc)[1]  # EOF: the child stopped early; show why
        out, err = kill(proc)
        assert proc.returncode == -signal.SIGKILL, err
        printed = acknowledged_before_kill + out.count("ORDER")

        problems, orders, balance, stock, last_order = asyncio.run(_books(db, item_id))
        assert problems == []
        # Every order the child saw committed survived; at most one more committed unseen.
        assert printed <= orders <= printed + 1
        assert last_order == orders
        # The first checkout touched the one-time lot (10) and forfeited its remaining 7.
        assert balance == 100_010 - 3 * orders - 7
        assert stock == 1_000_000 - orders
