"""`Tx` on one SQLite connection: the repositories a unit of work sees (bot/store/ports.py).

They hold nothing but the connection, so each connection keeps one `SqliteTx` for its lifetime:
a transaction costs no objects."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from bot.store.sqlite.code_rows import CodeRows, ReminderRows, ReportRows, ScheduleRows
from bot.store.sqlite.credit_rows import (
    AccountRows,
    AuditRows,
    EntryRows,
    IdempotencyRows,
    LotRows,
    SettingsRows,
    StateRows,
)
from bot.store.sqlite.shop_rows import DeliveryRows, ItemCodeRows, ItemRows, OrderRows

if TYPE_CHECKING:
    from bot.store.ports import Tx


class SqliteTx:
    __slots__ = (
        "accounts",
        "audit",
        "codes",
        "conn",
        "deliveries",
        "entries",
        "idempotency",
        "item_codes",
        "items",
        "lots",
        "orders",
        "reminders",
        "reports",
        "schedules",
        "settings",
        "state",
    )

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.settings = SettingsRows(conn)
        self.accounts = AccountRows(conn)
        self.lots = LotRows(conn)
        self.entries = EntryRows(conn)
        self.items = ItemRows(conn)
        self.orders = OrderRows(conn)
        self.item_codes = ItemCodeRows(conn)
        self.deliveries = DeliveryRows(conn)
        self.codes = CodeRows(conn)
        self.schedules = ScheduleRows(conn)
        self.reminders = ReminderRows(conn)
        self.audit = AuditRows(conn)
        self.state = StateRows(conn)
        self.idempotency = IdempotencyRows(conn)
        self.reports = ReportRows(conn)


if TYPE_CHECKING:
    _checked: type[Tx] = SqliteTx  # mypy: SqliteTx provides every repository the interface names
