"""`python -m bot [run | verify | backup PATH | export --guild ID [--out FILE]]`.

Only `run` needs a Discord token; the other commands work on the database alone.
"""

from __future__ import annotations

import argparse
import sys

from bot.config import ConfigError, Settings

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
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the bot (the default)")
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
    return EXIT_USAGE


def run_bot(settings: Settings) -> int:
    if not settings.discord_token:
        print(SETUP_HELP, file=sys.stderr)
        return EXIT_USAGE
    print("The Discord client arrives with the next release; the ledger CLI works now.")
    return EXIT_USAGE
