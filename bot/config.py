"""Typed settings from the environment and `.env` (the environment wins)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATABASE_PATH = "data/promobalance.sqlite3"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(Exception):
    """A setting has a value the bot cannot use; the message says which and why."""


def read_dotenv(path: Path) -> dict[str, str]:
    """Parse the simple KEY=VALUE lines of a .env file (comments, blanks, optional quotes)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


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
    def load(
        cls, environ: dict[str, str] | None = None, dotenv: Path | None = Path(".env")
    ) -> Settings:
        merged = read_dotenv(dotenv) if dotenv is not None else {}
        merged.update(os.environ if environ is None else environ)

        def get(name: str) -> str:
            return merged.get(name, "").strip()

        dev_guild = get("DEV_GUILD_ID")
        if dev_guild and not dev_guild.isdigit():
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
