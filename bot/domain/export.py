"""The guild's ledger as CSV: the columns of SPEC §6, in order, then the extra ones (the current
status of the entry's order), one row per entry in entry order. Never an item's code."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from bot.domain import csvsafe
from bot.domain.models import Entry
from bot.domain.timeparse import from_unix

COLUMNS = (
    "entry_id",
    "created_at",
    "guild_id",
    "user_id",
    "lot_id",
    "lot_kind",
    "type",
    "amount",
    "order_id",
    "actor_id",
    "reason",
)
#: After the required columns (SPEC §6 allows extra columns after them).
EXTRA_COLUMNS = ("order_status",)  # the order's status now, on every entry of that order


def csv_row(entry: Entry) -> list[csvsafe.Cell]:
    """One entry's cells, as they are: `write_csv` defuses them (`bot.domain.csvsafe`)."""
    return [
        entry.id,
        from_unix(entry.created_at).isoformat(),  # e.g. 2026-11-26T12:00:00+00:00
        entry.guild_id,
        entry.user_id,
        entry.lot_id,
        entry.lot_kind,
        entry.type,
        entry.amount,
        entry.order_id,
        entry.actor_id,
        entry.reason,
        entry.order_status,
    ]


def write_csv(entries: Iterable[Entry], out: TextIO, header: bool = True) -> int:
    writer = csvsafe.writer(out)  # every cell: a reason is free text from moderators
    if header:
        writer.writerow(COLUMNS + EXTRA_COLUMNS)
    count = 0
    for entry in entries:
        writer.writerow(csv_row(entry))
        count += 1
    return count
