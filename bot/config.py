"""Typed settings from the environment and `.env` (the environment wins)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

DEFAULT_DATABASE_PATH = "data/promobalance.sqlite3"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A setting has a value the bot cannot use; the message says which and why."""


def _file_values(path: Path | None) -> dict[str, str]:
    """The settings in a .env file, parsed by python-dotenv as the standard reads them.

    Comments (whole-line and inline ``KEY=value # note``), blank lines, single and double
    quotes and ``export KEY=value`` are understood. Values are taken literally (no
    ``${VAR}`` expansion: it would read the real process environment even when ``environ``
    is given, and could mangle a secret containing ``$``). A missing file is no settings;
    a line with a key and no ``=`` is unset.
    """
    if path is None:  # dotenv_values(None) would search the parent folders for a .env: never that
        return {}
    values = dotenv_values(path, interpolate=False, encoding="utf-8")
    return {key: value for key, value in values.items() if value is not None}


@dataclass(frozen=True)
class Settings:
    discord_token: str
    database_path: Path
    dev_guild_id: int | None
    log_level: str
    discord_api_base: str | None
    discord_gateway_url: str | None
    #: postgresql://… : the ledger on PostgreSQL instead of the SQLite file at `database_path`.
    database_url: str | None = None
    #: SHARD_COUNT / SHARD_IDS: serve only these shards of a bot split across processes.
    shard_count: int | None = None
    shard_ids: tuple[int, ...] | None = None

    def __repr__(self) -> str:  # never print the token (or the database password), even by accident
        return (
            f"Settings(database_path={str(self.database_path)!r}, database_url={redact_url(self.database_url)!r},"
            f" dev_guild_id={self.dev_guild_id}, log_level={self.log_level!r},"
            f" discord_api_base={self.discord_api_base!r}, discord_gateway_url={self.discord_gateway_url!r},"
            f" shard_count={self.shard_count}, shard_ids={self.shard_ids}, token_set={bool(self.discord_token)})"
        )

    __str__ = __repr__

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
        """Settings from ``environ`` (default: the process environment) over the ``dotenv`` file.

        A variable set in the environment wins over the file even when it is empty, so
        ``DEV_GUILD_ID= python -m bot`` turns off a guild the file sets (as python-dotenv's
        ``load_dotenv`` never overrides a variable that is set). Empty values count as unset.
        """
        merged = _file_values(dotenv)
        merged.update(os.environ if environ is None else environ)

        def get(name: str) -> str:
            return merged.get(name, "").strip()

        dev_guild = get("DEV_GUILD_ID")
        if dev_guild and not (dev_guild.isascii() and dev_guild.isdigit()):  # '²'.isdigit() is True
            raise ConfigError(f"DEV_GUILD_ID must be a server id (digits only), not {dev_guild!r}.")
        level = (get("LOG_LEVEL") or "INFO").upper()
        if level not in LOG_LEVELS:
            raise ConfigError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {level!r}.")
        database_url = get("DATABASE_URL") or None
        if database_url and urlsplit(database_url).scheme not in POSTGRES_SCHEMES:
            raise ConfigError(
                f"DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host:port/database),"
                f" not {redact_url(database_url)!r}. Leave it empty to use the SQLite file at DATABASE_PATH."
            )
        shard_count, shard_ids = parse_shards(get("SHARD_COUNT"), get("SHARD_IDS"))
        return cls(
            discord_token=get("DISCORD_TOKEN"),
            database_path=Path(get("DATABASE_PATH") or DEFAULT_DATABASE_PATH),
            dev_guild_id=int(dev_guild) if dev_guild else None,
            log_level=level,
            discord_api_base=get("DISCORD_API_BASE").rstrip("/") or None,
            discord_gateway_url=get("DISCORD_GATEWAY_URL") or None,
            database_url=database_url,
            shard_count=shard_count,
            shard_ids=shard_ids,
        )


POSTGRES_SCHEMES = ("postgresql", "postgres")


def redact_url(url: str | None) -> str | None:
    """A database URL without its password, for logs and messages."""
    if not url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_shards(count_text: str, ids_text: str) -> tuple[int | None, tuple[int, ...] | None]:
    """SHARD_COUNT ('8') and SHARD_IDS ('0-3', '0,2,4-5'); ids need a count, and each is below it."""
    if not count_text:
        if ids_text:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT: how many shards the whole bot has.")
        return None, None
    if not (count_text.isascii() and count_text.isdigit()) or int(count_text) < 1:
        raise ConfigError(f"SHARD_COUNT must be a whole number of shards, 1 or more, not {count_text!r}.")
    count = int(count_text)
    if not ids_text:
        return count, tuple(range(count))
    ids: set[int] = set()
    for part in ids_text.split(","):
        first, dash, last = part.strip().partition("-")
        numbers = (first.strip(), last.strip()) if dash else (first.strip(), first.strip())
        if not all(n.isascii() and n.isdigit() for n in numbers) or int(numbers[0]) > int(numbers[1]):
            raise ConfigError(f"SHARD_IDS must be shard numbers and ranges like 0-3 or 0,2,5-7, not {ids_text!r}.")
        ids.update(range(int(numbers[0]), int(numbers[1]) + 1))
    if max(ids) >= count:
        raise ConfigError(f"SHARD_IDS names shard {max(ids)}, but SHARD_COUNT={count} has shards 0 to {count - 1}.")
    return count, tuple(sorted(ids))
