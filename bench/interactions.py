"""Interactions benchmark: what one bot process sustains end to end, beside a bare discord.py bot.

    PYTHONPATH=. python bench/interactions.py                      # 100,000 lots, 10,000 members
    PYTHONPATH=. python bench/interactions.py --duration 3 --lots 5000 --json

The fake Discord (fakediscord/) runs in this process on loopback; the bot runs as `python -m bot`
in a child process, exactly as an operator starts it, on a database loaded with a busy server
(bench/ledger.py's builder: `--lots` lots of `--lots / 10` members, a 60-item shop, orders, codes),
plus a promotional code with many uses and gift credit for the buyers. The load generator sends
INTERACTION_CREATE events and waits for the answer to reach the fake:

- /balance: the ephemeral answer (callback type 4);
- /redeem BENCH-PROMO: the ephemeral answer (the code allows 1,000 redemptions per member);
- /buy then Confirm: the preview (type 4), then the click: deferred (type 6) and the receipt edited
  onto the preview, which is the answer timed for "buy confirm".

Each is run closed loop (`--concurrency` interactions in flight, as fast as they come back: the
throughput) and open loop (`--rate` interactions per second offered on a fixed schedule, whatever
the answers do: the latency at that load; for /buy a session of two interactions every 2/rate s).
Latency is from the moment the fake sent INTERACTION_CREATE to the moment the answer reached it.

Then the same with the floor: `bench/bare_bot.py`, a bare discord.py client answering the same
interactions with a fixed message in the same shape, against the same fake, in the same run. The
ratio is our interactions/s ÷ the floor's. The CPU time of the bot process per interaction is
printed too: on a 2-CPU machine it is the steadier figure (the fake and the load generator share
the other CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/interactions.py` without PYTHONPATH
    sys.path.insert(0, str(ROOT))

import discord  # noqa: E402
import psycopg  # noqa: E402

from bench._common import cached_build, log  # noqa: E402
from bench.ledger import GUILD, MOD, build_db  # noqa: E402
from bot.app.ledger import Ledger  # noqa: E402
from bot.config import redact_url  # noqa: E402
from bot.store.copy import copy_sqlite_to_postgres  # noqa: E402
from bot.store.sqlite import SqliteStore  # noqa: E402
from fakediscord import FakeDiscord, InteractionRecord, InvalidInvocation, Perm, SentMessage  # noqa: E402

META_KEY = "bench_meta"
BUILD_VERSION = 3  # bench/ledger.py's builder
PROMO = "BENCH-PROMO"
PROMO_PER_MEMBER = 1000
BUY_ITEM = "11"  # "Games 1": 5 credits, stock 10,000,000, no role, no per-member limit
BUYERS = 2000  # members given gift credit for the /buy runs
BUYER_CREDIT = 1_000_000
ANSWER_TIMEOUT = 10.0
COMMANDS = ("balance", "redeem", "buy")
FAILED_MARKERS = ("Nothing was charged", "Error id", "went wrong", "Only the buyer")


def cpu_of(pids: list[int]) -> float:
    """CPU seconds (user + system) of running processes, from /proc (Linux); 0.0 elsewhere."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def self_cpu() -> float:
    t = os.times()
    return t.user + t.system


