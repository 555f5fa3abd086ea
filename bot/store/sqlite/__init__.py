"""The SQLite store: the engine (one file, one writer thread) and the SQL of every repository."""

from bot.store.sqlite.engine import SqliteStore
from bot.store.sqlite.rows import ENTRY_SELECT, ITEM_COLUMNS, LOT_COLUMNS, ORDER_COLUMNS

__all__ = ["ENTRY_SELECT", "ITEM_COLUMNS", "LOT_COLUMNS", "ORDER_COLUMNS", "SqliteStore"]
