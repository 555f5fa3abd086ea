"""The ledger: every area of the application in one service, what the cogs, the CLI and the
workers call. No Discord import.

Each area (bot/app/<area>.py) parses and validates what users typed (amounts in the guild's
currency, durations and dates in the guild's timezone, codes), runs its units of work in one
transaction each, and tells listeners what happened (`credit_granted`, `credit_spent`,
`credit_expired`, `code_redeemed`, `order_pending`, `order_fulfilled`, `order_cancelled`) with
plain data. Every mutation takes an idempotency key: the
Discord layer passes the interaction id.
"""

from __future__ import annotations

from bot.app.codes import MAX_GIFT_CARDS, CodeService
from bot.app.credits import HISTORY_PAGE, CreditService
from bot.app.deliveries import DeliveryService
from bot.app.fulfilment import QUEUE_PAGE, FulfilmentService
from bot.app.reminders import ReminderService
from bot.app.reports import ReportService
from bot.app.schedules import ScheduleService
from bot.app.service import EventSink, utc_now
from bot.app.settings import SettingsService
from bot.app.shop import ORDERS_PAGE, ShopService
from bot.app.upkeep import KEEP_KEYS_SECONDS, UpkeepService

__all__ = [
    "HISTORY_PAGE",
    "KEEP_KEYS_SECONDS",
    "MAX_GIFT_CARDS",
    "ORDERS_PAGE",
    "QUEUE_PAGE",
    "EventSink",
    "Ledger",
    "utc_now",
]


class Ledger(
    SettingsService,
    CreditService,
    ShopService,
    FulfilmentService,
    DeliveryService,
    CodeService,
    ScheduleService,
    ReminderService,
    UpkeepService,
    ReportService,
):
    """`Ledger(store, clock=…, events=…)`: the store is an Engine (bot/store/ports.py)."""
