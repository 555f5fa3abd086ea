"""`Tx` on one connection: the repositories a unit of work sees (bot/store/ports.py), shared by
the SQLite store (bot/store/sqlite/tx.py) and the PostgreSQL one (bot/store/postgres/rows.py),
which replaces the few repositories whose SQL differs.

They hold nothing but the connection, so a connection can keep one `SqlTx` for its lifetime:
a transaction costs no objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.store.sql import Connection
from bot.store.sql.code_rows import CodeRows, ReminderRows, ReportRows, ScheduleRows
from bot.store.sql.credit_rows import (
    AccountRows,
    AuditRows,
    EntryRows,
    IdempotencyRows,
    LotRows,
    SettingsRows,
    StateRows,
)
from bot.store.sql.shop_rows import DeliveryRows, ItemCodeRows, ItemRows, OrderRows

if TYPE_CHECKING:
    from bot.store.ports import Tx


class SqlTx:
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

    def __init__(self, conn: Connection) -> None:
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
    _checked: type[Tx] = SqlTx  # mypy: SqlTx provides every repository the interface names
