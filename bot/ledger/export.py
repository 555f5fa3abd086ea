"""The guild's ledger as CSV: the columns of SPEC §6, in order, one row per entry in entry order."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import TextIO

from bot.ledger.models import Entry
from bot.ledger.timeparse import from_unix

COLUMNS = (
    "entry_id", "created_at", "guild_id", "user_id", "lot_id", "lot_kind", "type", "amount", "order_id",
    "actor_id", "reason",
)
# Spreadsheets run cells that start with these as formulas; a reason is free text from moderators.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str | None) -> str:
    if not text:
        return ""
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_row(entry: Entry) -> list[str | int]:
    return [
        entry.id,
        from_unix(entry.created_at).isoformat(),  # e.g. 2026-11-26T12:00:00+00:00
        entry.guild_id,
        entry.user_id,
        entry.lot_id,
        entry.lot_kind,
        entry.type,
        entry.amount,
        "" if entry.order_id is None else entry.order_id,
        "" if entry.actor_id is None else entry.actor_id,
        _cell(entry.reason),
    ]


def write_csv(entries: Iterable[Entry], out: TextIO, header: bool = True) -> int:
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    count = 0
    for entry in entries:
        writer.writerow(csv_row(entry))
        count += 1
    return count
