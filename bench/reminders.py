"""Reminder benchmark: expiry reminder DMs on a 1,000,000-lot database, sent through the real bot.

    PYTHONPATH=. python bench/reminders.py                       # 1,000,000 lots, 10,000 due
    PYTHONPATH=. python bench/reminders.py --lots 50000 --due 1000 --json

It builds (or reuses, with --db) a database of `--lots` lots of which exactly `--due` have a
reminder due now (`next_reminder_at` in the last scheduler tick), owned by about as many members:
2% of those members have two lots in the same lead window, so every due member gets one DM. It
works on a copy (sending changes the database) and measures, on the real code:

1. an idle tick: the scheduler's reminder job and expiry-sweep job (`Jobs.remind`, `Jobs.expire`)
   at the previous tick, when nothing is due — p50/p99 over many ticks;
2. finding the due reminders (`Ledger.due_reminders`), beside the same statements on plain
   `sqlite3` (recorded from the store's own query function, so the floor cannot drift);
3. sending them: a FakeDiscord on 127.0.0.1 with the guild and the due members, a real
   `PromoBalanceBot` connected to it (as tests/e2e.py `start_bot` does, with
   `dm_rate=inf` for the raw throughput), `bot.reminders.run_once()`: finding and sending timed
   apart, the DMs checked at the fake (one per due member, both lots in the DMs of members with
   two), and a second `run_once()` that must send nothing;
4. the process's peak RSS (`ru_maxrss`), with checkpoints; the fake Discord lives in this process.

The database is built in a child process with plain `sqlite3` executemany into the schema migrated
by opening a `SqliteStore` once: bench/ledger.py's approach, not its builder (which cannot place an
exact number of due reminders, one lead window per member).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import gc
import json
import logging
import os
import platform
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/reminders.py` without PYTHONPATH
    sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
import discord  # noqa: E402

from bench._common import FixedClock, cached_build, log, migrate, peak_rss_mb, schema_hash, summary  # noqa: E402
from bot.app.credits import expire_batch  # noqa: E402
from bot.app.reminder_dispatch import DEFAULT_DMS_PER_SECOND  # noqa: E402
from bot.app.reminders import due_reminders  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.discordbot.client import PromoBalanceBot, point_at  # noqa: E402
from bot.domain.models import DEFAULT_REMINDER_LEADS  # noqa: E402
from bot.scheduler import TICK_SECONDS  # noqa: E402
from bot.store.sqlite.engine import configure_writer  # noqa: E402
from bot.store.sqlite.tx import SqliteTx  # noqa: E402
from fakediscord import FakeDiscord  # noqa: E402

BUILD_VERSION = 1
META_KEY = "bench_reminders_meta"
GUILD = 880_123_456_789_012_345
MOD = 310_987_654_321_098_765
DAY = 86_400
YEAR = 365 * DAY
LEADS = DEFAULT_REMINDER_LEADS  # 7 days, 1 day: the schema's default
MARGIN = 120  # non-due lots keep this far from any lead window's opening, and from expiring
PAIR_SHARE = 50  # 1 due member in 50 has two lots in the same window
CHUNK = 50_000
CATEGORY_LISTS = ('["games"]', '["games","merch"]', '["roles"]', '["events"]')
MEMOS = (None, "event reward", "compensation", "giveaway winner", "birthday", "role reward")
BATCH = 10_000  # ReminderDispatcher's default batch (lots per run_once)
TARGET_IDLE_MS = 5.0
TARGET_FIND_MS = 200.0
STATE_UPSERT = (  # SqliteStore.set_state
    "INSERT INTO bot_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
LOT_INSERT = (
    "INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, expires_at, categories,"
    " one_time, source, source_ref, memo, created_by, created_at, status, next_reminder_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'grant', NULL, ?, ?, ?, ?, ?)"
)
ENTRY_INSERT = (
    "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, actor_id, reason, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
REMINDER_INSERT = (
    "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, nonce, updated_at) VALUES (?, ?, 'sent', 1, ?, ?)"
)
DUE_COUNT = (
    "SELECT COUNT(*) FROM lots WHERE status = 'active' AND next_reminder_at IS NOT NULL AND next_reminder_at <= ?"
)
SWEEP_COUNT = "SELECT COUNT(*) FROM lots WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?"


# Small helpers as in bench/ledger.py (copied, not imported: that file is being reworked).


async def paired(
    items: Sequence[Any], warm: int, ours: Callable[[Any], Awaitable[Any]], floor: Callable[[Any], Any]
) -> tuple[list[int], list[int], list[int], list[int]]:
    """Each item on both sides, one after the other, alternating which goes first: wall ns per call
    (ours, floor), then the process's CPU ns per call (all threads: the store's worker thread too)."""
    mine: list[int] = []
    base: list[int] = []
    mine_cpu: list[int] = []
    base_cpu: list[int] = []
    wall, cpu = time.perf_counter_ns, time.process_time_ns

    async def timed_ours(item: Any) -> tuple[int, int]:
        w, c = wall(), cpu()
        await ours(item)
        return wall() - w, cpu() - c

    def timed_floor(item: Any) -> tuple[int, int]:
        w, c = wall(), cpu()
        floor(item)
        return wall() - w, cpu() - c

    for index, item in enumerate(items):
        if index % 2 == 0:
            a = await timed_ours(item)
            b = timed_floor(item)
        else:
            b = timed_floor(item)
            a = await timed_ours(item)
        if index >= warm:
            mine.append(a[0])
            base.append(b[0])
            mine_cpu.append(a[1])
            base_cpu.append(b[1])
    return mine, base, mine_cpu, base_cpu


class Spans:
    """Wall time spent in some awaitables of the real path (wrapped on the instances, not edited)."""

    def __init__(self) -> None:
        self.ns: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        inner = getattr(owner, attribute)

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return await inner(*args, **kwargs)
            finally:
                self.ns[name] += time.perf_counter_ns() - t0
                self.calls[name] += 1

        setattr(owner, attribute, timed)


class GcTimer:
    """Time spent in the cyclic garbage collector (gc.callbacks), by generation."""

    def __init__(self) -> None:
        self.ns = 0
        self.collections: Counter[int] = Counter()
        self._start = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.perf_counter_ns()
        else:
            self.ns += time.perf_counter_ns() - self._start
            self.collections[info["generation"]] += 1


def deep_size_mb(*roots: Any) -> float:
    """sys.getsizeof over plain data (dicts, lists, tuples, sets, dataclass instances), each object once."""
    seen: set[int] = set()
    stack = list(roots)
    total = 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            stack.append(vars(obj))
    return total / 2**20


def io_pressure() -> float | None:
    """Linux PSI: the share of the last minute some task waited for I/O (other processes' disk use)."""
    try:
        with open("/proc/pressure/io") as f:
            return float(f.readline().split()[2].split("=")[1])
    except (OSError, IndexError, ValueError):
        return None


def rss_now_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


def due_members_for(due: int) -> tuple[int, int]:
    """(members with a due reminder, of whom with two due lots) for `due` due lots."""
    pairs = due // PAIR_SHARE
    return due - pairs, pairs


# --- building the database ---------------------------------------------------------------------


def _future_offset(rng: random.Random) -> int:
    """Seconds from now to a non-due lot's expiry, away from the lead windows' openings."""
    while True:
        offset = rng.randrange(MARGIN, YEAR)
        if all(abs(offset - lead) >= MARGIN for lead in LEADS):
            return offset


def build_db(path: str, lots: int, due: int, seed: int) -> dict[str, Any]:
    """Create the benchmark database at `path` (runs in a child process)."""
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    migrate(path)
    now = int(time.time()) // 60 * 60
    last_tick = now - TICK_SECONDS
    rng = random.Random(seed)
    due_members_n, pairs = due_members_for(due)
    members_n = max(lots // 10, due_members_n)
    members = rng.sample(range(10**17, 10**18), members_n)
    due_members = rng.sample(members, due_members_n)
    lead_of = {u: rng.choice(LEADS) for u in due_members}
    due_owners = due_members + due_members[:pairs]
    rng.shuffle(due_owners)
    # Due lots were created more than a month ago (their 7-day window opened after they were made).
    due_positions = set(rng.sample(range(max(int(lots * 0.9), due)), due))
    first_created = now - YEAR
    span = YEAR - 3600

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # only while building; the benchmark uses the store's
    conn.execute("PRAGMA cache_size = -1000000")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO guild_settings (guild_id) VALUES (?)", (GUILD,))
    due_set = set(due_members)
    conn.executemany(
        "INSERT INTO accounts (guild_id, user_id, reminders_enabled, dm_closed_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (
            (GUILD, u, 1, None, now - YEAR - rng.randrange(YEAR))
            if u in due_set
            else (
                GUILD,
                u,
                int(rng.random() > 0.05),
                now - rng.randrange(YEAR) if rng.random() < 0.03 else None,
                now - YEAR - rng.randrange(YEAR),
            )
            for u in sorted(members)
        ),
    )
    lot_rows: list[tuple[Any, ...]] = []
    entry_rows: list[tuple[Any, ...]] = []
    reminder_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        conn.executemany(LOT_INSERT, lot_rows)
        conn.executemany(ENTRY_INSERT, entry_rows)
        conn.executemany(REMINDER_INSERT, reminder_rows)
        lot_rows.clear()
        entry_rows.clear()
        reminder_rows.clear()

    owners = iter(due_owners)
    for i in range(lots):
        lot_id = i + 1
        created = first_created + i * span // lots
        memo = rng.choice(MEMOS)
        categories = rng.choice(CATEGORY_LISTS) if rng.random() < 0.1 else None
        if i in due_positions:
            user = next(owners)
            lead = lead_of[user]
            nra = now - rng.randrange(TICK_SECONDS)  # came due since the previous tick
            expires = nra + lead
            kind = "promo" if rng.random() < 0.85 else "gift"
            amount = rng.choice((25, 50, 100, 150, 200, 250, 500, 1000))
            for earlier in (x for x in LEADS if x > lead):  # the longer leads were reminded already
                reminder_rows.append((lot_id, earlier, f"r{lot_id:024x}", max(created, expires - earlier)))
            lot_rows.append(
                (
                    lot_id,
                    GUILD,
                    user,
                    kind,
                    amount,
                    amount,
                    created,
                    expires,
                    categories,
                    0,
                    memo,
                    MOD,
                    created,
                    "active",
                    nra,
                )
            )
            entry_rows.append((GUILD, user, lot_id, "grant", amount, MOD, memo, created))
        else:
            user = rng.choice(members)
            kind = "promo" if rng.random() < 0.7 else "gift"
            amount = rng.choice((25, 50, 100, 150, 200, 250, 500, 1000, 2500))
            r = rng.random()
            status, remaining, expires, nra, closing = "active", amount, None, None, None
            if r < 0.30:  # never expires
                pass
            elif r < 0.65:  # expires later, away from any window opening now
                expires = now + _future_offset(rng)
                open_leads = [lead for lead in LEADS if expires - lead <= now]
                for lead in open_leads:
                    reminder_rows.append((lot_id, lead, f"r{lot_id:024x}", max(created, expires - lead)))
                later = [lead for lead in LEADS if lead not in open_leads]
                nra = expires - max(later) if later else None
            elif r < 0.85 and created < now - 4 * MARGIN:  # expired, swept
                expires = rng.randrange(created + MARGIN, now - MARGIN)
                status, remaining, closing = "expired", 0, ("expire", expires)
            else:  # spent
                status, remaining = "spent", 0
                closing = ("spend", rng.randrange(created, now - 60) if created < now - 60 else created)
            lot_rows.append(
                (
                    lot_id,
                    GUILD,
                    user,
                    kind,
                    amount,
                    remaining,
                    created,
                    expires,
                    categories,
                    0,
                    memo,
                    MOD,
                    created,
                    status,
                    nra,
                )
            )
            entry_rows.append((GUILD, user, lot_id, "grant", amount, MOD, memo, created))
            if closing is not None:
                entry_rows.append((GUILD, user, lot_id, closing[0], -amount, None, closing[0] + "d", closing[1]))
        if len(lot_rows) >= CHUNK:
            flush()
    flush()
    meta = {
        "version": BUILD_VERSION,
        "schema": schema_hash(),
        "lots": lots,
        "due": due,
        "seed": seed,
        "now": now,
        "guild_id": GUILD,
        "due_members": due_members_n,
        "pairs": pairs,
    }
    conn.executemany(STATE_UPSERT, [("last_sweep_at", str(last_tick)), (META_KEY, json.dumps(meta))])
    conn.execute("COMMIT")
    stats = db_stats(conn, now)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if stats["due_lots"] != due or stats["due_members"] != due_members_n or stats["due_at_last_tick"]:
        raise RuntimeError(f"the build went wrong: {stats}")
    if stats["due_for_sweep"]:
        raise RuntimeError(f"{stats['due_for_sweep']} lots are due for the sweep; none should be")
    stats.update(
        build_s=time.perf_counter() - started, build_rss_mb=peak_rss_mb(), size_mb=os.path.getsize(path) / 2**20
    )
    return stats


def db_stats(conn: sqlite3.Connection, now: int) -> dict[str, Any]:
    def one(sql: str, *args: Any) -> int:
        return int(conn.execute(sql, args).fetchone()[0] or 0)

    return {
        "lots": one("SELECT COUNT(*) FROM lots"),
        "active_lots": one("SELECT COUNT(*) FROM lots WHERE status = 'active'"),
        "with_next_reminder": one("SELECT COUNT(*) FROM lots WHERE status = 'active' AND next_reminder_at IS NOT NULL"),
        "due_lots": one(DUE_COUNT, now),
        "due_members": one(
            "SELECT COUNT(DISTINCT user_id) FROM lots WHERE status = 'active' AND next_reminder_at IS NOT NULL"
            " AND next_reminder_at <= ?",
            now,
        ),
        "due_at_last_tick": one(DUE_COUNT, now - TICK_SECONDS),
        "due_for_sweep": one(SWEEP_COUNT, now),
        "members": one("SELECT COUNT(*) FROM accounts"),
        "entries": one("SELECT COUNT(*) FROM entries"),
        "reminder_rows": one("SELECT COUNT(*) FROM reminders"),
    }


def pristine_db(args: argparse.Namespace, workdir: Path) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """The built database: reused from --db when it was built for the same --lots, --due and --seed."""
    if args.db is None:
        path = workdir / "pristine.sqlite3"
    else:
        path = Path(args.db)
        if path.is_dir():
            path = path / f"reminders-bench-{args.lots}-{args.due}.sqlite3"
    meta, stats = cached_build(
        path,
        META_KEY,
        {"version": BUILD_VERSION, "lots": args.lots, "due": args.due, "seed": args.seed},
        f"{args.lots:,} lots, {args.due:,} of them due",
        build_db,
        args.lots,
        args.due,
        args.seed,
    )
    return path, meta, stats


# --- the floor: the store's own statements on plain sqlite3 -------------------------------------


class Recorder:
    """A connection stand-in that records what a store function executes (then runs it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.calls.append((sql, tuple(params)))
        return self.conn.execute(sql, params)


class Floor:
    """The statements `due_reminders` and `expire_batch` (bot/app) execute, replayed with minimal Python."""

    def __init__(self, path: Path, now: int, idle_at: int) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        configure_writer(self.conn)  # the store's pragmas
        rec = Recorder(self.conn)
        due_reminders(SqliteTx(rec), now, BATCH)  # type: ignore[arg-type]  # the query and each guild's settings read
        self.find_calls = rec.calls
        rec = Recorder(self.conn)
        due_reminders(SqliteTx(rec), idle_at, BATCH)  # type: ignore[arg-type]
        self.idle_due_calls = rec.calls
        rec = Recorder(self.conn)
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            if expire_batch(SqliteTx(rec), idle_at, 10_000):  # type: ignore[arg-type]
                raise RuntimeError("the floor's sweep found lots to expire at the idle tick")
        finally:
            self.conn.execute("ROLLBACK")
        self.idle_sweep_calls = rec.calls
        self.recorded_idle_at = self.idle_at = idle_at

    def _at(self, params: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(self.idle_at if p == self.recorded_idle_at else p for p in params)

    def close(self) -> None:
        self.conn.close()

    def find(self) -> int:
        rows = 0
        for sql, params in self.find_calls:
            rows += len(self.conn.execute(sql, params).fetchall())
        return rows

    def idle_remind(self) -> None:
        for sql, params in self.idle_due_calls:
            if self.conn.execute(sql, self._at(params)).fetchall():
                raise RuntimeError("the floor found due reminders at the idle tick")

    def idle_expire(self) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")  # SqliteStore.sweep_expired: one batch …
        try:
            for sql, params in self.idle_sweep_calls:
                c.execute(sql, self._at(params)).fetchall()
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        c.execute("BEGIN IMMEDIATE")  # … then set_state("last_sweep_at"), under a key of its own
        c.execute(STATE_UPSERT, ("bench_floor_last_sweep_at", str(self.idle_at)))  # (the same value is no write)
        c.execute("COMMIT")


# --- running --------------------------------------------------------------------------------------


async def start_bot(db: Path, fake: FakeDiscord, clock: FixedClock, guild_id: int) -> tuple[PromoBalanceBot, Any]:
    """As tests/e2e.py `start_bot`: jobs only when called, DMs unpaced; then wait for the
    member cache, so DMs go to cached users as in production."""
    settings = Settings(
        discord_token=fake.token,
        database_path=db,
        dev_guild_id=None,
        log_level="WARNING",
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
    )
    point_at(settings)
    bot = PromoBalanceBot(settings, clock=clock, tick_seconds=None, dm_rate=float("inf"))
    await bot.login(fake.token)
    task = asyncio.create_task(bot.connect(reconnect=False))
    await fake.wait_until_ready(timeout=120)
    await fake.wait_for(lambda: fake.sync_count > 0 or bot.is_ready(), timeout=60, what="command sync")

    def cached() -> bool:
        guild = bot.get_guild(guild_id)
        return bot.is_ready() and guild is not None and guild.chunked

    await fake.wait_for(cached, timeout=120, what="the guild's members in the bot's cache")
    return bot, task


async def stop_bot(bot: PromoBalanceBot, task: Any) -> None:
    await bot.close()
    with contextlib.suppress(asyncio.CancelledError, discord.ConnectionClosed):
        await asyncio.wait_for(task, 10)


def expected_dues(path: Path, now: int) -> dict[int, int]:
    """Due lots per member, straight from the database."""
    conn = sqlite3.connect(path)
    try:
        return dict(
            conn.execute(
                "SELECT user_id, COUNT(*) FROM lots WHERE status = 'active' AND next_reminder_at IS NOT NULL"
                " AND next_reminder_at <= ? GROUP BY user_id",
                (now,),
            ).fetchall()
        )
    finally:
        conn.close()


async def run_bench(db: Path, meta: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    now = int(meta["now"])
    idle_at = now - TICK_SECONDS
    guild_id = int(meta["guild_id"])
    checkpoints: dict[str, tuple[float, float]] = {}
    out: dict[str, Any] = {}

    def checkpoint(name: str) -> None:
        checkpoints[name] = (rss_now_mb(), peak_rss_mb())

    out["load_average_at_start"] = os.getloadavg()
    out["io_pressure_at_start"] = io_pressure()

    checkpoint("start")
    dues = expected_dues(db, now)
    due_lots = sum(dues.values())
    pair_members = [u for u, n in dues.items() if n > 1]

    log(f"fake Discord: 1 guild, {len(dues):,} members …")
    fake = FakeDiscord(max_records=None)  # every request and message counted: the run is bounded by itself
    await fake.start()
    guild = fake.add_guild(guild_id=guild_id, name="Bench Guild")
    for n, user_id in enumerate(dues):
        fake.add_member(guild.id, user_id=user_id, name=f"member{n}")
    checkpoint("fake world built")

    clock = FixedClock(idle_at)
    log("starting the bot …")
    t0 = time.perf_counter()
    bot, task = await start_bot(db, fake, clock, guild_id)
    out["bot_start_s"] = time.perf_counter() - t0
    checkpoint("bot ready")
    floor = Floor(db, now, idle_at)
    try:
        # 1. idle ticks: the reminder job and the sweep job when nothing is due
        log(f"idle ticks ({args.ticks} + warm-up) …")
        remind_ns: list[int] = []
        expire_ns: list[int] = []
        tick_ns: list[int] = []
        tick_cpu_ns: list[int] = []
        floor_remind_ns: list[int] = []
        floor_expire_ns: list[int] = []
        floor_tick_ns: list[int] = []
        warm = max(10, args.ticks // 10)
        clock_ns = time.perf_counter_ns

        def floor_tick() -> tuple[int, int]:
            f0 = clock_ns()
            floor.idle_remind()
            f1 = clock_ns()
            floor.idle_expire()
            return f1 - f0, clock_ns() - f1

        for i in range(warm + args.ticks):
            # Each tick at its own second (going back from the previous tick, when nothing was due):
            # the sweep then writes a new last_sweep_at, as every real tick does. With the same value
            # SQLite skips the identical write, and with it the commit's fsync.
            clock.at = floor.idle_at = idle_at - i
            if i % 2:  # alternate which side goes first, as bench/ledger.py does
                floor_times = floor_tick()
            c0, t0 = time.process_time_ns(), clock_ns()
            sent = await bot.jobs.remind()
            t1 = clock_ns()
            expired = await bot.jobs.expire()
            t2, c2 = clock_ns(), time.process_time_ns()
            if i % 2 == 0:
                floor_times = floor_tick()
            if sent or expired:
                raise RuntimeError(f"idle tick sent {sent} reminders and expired {expired} lots")
            if i >= warm:
                remind_ns.append(t1 - t0)
                expire_ns.append(t2 - t1)
                tick_ns.append(t2 - t0)
                tick_cpu_ns.append(c2 - c0)
                floor_remind_ns.append(floor_times[0])
                floor_expire_ns.append(floor_times[1])
                floor_tick_ns.append(sum(floor_times))
        out["idle_tick"] = {
            "ours": {
                "tick": summary(tick_ns),
                "remind_job": summary(remind_ns),
                "expire_job": summary(expire_ns),
                "tick_cpu": summary(tick_cpu_ns),
            },
            "sqlite3": {
                "tick": summary(floor_tick_ns),
                "due_query": summary(floor_remind_ns),
                "sweep": summary(floor_expire_ns),
            },
        }
        checkpoint("idle ticks")

        # 2. finding the due reminders, beside plain sqlite3
        clock.at = now
        log(f"finding {due_lots:,} due reminders ({args.find_runs} runs + 2 warm-up, beside sqlite3) …")
        found: list[int] = []

        async def ours(_: int) -> None:
            found.append(len(await bot.ledger.due_reminders()))

        floor_rows: list[int] = []
        find_gc = GcTimer()
        gc.callbacks.append(find_gc)
        try:
            mine, base, mine_cpu, base_cpu = await paired(
                range(2 + args.find_runs), 2, ours, lambda _: floor_rows.append(floor.find())
            )
        finally:
            gc.callbacks.remove(find_gc)
        if set(found) != {len(dues)} or floor_rows[0] < due_lots:
            raise RuntimeError(f"found {set(found)} reminders ({floor_rows[0]} rows), expected {len(dues)}")
        r, s = summary(mine), summary(base)
        out["find"] = {
            **r,
            "ratio_to_sqlite3": r["ops_per_s"] / s["ops_per_s"],
            "cpu": summary(mine_cpu),
            "sqlite3": {**s, "cpu": summary(base_cpu)},
            "reminders": len(dues),
            "lots": due_lots,
            # the collector's time over all runs (both sides, warm-up too), per run
            "gc_ms_per_run": find_gc.ns / 1e6 / (2 + args.find_runs),
            "gc_collections": {f"gen{g}": n for g, n in sorted(find_gc.collections.items())},
        }
        checkpoint("find")

        # 3. sending them through the bot to the fake Discord
        requests_before = len(fake.requests)
        log(f"run_once: sending {len(dues):,} DMs to the fake Discord …")
        spans = Spans()
        spans.wrap(bot.ledger, "claim_reminder", "claim (write transaction)")
        spans.wrap(bot.ledger, "settle_reminder", "settle (write transaction)")
        spans.wrap(bot.reminders, "send", "send: embed + DM")
        spans.wrap(bot.ledger, "settings", "  embed: settings read")
        spans.wrap(bot.http, "request", "  HTTP requests to the fake")
        gc_timer = GcTimer()
        gc.callbacks.append(gc_timer)
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        t0, c0 = time.perf_counter(), time.process_time()
        run = await bot.reminders.run_once()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        gc.callbacks.remove(gc_timer)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
            log(f"profile of run_once written to {args.profile}")
        checkpoint("send")
        requests = fake.requests[requests_before:]
        kinds = Counter(
            "create DM"
            if rq.method == "POST" and rq.path == "/users/@me/channels"
            else "post message"
            if rq.method == "POST" and rq.path.startswith("/channels/")
            else f"{rq.method} {rq.path.split('/')[1]}"
            for rq in requests
        )
        failed = [rq for rq in requests if rq.status >= 400]
        dm_counts = Counter(len(fake.dms(u)) for u in dues)
        pairs_ok = sum(
            1
            for u in pair_members
            if len(fake.dms(u)) == 1 and (fake.dms(u)[0].embeds[0].get("description") or "").count("•") == dues[u]
        )
        messages = kinds["post message"]
        second = await bot.reminders.run_once()
        messages_after_second = len(fake.requests_to("POST", r"^/channels/\d+/messages$"))
        conn = sqlite3.connect(db)
        try:
            outcomes = dict(
                conn.execute(
                    "SELECT status, COUNT(*) FROM reminders WHERE updated_at = ? GROUP BY status", (now,)
                ).fetchall()
            )
            still_due = conn.execute(DUE_COUNT, (now,)).fetchone()[0]
        finally:
            conn.close()
        rate = DEFAULT_DMS_PER_SECOND
        per_dm = run.send_seconds / run.sent if run.sent else 0.0
        checks = {
            "found_all": run.found == len(dues),
            "sent_all": run.sent == len(dues) and not (run.failed or run.retried or run.dm_closed or run.unknown),
            "one_dm_per_member": dm_counts == Counter({1: len(dues)}),
            "dms_at_fake_equal_due_members": messages == len(dues),
            "two_lots_in_one_dm": pairs_ok == len(pair_members),
            "no_failed_requests": not failed,
            "second_run_sends_nothing": second.found == 0 and second.sent == 0 and messages_after_second == messages,
            "db_settled": outcomes.get("sent", 0) == due_lots and not outcomes.get("pending") and still_due == 0,
        }
        out["send"] = {
            "found": run.found,
            "sent": run.sent,
            "failed": run.failed,
            "retried": run.retried,
            "errors": run.errors[:5],
            "find_s": run.find_seconds,
            "send_s": run.send_seconds,
            "run_once_wall_s": wall,
            "run_once_cpu_s": cpu,  # the whole process: bot, store thread and fake Discord
            "per_dm_ms": {name: ns / 1e6 / max(run.sent, 1) for name, ns in spans.ns.items()},
            "gc_s": gc_timer.ns / 1e9,
            "gc_collections": {f"gen{g}": n for g, n in sorted(gc_timer.collections.items())},
            "span_calls": dict(spans.calls),
            "dms_per_s": run.sent / run.send_seconds if run.send_seconds else 0.0,
            "ms_per_dm": per_dm * 1000,
            "requests": dict(kinds),
            "failed_requests": len(failed),
            "dms_at_fake": messages,
            "due_members": len(dues),
            "members_with_two_lots": len(pair_members),
            "due_lots": due_lots,
            "paced_rate_per_s": rate,
            # Pacer: the first DM at once, then one every 1/rate s; each DM's own work fits in its slot.
            "paced_planned_s": (run.sent - 1) / rate + per_dm if run.sent else 0.0,
            "second_run": {"found": second.found, "sent": second.sent, "find_s": second.find_seconds},
            "db_outcomes": outcomes,
            "checks": checks,
        }
    finally:
        floor.close()
        await stop_bot(bot, task)
        await fake.stop()
    checkpoint("end")
    out["load_average_at_end"] = os.getloadavg()
    out["io_pressure_at_end"] = io_pressure()
    if fake.problems():  # a refused DM would not be a sent one: the figures would be wrong
        raise RuntimeError(f"the bot sent requests Discord would refuse: {fake.problems()[:5]}")
    out["rss"] = {name: {"current_mb": cur, "peak_mb": peak} for name, (cur, peak) in checkpoints.items()}
    out["peak_rss_mb"] = peak_rss_mb()
    # after the peak is read: walking the fake's records takes memory of its own
    out["fake_records_mb"] = deep_size_mb(
        fake.requests, fake._messages, fake._channel_log, getattr(fake, "_nonces", {})
    )
    return out


def evaluate(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def target(text: str, value: float, met: bool, unit: str) -> dict[str, Any]:
        return {"target": text, "value": round(value, 4), "unit": unit, "met": bool(met)}

    idle = out["idle_tick"]["ours"]["tick"]
    find_worst = max(out["find"]["max_ms"], out["send"]["find_s"] * 1000)
    find_p50 = out["find"]["p50_ms"]
    return {
        "idle_tick_p50": target(f"< {TARGET_IDLE_MS:g} ms", idle["p50_ms"], idle["p50_ms"] < TARGET_IDLE_MS, "ms"),
        "idle_tick_p99": target(f"< {TARGET_IDLE_MS:g} ms", idle["p99_ms"], idle["p99_ms"] < TARGET_IDLE_MS, "ms"),
        "find_due_p50": target(f"< {TARGET_FIND_MS:g} ms", find_p50, find_p50 < TARGET_FIND_MS, "ms"),
        "find_due_max": target(
            f"< {TARGET_FIND_MS:g} ms (slowest, run_once's too)", find_worst, find_worst < TARGET_FIND_MS, "ms"
        ),
        "send_verified": target(
            "all checks pass", sum(out["send"]["checks"].values()), all(out["send"]["checks"].values()), "ok"
        ),
    }


def print_report(report: dict[str, Any]) -> None:
    meta, stats, out = report["meta"], report["meta"]["db"], report
    print(
        f"Promo Balance reminder benchmark — {meta['lots']:,} lots, {meta['due']:,} due "
        f"(SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, aiosqlite {aiosqlite.__version__}, "
        f"discord.py {discord.__version__}, {os.cpu_count()} CPUs)"
    )
    print(
        f"database: {stats['lots']:,} lots ({stats['active_lots']:,} active, {stats['with_next_reminder']:,} with "
        f"a reminder ahead; {stats['due_lots']:,} due now for {stats['due_members']:,} members), "
        f"{stats['members']:,} members, {stats['entries']:,} entries, {stats['reminder_rows']:,} reminder rows; "
        f"{meta['db_size_mb']:.0f} MB"
    )
    if meta.get("build"):
        b = meta["build"]
        print(f"built in {b['build_s']:.1f} s in a child process (its peak RSS {b['build_rss_mb']:.0f} MB)")
    print(
        f"bot started and cached the guild's members in {out['bot_start_s']:.1f} s; load average "
        f"{out['load_average_at_start'][0]:.2f} at the start, {out['load_average_at_end'][0]:.2f} at the end "
        f"(1 min), I/O pressure {out['io_pressure_at_start']}% / {out['io_pressure_at_end']}% (PSI some avg60): "
        "other processes on this machine add noise"
    )

    idle = out["idle_tick"]
    o, f = idle["ours"], idle["sqlite3"]
    print(f"\n1. idle tick (nothing due; {o['tick']['n']} ticks)      p50 ms   p99 ms   max ms │ sqlite3 p50   p99")
    rows = (
        ("reminder job + sweep job", o["tick"], f["tick"]),
        ("  reminder job (due query)", o["remind_job"], f["due_query"]),
        ("  sweep job (+ last_sweep_at)", o["expire_job"], f["sweep"]),
    )
    for label, a, b in rows:
        print(
            f"   {label:<40}{a['p50_ms']:>8.3f} {a['p99_ms']:>8.3f} {a['max_ms']:>8.3f} │"
            f" {b['p50_ms']:>10.3f} {b['p99_ms']:>6.3f}"
        )
    c = o["tick_cpu"]
    print(
        f"   {'  CPU of the process per tick':<40}{c['p50_ms']:>8.3f} {c['p99_ms']:>8.3f} {c['max_ms']:>8.3f} │"
        " (the rest of the wall time is waiting: fsync, thread wake-ups)"
    )

    fd = out["find"]
    s = fd["sqlite3"]
    print(f"\n2. find {fd['reminders']:,} due reminders ({fd['lots']:,} lots; {fd['n']} runs)")
    print(
        f"   Ledger.due_reminders     p50 {fd['p50_ms']:8.1f} ms  max {fd['max_ms']:8.1f} ms  "
        f"(CPU p50 {fd['cpu']['p50_ms']:.1f} ms)"
    )
    print(
        f"   plain sqlite3 (same SQL) p50 {s['p50_ms']:8.1f} ms  max {s['max_ms']:8.1f} ms  "
        f"(CPU p50 {s['cpu']['p50_ms']:.1f} ms)"
    )
    print(
        f"   garbage collector: {fd['gc_ms_per_run']:.1f} ms per run ({fd['gc_collections']} over "
        f"{fd['n'] + 2} runs of both sides)"
    )
    print(
        f"   ratio (our ops/s ÷ sqlite3 ops/s) {fd['ratio_to_sqlite3']:.2f}x — ours takes "
        f"{1 / fd['ratio_to_sqlite3']:.1f}x the time"
    )

    sd = out["send"]
    print("\n3. run_once through PromoBalanceBot → fake Discord (dm_rate=inf)")
    print(
        f"   found {sd['found']:,} reminders in {sd['find_s'] * 1000:.1f} ms; sent {sd['sent']:,} DMs in "
        f"{sd['send_s']:.2f} s = {sd['dms_per_s']:,.0f} DMs/s ({sd['ms_per_dm']:.2f} ms per DM)"
    )
    print(
        "   per DM (wall ms, mean): "
        + ", ".join(f"{k.strip()} {v:.2f}" for k, v in sd["per_dm_ms"].items())
        + f"; CPU of the whole process {sd['run_once_cpu_s'] * 1000 / max(sd['sent'], 1):.2f} ms per DM"
        + f" (of which GC {sd['gc_s'] * 1000 / max(sd['sent'], 1):.2f} ms: {sd['gc_collections']})"
    )
    print(
        f"   requests: {', '.join(f'{k} {v:,}' for k, v in sorted(sd['requests'].items()))}; "
        f"failed {sd['failed_requests']}"
    )
    print(
        f"   at the default pace of {sd['paced_rate_per_s']:g} DMs/s the same run is planned to take "
        f"{sd['paced_planned_s']:.1f} s ({sd['paced_planned_s'] / 60:.1f} min)"
    )
    print(
        f"   DMs at the fake: {sd['dms_at_fake']:,} for {sd['due_members']:,} due members "
        f"({sd['due_lots']:,} lots; {sd['members_with_two_lots']:,} members with two lots in one DM)"
    )
    print(
        f"   second run_once: found {sd['second_run']['found']}, sent {sd['second_run']['sent']} "
        f"(find {sd['second_run']['find_s'] * 1000:.2f} ms)"
    )
    print(f"   reminder rows settled now: {sd['db_outcomes']}")
    print("   checks: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in sd["checks"].items()))

    print(
        f"\n4. peak RSS {out['peak_rss_mb']:.1f} MB (this process: the bot and the fake Discord, whose records of "
        f"the requests and messages hold about {out['fake_records_mb']:.0f} MB after the send)"
    )
    for name, r in out["rss"].items():
        print(f"   {name:<18} current {r['current_mb']:7.1f} MB   peak so far {r['peak_mb']:7.1f} MB")

    print(
        "\ntargets"
        + (
            ""
            if meta["lots"] >= 1_000_000 and meta["due"] >= 10_000
            else " (set for the 1,000,000-lot, 10,000-due run)"
        )
        + ":"
    )
    for name, t in report["targets"].items():
        print(f"  {name:<15} {t['target']:<38} {t['value']:>10.3f} {t['unit']:<3} {'MET' if t['met'] else 'NOT MET'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--lots", type=int, default=1_000_000, help="lots in the database (default 1,000,000)")
    p.add_argument("--due", type=int, default=10_000, help="lots with a reminder due now (default 10,000)")
    p.add_argument("--ticks", type=int, default=500, help="timed idle ticks (default 500)")
    p.add_argument("--find-runs", type=int, default=10, help="timed runs of the due-reminder query (default 10)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    p.add_argument(
        "--db",
        default=None,
        help="keep the built database here (a file, or a directory) and reuse it for the same --lots/--due",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--profile", default=None, help="write a cProfile of the sending run_once to this file")
    args = p.parse_args(argv)
    if not 1 <= args.due <= BATCH:
        p.error(f"--due must be between 1 and {BATCH:,} (one run_once takes at most {BATCH:,} lots)")
    if args.lots < max(1000, 2 * args.due):
        p.error("--lots must be at least 1000 and at least twice --due")
    if args.ticks < 1 or args.find_runs < 1:
        p.error("--ticks and --find-runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    workdir = Path(tempfile.mkdtemp(prefix="promo-reminders-bench-"))
    try:
        pristine, meta, build = pristine_db(args, workdir)
        db = workdir / "bot.sqlite3"
        shutil.copyfile(pristine, db)  # sending changes the database: work on a copy
        # Flush the copy to disk now: else the first WAL checkpoint's fsync writes the whole file
        # back (half a second at 1,000,000 lots), which a long-running bot's database never does.
        fd = os.open(db, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        conn = sqlite3.connect(db)
        try:
            stats = db_stats(conn, int(meta["now"]))
        finally:
            conn.close()
        log(f"copy ready in {workdir}")
        out = asyncio.run(run_bench(db, meta, args))
        report: dict[str, Any] = dict(out)
        report["targets"] = evaluate(out)
        report["all_targets_met"] = all(t["met"] for t in report["targets"].values())
        report["meta"] = {
            "lots": args.lots,
            "due": args.due,
            "seed": args.seed,
            "now": meta["now"],
            "ticks": args.ticks,
            "find_runs": args.find_runs,
            "db": stats,
            "db_size_mb": os.path.getsize(pristine) / 2**20,
            "build": build,
            "sqlite": sqlite3.sqlite_version,
            "python": platform.python_version(),
            "discord_py": discord.__version__,
            "tick_seconds": TICK_SECONDS,
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0 if report["targets"]["send_verified"]["met"] else 1


if __name__ == "__main__":
    sys.exit(main())
