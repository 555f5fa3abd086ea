"""The SQLite store: the engine (one file, one writer thread) on the shared repositories
(bot/store/sql/). The column lists are re-exported for bench/ledger.py."""

from bot.store.sql.rows import ENTRY_SELECT, ITEM_COLUMNS, LOT_COLUMNS, ORDER_COLUMNS
from bot.store.sqlite.engine import SqliteStore

__all__ = ["ENTRY_SELECT", "ITEM_COLUMNS", "LOT_COLUMNS", "ORDER_COLUMNS", "SqliteStore"]
