"""`python -m bot [run | try | verify | backup PATH | export --guild ID [--out FILE] | db status | db upgrade |
copy-db --to URL | invite]`.

Only `run` needs a Discord token; `try` runs the playground (the bot against a Discord emulator, on
its own database, data/playground.sqlite3); the other commands work on the database alone. `run` takes the
database's lock (bot/store/lock.py): one bot process per database; `db upgrade` takes it too, so
it never changes the schema under a running bot. The other commands work beside the bot.

Only `run` (at its start) and `db upgrade` migrate the schema, each after an online backup.
`backup`, `verify`, `export` and `db status` open the database without migrating it: they refuse
one newer than the code; `backup` and `db status` take an older one as it is, `verify` and
`export` need the current schema and say to run `db upgrade` first.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import psycopg

from bot.app.ledger import Ledger
from bot.config import ConfigError, Settings, redact_url
from bot.logs import setup_logging
from bot.store.copy import CopyRefused, CopyResult, copy_sqlite_to_postgres, guild_ids
from bot.store.factory import make_store
from bot.store.lock import DatabaseInUse, DatabaseLock
from bot.store.migrate import SchemaTooNew, code_version, pending
from bot.store.ports import Engine
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2

SETUP_HELP = """\
Promo Balance needs a Discord bot token to connect, and none is set.

  1. Open https://discord.com/developers/applications, create an application
     (or pick yours), open "Bot" and press "Reset Token" to get the token.
  2. Put it in a file named .env next to README.md:
         cp .env.example .env        # then edit the DISCORD_TOKEN= line
     or set it in the environment:  DISCORD_TOKEN=... python -m bot
  3. Run `python -m bot` again.

Just want to see what it does first? `python -m bot try` runs the bot against a Discord
emulator on this computer and opens a Discord-like page on 127.0.0.1: no token, no account.

The README explains inviting the bot and the other settings.
Commands that need no token: python -m bot try | verify | backup PATH | export --guild ID | db status | db upgrade
  | copy-db --to URL
"""
#: The playground's own database: `python -m bot try` never touches DATABASE_PATH.
PLAYGROUND_DATABASE = Path("data/playground.sqlite3")
PLAYGROUND_PORT = 8765


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Promo Balance: store credit for Discord.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the bot (the default)")
    trial = sub.add_parser("try", help="the playground: the bot and a Discord-like page on 127.0.0.1, no token")
    trial.add_argument("--port", type=int, default=PLAYGROUND_PORT, metavar="N", help="the page's port on 127.0.0.1")
    trial.add_argument("--fresh", action="store_true", help=f"start over: delete {PLAYGROUND_DATABASE} first")
    sub.add_parser("verify", help="check every ledger invariant; exit 1 and report if one is broken")
    backup = sub.add_parser("backup", help="copy the database safely, even while the bot runs")
    backup.add_argument("path", type=Path, help="where to write the copy (must not exist yet)")
    export = sub.add_parser("export", help="write a server's ledger as CSV")
    export.add_argument("--guild", type=int, required=True, metavar="ID", help="the server (guild) id")
    export.add_argument("--out", type=Path, metavar="FILE", help="the CSV file to write (default: stdout)")
    db = sub.add_parser("db", help="the database's schema: `db status`, `db upgrade`")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("status", help="the database's schema version, the code's, and the pending migrations")
    db_sub.add_parser("upgrade", help="back the database up beside itself, then apply the pending migrations")
    copy_db = sub.add_parser(
        "copy-db", help="copy the SQLite ledger into an empty PostgreSQL database, then check the copy"
    )
    copy_db.add_argument("--to", required=True, metavar="URL", help="the target, postgresql://user:pass@host/db")
    invite = sub.add_parser("invite", help="print the link that adds the bot to a server")
    invite.add_argument("--app-id", type=int, metavar="ID", help="the application id (default: read from the token)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.load()
    except ConfigError as exc:
        print(f"Configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in (None, "run"):
        return run_bot(settings)
    if args.command == "invite":
        return invite(settings, args.app_id)
    if args.command == "try":
        return try_playground(settings, args.port, fresh=args.fresh)
    if args.command == "copy-db":
        return copy_db(settings, args.to)
    if not settings.database_url and not settings.database_path.exists():
        print(f"No database at {settings.database_path} (set DATABASE_PATH, or run the bot once).", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "verify":
        return with_ledger(settings, verify, needs_current=True)
    if args.command == "backup":
        if args.path.exists():
            print(f"{args.path} already exists; choose a new file name.", file=sys.stderr)
            return EXIT_USAGE
        return with_ledger(settings, lambda ledger: backup(ledger, args.path))
    if args.command == "export":
        return with_ledger(settings, lambda ledger: export(ledger, args.guild, args.out), needs_current=True)
    if args.command == "db" and args.db_command == "status":
        return with_ledger(settings, db_status)
    if args.command == "db" and args.db_command == "upgrade":
        return db_upgrade(settings)
    return EXIT_USAGE


def database_of(settings: Settings) -> str:
    """The database the settings name, for people (a URL without its password)."""
    return redact_url(settings.database_url) or str(settings.database_path)


async def open_store(settings: Settings, *, migrate: bool) -> Engine | None:
    """The store, opened; None (after saying why) for a database newer than the code, or a
    PostgreSQL server that can't be reached."""
    store = make_store(settings, migrate=migrate)
    try:
        await store.open()
    except SchemaTooNew as exc:
        print(f"Refused: {exc}.", file=sys.stderr)
        return None
    except psycopg.OperationalError as exc:  # libpq's reason: no server there, wrong password …
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        print(f"Could not open the PostgreSQL database {database_of(settings)}: {reason}", file=sys.stderr)
        return None
    return store


