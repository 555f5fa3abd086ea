"""The PostgreSQL engine: psycopg 3 (sync) and a connection pool, one hop per transaction.

A unit of work is the same plain function `unit(tx, …)` the SQLite engine runs on its writer
thread. Here it runs on the store's own writer thread (a one-thread ThreadPoolExecutor), on a
connection of the pool, between `BEGIN ISOLATION LEVEL SERIALIZABLE` and `COMMIT`: one hop to the
thread and back per transaction, however many statements the unit issues. Reads run on the
pool's other connections, from a second executor, `pool_size` at a time.

One writer per process, as on SQLite, because concurrent writers would only abort each other:
every unit looks up its idempotency key and inserts it, and SERIALIZABLE's predicate locks are
taken per index page, so two units with keys on the same page (Discord's ids grow: always the
last page) form a read/write cycle and one of them is rolled back. Several processes still write
at once; their conflicts are what the retries below are for.

SERIALIZABLE gives every unit the outcome of some serial order, across threads and processes,
which is what the units were written for (SQLite's one writer at a time). The price is that
PostgreSQL aborts a transaction that could not be serialized (SQLSTATE 40001, or 40P01 for a
deadlock) or that inserted a key a concurrent one took meanwhile (23505 escaping the unit; a
duplicate the unit expects it turns into words itself): the store then runs the unit again, from
the start, on a fresh snapshot, after a jittered backoff, up to `MAX_ATTEMPTS` times. That is
safe because a unit is a pure function of `tx` and its arguments (a unit that returns
`CommitThenRaise` is committed, then its error raised, as on SQLite). Reads run on a REPEATABLE READ
READ ONLY snapshot, which never waits and is never aborted.

The URL's password never reaches a log line (bot.config.redact_url).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from bot.config import redact_url
from bot.store.migrate import SchemaTooNew, Upgrade, pending
from bot.store.ports import CommitThenRaise
from bot.store.postgres.connection import PgConnection, configure, connect_kwargs
from bot.store.postgres.migrate import MIGRATIONS, code_version, migrate, schema_version
from bot.store.postgres.rows import PgTx
from bot.store.sql.verify import verify_invariants

log = logging.getLogger(__name__)
T = TypeVar("T")
# psycopg_pool logs each connection it lends and takes back at INFO: two lines per transaction.
# Its warnings (a connection lost, the pool exhausted) still show.
logging.getLogger("psycopg.pool").setLevel(logging.WARNING)

#: How often a unit is tried before its serialization failure reaches the caller.
MAX_ATTEMPTS = 100
#: The backoff before attempt n is uniform in [0, min(BACKOFF_CAP, BACKOFF_BASE * 2**n)) seconds.
BACKOFF_BASE = 0.001
BACKOFF_CAP = 0.1
RETRYABLE: tuple[type[psycopg.Error], ...] = (
    errors.SerializationFailure,
    errors.DeadlockDetected,
    errors.UniqueViolation,
)


class PostgresStore:
    """The ledger on a PostgreSQL database, opened in one of two modes, like SqliteStore.

    `migrate=True` (the bot, `db upgrade`, tests): the PostgreSQL migrations are applied (see
    bot/store/postgres/migrate.py; `upgrade` says what was done; there is no automatic copy
    before upgrading, `upgrade.backup` is None: each migration is one transaction, and `backup`
    below is the operator's copy). `migrate=False` (`backup`, `verify`, `export`, `db status`):
    every transaction is READ ONLY and the schema is left as it is; `schema_version` says which.
    Both modes refuse a database newer than the code (`SchemaTooNew`).

    `pool_size` connections (and as many threads) serve concurrent reads; writes take turns on
    one writer thread.
    """

    migrations = MIGRATIONS

    def __init__(self, url: str, *, migrate: bool = True, pool_size: int = 8) -> None:
        self.url = url
        self.migrate = migrate
        self.pool_size = pool_size
        self.schema_version = 0
        self.upgrade: Upgrade | None = None
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._executor: ThreadPoolExecutor | None = None  # reads, open and close
        self._writer: ThreadPoolExecutor | None = None  # units of work, one at a time

    def __repr__(self) -> str:
        return f"PostgresStore({redact_url(self.url)!r}, migrate={self.migrate})"

    @property
    def location(self) -> str:
        return redact_url(self.url) or ""

    # lifecycle ---------------------------------------------------------------------------------
    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=self.pool_size, thread_name_prefix="pgstore")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pgstore-writer")
        try:
            before, after = await self._on_worker(self._prepare_schema)
            self.schema_version = after
            if after != before:
                applied = tuple(pending(before, MIGRATIONS))
                self.upgrade = Upgrade(before, after, applied, None)
                log.info(
                    "database %s upgraded from schema version %d to %d (%s)",
                    redact_url(self.url),
                    before,
                    after,
                    ", ".join(applied),
                )
            self._pool = ConnectionPool(
                self.url,
                min_size=1,
                max_size=self.pool_size,
                kwargs=connect_kwargs(read_only=not self.migrate),
                configure=configure,
                open=False,
                name="pgstore",
            )
            await self._on_worker(self._pool.open, True, 30.0)
        except BaseException:
            await self.close()
            raise
        log.info("database %s ready (schema version %d)", redact_url(self.url), self.schema_version)

    def _prepare_schema(self) -> tuple[int, int]:
        """(version before, version now), on a connection of its own (a failing URL fails here,
        with libpq's reason, at once, not after the pool's timeout)."""
        with psycopg.connect(self.url, **connect_kwargs(read_only=not self.migrate)) as conn:
            before = schema_version(conn)
            if before > code_version():
                raise SchemaTooNew(before, code_version())
            return migrate(conn) if self.migrate else (before, before)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        executor, self._executor = self._executor, None
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.shutdown(wait=True)
        if pool is not None:
            if executor is not None:
                await asyncio.get_running_loop().run_in_executor(executor, pool.close)
            else:
                pool.close()
        if executor is not None:
            executor.shutdown(wait=True)

    async def backup(self, target: str | Path) -> None:
        """On PostgreSQL a backup is `pg_dump --format=custom` of the whole database to `target`
        (restore it with `pg_restore`): one consistent snapshot, taken while the bot keeps
        writing. pg_dump must be on PATH (the PostgreSQL client package), of the server's major
        version or newer; its password goes through the environment, never the command line."""
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise RuntimeError(
                "backing up a PostgreSQL database needs pg_dump (PostgreSQL's client programs) on PATH;"
                " install it (e.g. apt install postgresql-client) or run pg_dump --format=custom yourself"
            )
        params = conninfo_to_dict(self.url)
        env = dict(os.environ)
        password = params.pop("password", None)
        if password is not None:
            env["PGPASSWORD"] = str(password)
        process = await asyncio.create_subprocess_exec(
            pg_dump,
            "--format=custom",
            "--file",
            str(target),
            "--dbname",
            make_conninfo("", **params),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(
                f"pg_dump of {redact_url(self.url)} failed ({process.returncode}): {stderr.decode(errors='replace')}"
            )

    # running units of work ---------------------------------------------------------------------
    async def _on_worker(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("the store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def write(self, unit: Callable[..., T | CommitThenRaise], *args: Any) -> T:
        """`unit(tx, *args)` in one write transaction (see bot/store/ports.py `Engine.write`)."""
        if self._writer is None:
            raise RuntimeError("the store is not open")
        result = await asyncio.get_running_loop().run_in_executor(self._writer, self._in_write_transaction, unit, args)
        if isinstance(result, CommitThenRaise):
            raise result.error
        return result

    async def read(self, query: Callable[..., T], *args: Any, fast: bool = False) -> T:
        """`query(tx, *args)` on one snapshot (`fast` changes nothing here: every read is a hop)."""
        return await self._on_worker(self._in_snapshot, query, args)

    async def verify(self, now: int) -> list[str]:
        return await self._on_worker(self._in_snapshot, _verify, (now,))

    def _in_write_transaction(self, unit: Callable[..., T], args: tuple[Any, ...]) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("the store is not open")
        attempt = 1
        while True:
            with pool.connection() as raw:
                try:
                    raw.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")
                    result = unit(PgTx(PgConnection(raw)), *args)
                    raw.execute("COMMIT")
                    return result
                except RETRYABLE as exc:
                    _rollback(raw)
                    if attempt >= MAX_ATTEMPTS:
                        raise
                    log.debug(
                        "%s: %s (SQLSTATE %s), attempt %d: trying again",
                        getattr(unit, "__name__", "unit"),
                        type(exc).__name__,
                        exc.sqlstate,
                        attempt,
                    )
                except BaseException:
                    _rollback(raw)
                    raise
            time.sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))
            attempt += 1

    def _in_snapshot(self, query: Callable[..., T], args: tuple[Any, ...]) -> T:
        pool = self._pool
        if pool is None:
            raise RuntimeError("the store is not open")
        with pool.connection() as raw:
            raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                result = query(PgTx(PgConnection(raw)), *args)
            except BaseException:
                _rollback(raw)
                raise
            raw.execute("COMMIT")
            return result


def _verify(tx: PgTx, now: int) -> list[str]:
    return verify_invariants(tx.conn, now)


def _rollback(raw: psycopg.Connection[Any]) -> None:
    """End a failed transaction; a connection that broke meanwhile is the pool's to replace."""
    if raw.broken or raw.closed:
        return
    try:
        raw.execute("ROLLBACK")
    except psycopg.Error:
        log.debug("rollback failed", exc_info=True)
