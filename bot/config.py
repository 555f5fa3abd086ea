"""Typed settings from the environment and `.env` (the environment wins)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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

    def __repr__(self) -> str:  # never print the token, even by accident
        return (
            f"Settings(database_path={str(self.database_path)!r}, dev_guild_id={self.dev_guild_id},"
            f" log_level={self.log_level!r}, discord_api_base={self.discord_api_base!r},"
            f" discord_gateway_url={self.discord_gateway_url!r}, token_set={bool(self.discord_token)})"
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
        return cls(
            discord_token=get("DISCORD_TOKEN"),
            database_path=Path(get("DATABASE_PATH") or DEFAULT_DATABASE_PATH),
            dev_guild_id=int(dev_guild) if dev_guild else None,
            log_level=level,
            discord_api_base=get("DISCORD_API_BASE").rstrip("/") or None,
            discord_gateway_url=get("DISCORD_GATEWAY_URL") or None,
        )
