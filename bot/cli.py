"""`python -m bot [run | verify | backup PATH | export --guild ID [--out FILE] | invite]`.

Only `run` needs a Discord token; the other commands work on the database alone. Only `run` takes
the database's lock (bot/store/lock.py): one bot process per database, and the other commands
work beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from bot.config import ConfigError, Settings
from bot.ledger.service import Ledger
from bot.store.lock import DatabaseInUse, DatabaseLock
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

The README explains inviting the bot and the other settings.
Commands that need no token: python -m bot verify | backup PATH | export --guild ID
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Promo Balance: store credit for Discord.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("run", help="run the bot (the default)")
    sub.add_parser("verify", help="check every ledger invariant; exit 1 and report if one is broken")
    backup = sub.add_parser("backup", help="copy the database safely, even while the bot runs")
    backup.add_argument("path", type=Path, help="where to write the copy (must not exist yet)")
    export = sub.add_parser("export", help="write a server's ledger as CSV")
    export.add_argument("--guild", type=int, required=True, metavar="ID", help="the server (guild) id")
    export.add_argument("--out", type=Path, metavar="FILE", help="the CSV file to write (default: stdout)")
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
    if not settings.database_path.exists():
        print(f"No database at {settings.database_path} (set DATABASE_PATH, or run the bot once).", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "verify":
        return with_ledger(settings, verify)
    if args.command == "backup":
        if args.path.exists():
            print(f"{args.path} already exists; choose a new file name.", file=sys.stderr)
            return EXIT_USAGE
        return with_ledger(settings, lambda ledger: backup(ledger, args.path))
    if args.command == "export":
        return with_ledger(settings, lambda ledger: export(ledger, args.guild, args.out))
    return EXIT_USAGE


def with_ledger(settings: Settings, action: Callable[[Ledger], Awaitable[int]]) -> int:
    async def go() -> int:
        store = SqliteStore(settings.database_path)
        await store.open()
        try:
            return await action(Ledger(store))
        finally:
            await store.close()

    return asyncio.run(go())


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
    assert isinstance(ledger.store, SqliteStore)
    path.parent.mkdir(parents=True, exist_ok=True)
    await ledger.store.backup(path)
    print(f"Backed up to {path}.")
    return EXIT_OK


async def export(ledger: Ledger, guild_id: int, out: Path | None) -> int:
    if out is None:
        rows = await ledger.export_csv(guild_id, sys.stdout)
    else:
        with out.open("w", encoding="utf-8", newline="") as handle:
            rows = await ledger.export_csv(guild_id, handle)
        print(f"Wrote {rows} ledger entries to {out}.", file=sys.stderr)
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
    from bot.client import invite_url

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
    # Before anything else: a second bot on this database must not connect, and run no job.
    lock = DatabaseLock(settings.database_path)
    try:
        lock.acquire()
    except DatabaseInUse as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    from bot.client import run  # discord.py loads only when the bot really runs
    from bot.logs import setup_logging

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
