"""The store the settings ask for: PostgreSQL when DATABASE_URL is set, else the SQLite file."""

from __future__ import annotations

from bot.config import Settings
from bot.store.ports import Engine
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore


def make_store(settings: Settings, *, migrate: bool = True) -> Engine:
    """`migrate=False` opens it only to read (verify, export, backup, db status)."""
    if settings.database_url:
        return PostgresStore(settings.database_url, migrate=migrate)
    return SqliteStore(settings.database_path, migrate=migrate)
