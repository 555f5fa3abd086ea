"""The scheduler's lease and the cluster-wide mutex on PostgreSQL: session-level advisory locks.

A lease is `pg_try_advisory_lock(key)` taken on a connection of its own (not one of the store's
pool: a pooled connection goes back to the pool, and the lock with it). The server frees a
session's advisory locks the moment the session ends, so a holder that exits in any way, SIGKILL
included, frees the lease at once: its socket is closed by its operating system. A holder whose
machine or network vanishes sends nothing more; for that case the session asks the server for TCP
keepalives and a user timeout (`SET tcp_keepalives_*`, `tcp_user_timeout`), so the server drops
it, and frees the lease, within `SERVER_GIVES_UP_SECONDS` (well under SPEC §5's 60 s). The same
settings on the client side (libpq's `keepalives*`, `tcp_user_timeout`) make the holder's own
driver notice, and `held()` gives up after `CHECK_SECONDS` whatever the network does: the holder
stops its jobs before the server would let another process take over.

The connection is psycopg's synchronous one, used from one daemon thread of its own (the store's
units of work are synchronous psycopg too, decision 1 of issue 11). Why not psycopg's
AsyncConnection for this one connection: it does not run on Windows' default event loop (the
Proactor), and a thread lets `held()` be abandoned after its timeout even when the socket is
stuck, without blocking the event loop; a daemon thread stuck on a dead socket never delays the
process's exit either.

Advisory locks are per database, in a 64-bit key space shared with any other application on the
same database: the key is a hash of a prefix of ours and the name. They need a real session: a
pgbouncer in transaction pooling mode in front of PostgreSQL breaks them (use session pooling, or
connect directly).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar, cast

import psycopg

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEPALIVE_IDLE = 10  # seconds of silence before the first probe
KEEPALIVE_INTERVAL = 3  # seconds between probes
KEEPALIVE_COUNT = 3  # unanswered probes before the connection is dropped
USER_TIMEOUT_MS = 20_000  # data sent and not acknowledged for this long: dropped
#: The longest a vanished holder keeps the lease: the server drops its session by then.
SERVER_GIVES_UP_SECONDS = max(KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT, USER_TIMEOUT_MS // 1000)
CONNECT_SECONDS = 5
#: `held()` counts the lease lost when the server has not answered in this long.
CHECK_SECONDS = 3.0
EXCLUSIVE_POLL_SECONDS = 1.0  # the longest wait between two tries of a busy `exclusive`

_CONNECT_OPTIONS: dict[str, Any] = {
    "autocommit": True,
    "connect_timeout": CONNECT_SECONDS,
    "keepalives": 1,
    "keepalives_idle": KEEPALIVE_IDLE,
    "keepalives_interval": KEEPALIVE_INTERVAL,
    "keepalives_count": KEEPALIVE_COUNT,
    "tcp_user_timeout": USER_TIMEOUT_MS,
}
# The server's side of the same, for this session only; and no idle timeout an operator set for
# the database may end the session that holds the lease.
_SESSION_SETTINGS = (
    f"SET tcp_keepalives_idle = {KEEPALIVE_IDLE}",
    f"SET tcp_keepalives_interval = {KEEPALIVE_INTERVAL}",
    f"SET tcp_keepalives_count = {KEEPALIVE_COUNT}",
    f"SET tcp_user_timeout = {USER_TIMEOUT_MS}",
    "SET idle_session_timeout = 0",
    "SET idle_in_transaction_session_timeout = 0",
)


def lock_key(kind: str, name: str) -> int:
    """The advisory lock key (a signed 64-bit integer) of a lease or mutex `name`."""
    digest = hashlib.sha256(f"promobalance:{kind}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _split(key: int) -> tuple[int, int]:
    """(classid, objid) under which pg_locks shows a bigint advisory lock."""
    unsigned = key & 0xFFFF_FFFF_FFFF_FFFF
    return unsigned >> 32, unsigned & 0xFFFF_FFFF


_Call = tuple[Callable[..., Any], tuple[Any, ...], concurrent.futures.Future[Any]]


class _Session:
    """One dedicated connection, opened on first use, and the daemon thread that uses it."""

    def __init__(self, url: str, purpose: str) -> None:
        self.url = url
        self.purpose = purpose
        self.conn: psycopg.Connection[Any] | None = None
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=f"pg {purpose}", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            fn, args, future = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(self._connection(), *args))
            except BaseException as exc:  # handed to the awaiting coroutine
                future.set_exception(exc)
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.close()

    def _connection(self) -> psycopg.Connection[Any]:
        if self.conn is None or self.conn.closed:
            conn = psycopg.connect(self.url, application_name=f"promobalance {self.purpose}", **_CONNECT_OPTIONS)
            try:
                for statement in _SESSION_SETTINGS:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    async def call(self, fn: Callable[..., T], *args: Any, within: float | None = None) -> T:
        """`fn(connection, *args)` on this session's thread; TimeoutError after `within` seconds
        (the thread may still be stuck on the socket: `close()` the session then)."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        self._calls.put((fn, args, future))
        return cast(T, await asyncio.wait_for(asyncio.wrap_future(future), within))

    async def close(self, wait: float = CHECK_SECONDS) -> None:
        """Close the connection (the server frees its locks) and end the thread; waits at most
        `wait` seconds for a thread stuck on a dead socket, which then ends on its own."""
        self._calls.put(None)
        if wait <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.to_thread(self._thread.join), wait)


