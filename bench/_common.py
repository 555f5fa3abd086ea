"""What both benchmarks share: timing summaries, the bench clock, and the cached database build."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import resource
import sqlite3
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bot.store.migrate import migrations
from bot.store.sqlite import SqliteStore


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    kb = resource.getrusage(who).ru_maxrss  # kilobytes on Linux
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def summary(samples: list[int]) -> dict[str, Any]:
    """ns samples -> ops/s and ms percentiles."""
    ordered = sorted(samples)
    n = len(ordered)

    def pct(q: float) -> float:
        return ordered[max(0, math.ceil(q * n) - 1)] / 1e6

    return {
        "n": n,
        "ops_per_s": n * 1e9 / sum(ordered),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": sum(ordered) / n / 1e6,
        "max_ms": ordered[-1] / 1e6,
    }


class FixedClock:
    """The ledger's clock, moved by hand."""

    def __init__(self, at: int) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)


def schema_hash() -> str:
    """Which schema a cached database was built with: a changed migration means a new build."""
    digest = hashlib.sha256()
    for _, path in migrations():
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def migrate(path: str) -> None:
    """Create the schema the way the bot does, before bulk-loading rows into it."""

    async def go() -> None:
        store = SqliteStore(path)
        await store.open()
        await store.close()

    asyncio.run(go())


def read_meta(path: Path, key: str) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(path)
        try:
            row = conn.execute("SELECT value FROM bot_state WHERE key = ?", (key,)).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return None if row is None else json.loads(row[0])


def cached_build(
    path: Path,
    meta_key: str,
    wanted: dict[str, Any],
    describe: str,
    build: Callable[..., dict[str, Any]],
    *build_args: Any,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Reuse the database at `path` if its stored meta matches `wanted` (and the schema), else build
    it in a child process (so the bench's own peak RSS is that of a serving process).
    Returns (meta, build stats or None when reused)."""
    wanted = {**wanted, "schema": schema_hash()}
    meta = read_meta(path, meta_key)
    if meta and all(meta.get(k) == v for k, v in wanted.items()):
        log(f"reusing {path}")
        return meta, None
    log(f"building {describe} in {path} (child process) …")
    path.parent.mkdir(parents=True, exist_ok=True)
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        stats = pool.submit(build, str(path), *build_args).result()
    log(f"built in {stats['build_s']:.1f} s ({stats['size_mb']:.0f} MB)")
    meta = read_meta(path, meta_key)
    assert meta is not None
    return meta, stats
