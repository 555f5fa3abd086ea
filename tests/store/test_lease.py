"""The scheduler's lease and the cluster-wide mutex (bot/store/postgres/lease.py, sqlite/lease.py).

On a real PostgreSQL server: one holder at a time; a holder whose connection the server ends
(pg_terminate_backend) finds out at its next `held()` and another takes over; a holder process
SIGKILLed frees the lease at once (the server ends the session when the socket closes); the
session asks for keepalives so a vanished machine frees it too. On SQLite the one process always
holds it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from bot.store.postgres.lease import (
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    SERVER_GIVES_UP_SECONDS,
    USER_TIMEOUT_MS,
    PostgresLease,
    exclusive,
)
from bot.store.sqlite import SqliteStore

ROOT = Path(__file__).resolve().parents[2]


def sessions(url: str, application: str) -> list[tuple[int, str]]:
    """(pid, last query) of the server sessions an application name opened."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [
            (int(pid), str(query))
            for pid, query in conn.execute(
                "SELECT pid, query FROM pg_stat_activity WHERE application_name = %s AND datname = current_database()",
                (application,),
            ).fetchall()
        ]


async def until(condition, seconds: float = 30, what: str = "the condition") -> None:
    """Wait for `condition()` (sync or async), polling; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_one_holder_at_a_time_until_it_releases(pg_url: str):
    first, second = PostgresLease(pg_url, "scheduler"), PostgresLease(pg_url, "scheduler")
    other = PostgresLease(pg_url, "something else")
    try:
        assert await first.acquire()
        assert await first.acquire()  # again: still ours
        assert await first.held()
        assert not await second.acquire()
        assert not await second.held()
        assert not await second.acquire()  # tried again on the same waiting connection
        assert await other.acquire()  # another name is another lease
        await first.release()
        assert not await first.held()
        assert await second.acquire()
        assert await second.held()
        assert not await first.acquire()
    finally:
        for lease in (first, second, other):
            await lease.release()


async def test_a_holder_whose_connection_is_ended_loses_it_and_another_takes_over(pg_url: str):
    holder, follower = PostgresLease(pg_url, "scheduler"), PostgresLease(pg_url, "scheduler")
    try:
        assert await holder.acquire()
        assert not await follower.acquire()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            # The holder's session is the one pg_locks shows with the lock.
            [(holder_pid,)] = admin.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid::bigint = %s"
                " AND objid::bigint = %s",
                _split(holder.key),
            ).fetchall()
            admin.execute("SELECT pg_terminate_backend(%s)", (holder_pid,))
        assert not await holder.held()
        assert not await holder.held()  # and it stays lost until taken again
        assert await follower.acquire()
        assert not await holder.acquire()  # a new connection, and the lease is the follower's now
        await follower.release()
        assert await holder.acquire()
    finally:
        await holder.release()
        await follower.release()


def _split(key: int) -> tuple[int, int]:
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


HOLDER = """
import asyncio, sys
from bot.store.postgres.lease import PostgresLease

async def main():
    lease = PostgresLease(sys.argv[1], "scheduler")
    assert await lease.acquire()
    print("holding", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.mark.slow
async def test_a_holder_process_killed_frees_the_lease_within_seconds(pg_url: str):
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, pg_url, cwd=ROOT, stdout=asyncio.subprocess.PIPE, env=env
    )
    follower = PostgresLease(pg_url, "scheduler")
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"holding\n"
        assert not await follower.acquire()
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        killed = time.monotonic()
        await until(follower.acquire, 10, "the lease after the SIGKILL")
        print(f"lease taken over {time.monotonic() - killed:.3f} s after the SIGKILL")  # for the report
        assert await follower.held()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await follower.release()


