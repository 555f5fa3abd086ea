"""`Tx` on one SQLite connection: the shared repositories (bot/store/sql/) on `sqlite3.Connection`
itself, so a statement costs what it did before PostgreSQL joined.

They hold nothing but the connection, so each connection keeps one `SqliteTx` for its lifetime:
a transaction costs no objects."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from bot.store.sql.tx import SqlTx

if TYPE_CHECKING:
    from bot.store.ports import Tx


class SqliteTx(SqlTx):
    __slots__ = ()
    conn: sqlite3.Connection

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__(conn)


if TYPE_CHECKING:
    _checked: type[Tx] = SqliteTx  # mypy: SqliteTx provides every repository the interface names