def pct(ordered: Sequence[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else float("nan")


@dataclass
class Run:
    """One measurement: which command, closed or open loop, what came back."""

    command: str
    mode: str  # "closed" or "open"
    latencies: dict[str, list[float]] = field(default_factory=dict)  # label -> seconds
    interactions: int = 0
    errors: int = 0
    timeouts: dict[str, int] = field(default_factory=dict)  # label -> answers that never came
    wall_s: float = 0.0
    bot_cpu_s: float = 0.0
    bench_cpu_s: float = 0.0
    max_lag_ms: float = 0.0  # open loop: how late the generator sent an interaction

    def figures(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "interactions": self.interactions,
            "errors": self.errors,
            "timeouts": dict(self.timeouts),
            "wall_s": round(self.wall_s, 3),
            "interactions_per_s": self.interactions / self.wall_s if self.wall_s else 0.0,
            "bot_cpu_ms_per_interaction": 1000 * self.bot_cpu_s / self.interactions if self.interactions else 0.0,
            "bench_cpu_s": round(self.bench_cpu_s, 3),
        }
        if self.mode == "open":
            out["max_lag_ms"] = round(self.max_lag_ms, 3)
        for label, values in self.latencies.items():
            ordered = sorted(values)
            out[label] = {
                "n": len(ordered),
                "p50_ms": pct(ordered, 0.50) * 1000,
                "p99_ms": pct(ordered, 0.99) * 1000,
                "max_ms": (ordered[-1] if ordered else float("nan")) * 1000,
            }
        return out


class Answers:
    """The moment each answer reaches the fake, from its message events (create / edit)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.loop = asyncio.get_running_loop()
        self.created: dict[int, asyncio.Future[tuple[float, SentMessage]]] = {}  # interaction id
        self.edited: dict[int, asyncio.Future[tuple[float, SentMessage]]] = {}  # message id
        fake.add_message_listener(self._on_message)

    def _on_message(self, event: str, message: SentMessage) -> None:
        at = self.loop.time()
        waiting = None
        if event == "create" and message.interaction_id is not None:
            waiting = self.created.pop(message.interaction_id, None)
        elif event == "edit":
            waiting = self.edited.pop(message.id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result((at, message))

    def on_create(self, record: InteractionRecord) -> asyncio.Future[tuple[float, SentMessage]]:
        future = self.loop.create_future()
        self.created[record.id] = future
        return future

    def on_edit(self, message: SentMessage) -> asyncio.Future[tuple[float, SentMessage]]:
        future = self.loop.create_future()
        self.edited[message.id] = future
        return future


def failed(message: SentMessage) -> bool:
    text = (message.content or "") + "\n" + message.embed_text
    return any(marker in text for marker in FAILED_MARKERS)


@dataclass
class GuildLoad:
    """One guild of the run: its members (the busy one's from the built ledger), the buyers with
    credit, and the item /buy asks for."""

    guild_id: int
    members: list[int]
    buyers: list[int]
    item: str = BUY_ITEM


class Load:
    """Sends the interactions of one command and times their answers; interaction `index` goes to
    guild `index % G`, so each shard (process) gets its share."""

    def __init__(self, fake: FakeDiscord, answers: Answers, guilds: list[GuildLoad], think_s: float) -> None:
        self.fake = fake
        self.answers = answers
        self.guilds = guilds
        self.think_s = think_s

    async def answer(
        self, future: asyncio.Future[tuple[float, SentMessage]], sent: float, run: Run, label: str
    ) -> SentMessage | None:
        try:
            at, message = await asyncio.wait_for(future, ANSWER_TIMEOUT)
        except TimeoutError:
            run.errors += 1
            run.timeouts[label] = run.timeouts.get(label, 0) + 1
            return None
        run.latencies.setdefault(label, []).append(at - sent)
        run.interactions += 1
        if failed(message):
            run.errors += 1
            return None
        return message

    async def once(self, command: str, guild: GuildLoad, member: int, run: Run, slot: asyncio.Semaphore) -> None:
        """One /balance or /redeem, or one /buy and its Confirm, as member number `member` of
        `guild`; each interaction holds a `slot` from its sending to its answer (the closed
        loop's in-flight cap)."""
        fake = self.fake
        if command == "buy":
            user = guild.buyers[member % len(guild.buyers)]
            async with slot:
                record = await fake.invoke(guild.guild_id, user, "buy", {"item": guild.item}, wait=False)
                preview = await self.answer(self.answers.on_create(record), record.created_at, run, "buy preview")
            if preview is None:
                return
            confirm = next((c for c in preview.custom_ids if c.startswith("buy:confirm:")), None)
            if confirm is None:
                run.errors += 1
                return
            # discord.py registers the view once the callback's HTTP answer is back in the bot: a
            # click in the same millisecond as the preview is ignored (no member clicks that fast)
            await asyncio.sleep(self.think_s)
            async with slot:
                edited = self.answers.on_edit(preview)
                click = await fake.click(preview, confirm, user, wait=False)
                await self.answer(edited, click.created_at, run, "buy confirm")
            return
        user = guild.members[member % len(guild.members)]
        options = {"code": PROMO} if command == "redeem" else None
        async with slot:
            record = await fake.invoke(guild.guild_id, user, command, options, wait=False)
            await self.answer(self.answers.on_create(record), record.created_at, run, command)

    async def closed(self, command: str, duration: float, concurrency: int, pids: list[int]) -> Run:
        """`concurrency` interactions in flight, each followed by the next as soon as it is answered.
        For /buy, 4 × as many sessions take turns in those slots (a session thinks before it clicks)."""
        run = Run(command, "closed")
        loop = asyncio.get_running_loop()
        slot = asyncio.Semaphore(concurrency)
        g = len(self.guilds)
        sessions = math.ceil(concurrency * (4 if command == "buy" else 1) / g) * g
        counter = iter(range(10**9))
        deadline = loop.time() + duration

        async def session(w: int) -> None:
            # session w buys in guild w % G as its members w // G, + S/G, + 2S/G …: never two
            # previews of one member at once
            k = 0
            while loop.time() < deadline:
                if command == "buy":
                    guild, member = self.guilds[w % g], w // g + (sessions // g) * k
                else:
                    i = next(counter)
                    guild, member = self.guilds[i % g], i // g
                await self.once(command, guild, member, run, slot)
                k += 1

        c0, b0, t0 = cpu_of(pids), self_cpu(), loop.time()
        await asyncio.gather(*(session(w) for w in range(sessions)))
        run.wall_s = loop.time() - t0
        run.bot_cpu_s, run.bench_cpu_s = cpu_of(pids) - c0, self_cpu() - b0
        return run

    async def open(self, command: str, duration: float, rate: float, pids: list[int]) -> Run:
        run = Run(command, "open")
        loop = asyncio.get_running_loop()
        interval = (2 if command == "buy" else 1) / rate  # a /buy session is two interactions
        tasks: list[asyncio.Task[None]] = []
        unlimited = asyncio.Semaphore(10**9)
        g = len(self.guilds)
        c0, b0, start = cpu_of(pids), self_cpu(), loop.time()
        i = 0
        while (at := start + i * interval) < start + duration:
            delay = at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            run.max_lag_ms = max(run.max_lag_ms, (loop.time() - at) * 1000)
            tasks.append(asyncio.create_task(self.once(command, self.guilds[i % g], i // g, run, unlimited)))
            i += 1
        await asyncio.gather(*tasks)
        run.wall_s = duration  # answered per second of the offered window (a straggler does not stretch it)
        run.bot_cpu_s, run.bench_cpu_s = cpu_of(pids) - c0, self_cpu() - b0
        return run

    async def probe(self, seconds: float) -> None:
        """Until every guild's /balance is answered: each process serves its shards."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        for guild in self.guilds:
            while True:
                try:
                    record = await self.fake.invoke(guild.guild_id, guild.members[0], "balance", wait=False)
                except InvalidInvocation:  # the commands are not synced yet
                    record = None
                if record is not None:
                    future = self.answers.on_create(record)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(future), 2)
                    if future.done():
                        break
                if loop.time() > deadline:
                    raise TimeoutError(f"guild {guild.guild_id} got no answer to /balance in {seconds:.0f} s")
                await asyncio.sleep(0.2)


# --- the database and the world --------------------------------------------------------------


def busy_members(path: Path, lots: int, seed: int) -> list[int]:
    """The busy server's ledger (built once per --lots and reused), and its members."""
    cached_build(
        path,
        META_KEY,
        {"version": BUILD_VERSION, "lots": lots, "seed": seed},
        f"{lots:,} lots for {max(lots // 10, 10):,} members",
        build_db,
        lots,
        seed,
    )
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT user_id FROM accounts WHERE guild_id = ? ORDER BY user_id", (GUILD,))
        return [int(u) for (u,) in rows]
    finally:
        conn.close()


def guild_for_shard(shard: int, shards: int, taken: set[int]) -> int:
    """A guild id on `shard` of `shards` (Discord routes guild g to shard (g >> 22) % shards)."""
    guild_id = GUILD + (1 << 22)
    while (guild_id >> 22) % shards != shard or guild_id in taken:
        guild_id += 1 << 22
    return guild_id


def plan_guilds(members: list[int], shards: int) -> list[GuildLoad]:
    """The busy guild, and for every other shard a guild of as many members (new accounts)."""
    guilds = [GuildLoad(GUILD, members, members[: min(BUYERS, len(members))])]
    covered = {(GUILD >> 22) % shards}
    for shard in range(shards):
        if shard in covered:
            continue
        guild_id = guild_for_shard(shard, shards, {g.guild_id for g in guilds})
        base = 10**17 + shard * 10**9
        others = [base + n for n in range(len(members))]
        guilds.append(GuildLoad(guild_id, others, others[: min(BUYERS, len(others))]))
        covered.add(shard)
    return guilds


async def stock_the_shop(store_path: Path, guilds: list[GuildLoad]) -> None:
    """The promotional code, the buyers' credit and the other guilds' shops, through the ledger."""
    store = SqliteStore(str(store_path))
    await store.open()
    try:
        ledger = Ledger(store)
        # what the bot's jobs would find due right away is settled first: no sweep, no DM mid-run
        while await ledger.sweep_expired():
            pass
        for guild in guilds:
            g = guild.guild_id
            if g != GUILD:
                item = await ledger.add_item(g, "Games 1", 5, "games", actor_id=MOD, key=f"bench:item:{g}", stock=10**7)
                guild.item = str(item.id)
            await ledger.create_promo(
                g, PROMO, 10, actor_id=MOD, key=f"bench:promo:{g}", uses=10**9, per_member=PROMO_PER_MEMBER
            )
            await ledger.grant_many(
                g, guild.buyers, BUYER_CREDIT, actor_id=MOD, key=f"bench:buyers:{g}", kind="gift", reason="bench"
            )
    finally:
        await store.close()
    conn = sqlite3.connect(store_path)
    try:
        # reminders due within the run would be DMed by the bot meanwhile: not what is measured here
        conn.execute(
            "UPDATE lots SET next_reminder_at = NULL WHERE next_reminder_at IS NOT NULL AND next_reminder_at <= ?",
            (int(time.time()) + 86_400,),
        )
        conn.commit()
    finally:
        conn.close()


def build_world(fake: FakeDiscord, guilds: list[GuildLoad]) -> None:
    for n, load in enumerate(guilds):
        guild = fake.add_guild(guild_id=load.guild_id, name=f"Busy Guild {n + 1}")
        owner = fake.add_member(load.guild_id, name="owner")
        guild.owner_id = owner.id
        mods = fake.add_role(load.guild_id, "Moderators", permissions=int(Perm.MANAGE_GUILD), position=5)
        fake.add_member(load.guild_id, user_id=MOD, name="mod", roles=[mods.id])
        for i, user in enumerate(load.members):
            fake.add_member(load.guild_id, user_id=user, name=f"member{i}")


@contextlib.asynccontextmanager
async def postgres_database(url: str, sqlite_path: Path) -> AsyncIterator[str]:
    """A new database on the server of `url`, loaded from the stocked SQLite file by copy-db's
    copy and analysed; dropped afterwards."""
    name = f"promo_bench_int_{os.getpid()}"
    target = urlunsplit(urlsplit(url)._replace(path="/" + name))
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        result = await copy_sqlite_to_postgres(sqlite_path, target)
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE")
        log(f"copied {result.total:,} rows into {redact_url(target)}")
        yield target
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redemptions(database: str) -> int:
    """Promo redemptions in the bot's database: proof the answers came from the ledger."""
    if database.startswith(("postgresql://", "postgres://")):
        with psycopg.connect(database) as conn:
            row = conn.execute("SELECT COUNT(*) FROM promo_redemptions").fetchone()
    else:
        conn2 = sqlite3.connect(database)
        try:
            row = conn2.execute("SELECT COUNT(*) FROM promo_redemptions").fetchone()
        finally:
            conn2.close()
    return int(row[0]) if row else 0


# --- the bot processes ------------------------------------------------------------------------


@dataclass
class Side:
    name: str  # "ours" or "bare"
    argv: list[str]
    env: list[dict[str, str]]  # one per process


class Process:
    def __init__(self, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.proc = proc
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


async def start(side: Side, fake: FakeDiscord, workdir: Path, load: Load) -> list[Process]:
    processes: list[Process] = []
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DISCORD_", "SHARD_")) and k not in ("DATABASE_PATH", "DATABASE_URL", "DEV_GUILD_ID")
    }
    base.update(
        PYTHONPATH=str(ROOT),
        DISCORD_TOKEN=fake.token,
        DISCORD_API_BASE=fake.api_base,
        DISCORD_GATEWAY_URL=fake.gateway_url,
    )
    try:
        for n, extra in enumerate(side.env):
            log_path = workdir / f"{side.name}{n}.log"
            with log_path.open("wb") as out:
                proc = await asyncio.create_subprocess_exec(
                    *side.argv, cwd=workdir, env={**base, **extra}, stdout=out, stderr=asyncio.subprocess.STDOUT
                )
            processes.append(Process(proc, log_path))

        def exited() -> bool:
            return any(p.proc.returncode is not None for p in processes)

        await fake.wait_for(
            lambda: len(fake.gateway.live_sessions) >= len(processes) or exited(), 90, f"{side.name} to connect"
        )
        if exited():
            dead = next(p for p in processes if p.proc.returncode is not None)
            raise RuntimeError(f"{side.name} exited with {dead.proc.returncode}:\n{dead.log_tail()}")
        await load.probe(90)
        await fake.wait_for(lambda: fake.pending_member_chunks == 0, 60, "the member chunks")
    except BaseException:
        for p in processes:
            await p.stop()
        raise
    return processes


async def stopped(processes: list[Process], fake: FakeDiscord) -> None:
    for p in processes:
        await p.stop()
    await fake.wait_for(lambda: not fake.gateway.live_sessions, 15, "the bot to disconnect")


def sides(args: argparse.Namespace, workdir: Path, database: str) -> list[Side]:
    n = args.processes
    shards = [{"SHARD_COUNT": str(n), "SHARD_IDS": str(i)} if n > 1 else {} for i in range(n)]
    ours = []
    for i in range(n):
        env = {"LOG_LEVEL": args.log_level, **shards[i]}
        if database.startswith(("postgresql://", "postgres://")):
            # the SQLite path only names the process's lock file (bot/cli.py takes it before the store)
            env.update(DATABASE_URL=database, DATABASE_PATH=str(workdir / f"ours{i}.sqlite3"))
        else:
            env["DATABASE_PATH"] = database
        ours.append(env)
    return [
        Side("ours", [sys.executable, "-m", "bot"], ours),
        Side("bare", [sys.executable, str(ROOT / "bench" / "bare_bot.py")], shards),
    ]


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    pristine = Path(args.db) if args.db else workdir / "pristine.sqlite3"
    if pristine.is_dir():
        pristine = pristine / f"interactions-bench-{args.lots}.sqlite3"
    members = busy_members(pristine, args.lots, args.seed)
    db = workdir / "bot.sqlite3"
    shutil.copyfile(pristine, db)
    guilds = plan_guilds(members, args.processes)
    log(f"stocking the shop of {len(guilds)} guild(s): code {PROMO}, credit for the buyers …")
    await stock_the_shop(db, guilds)
    async with contextlib.AsyncExitStack() as stack:
        database = str(db)
        if args.database_url:
            database = await stack.enter_async_context(postgres_database(args.database_url, db))
        before = redemptions(database)
        report = await run_sides(args, workdir, guilds, database)
        report["meta"]["redemptions_written"] = redemptions(database) - before
    report["meta"].update(
        lots=args.lots,
        members=len(members),
        guilds=len(guilds),
        backend="postgresql" if args.database_url else "sqlite",
        database_url=redact_url(args.database_url),
    )
    return report


async def run_sides(args: argparse.Namespace, workdir: Path, guilds: list[GuildLoad], database: str) -> dict[str, Any]:
    # A slow answer is an answer: the fake keeps the interaction open for the whole run.
    fake = FakeDiscord(strict=False, interaction_timeout=ANSWER_TIMEOUT, max_records=50_000)
    await fake.start()
    results: dict[str, Any] = {}
    load_before = os.getloadavg()
    try:
        log(f"adding {sum(len(g.members) for g in guilds):,} members to the fake …")
        build_world(fake, guilds)
        answers = Answers(fake)
        load = Load(fake, answers, guilds, args.think_ms / 1000)
        for side in sides(args, workdir, database):
            log(f"starting {side.name} ({len(side.env)} process(es)) …")
            processes = await start(side, fake, workdir, load)
            pids = [p.pid for p in processes]
            try:
                out: dict[str, Any] = {}
                for command in args.commands:
                    await load.closed(command, args.warmup, args.concurrency, pids)  # warm-up
                    log(f"{side.name} /{command}: closed loop, {args.concurrency} in flight, {args.duration} s …")
                    closed = await load.closed(command, args.duration, args.concurrency, pids)
                    log(f"{side.name} /{command}: open loop, {args.rate:g}/s, {args.duration} s …")
                    opened = await load.open(command, args.duration, args.rate, pids)
                    out[command] = {"closed": closed.figures(), "open": opened.figures()}
                results[side.name] = out
            finally:
                await stopped(processes, fake)
        if fake.problems():
            log(f"the fake saw problems: {fake.problems()[:5]}")
    finally:
        await fake.stop()
    load_after = os.getloadavg()
    report: dict[str, Any] = {"ours": results["ours"], "bare": results["bare"]}
    report["ratio"] = {
        c: results["ours"][c]["closed"]["interactions_per_s"] / results["bare"][c]["closed"]["interactions_per_s"]
        for c in args.commands
        if results["bare"][c]["closed"]["interactions_per_s"]
    }
    report["targets"] = targets(report, args)
    report["all_targets_met"] = all(t["met"] for t in report["targets"].values())
    report["meta"] = {
        "duration_s": args.duration,
        "rate": args.rate,
        "concurrency": args.concurrency,
        "processes": args.processes,
        "python": platform.python_version(),
        "discord.py": discord.__version__,
        "cpus": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in load_after],
    }
    return report


def answer_label(command: str) -> str:
    return "buy confirm" if command == "buy" else command


def targets(report: dict[str, Any], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for c in args.commands:
        ratio = report["ratio"].get(c, 0.0)
        out[f"{c}_ratio"] = {"target": ">= 0.5x bare discord.py", "value": ratio, "unit": "x", "met": ratio >= 0.5}
        p99 = report["ours"][c]["open"].get(answer_label(c), {}).get("p99_ms", float("inf"))
        out[f"{c}_p99"] = {
            "target": f"p99 < 50 ms at {args.rate:g}/s",
            "value": p99,
            "unit": "ms",
            "met": p99 < 50,
        }
    return out


def print_table(report: dict[str, Any], args: argparse.Namespace) -> None:
    meta = report["meta"]
    print(
        f"Promo Balance interactions benchmark — {meta['processes']} bot process(es) on {meta['backend']}, "
        f"{meta['guilds']} guild(s), {meta['members']:,} members in the busy one, {meta['lots']:,} lots "
        f"(Python {meta['python']}, discord.py "
        f"{meta['discord.py']}, {meta['cpus']} CPUs)"
    )
    print(
        f"closed loop: {meta['concurrency']} in flight for {meta['duration_s']} s; open loop: "
        f"{meta['rate']:g} interactions/s offered for {meta['duration_s']} s; "
        "latency: INTERACTION_CREATE sent → answer at the fake\n"
    )
    head = (
        f"{'command':<14}{'side':<6}│{'closed: int/s':>14}{'p50 ms':>8}{'p99 ms':>8}{'cpu ms/int':>11}{'err':>5} │"
        f"{'open: int/s':>12}{'p50 ms':>8}{'p99 ms':>8}{'lag ms':>8}{'err':>5}"
    )
    print(head)
    print("─" * len(head))
    for c in args.commands:
        for side in ("ours", "bare"):
            closed, opened = report[side][c]["closed"], report[side][c]["open"]
            for label in ("buy preview", "buy confirm") if c == "buy" else (c,):
                cl, op = closed.get(label, {}), opened.get(label, {})
                nan = float("nan")
                print(
                    f"{'/' + label:<14}{side:<6}│{closed['interactions_per_s']:>14,.1f}{cl.get('p50_ms', nan):>8.2f}"
                    f"{cl.get('p99_ms', nan):>8.2f}{closed['bot_cpu_ms_per_interaction']:>11.2f}{closed['errors']:>5} │"
                    f"{opened['interactions_per_s']:>12,.1f}{op.get('p50_ms', nan):>8.2f}{op.get('p99_ms', nan):>8.2f}"
                    f"{opened['max_lag_ms']:>8.1f}{opened['errors']:>5}"
                )
        print(f"{'':<14}ratio ours ÷ bare (closed-loop interactions/s): {report['ratio'].get(c, float('nan')):.2f}x")
    print("(int/s of /buy counts both interactions, the preview and the Confirm; cpu = the bot process's CPU time)")
    if meta.get("database_url"):
        print(f"database: {meta['database_url']}")
    print(f"promo redemptions the bot wrote to its database: {meta['redemptions_written']:,}")
    load = meta["loadavg_before"][0], meta["loadavg_after"][0]
    print(f"load average (1 min) before / after: {load[0]:.2f} / {load[1]:.2f} on {meta['cpus']} CPUs")
    print("\ntargets:")
    for name, t in report["targets"].items():
        print(f"  {name:<16} {t['target']:<28} {t['value']:>10.3f} {t['unit']:<3} {'MET' if t['met'] else 'NOT MET'}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of closed loop before each command")
    p.add_argument("--rate", type=float, default=100.0, help="open loop: interactions/s offered (default 100)")
    p.add_argument("--concurrency", type=int, default=16, help="closed loop: interactions in flight (default 16)")
    p.add_argument("--think-ms", type=float, default=50.0, help="/buy: ms between the preview and the click")
    p.add_argument("--lots", type=int, default=100_000, help="lots in the database (members = lots / 10)")
    p.add_argument("--commands", default=",".join(COMMANDS), help="which of balance,redeem,buy (default all)")
    p.add_argument("--db", default=None, help="keep the built database here and reuse it for the same --lots")
    p.add_argument("--log-level", default="INFO", help="the bot's LOG_LEVEL (default INFO, as deployed)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="run the bot on PostgreSQL: a database is created on this server, loaded, and dropped after",
    )
    p.add_argument(
        "--processes", type=int, default=1, help="bot processes, each serving one shard of as many (needs PostgreSQL)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = p.parse_args(argv)
    args.commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    if unknown := set(args.commands) - set(COMMANDS):
        p.error(f"unknown commands: {', '.join(sorted(unknown))}")
    if args.lots < 1000:
        p.error("--lots must be at least 1000")
    if args.database_url and not args.database_url.startswith(("postgresql://", "postgres://")):
        p.error("--database-url takes a postgresql:// URL")
    if args.processes < 1 or (args.processes > 1 and not args.database_url):
        p.error("--processes above 1 needs --database-url: on SQLite one process serves the database")
    if args.duration <= 0 or args.rate <= 0 or args.concurrency < 1:
        p.error("--duration and --rate must be positive, --concurrency at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="promo-bench-int-"))
    try:
        report = asyncio.run(measure(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