async def test_the_session_asks_for_keepalives_so_a_vanished_holder_frees_it(pg_url: str):
    lease = PostgresLease(pg_url, "scheduler")
    try:
        assert await lease.acquire()
        assert lease._session is not None

        def settings(conn: psycopg.Connection) -> dict[str, str]:
            names = ("tcp_keepalives_idle", "tcp_keepalives_interval", "tcp_keepalives_count", "tcp_user_timeout")
            return {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in names}

        shown = await lease._session.call(settings)
        assert shown == {
            "tcp_keepalives_idle": str(KEEPALIVE_IDLE),
            "tcp_keepalives_interval": str(KEEPALIVE_INTERVAL),
            "tcp_keepalives_count": str(KEEPALIVE_COUNT),
            "tcp_user_timeout": str(USER_TIMEOUT_MS),
        }
        assert SERVER_GIVES_UP_SECONDS < 60 / 2  # freed well inside SPEC §5's 60 s, followers' retries included
    finally:
        await lease.release()


class Proxy:
    """A TCP relay to the server that can go silent (`blackhole`): what a holder whose network
    vanished sees, where nothing is refused and nothing answers."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.silent = False
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.writers += [writer, up_writer]

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            while data := await source.read(65536):
                if not self.silent:
                    sink.write(data)
                    await sink.drain()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer), return_exceptions=True)

    def blackhole(self) -> None:
        self.silent = True

    async def close(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()


async def test_a_holder_whose_network_goes_silent_stops_holding_before_anyone_else_can_take_it(pg_url: str):
    url = urlsplit(pg_url)
    proxy = Proxy((url.hostname or "127.0.0.1", url.port or 5432))
    port = await proxy.start()
    holder = PostgresLease(urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{port}")), "scheduler")
    follower = PostgresLease(pg_url, "scheduler")
    try:
        assert await holder.acquire()
        proxy.blackhole()
        # Nothing comes back: `held()` gives up after its few seconds instead of waiting for TCP.
        assert not await asyncio.wait_for(holder.held(), 30)
        # The server still counts the silent session (its keepalives drop it within
        # SERVER_GIVES_UP_SECONDS): nobody else runs the jobs while the old holder might.
        assert not await follower.acquire()
        await proxy.close()  # the server's side of the connection ends
        await until(follower.acquire, 30, "the lease once the server dropped the silent session")
    finally:
        await proxy.close()
        await holder.release()
        await follower.release()


async def test_exclusive_lets_one_session_in_at_a_time(pg_url: str):
    order: list[str] = []
    inside = asyncio.Event()

    async def second() -> None:
        async with exclusive(pg_url, "command-sync"):
            order.append("second in")

    async with exclusive(pg_url, "command-sync"):
        order.append("first in")
        task = asyncio.create_task(second())
        # The second has tried and been refused while the first is inside.
        await until(
            lambda: (
                any(
                    "pg_try_advisory_lock" in q for _, q in sessions(pg_url, "promobalance exclusive command-sync") if q
                )
                and len(sessions(pg_url, "promobalance exclusive command-sync")) == 2
            ),
            what="the second session's try",
        )
        async with exclusive(pg_url, "another name"):  # another name is another mutex
            inside.set()
        order.append("first out")
    await asyncio.wait_for(task, 10)
    assert order == ["first in", "first out", "second in"]
    assert inside.is_set()
    await until(lambda: sessions(pg_url, "promobalance exclusive command-sync") == [], what="the sessions closed")


async def test_on_sqlite_the_one_process_always_holds_it(tmp_path: Path):
    store = SqliteStore(tmp_path / "ledger.sqlite3")
    await store.open()
    try:
        lease = store.lease("scheduler")
        assert not lease.shared
        assert not await lease.held()
        assert await lease.acquire()
        assert await lease.held()
        assert await store.lease("scheduler").acquire()  # the same process: nobody else can hold it
        await lease.release()
        assert not await lease.held()
        order: list[str] = []

        async def second() -> None:
            async with store.exclusive("command-sync"):
                order.append("second")

        async with store.exclusive("command-sync"):
            task = asyncio.create_task(second())
            await asyncio.sleep(0)
            order.append("first")
        await task
        assert order == ["first", "second"]
    finally:
        await store.close()
