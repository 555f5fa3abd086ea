"""Ledger benchmark: the bot's hot paths on a 1,000,000-lot database, beside plain sqlite3.

    PYTHONPATH=. python bench/ledger.py                 # 1,000,000 lots, 100,000 members
    PYTHONPATH=. python bench/ledger.py --lots 20000 --ops 200 --json
    PYTHONPATH=. python bench/ledger.py --database-url postgresql://…/postgres   # PostgreSQL, beside psycopg

It builds (or reuses, with --db) a database of `--lots` lots owned by `--lots / 10` members, copies
it twice, and runs every operation through `Ledger` on one copy and the same SQL statements with
plain `sqlite3` on the other (the floor: same pragmas, same statements, minimal Python), call by
call, alternating which side goes first. It prints ops/s and p50/p99 latency of both and their
ratio, the process's peak RSS, and whether each target of the issue is met.

The database is built in a child process with plain `sqlite3` executemany into the migrated schema,
so the peak RSS reported is the one of a process that opens the database and serves requests, as
the bot does (the builder's own peak is shown separately).

With `--database-url` both sides run on PostgreSQL instead: two databases are created on that
server and loaded from the built file by `copy-db`'s copy; ours is `Ledger` on `PostgresStore`,
the floor the same statements with plain psycopg, in the store's transactions (SERIALIZABLE
writes, REPEATABLE READ READ ONLY reads, lot ids from the sequence under the advisory lock).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import random
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/ledger.py` without PYTHONPATH
    sys.path.insert(0, str(ROOT))

import aiosqlite  # noqa: E402
import psycopg  # noqa: E402

from bench._common import (  # noqa: E402
    FixedClock,
    cached_build,
    log,
    migrate,
    peak_rss_mb,
    schema_hash,
    summary,
)
from bot.app.ledger import Ledger  # noqa: E402
from bot.config import redact_url  # noqa: E402
from bot.domain.models import DEFAULT_REMINDER_LEADS  # noqa: E402
from bot.domain.reminders import next_reminder_at, reminder_lead_due  # noqa: E402
from bot.store.copy import copy_sqlite_to_postgres  # noqa: E402
from bot.store.postgres import PostgresStore  # noqa: E402
from bot.store.postgres.connection import PgConnection, configure, connect_kwargs, pg_sql  # noqa: E402
from bot.store.postgres.rows import LOT_IDS_LOCK, PgLotRows  # noqa: E402
from bot.store.sqlite import (  # noqa: E402
    ENTRY_SELECT,
    ITEM_COLUMNS,
    LOT_COLUMNS,
    ORDER_COLUMNS,
    SqliteStore,
)

BUILD_VERSION = 3
META_KEY = "bench_meta"
GUILD = 880_123_456_789_012_345
MOD = 310_987_654_321_098_765
DAY = 86_400
YEAR = 365 * DAY
LEADS = DEFAULT_REMINDER_LEADS  # the schema's default "7d,1d"
SWEEP_WINDOW = 6 * 3600  # the lots due for the sweep expired in the 6 hours before `now`
SWEEP_ROUNDS = 3  # sweeps at now, now + 1 h, now + 2 h: each finds exactly lots / 100 due
REMINDER_TICK = 60  # the reminder job last ran a minute before `now`
ROLE_GRANT_P = 0.0005  # share of grant operations that are role grants (200..2000 lots each)
DISCORD_EPOCH_MS = 1_420_070_400_000
CATEGORIES = ("roles", "games", "merch", "boosts", "events", "gift-cards")
EXCLUDED = ("gift-cards",)  # promotional credit cannot buy gift cards
CATEGORY_LISTS = ('["games"]', '["games","merch"]', '["roles"]', '["events"]')
PRICES = (5, 10, 15, 25, 40, 50, 100, 250, 1000, 5000)
CHEAP = 50  # checkout buys items up to this price
CHUNK = 50_000

# The statements of the SQLite repositories (bot/store/sqlite/), repeated by the floor (keep them in step).
SETTINGS_SQL = (
    "SELECT currency_name, currency_symbol, decimals, timezone, reminder_leads, mod_role_id,"
    " audit_channel_id, promo_excluded_categories, fulfilment_channel_id FROM guild_settings WHERE guild_id = ?"
)
IDEMPOTENCY_SELECT = "SELECT operation, result FROM idempotency WHERE key = ?"
IDEMPOTENCY_INSERT = "INSERT INTO idempotency (key, guild_id, operation, result, created_at) VALUES (?, ?, ?, ?, ?)"
NEXT_LOT_ID = "SELECT COALESCE(MAX(id), 0) + 1 FROM lots"
ACCOUNT_INSERT = "INSERT INTO accounts (guild_id, user_id, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
LOT_INSERT = (
    "INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, expires_at,"
    " categories, one_time, source, source_ref, memo, created_by, created_at, status, next_reminder_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)"
)
GRANT_ENTRY_INSERT = (
    "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, actor_id, reason, created_at,"
    " idempotency_key) VALUES (?, ?, ?, 'grant', ?, ?, ?, ?, ?)"
)
ENTRY_INSERT = (
    "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, order_id, actor_id, reason,"
    " created_at, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
AUDIT_INSERT = "INSERT INTO audit_log (guild_id, actor_id, action, details, created_at) VALUES (?, ?, ?, ?, ?)"
MEMBER_LOTS = f"SELECT {LOT_COLUMNS} FROM lots WHERE guild_id = ? AND user_id = ? AND status = 'active' ORDER BY id"
ITEM_SELECT = f"SELECT {ITEM_COLUMNS} FROM shop_items WHERE id = ? AND guild_id = ?"
BOUGHT_SELECT = (
    "SELECT COALESCE(SUM(quantity), 0) FROM orders WHERE item_id = ? AND user_id = ?"
    " AND status IN ('completed', 'pending', 'fulfilled')"
)
ORDER_INSERT = (
    "INSERT INTO orders (guild_id, user_id, item_id, item_name, quantity, unit_price, total,"
    " promo_applied, gift_applied, forfeited, role_id, status, delivery, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?) RETURNING id"
)
ORDER_SELECT = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = ? AND guild_id = ?"
ORDER_FIELDS = tuple(c.strip() for c in ORDER_COLUMNS.split(","))
LOT_DEBIT = (
    "UPDATE lots SET remaining = ?, status = ?,"
    " next_reminder_at = CASE WHEN ? = 'active' THEN next_reminder_at END"
    " WHERE id = ? AND remaining = ? AND status = 'active'"
)
EMPTY_STATUS = {"spend": "spent", "forfeit": "forfeited"}
HISTORY_COUNT = "SELECT COUNT(*) FROM entries WHERE guild_id = ? AND user_id = ?"
HISTORY_PAGE = ENTRY_SELECT + " WHERE e.guild_id = ? AND e.user_id = ? ORDER BY e.id DESC LIMIT ? OFFSET ?"
DUE_SELECT = (
    f"SELECT {', '.join('l.' + c.strip() for c in LOT_COLUMNS.split(','))},"
    " a.reminders_enabled, a.dm_closed_at"
    " FROM lots l JOIN accounts a ON a.guild_id = l.guild_id AND a.user_id = l.user_id"
    " WHERE l.status = 'active' AND l.next_reminder_at IS NOT NULL AND l.next_reminder_at <= ?"
    " ORDER BY l.next_reminder_at LIMIT ?"
)
SWEEP_SELECT = (
    "SELECT id, guild_id, user_id, kind, remaining, expires_at FROM lots"
    " WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ? LIMIT ?"
)
SWEEP_UPDATE = "UPDATE lots SET remaining = 0, status = 'expired', next_reminder_at = NULL WHERE id = ?"
SWEEP_ENTRY = (
    "INSERT INTO entries (guild_id, user_id, lot_id, type, amount, reason, created_at)"
    " VALUES (?, ?, ?, 'expire', ?, 'expired', ?)"
)
STATE_UPSERT = "INSERT INTO bot_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
PRAGMAS = (  # bot/store/sqlite/engine.py `configure_writer`
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
)


def snowflake(unix_s: int, seq: int) -> int:
    """A Discord-like id: time-ordered, as interaction ids (our idempotency keys) are."""
    return ((unix_s * 1000 - DISCORD_EPOCH_MS) << 22) | (seq & 0x3FFFFF)


def cpu_s() -> float:
    """CPU seconds of this process, all threads (aiosqlite's worker included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- building the database ---------------------------------------------------------------------


def reminder_state(expires_at: int, created_at: int, last_run: int) -> tuple[int | None, list[tuple[int, int]]]:
    """Replay the reminder job up to `last_run`: the lot's next_reminder_at and the leads sent."""
    nra = next_reminder_at(expires_at, LEADS, created_at)
    sent: list[tuple[int, int]] = []
    after: int | None = None
    while nra is not None and nra <= last_run:
        lead = reminder_lead_due(expires_at, LEADS, nra)
        if lead is None:
            return None, sent
        sent.append((lead, nra))
        after = lead if after is None else min(after, lead)
        nra = next_reminder_at(expires_at, LEADS, nra, after)
    return nra, sent


def sweep_sets(rng: random.Random, lots: int, count: int, rounds: int, clusters: int = 8) -> dict[int, int]:
    """Which lots (0-based) fall due at which sweep round: {lot index: round}, `count` per round.

    Expiry follows creation (a lot lives its validity: 7, 30, 90 … days), so the lots expiring in
    the same few hours were created in the same few hours of earlier days: a handful of id ranges,
    one lot in three of them (the others had another validity). Not ids drawn uniformly from the
    whole table, which no real ledger produces and which would touch a random page per lot."""
    width = 3 * count // clusters + 1
    starts = rng.sample(range(0, int(lots * 0.95) - width, width), clusters * rounds)  # disjoint windows
    due: dict[int, int] = {}
    for r in range(rounds):
        pool = [i for start in starts[r * clusters : (r + 1) * clusters] for i in range(start, start + width)]
        due.update((i, r) for i in rng.sample(pool, count))
    return due


def build_db(path: str, lots: int, seed: int) -> dict[str, Any]:
    """Create the benchmark database at `path` (runs in a child process)."""
    started = time.perf_counter()
    for suffix in ("", "-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    migrate(path)
    now = int(time.time()) // 60 * 60
    rng = random.Random(seed)
    members_n = max(lots // 10, 10)
    sweep_n = lots // 100
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous = OFF")  # only while building; the benchmark uses the store's
    conn.execute("PRAGMA cache_size = -262144")
    conn.execute("PRAGMA temp_store = MEMORY")
    conn.execute("BEGIN")
    # Load without the secondary indexes, then create them again from their own DDL: same schema,
    # built by sorting instead of a million random B-tree inserts.
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        " AND tbl_name IN ('lots', 'entries', 'orders', 'audit_log')"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute(
        "INSERT INTO guild_settings (guild_id, promo_excluded_categories) VALUES (?, ?)",
        (GUILD, json.dumps(list(EXCLUDED))),
    )

    # members: snowflake-sized ids, some opted out of reminders or with closed DMs
    members = rng.sample(range(10**17, 10**18), members_n)
    conn.executemany(
        "INSERT INTO accounts (guild_id, user_id, reminders_enabled, dm_closed_at, created_at) VALUES (?, ?, ?, ?, ?)",
        (
            (
                GUILD,
                u,
                int(rng.random() > 0.05),
                now - rng.randrange(YEAR) if rng.random() < 0.03 else None,
                now - YEAR - rng.randrange(YEAR),
            )
            for u in sorted(members)
        ),
    )
    # the shop: 10 items per category, some with stock, some with a per-member limit
    items: list[tuple[int, str, str, int | None]] = []
    for c, category in enumerate(CATEGORIES):
        for j, price in enumerate(PRICES):
            item_id = c * len(PRICES) + j + 1
            name = f"{category.title()} {j + 1}"
            role_id = 500_000_000_000_000_000 + item_id if category == "roles" else None
            conn.execute(
                "INSERT INTO shop_items (id, guild_id, name, name_key, description, price, category, stock,"
                " role_id, per_member_limit, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    item_id,
                    GUILD,
                    name,
                    name.casefold(),
                    f"A {category} item",
                    price,
                    category,
                    10**7 if j % 3 == 0 else None,
                    role_id,
                    3 if j == len(PRICES) - 1 else None,
                    now - YEAR,
                ),
            )
            items.append((item_id, name, category, role_id))
    promo_items = [it for it in items if it[2] not in EXCLUDED]

    # skewed ownership: a few members hold many lots, most hold a handful
    cum_weights = list(accumulate(rng.lognormvariate(0, 0.7) for _ in members))
    owners = rng.choices(members, cum_weights=cum_weights, k=lots)
    due_round = sweep_sets(rng, lots, sweep_n, SWEEP_ROUNDS)
    last_due = now + (SWEEP_ROUNDS - 1) * 3600  # the last round's `now`
    last_run = now - REMINDER_TICK
    last_sweep = now - SWEEP_WINDOW
    first_created = now - YEAR
    span = YEAR - 3600  # the newest lot is an hour old

    lot_rows: list[tuple[Any, ...]] = []
    grant_rows: list[tuple[Any, ...]] = []
    idem_rows: list[tuple[Any, ...]] = []
    audit_rows: list[tuple[Any, ...]] = []
    reminder_rows: list[tuple[Any, ...]] = []
    later: list[tuple[int, int, int, str, int, int, int]] = []  # (t, lot, user, kind, spend, forfeit, expire)

    def flush(final: bool = False) -> None:
        if len(lot_rows) >= CHUNK or final:
            conn.executemany(
                "INSERT INTO lots (id, guild_id, user_id, kind, original, remaining, starts_at, expires_at,"
                " categories, one_time, source, source_ref, memo, created_by, created_at, status,"
                " next_reminder_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'grant', NULL, ?, ?, ?, ?, ?)",
                lot_rows,
            )
            conn.executemany(GRANT_ENTRY_INSERT, grant_rows)
            lot_rows.clear()
            grant_rows.clear()
        if len(idem_rows) >= CHUNK or final:
            conn.executemany(IDEMPOTENCY_INSERT, idem_rows)
            conn.executemany(AUDIT_INSERT, audit_rows)
            idem_rows.clear()
            audit_rows.clear()

    seq = 0
    i = 0
    while i < lots:
        created = first_created + i * span // lots
        categories: str | None = None
        one_time = 0
        if lots - i >= 200 and rng.random() < ROLE_GRANT_P:  # a role grant
            users = rng.sample(members, min(rng.randint(200, 2000), lots - i, members_n))
            kind, amount = "promo", rng.choice((50, 100, 200, 500))
            validity = rng.choice((30, 60, 90)) * DAY if rng.random() < 0.85 else None
            memo: str | None = "role reward"
        else:
            users = [owners[i]]
            kind = "promo" if rng.random() < 0.7 else "gift"
            if kind == "promo":
                amount = rng.choice((25, 50, 100, 150, 200, 250, 500, 1000))
                validity = rng.choice((7, 14, 30, 60, 90, 180, 365)) * DAY if rng.random() < 0.85 else None
                categories = rng.choice(CATEGORY_LISTS) if rng.random() < 0.1 else None
                one_time = int(rng.random() < 0.05)
            else:
                amount = rng.choice((100, 250, 500, 1000, 2500, 5000))
                validity = rng.choice((180, 365)) * DAY if rng.random() < 0.12 else None
            memo = rng.choice((None, "event reward", "compensation", "giveaway winner", "birthday"))
        key = str(snowflake(created, seq))
        seq += 1
        first = i + 1
        for user in users:
            lot_id = i + 1
            starts = created
            expires = None if validity is None else created + validity
            due = i in due_round
            if due:  # round 0: expired in the 6 h before now; round r: in the hour before now + r h
                r = due_round[i]
                expires = now + r * 3600 - rng.randrange(SWEEP_WINDOW if r == 0 else 3600)
            elif expires is not None and last_sweep < expires <= last_due + REMINDER_TICK:
                # keep exactly the chosen lots due at each round: this one expired before the last sweep
                expires -= last_due - now + SWEEP_WINDOW + REMINDER_TICK
            elif len(users) == 1 and created > now - 30 * DAY and rng.random() < 0.02:
                starts = now + rng.randrange(DAY, 14 * DAY)  # upcoming credit
                expires = None if validity is None else starts + validity
            remaining, status, nra = amount, "active", None
            expired_before = expires is not None and expires <= last_sweep
            hi = now - 60 if expires is None else min(expires, now - 60)
            r = rng.random()
            if starts + 180 < hi and r < (0.6 if expired_before else 0.4) and not (due and one_time):
                t = rng.randrange(starts + 60, hi - 60)
                full = not due and r < (0.35 if expired_before else 0.15)
                spend = amount if full else rng.randrange(1, amount)
                forfeit = amount - spend if one_time and not full else 0
                later.append((t, lot_id, user, kind, spend, forfeit, 0))
                remaining -= spend + forfeit
                status = "spent" if full else "forfeited" if forfeit else "active"
            if expired_before and remaining:
                later.append((expires, lot_id, user, kind, 0, 0, remaining))
                remaining, status = 0, "expired"
            if status == "active" and expires is not None:
                nra, sent = reminder_state(expires, created, last_run)
                reminder_rows.extend((lot_id, lead, at) for lead, at in sent)
            lot_rows.append(
                (
                    lot_id,
                    GUILD,
                    user,
                    kind,
                    amount,
                    remaining,
                    starts,
                    expires,
                    categories,
                    one_time,
                    memo,
                    MOD,
                    created,
                    status,
                    nra,
                )
            )
            grant_rows.append((GUILD, user, lot_id, amount, MOD, memo, created, key))
            i += 1
        # what GrantResult.to_json and the audit record would hold (formatted directly: it is faster)
        expires_json = "null" if validity is None else created + validity
        idem_rows.append(
            (
                key,
                GUILD,
                "grant",
                f'{{"first_lot_id":{first},"count":{len(users)},"amount":{amount},'
                f'"kind":"{kind}","starts_at":{created},"expires_at":{expires_json}}}',
                created,
            )
        )
        details = f'{{"members": {len(users)}, "amount": {amount}, "kind": "{kind}"'
        if len(users) == 1:
            details += f', "user_id": {users[0]}'
        if memo:
            details += f', "reason": "{memo}"'
        audit_rows.append((GUILD, MOD, "grant", details + "}", created))
        flush()
    flush(final=True)

    # what happened later, in time order: purchases (orders, spend and forfeit entries) and expiries
    later.sort()
    order_rows: list[tuple[Any, ...]] = []
    entry_rows: list[tuple[Any, ...]] = []
    order_id = 0
    for t, lot_id, user, kind, spend, forfeit, expire in later:
        if expire:
            entry_rows.append((GUILD, user, lot_id, "expire", -expire, None, None, "expired", t, None))
        else:
            order_id += 1
            item_id, name, _, role_id = rng.choice(promo_items if kind == "promo" else items)
            okey = str(snowflake(t, seq))
            seq += 1
            promo = spend if kind == "promo" else 0
            order = (
                order_id,
                GUILD,
                user,
                item_id,
                name,
                1,
                spend,
                spend,
                promo,
                spend - promo,
                forfeit,
                role_id,
                "completed",
                t,
                None,
            )
            order_rows.append(order[:-1])
            reason = f"1 × {name}"
            entry_rows.append((GUILD, user, lot_id, "spend", -spend, order_id, user, reason, t, okey))
            if forfeit:
                entry_rows.append((GUILD, user, lot_id, "forfeit", -forfeit, order_id, user, reason, t, okey))
            idem_rows.append(
                (
                    okey,
                    GUILD,
                    "checkout",
                    (
                        f'{{"id":{order_id},"guild_id":{GUILD},"user_id":{user},"item_id":{item_id},"item_name":"{name}",'
                        f'"quantity":1,"unit_price":{spend},"total":{spend},"promo_applied":{promo},'
                        f'"gift_applied":{spend - promo},"forfeited":{forfeit},"role_id":{role_id or "null"},'
                        f'"status":"completed","created_at":{t},"refunded_at":null}}'
                    ),
                    t,
                )
            )
        if len(entry_rows) >= CHUNK:
            conn.executemany(
                "INSERT INTO orders (id, guild_id, user_id, item_id, item_name, quantity, unit_price, total,"
                " promo_applied, gift_applied, forfeited, role_id, status, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                order_rows,
            )
            conn.executemany(ENTRY_INSERT, entry_rows)
            conn.executemany(IDEMPOTENCY_INSERT, idem_rows)
            order_rows.clear()
            entry_rows.clear()
            idem_rows.clear()
    conn.executemany(
        "INSERT INTO orders (id, guild_id, user_id, item_id, item_name, quantity, unit_price, total,"
        " promo_applied, gift_applied, forfeited, role_id, status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        order_rows,
    )
    conn.executemany(ENTRY_INSERT, entry_rows)
    conn.executemany(IDEMPOTENCY_INSERT, idem_rows)
    conn.executemany(
        "INSERT INTO reminders (lot_id, lead_seconds, status, attempts, updated_at) VALUES (?, ?, 'sent', 1, ?)",
        reminder_rows,
    )
    meta = {
        "version": BUILD_VERSION,
        "schema": schema_hash(),
        "lots": lots,
        "members": members_n,
        "seed": seed,
        "now": now,
        "sweep_due": sweep_n,
        "sweep_rounds": SWEEP_ROUNDS,
        "guild_id": GUILD,
    }
    conn.executemany(STATE_UPSERT, [("last_sweep_at", str(last_sweep)), (META_KEY, json.dumps(meta))])
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    stats = db_stats(conn, now)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    if stats["due_for_sweep"] != sweep_n:
        raise RuntimeError(f"built {stats['due_for_sweep']} lots due for the sweep, wanted {sweep_n}")
    stats.update(
        build_s=time.perf_counter() - started,
        build_cpu_s=cpu_s(),
        build_rss_mb=peak_rss_mb(),
        size_mb=os.path.getsize(path) / 2**20,
    )
    return stats


def db_stats(conn: sqlite3.Connection, now: int) -> dict[str, Any]:
    def one(sql: str, *args: Any) -> int:
        return int(conn.execute(sql, args).fetchone()[0] or 0)

    return {
        "lots": one("SELECT COUNT(*) FROM lots"),
        "active_lots": one("SELECT COUNT(*) FROM lots WHERE status = 'active'"),
        "never_expiring_active": one("SELECT COUNT(*) FROM lots WHERE status = 'active' AND expires_at IS NULL"),
        "due_for_sweep": one(
            "SELECT COUNT(*) FROM lots WHERE status = 'active' AND expires_at IS NOT NULL AND expires_at <= ?", now
        ),
        "due_reminders": one(
            "SELECT COUNT(*) FROM lots WHERE status = 'active' AND next_reminder_at IS NOT NULL"
            " AND next_reminder_at <= ?",
            now,
        ),
        "members": one("SELECT COUNT(*) FROM accounts"),
        "entries": one("SELECT COUNT(*) FROM entries"),
        "orders": one("SELECT COUNT(*) FROM orders"),
        "idempotency": one("SELECT COUNT(*) FROM idempotency"),
        "max_active_lots_per_member": one(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM lots WHERE status = 'active' GROUP BY user_id)"
        ),
    }


def pristine_db(args: argparse.Namespace, workdir: Path) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """The built database: reused from --db when it was built for the same --lots and --seed."""
    if args.db is None:
        path = workdir / "pristine.sqlite3"
    else:
        path = Path(args.db)
        if path.is_dir():
            path = path / f"ledger-bench-{args.lots}.sqlite3"
    meta, stats = cached_build(
        path,
        META_KEY,
        {"version": BUILD_VERSION, "lots": args.lots, "seed": args.seed},
        f"{args.lots:,} lots for {max(args.lots // 10, 10):,} members",
        build_db,
        args.lots,
        args.seed,
    )
    return path, meta, stats


# --- the plan: the same arguments for both sides ----------------------------------------------


@dataclass
class Plan:
    now: int
    members: list[int]
    sweep_due: int
    sweep_rounds: int
    balance: list[int] = field(default_factory=list)
    history: list[int] = field(default_factory=list)
    grants: list[tuple[int, int, str, str]] = field(default_factory=list)  # user, amount, kind, key
    checkouts: list[tuple[int, int, str]] = field(default_factory=list)  # user, item, key
    bulk: list[tuple[list[int], str]] = field(default_factory=list)  # members, key
    stats: dict[str, Any] = field(default_factory=dict)


def make_plan(path: Path, meta: dict[str, Any], args: argparse.Namespace, reads: int, writes: int) -> Plan:
    rng = random.Random(args.seed + 1)
    now = int(meta["now"])
    conn = sqlite3.connect(path)
    try:
        members = [u for (u,) in conn.execute("SELECT user_id FROM accounts WHERE guild_id = ?", (GUILD,))]
        # members with unrestricted, reusable credit, so any cheap item is affordable
        pool = [
            list(r)
            for r in conn.execute(
                "SELECT user_id, SUM(remaining) FROM lots WHERE guild_id = ? AND status = 'active' AND starts_at <= ?"
                " AND (expires_at IS NULL OR expires_at > ?) AND one_time = 0 AND (kind = 'gift' OR categories IS NULL)"
                # not the owners of lots the later sweeps expect (checkout spends the soonest-expiring first)
                " AND user_id NOT IN (SELECT user_id FROM lots WHERE status = 'active' AND expires_at > ?"
                " AND expires_at <= ?)"
                " GROUP BY user_id HAVING SUM(remaining) >= ?",
                (GUILD, now, now, now, now + (SWEEP_ROUNDS - 1) * 3600, 2 * CHEAP),
            )
        ]
        cheap = conn.execute(
            "SELECT id, price FROM shop_items WHERE guild_id = ? AND active = 1 AND price <= ?"
            " AND per_member_limit IS NULL AND category NOT IN (" + ",".join("?" * len(EXCLUDED)) + ")",
            (GUILD, CHEAP, *EXCLUDED),
        ).fetchall()
        stats = db_stats(conn, now)
    finally:
        conn.close()
    rng.shuffle(members)  # a role's members come in no particular order
    plan = Plan(
        now=now, members=members, sweep_due=int(meta["sweep_due"]), sweep_rounds=int(meta["sweep_rounds"]), stats=stats
    )
    seq = 0

    def key() -> str:
        nonlocal seq
        seq += 1
        return str(snowflake(now + 1, seq))

    warm_r, warm_w = warmup(reads), warmup(writes)
    plan.balance = [rng.choice(members) for _ in range(warm_r + reads)]
    plan.history = [rng.choice(members) for _ in range(warm_r + reads)]
    for n in range(warm_w + writes):
        kind = "gift" if n % 4 == 3 else "promo"
        plan.grants.append((rng.choice(members), rng.choice((25, 50, 100, 250)), kind, key()))
    while len(plan.checkouts) < warm_w + writes:
        if not pool:
            raise SystemExit("not enough members with credit for the checkout benchmark")
        j = rng.randrange(len(pool))
        item_id, price = rng.choice(cheap)
        if pool[j][1] < price:
            pool[j] = pool[-1]
            pool.pop()
            continue
        pool[j][1] -= price
        plan.checkouts.append((pool[j][0], item_id, key()))
    plan.bulk = [(members[: max(len(members) // 100, 10)], key())]  # warm-up: 1% of the members
    plan.bulk += [(members, key()) for _ in range(args.bulk_repeat)]
    return plan


def warmup(n: int) -> int:
    return max(10, n // 10)


# --- the floor: the store's statements on plain sqlite3 ----------------------------------------


class Floor:
    """What the store executes for each operation, in the calling thread, with minimal Python:
    plain sqlite3 beside SqliteStore, plain psycopg beside PostgresStore (`PgFloor`)."""

    def __init__(self, path: Path) -> None:
        self.conn: Any = sqlite3.connect(path, isolation_level=None)
        for pragma in PRAGMAS:
            self.conn.execute(pragma)

    def close(self) -> None:
        self.conn.close()

    # what differs between the two: transactions, and how a grant numbers its lots
    def begin_write(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def begin_read(self) -> None:
        self.conn.execute("BEGIN")

    def read_once(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """A read outside any transaction: SqliteStore's fast reads run one statement alone."""
        return list(self.conn.execute(sql, args).fetchall())

    def begin_snapshot(self) -> None:
        """Around the reads SqliteStore runs on its reader connection without BEGIN: nothing."""

    def end_snapshot(self) -> None:
        pass

    def next_lot_id(self) -> int:
        (first,) = self.conn.execute(NEXT_LOT_ID).fetchone()
        return int(first)

    def lots_numbered(self, first: int, count: int) -> None:
        pass

    def grant(
        self,
        user_ids: Sequence[int],
        amount: int,
        kind: str,
        expires_at: int | None,
        memo: str | None,
        key: str,
        now: int,
    ) -> int:
        c, g = self.conn, GUILD
        self.read_once(SETTINGS_SQL, (g,))  # Ledger._lot_spec reads the settings first
        self.begin_write()
        try:
            c.execute(IDEMPOTENCY_SELECT, (key,)).fetchone()
            leads = tuple(int(s) for s in c.execute(SETTINGS_SQL, (g,)).fetchone()[4].split(","))
            nra = next_reminder_at(expires_at, leads, now)
            first = self.next_lot_id()
            c.executemany(ACCOUNT_INSERT, ((g, u, now) for u in user_ids))
            c.executemany(
                LOT_INSERT,
                (
                    (
                        first + i,
                        g,
                        u,
                        kind,
                        amount,
                        amount,
                        now,
                        expires_at,
                        None,
                        0,
                        "grant",
                        None,
                        memo,
                        MOD,
                        now,
                        nra,
                    )
                    for i, u in enumerate(user_ids)
                ),
            )
            self.lots_numbered(first, len(user_ids))
            c.executemany(
                GRANT_ENTRY_INSERT, ((g, u, first + i, amount, MOD, memo, now, key) for i, u in enumerate(user_ids))
            )
            details: dict[str, Any] = {"members": len(user_ids), "amount": amount, "kind": kind}
            if len(user_ids) == 1:
                details["user_id"] = user_ids[0]
            if memo:
                details["reason"] = memo
            c.execute(AUDIT_INSERT, (g, MOD, "grant", json.dumps(details, default=str), now))
            result = {
                "first_lot_id": first,
                "count": len(user_ids),
                "amount": amount,
                "kind": kind,
                "starts_at": now,
                "expires_at": expires_at,
            }
            c.execute(IDEMPOTENCY_INSERT, (key, g, "grant", json.dumps(result, separators=(",", ":")), now))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return int(first)

    def checkout(self, user: int, item_id: int, key: str, now: int, quantity: int = 1) -> int:
        c, g = self.conn, GUILD
        self.begin_write()
        try:
            c.execute(IDEMPOTENCY_SELECT, (key,)).fetchone()
            settings = c.execute(SETTINGS_SQL, (g,)).fetchone()
            excluded = {x.casefold() for x in json.loads(settings[7])}
            item = c.execute(ITEM_SELECT, (item_id, g)).fetchone()
            c.execute(BOUGHT_SELECT, (item[0], user)).fetchone()
            lots = c.execute(MEMBER_LOTS, (g, user)).fetchall()
            total, category = item[4] * quantity, item[5].casefold()
            eligible = [
                r
                for r in lots
                if r[5] > 0
                and r[6] <= now
                and (r[7] is None or now < r[7])
                and (
                    r[3] == "gift"
                    or (
                        category not in excluded
                        and (r[8] is None or category in {x.casefold() for x in json.loads(r[8])})
                    )
                )
            ]
            eligible.sort(key=lambda r: (r[3] != "promo", math.inf if r[7] is None else r[7], r[14], r[0]))
            pieces: list[tuple[tuple[Any, ...], int, str]] = []
            forfeits: list[tuple[tuple[Any, ...], int, str]] = []
            left = total
            for r in eligible:
                if not left:
                    break
                take = min(r[5], left)
                pieces.append((r, take, "spend"))
                left -= take
                if r[9] and take < r[5]:
                    forfeits.append((r, r[5] - take, "forfeit"))
            if left:
                raise RuntimeError(f"floor: member {user} cannot afford item {item_id}")
            promo = sum(t for r, t, _ in pieces if r[3] == "promo")
            if item[6] is not None:
                c.execute("UPDATE shop_items SET stock = stock - ? WHERE id = ?", (quantity, item[0]))
            (order_id,) = c.execute(
                ORDER_INSERT,
                (
                    g,
                    user,
                    item[0],
                    item[2],
                    quantity,
                    item[4],
                    total,
                    promo,
                    total - promo,
                    sum(t for _, t, _ in forfeits),
                    item[7],
                    item[10],
                    now,
                ),
            ).fetchone()
            reason = f"{quantity} × {item[2]}"
            remaining: dict[int, int] = {}
            for r, amount, type_ in pieces + forfeits:
                before = remaining.get(r[0], r[5])
                after = before - amount
                status = EMPTY_STATUS[type_] if after == 0 else "active"
                if c.execute(LOT_DEBIT, (after, status, status, r[0], before)).rowcount != 1:
                    raise RuntimeError(f"lot {r[0]} changed under a transaction")
                remaining[r[0]] = after
                c.execute(ENTRY_INSERT, (r[1], r[2], r[0], type_, -amount, order_id, user, reason, now, key))
            order = c.execute(ORDER_SELECT, (order_id, g)).fetchone()
            result = json.dumps(dict(zip(ORDER_FIELDS, order, strict=True)), separators=(",", ":"))
            c.execute(IDEMPOTENCY_INSERT, (key, g, "checkout", result, now))
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
        return int(order_id or 0)

    def balance(self, user: int) -> list[Any]:
        return self.read_once(MEMBER_LOTS, (GUILD, user))

    def history(self, user: int, per_page: int = 10) -> list[Any]:
        c = self.conn
        self.begin_read()
        try:
            c.execute(HISTORY_COUNT, (GUILD, user)).fetchone()
            return c.execute(HISTORY_PAGE, (GUILD, user, per_page, 0)).fetchall()
        finally:
            c.execute("COMMIT")

    def due_reminders(self, now: int, limit: int = 10_000) -> list[Any]:
        self.begin_snapshot()
        try:
            rows = self.conn.execute(DUE_SELECT, (now, limit)).fetchall()
            for guild_id in {r[1] for r in rows}:  # the store reads each guild's leads once
                self.conn.execute(SETTINGS_SQL, (guild_id,)).fetchone()
            return list(rows)
        finally:
            self.end_snapshot()

    def sweep(self, now: int, batch: int = 10_000) -> int:
        c, swept = self.conn, 0
        while True:
            self.begin_write()
            try:
                rows = c.execute(SWEEP_SELECT, (now, batch)).fetchall()
                if rows:
                    c.executemany(SWEEP_UPDATE, ((r[0],) for r in rows))
                    c.executemany(SWEEP_ENTRY, ((r[1], r[2], r[0], -r[4], now) for r in rows))
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            swept += len(rows)
            if len(rows) < batch:
                break
        self.begin_write()
        c.execute(STATE_UPSERT, ("last_sweep_at", str(now)))
        c.execute("COMMIT")
        return swept


class PgFloorConnection:
    """psycopg, speaking the `?` statements above through the store's own statement layer
    (bot/store/postgres/connection.py `PgConnection`: each translated once; a one-row INSERT given
    many rows sent as multi-row INSERTs), so both sides send PostgreSQL the very same statements."""

    def __init__(self, url: str) -> None:
        # the store's connection settings: autocommit (BEGIN and COMMIT are written), client-side binding
        self.raw = psycopg.connect(url, **connect_kwargs(read_only=False))
        configure(self.raw)
        self.conn = PgConnection(self.raw)

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Any:
        return self.conn.execute(sql, args)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        return self.conn.executemany(sql, rows)

    def close(self) -> None:
        self.raw.close()


class PgFloor(Floor):
    """The same statements with plain psycopg, in PostgresStore's transactions: SERIALIZABLE
    writes, REPEATABLE READ READ ONLY reads (every read, one statement included), lot ids from
    `lots_id_seq` under the advisory lock (bot/store/postgres/rows.py)."""

    def __init__(self, url: str) -> None:  # not super().__init__: that opens SQLite
        self.conn = PgFloorConnection(url)

    def begin_write(self) -> None:
        self.conn.execute("BEGIN ISOLATION LEVEL SERIALIZABLE")

    def begin_read(self) -> None:
        self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def read_once(self, sql: str, args: Sequence[Any]) -> list[Any]:
        self.begin_read()
        try:
            return list(self.conn.execute(sql, args).fetchall())
        finally:
            self.conn.execute("COMMIT")

    def begin_snapshot(self) -> None:
        self.begin_read()

    def end_snapshot(self) -> None:
        self.conn.execute("COMMIT")

    def next_lot_id(self) -> int:
        self.conn.execute("SELECT pg_advisory_xact_lock(?)", (LOT_IDS_LOCK,))
        (first,) = self.conn.execute("SELECT nextval('lots_id_seq')").fetchone()
        return int(first)

    def lots_numbered(self, first: int, count: int) -> None:
        if count > 1:
            self.conn.execute(PgLotRows.AFTER_INSERT, (first + count - 1,))


# --- running --------------------------------------------------------------------------------------


@dataclass
class Samples:
    ours: list[int]  # ns per call
    floor: list[int]
    ours_cpu_s: float | None = None  # CPU seconds of the timed calls (bulk operations only)
    floor_cpu_s: float | None = None


async def paired(
    items: Sequence[Any], warm: int, ours: Callable[[Any], Awaitable[Any]], floor: Callable[[Any], Any]
) -> Samples:
    """Each item on both sides, one after the other, alternating which goes first; ns per call."""
    mine: list[int] = []
    base: list[int] = []
    clock = time.perf_counter_ns
    for index, item in enumerate(items):
        if index % 2 == 0:
            t0 = clock()
            await ours(item)
            t1 = clock()
            floor(item)
            t2 = clock()
            a, b = t1 - t0, t2 - t1
        else:
            t0 = clock()
            floor(item)
            t1 = clock()
            await ours(item)
            t2 = clock()
            b, a = t1 - t0, t2 - t1
        if index >= warm:
            mine.append(a)
            base.append(b)
    return Samples(mine, base)


@dataclass
class Target:
    """Where the two sides run: two copies of the SQLite file, or two PostgreSQL databases
    loaded from it (`--database-url`)."""

    ours: str  # a path, or a URL
    floor: str
    pg: bool = False

    @property
    def floor_name(self) -> str:
        return "psycopg" if self.pg else "sqlite3"

    def store(self) -> SqliteStore | PostgresStore:
        return PostgresStore(self.ours) if self.pg else SqliteStore(self.ours)

    def make_floor(self) -> Floor:
        return PgFloor(self.floor) if self.pg else Floor(Path(self.floor))

    def query(self, which: str, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """One read of `which` side's database, outside the timed calls."""
        where = self.ours if which == "ours" else self.floor
        if self.pg:
            with psycopg.connect(where) as conn:
                return [tuple(r) for r in conn.execute(pg_sql(sql), args).fetchall()]
        conn = sqlite3.connect(where)
        try:
            return [tuple(r) for r in conn.execute(sql, args).fetchall()]
        finally:
            conn.close()


async def run_ops(target: Target, plan: Plan, reads: int, writes: int) -> dict[str, Samples]:
    now = plan.now
    clock = FixedClock(now)
    store = target.store()
    await store.open()
    ledger = Ledger(store, clock=clock)
    floor = target.make_floor()
    out: dict[str, Samples] = {}
    try:
        log("balance …")
        out["balance"] = await paired(plan.balance, warmup(reads), lambda u: ledger.balance(GUILD, u), floor.balance)
        log("history page …")
        out["history_page"] = await paired(
            plan.history, warmup(reads), lambda u: ledger.history(GUILD, u, 1), floor.history
        )
        log("due reminders …")
        out["due_reminders"] = await paired(
            range(warmup(reads) + reads),
            warmup(reads),
            lambda _: ledger.due_reminders(),
            lambda _: floor.due_reminders(now),
        )

        async def grant(g: tuple[int, int, str, str]) -> Any:
            user, amount, kind, key = g
            return await ledger.grant(
                GUILD,
                user,
                amount,
                actor_id=MOD,
                key=key,
                kind=kind,
                expires="30d" if kind == "promo" else None,
                reason="event reward",
            )

        def floor_grant(g: tuple[int, int, str, str]) -> Any:
            user, amount, kind, key = g
            expires = now + 30 * DAY if kind == "promo" else None
            return floor.grant([user], amount, kind, expires, "event reward", key, now)

        log("single grant …")
        out["single_grant"] = await paired(plan.grants, warmup(writes), grant, floor_grant)
        log("checkout confirm …")
        out["checkout_confirm"] = await paired(
            plan.checkouts,
            warmup(writes),
            lambda c: ledger.checkout(GUILD, c[0], c[1], 1, key=c[2]),
            lambda c: floor.checkout(c[0], c[1], c[2], now),
        )
        log(f"grant to {len(plan.members):,} members in one transaction (x{len(plan.bulk) - 1}, 1 warm-up) …")
        out["grant_many"] = await grant_many_runs(ledger, floor, plan, target)
        log(f"expiry sweep ({plan.sweep_due:,} due, x{plan.sweep_rounds}) …")
        out["expiry_sweep"] = await sweep_runs(ledger, floor, clock, plan)
    finally:
        floor.close()
        await store.close()
    return out


async def sweep_runs(ledger: Ledger, floor: Floor, clock: FixedClock, plan: Plan) -> Samples:
    """One sweep per round on each side, alternating which goes first; each finds `sweep_due` lots."""
    out = Samples([], [], 0.0, 0.0)
    # warm-up: a sweep at the previous sweep's time finds nothing and writes only the state
    clock.at = plan.now - SWEEP_WINDOW
    await ledger.sweep_expired()
    floor.sweep(plan.now - SWEEP_WINDOW)
    for r in range(plan.sweep_rounds):
        at = clock.at = plan.now + r * 3600
        for side in ("ours", "floor") if r % 2 == 0 else ("floor", "ours"):
            c0, t0 = cpu_s(), time.perf_counter_ns()
            swept = len(await ledger.sweep_expired()) if side == "ours" else floor.sweep(at)
            c1, t1 = cpu_s(), time.perf_counter_ns()
            if swept != plan.sweep_due:
                raise RuntimeError(f"{side}: swept {swept} lots at round {r}, expected {plan.sweep_due}")
            (out.ours if side == "ours" else out.floor).append(t1 - t0)
            if side == "ours":
                out.ours_cpu_s = (out.ours_cpu_s or 0.0) + c1 - c0
            else:
                out.floor_cpu_s = (out.floor_cpu_s or 0.0) + c1 - c0
    clock.at = plan.now
    return out


async def grant_many_runs(ledger: Ledger, floor: Floor, plan: Plan, target: Target) -> Samples:
    """Ours first, then the floor with the very rows ours wrote, in the order ours wrote them."""
    out = Samples([], [], 0.0, 0.0)
    for index, (members, key) in enumerate(plan.bulk):
        c0, t0 = cpu_s(), time.perf_counter_ns()
        result = await ledger.grant_many(
            GUILD, members, 100, actor_id=MOD, key=key, expires="30d", reason="role reward"
        )
        c1, t1 = cpu_s(), time.perf_counter_ns()
        written = [
            int(u)
            for (u,) in target.query(
                "ours",
                "SELECT user_id FROM lots WHERE id >= ? AND id < ? ORDER BY id",
                (result.first_lot_id, result.first_lot_id + result.count),
            )
        ]
        c2, t2 = cpu_s(), time.perf_counter_ns()
        floor.grant(written, 100, "promo", plan.now + 30 * DAY, "role reward", key, plan.now)
        c3, t3 = cpu_s(), time.perf_counter_ns()
        if index >= 1:  # the first run (1% of the members) warms up
            out.ours.append(t1 - t0)
            out.floor.append(t3 - t2)
            out.ours_cpu_s = (out.ours_cpu_s or 0.0) + c1 - c0
            out.floor_cpu_s = (out.floor_cpu_s or 0.0) + c3 - c2
    return out


FINGERPRINT = {
    "lots": "SELECT COUNT(*), SUM(remaining), SUM(original), SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END),"
    " SUM(COALESCE(expires_at, 0)), SUM(COALESCE(next_reminder_at, 0)) FROM lots",
    "entries": "SELECT COUNT(*), SUM(amount), SUM(COALESCE(order_id, 0)), COUNT(idempotency_key) FROM entries",
    "orders": "SELECT COUNT(*), SUM(total), SUM(promo_applied), SUM(forfeited) FROM orders",
    "accounts": "SELECT COUNT(*) FROM accounts",
    "idempotency": "SELECT COUNT(*), SUM(LENGTH(result)) FROM idempotency",
    "audit_log": "SELECT COUNT(*), SUM(LENGTH(details)) FROM audit_log",
    "stock": "SELECT SUM(COALESCE(stock, 0)) FROM shop_items",
    "last_sweep_at": "SELECT value FROM bot_state WHERE key = 'last_sweep_at'",
}


def fingerprint(target: Target, which: str) -> dict[str, Any]:
    """Aggregates of what the writes left behind: both sides must agree."""
    return {name: [str(v) for v in target.query(which, sql)[0]] for name, sql in FINGERPRINT.items()}


OPERATIONS = (
    ("single_grant", "single grant"),
    ("checkout_confirm", "checkout confirm"),
    ("balance", "balance"),
    ("history_page", "history page 1"),
    ("grant_many", "grant to all members, 1 tx"),
    ("expiry_sweep", "expiry sweep"),
    ("due_reminders", "due reminders"),
)


def evaluate(results: dict[str, Any], rss: float, floor: str = "sqlite3") -> dict[str, dict[str, Any]]:
    ratio = f"ratio_to_{floor}"

    def target(text: str, value: float, met: bool, unit: str) -> dict[str, Any]:
        return {"target": text, "value": round(value, 4), "unit": unit, "met": bool(met)}

    r = results
    grant_many_s = r["grant_many"]["max_ms"] / 1000
    return {
        "single_grant": target(
            f">= 0.70x {floor} ops/s",
            r["single_grant"][ratio],
            r["single_grant"][ratio] >= 0.7,
            "x",
        ),
        "checkout_confirm": target(
            f">= 0.70x {floor} ops/s",
            r["checkout_confirm"][ratio],
            r["checkout_confirm"][ratio] >= 0.7,
            "x",
        ),
        "balance": target("p99 < 1 ms", r["balance"]["p99_ms"], r["balance"]["p99_ms"] < 1.0, "ms"),
        "due_reminders": target("p99 < 1 ms", r["due_reminders"]["p99_ms"], r["due_reminders"]["p99_ms"] < 1.0, "ms"),
        "grant_many_time": target("< 1.5 s (slowest run)", grant_many_s, grant_many_s < 1.5, "s"),
        "grant_many_ratio": target(
            f"within 2x of {floor} (ratio >= 0.5)",
            r["grant_many"][ratio],
            r["grant_many"][ratio] >= 0.5,
            "x",
        ),
        "expiry_sweep": target(
            "< 0.5 s (slowest run)", r["expiry_sweep"]["max_ms"] / 1000, r["expiry_sweep"]["max_ms"] < 500, "s"
        ),
        "peak_rss": target("< 150 MB", rss, rss < 150, "MB"),
    }


def print_table(report: dict[str, Any]) -> None:
    meta = report["meta"]
    floor = meta.get("floor", "sqlite3")
    ratio = f"ratio_to_{floor}"
    print(
        f"Promo Balance ledger benchmark — {meta['lots']:,} lots, {meta['members']:,} members "
        f"(SQLite {sqlite3.sqlite_version}, Python {platform.python_version()}, aiosqlite {aiosqlite.__version__}, "
        f"{os.cpu_count()} CPUs)"
    )
    stats = meta["db"]
    print(
        f"database: {stats['lots']:,} lots ({stats['active_lots']:,} active, {stats['never_expiring_active']:,} "
        f"of them never expiring; {stats['due_for_sweep']:,} due for the sweep, {stats['due_reminders']:,} "
        f"reminders due; at most {stats['max_active_lots_per_member']} active lots per member), "
        f"{stats['entries']:,} entries, {stats['orders']:,} orders, {stats['idempotency']:,} idempotency keys; "
        f"{meta['db_size_mb']:.0f} MB"
    )
    if meta.get("build"):
        b = meta["build"]
        print(
            f"built in {b['build_s']:.1f} s ({b['build_cpu_s']:.1f} s CPU) in a child process "
            f"(its peak RSS {b['build_rss_mb']:.0f} MB)"
        )
    print()
    head = (
        f"{'operation':<28}{'n':>6} {'ours ops/s':>11} {'p50 ms':>8} {'p99 ms':>8} │"
        f" {floor + ' ops/s':>13} {'p50 ms':>8} {'p99 ms':>8} │ {'ratio':>6}"
    )
    print(head)
    print("─" * len(head))
    for key, label in OPERATIONS:
        r = report[key]
        s = r[floor]
        if key == "grant_many":
            label = f"grant to {meta['members']:,} members, 1 tx"
        elif key == "expiry_sweep":
            label = f"expiry sweep, {meta['sweep_due']:,} due"
        print(
            f"{label:<28}{r['n']:>6} {r['ops_per_s']:>11,.1f} {r['p50_ms']:>8.3f} {r['p99_ms']:>8.3f} │"
            f" {s['ops_per_s']:>13,.1f} {s['p50_ms']:>8.3f} {s['p99_ms']:>8.3f} │ {r[ratio]:>5.2f}x"
        )
    if floor == "sqlite3":
        print("(ratio = our ops/s ÷ plain sqlite3 ops/s on an identical copy, same pragmas and statements)")
    else:
        print(
            f"(ratio = our ops/s ÷ plain psycopg ops/s on an identical database, same statements and transactions; "
            f"PostgreSQL {meta.get('server_version', '?')}, {redacted(meta.get('database_url'))})"
        )
    for key in ("grant_many", "expiry_sweep"):
        r = report[key]
        print(
            f"CPU time per {key.replace('_', ' ')}: ours {r['cpu_s']:.2f} s, {floor} {r[floor]['cpu_s']:.2f} s "
            f"(wall: {r['mean_ms'] / 1000:.2f} s, {r[floor]['mean_ms'] / 1000:.2f} s)"
        )
    load = meta["loadavg_before"][0], meta["loadavg_after"][0]
    busy = " — the machine was busy: wall times include waiting for a CPU" if max(load) > (meta["cpus"] or 1) else ""
    print(
        f"load average (1 min) before / after the timed part: {load[0]:.2f} / {load[1]:.2f} on "
        f"{meta['cpus']} CPUs{busy}"
    )
    print(f"\npeak RSS: {report['peak_rss_mb']:.1f} MB")
    print(f"both sides wrote the same rows: {'yes' if meta['same_writes'] else 'NO — the floor has drifted'}")
    print("\ntargets" + ("" if meta["lots"] >= 1_000_000 else " (set for the 1,000,000-lot run)") + ":")
    for name, t in report["targets"].items():
        print(f"  {name:<18} {t['target']:<38} {t['value']:>10.3f} {t['unit']:<3} {'MET' if t['met'] else 'NOT MET'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--lots", type=int, default=1_000_000, help="lots in the database (members = lots / 10)")
    p.add_argument(
        "--ops", type=int, default=None, help="timed calls per operation (default 2000 for reads, 500 for writes)"
    )
    p.add_argument("--bulk-repeat", type=int, default=3, help="timed runs of the grant to all members (default 3)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument(
        "--db",
        default=None,
        help="keep the built database here (a file, or a directory) and reuse it for the same --lots",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="run on PostgreSQL, beside plain psycopg: two databases are created on this server (and dropped after)",
    )
    args = p.parse_args(argv)
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        p.error("--database-url takes a postgresql:// URL")
    if args.lots < 1000:
        p.error("--lots must be at least 1000")
    if args.ops is not None and args.ops < 1:
        p.error("--ops must be at least 1")
    if args.bulk_repeat < 1:
        p.error("--bulk-repeat must be at least 1")
    return args


def database_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


@contextlib.contextmanager
def pg_target(url: str, pristine: Path) -> Iterator[tuple[Target, dict[str, Any]]]:
    """Two new databases on the server of `url`, each loaded from the built SQLite file with
    `copy-db`'s copy (bot/store/copy.py), then VACUUM ANALYZE: the planner knows the tables."""
    names = [f"promo_bench_{os.getpid()}_{side}" for side in ("ours", "floor")]
    with psycopg.connect(url, autocommit=True) as admin:
        info = {"server_version": admin.execute("SHOW server_version").fetchone()[0]}  # type: ignore[index]
        for setting in ("synchronous_commit", "fsync", "shared_buffers"):
            info[setting] = admin.execute(f"SHOW {setting}").fetchone()[0]  # type: ignore[index]
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            admin.execute(f'CREATE DATABASE "{name}"')
    urls = [database_url(url, name) for name in names]
    try:
        for target_url in urls:
            started = time.perf_counter()
            result = asyncio.run(copy_sqlite_to_postgres(pristine, target_url))
            with psycopg.connect(target_url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
                conn.execute("CHECKPOINT")
            log(f"loaded {result.total:,} rows into {redacted(target_url)} in {time.perf_counter() - started:.1f} s")
        yield Target(urls[0], urls[1], pg=True), info
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            for name in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redacted(url: str | None) -> str:
    return redact_url(url) or ""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    reads = args.ops or 2000
    writes = args.ops or 500
    workdir = Path(tempfile.mkdtemp(prefix="promo-bench-"))
    try:
        pristine, meta, build = pristine_db(args, workdir)
        plan = make_plan(pristine, meta, args, reads, writes)
        with contextlib.ExitStack() as stack:
            pg_info: dict[str, Any] = {}
            if args.database_url:
                target, pg_info = stack.enter_context(pg_target(args.database_url, pristine))
            else:
                ours, floor = workdir / "ours.sqlite3", workdir / "floor.sqlite3"
                for copy in (ours, floor):
                    shutil.copyfile(pristine, copy)
                    fsync(copy)  # no write-back of the copies competing with the timed calls
                target = Target(str(ours), str(floor))
                log(f"copies ready in {workdir}")
            load_before = os.getloadavg()
            samples = asyncio.run(run_ops(target, plan, reads, writes))
            load_after = os.getloadavg()
            rss = peak_rss_mb()  # every operation done, the database still on disk
            log("comparing what both sides wrote …")
            same = fingerprint(target, "ours") == fingerprint(target, "floor")
        floor_name = target.floor_name
        report: dict[str, Any] = {}
        for key, _ in OPERATIONS:
            sample = samples[key]
            r, s = summary(sample.ours), summary(sample.floor)
            if sample.ours_cpu_s is not None:
                r["cpu_s"], s["cpu_s"] = sample.ours_cpu_s / r["n"], (sample.floor_cpu_s or 0.0) / s["n"]
            report[key] = {**r, f"ratio_to_{floor_name}": r["ops_per_s"] / s["ops_per_s"], floor_name: s}
        report["peak_rss_mb"] = rss
        report["targets"] = evaluate(report, rss, floor_name)
        report["all_targets_met"] = all(t["met"] for t in report["targets"].values())
        report["meta"] = {
            "lots": args.lots,
            "members": len(plan.members),
            "sweep_due": plan.sweep_due,
            "reads": reads,
            "writes": writes,
            "seed": args.seed,
            "now": plan.now,
            "db": plan.stats,
            "db_size_mb": os.path.getsize(pristine) / 2**20,
            "build": build,
            "same_writes": same,
            "backend": "postgresql" if target.pg else "sqlite",
            "floor": floor_name,
            "database_url": redacted(args.database_url) if args.database_url else None,
            **pg_info,
            "sqlite": sqlite3.sqlite_version,
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