def _try_lock(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def _holds(conn: psycopg.Connection[Any], key: int) -> bool:
    classid, objid = _split(key)
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        " AND granted AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1)",
        (classid, objid),
    ).fetchone()
    return bool(row and row[0])


class PostgresLease:
    """The lease `name`: see the module's docstring. One holder at a time across every process
    (and every `PostgresLease` object) on the database."""

    shared = True

    def __init__(self, url: str, name: str, *, check_seconds: float = CHECK_SECONDS) -> None:
        self.url = url
        self.name = name
        self.key = lock_key("lease", name)
        self.check_seconds = check_seconds
        self._session: _Session | None = None  # kept between tries while waiting for the lease
        self._holding = False

    async def acquire(self) -> bool:
        if self._holding and await self.held():
            return True
        if self._session is None:
            self._session = _Session(self.url, f"lease {self.name}")
        try:
            got = await self._session.call(_try_lock, self.key, within=CONNECT_SECONDS + self.check_seconds)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("lease %s: could not reach the database to try it (%s)", self.name, type(exc).__name__)
            await self._drop(wait=False)
            return False
        self._holding = got
        return got

    async def held(self) -> bool:
        if not self._holding or self._session is None:
            return False
        try:
            if await self._session.call(_holds, self.key, within=self.check_seconds):
                return True
        except (psycopg.Error, OSError, TimeoutError) as exc:
            log.warning("lease %s lost: its connection failed (%s)", self.name, type(exc).__name__)
        else:
            log.warning("lease %s lost: the database no longer shows it held", self.name)
        await self._drop(wait=False)  # at once: a thread stuck on a dead socket ends on its own
        return False

    async def release(self) -> None:
        """Close the lease's connection, which frees the lock at once."""
        await self._drop()

    async def _drop(self, wait: bool = True) -> None:
        self._holding = False
        session, self._session = self._session, None
        if session is not None:
            await session.close(CHECK_SECONDS if wait else 0)


@contextlib.asynccontextmanager
async def exclusive(url: str, name: str) -> AsyncIterator[None]:
    """A mutex across every process on the database, on a connection of its own for the block.
    Tried again and again rather than waited for in `pg_advisory_lock`: a wait that is cancelled
    (a shutdown) would leave a thread blocked in the server, to take the lock later for nobody."""
    key = lock_key("exclusive", name)
    session = _Session(url, f"exclusive {name}")
    try:
        delay = 0.05
        while not await session.call(_try_lock, key):
            await asyncio.sleep(delay)
            delay = min(delay * 2, EXCLUSIVE_POLL_SECONDS)
        yield
    finally:
        await session.close()  # ends the session: the lock is free