def with_ledger(settings: Settings, action: Callable[[Ledger], Awaitable[int]], *, needs_current: bool = False) -> int:
    """Run `action` on the database opened without migrating it (`make_store(migrate=False)`).

    A database newer than the code is refused; an older one is given to `action` as it is, unless
    the action `needs_current` schema (it reads tables or columns a later migration adds)."""

    async def go() -> int:
        store = await open_store(settings, migrate=False)
        if store is None:
            return EXIT_USAGE
        try:
            if needs_current and store.schema_version < code_version(store.migrations):
                print(
                    f"This database is at schema version {store.schema_version}, the code expects "
                    f"{code_version(store.migrations)}: run `python -m bot db upgrade` first (it backs "
                    "the database up, then migrates it).",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            return await action(Ledger(store))
        finally:
            await store.close()

    return asyncio.run(go())


async def db_status(ledger: Ledger) -> int:
    """Exit 0 whether or not migrations are pending (the bot applies them at its start)."""
    version, code = ledger.store.schema_version, code_version(ledger.store.migrations)
    print(f"Database: {ledger.store.location}")
    print(f"Schema version: {version} (this code: {code})")
    waiting = pending(version, ledger.store.migrations)
    if not waiting:
        print("Up to date: no pending migrations.")
        return EXIT_OK
    print(f"Pending migrations ({len(waiting)}): {', '.join(waiting)}")
    print("Apply them with `python -m bot db upgrade` (it backs the database up first), or start the bot.")
    return EXIT_OK


def db_upgrade(settings: Settings) -> int:
    """Back up, then migrate, holding the database's lock: never under a running bot. (On
    PostgreSQL each migration is one transaction under an advisory lock, safe beside the bots.)"""
    lock = DatabaseLock(settings.database_path)
    try:
        if not settings.database_url:
            lock.acquire()
    except DatabaseInUse as exc:
        print(
            f"{exc}\nStop the bot before `python -m bot db upgrade` (or just restart it: it upgrades "
            "the database at its start, after a backup).",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def go() -> int:
        store = await open_store(settings, migrate=True)
        if store is None:
            return EXIT_USAGE
        await store.close()
        upgrade = store.upgrade
        if upgrade is None:
            print(f"Up to date: {database_of(settings)} is at schema version {store.schema_version}; nothing to do.")
            return EXIT_OK
        if upgrade.backup is not None:
            print(f"Backed up to {upgrade.backup} (schema version {upgrade.from_version}).")
        print(
            f"Upgraded {database_of(settings)} from schema version {upgrade.from_version} to "
            f"{upgrade.to_version}: applied {', '.join(upgrade.applied)}."
        )
        return EXIT_OK

    try:
        return asyncio.run(go())
    finally:
        lock.release()


async def verify(ledger: Ledger) -> int:
    problems = await ledger.verify()
    if not problems:
        print("OK: every ledger invariant holds.")
        return EXIT_OK
    print(f"{len(problems)} problem(s) found:" + (" (first 100 of each kind)" if len(problems) >= 100 else ""))
    for problem in problems:
        print(f"  - {problem}")
    return EXIT_PROBLEMS


async def backup(ledger: Ledger, path: Path) -> int:
    """A copy of the database as it is, older schema included (the copy is not migrated either):
    SQLite's online backup of the file, or on PostgreSQL `pg_dump --format=custom` (restore it
    with `pg_restore`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        await ledger.store.backup(path)
    except RuntimeError as exc:  # PostgreSQL: no pg_dump, or pg_dump failed (it says why)
        print(f"Backup failed: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    version, code = ledger.store.schema_version, code_version(ledger.store.migrations)
    older = f"; the code expects {code}" if version < code else ""
    kind = " (pg_dump custom format: restore it with pg_restore)" if "://" in ledger.store.location else ""
    print(f"Backed up to {path}{kind} (schema version {version}{older}).")
    return EXIT_OK


async def export(ledger: Ledger, guild_id: int, out: Path | None) -> int:
    if out is None:
        rows = await ledger.export_csv(guild_id, sys.stdout)
    else:
        with out.open("w", encoding="utf-8", newline="") as handle:
            rows = await ledger.export_csv(guild_id, handle)
        print(f"Wrote {rows} ledger entries to {out}.", file=sys.stderr)
    return EXIT_OK


def copy_db(settings: Settings, url: str) -> int:
    """Copy DATABASE_PATH into the empty PostgreSQL database at `url` (bot/store/copy.py), then
    check the copy is the same ledger: every invariant holds on it, and every guild's export is
    identical on both. The SQLite file's lock is held throughout: no bot writes to it meanwhile."""
    shown = redact_url(url) or ""

    def say(text: str) -> str:  # never print the password, even inside a driver's message
        return text.replace(url, shown)

    if not url.startswith(("postgresql://", "postgres://")):
        print(
            f"Refused: {shown!r} is not a PostgreSQL URL (postgresql://user:password@host/database).", file=sys.stderr
        )
        return EXIT_USAGE
    path = settings.database_path
    if not path.exists():
        print(f"Refused: no SQLite database at {path} (set DATABASE_PATH).", file=sys.stderr)
        return EXIT_USAGE
    lock = DatabaseLock(path)
    try:
        lock.acquire()
    except DatabaseInUse as exc:
        print(
            f"{exc}\nStop the bot before `python -m bot copy-db`: a copy of a ledger in use is stale at once.",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def go() -> int:
        source = SqliteStore(path, migrate=False)  # DATABASE_PATH, even when DATABASE_URL is set
        try:
            await source.open()
        except SchemaTooNew as exc:
            print(f"Refused: {exc}.", file=sys.stderr)
            return EXIT_USAGE
        try:
            if source.schema_version < code_version():
                print(
                    f"Refused: {path} is at schema version {source.schema_version}, the code expects "
                    f"{code_version()}: run `python -m bot db upgrade` first.",
                    file=sys.stderr,
                )
                return EXIT_USAGE
        finally:
            await source.close()
        try:
            result = await copy_sqlite_to_postgres(path, url)
        except CopyRefused as exc:
            print(f"Refused: {say(str(exc))}.", file=sys.stderr)
            return EXIT_USAGE
        print_copy(result, path, shown)
        return await check_copy(settings, url, await asyncio.to_thread(guild_ids, path))

    try:
        return asyncio.run(go())
    finally:
        lock.release()


def print_copy(result: CopyResult, path: Path, shown: str) -> None:
    print(f"Copied {result.total:,} rows from {path} into {shown}, in one transaction:")
    for table, rows in result.rows.items():
        print(f"  {table:<20} {rows:>12,}")


async def check_copy(settings: Settings, url: str, guilds: list[int]) -> int:
    """The copy, read through the ledger: the invariants, then each guild's export on both."""
    source = SqliteStore(settings.database_path, migrate=False)
    target = PostgresStore(url, migrate=False)
    await source.open()
    try:
        await target.open()
        try:
            original, copy = Ledger(source), Ledger(target)
            problems = await copy.verify()
            if problems:
                print(f"The copy breaks {len(problems)} ledger invariant(s):")
                for problem in problems:
                    print(f"  - {problem}")
                return EXIT_PROBLEMS
            different = []
            for guild_id in guilds:
                ours, theirs = io.StringIO(), io.StringIO()
                await original.export_csv(guild_id, ours)
                await copy.export_csv(guild_id, theirs)
                if ours.getvalue() != theirs.getvalue():
                    different.append(guild_id)
            if different:
                print(f"The export of {len(different)} guild(s) differs on the copy: {', '.join(map(str, different))}")
                return EXIT_PROBLEMS
        finally:
            await target.close()
    finally:
        await source.close()
    print(f"Verified: every ledger invariant holds on the copy; the export of all {len(guilds)} guild(s) is identical.")
    return EXIT_OK


def application_id_from_token(token: str) -> int | None:
    """A bot token's first part is its application's id in base64."""
    head = token.split(".", 1)[0]
    try:
        text = base64.b64decode(head + "=" * (-len(head) % 4), validate=False).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def invite(settings: Settings, app_id: int | None) -> int:
    from bot.discordbot.client import invite_url

    app_id = app_id or application_id_from_token(settings.discord_token)
    if app_id is None:
        print("Give --app-id (the Application ID from the developer portal), or set DISCORD_TOKEN.", file=sys.stderr)
        return EXIT_USAGE
    print(invite_url(app_id))
    return EXIT_OK


def run_bot(settings: Settings) -> int:
    if not settings.discord_token:
        print(SETUP_HELP, file=sys.stderr)
        return EXIT_USAGE
    # Before anything else: a second bot on this SQLite file must not connect, and run no job. On
    # PostgreSQL many processes share the database; the scheduler lease picks the one running jobs.
    lock = DatabaseLock(settings.database_path)
    try:
        if not settings.database_url:
            lock.acquire()
    except DatabaseInUse as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    from bot.discordbot.client import run  # discord.py loads only when the bot really runs

    setup_logging(settings.log_level, secrets=(settings.discord_token,))
    try:
        return asyncio.run(run(settings))
    except KeyboardInterrupt:  # Ctrl-C where run() could not install its handler (Windows)
        return EXIT_OK
    except Exception:  # through the log, so the redacting formatter sees the traceback too
        logging.getLogger("bot").exception("the bot stopped on an unexpected error")
        return EXIT_PROBLEMS
    finally:
        lock.release()


def try_playground(settings: Settings, port: int, *, fresh: bool, database: Path = PLAYGROUND_DATABASE) -> int:
    """The playground until Ctrl-C: the fake Discord, the real bot and the page, on 127.0.0.1."""
    if not 0 <= port <= 65535:
        print(f"--port must be between 0 and 65535, not {port}.", file=sys.stderr)
        return EXIT_USAGE
    lock = DatabaseLock(database)
    try:
        lock.acquire()
    except DatabaseInUse as exc:
        print(f"{exc}\nA playground is already running on {database}: use its page, or stop it.", file=sys.stderr)
        return EXIT_USAGE
    from bot.playground.app import Playground, PortUnavailable  # discord.py and the fake: only here

    if fresh:
        for suffix in ("", "-wal", "-shm"):
            database.with_name(database.name + suffix).unlink(missing_ok=True)
    # Warnings only, unless LOG_LEVEL asks for more: the terminal shows the address, not the chatter.
    level = settings.log_level if os.environ.get("LOG_LEVEL") else "WARNING"
    setup_logging(level)

    def ready(url: str) -> None:
        print(
            f"Promo Balance playground: {url}\n"
            "  The real bot and a Discord emulator on this computer: no token, no account, no internet.\n"
            f"  Open the address in your browser. Database: {database} (start over with --fresh).\n"
            "  Ctrl-C stops it.",
            flush=True,
        )

    playground = Playground(database, port=port, log_level=level)
    try:
        asyncio.run(playground.run(ready))
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C before the bot's own handler was installed
        return EXIT_OK
    except PortUnavailable as exc:
        print(f"{exc}: try another --port.", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        logging.getLogger("bot").exception("the playground stopped on an unexpected error")
        return EXIT_PROBLEMS
    finally:
        lock.release()
