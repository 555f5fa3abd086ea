"""CSV files the bot writes (the ledger export, the gift-card codes), made safe to open in a
spreadsheet. The one home of the rule: every CSV writer of the bot writes through `writer`.

Spreadsheets (Excel, LibreOffice, Google Sheets) may run a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula, and a tab, a carriage return or a NUL in front can hide one; some read
the full-width forms (``＝``) the same way. Free text such as a moderator's reason, or an amount
shown with a currency symbol like ``=A``, could start with any of them. Such a cell gets a leading
``'``, which spreadsheets read as "this is text" (OWASP's advice against CSV injection). A Python
``int`` is written as it is: ``-500`` is a number, never a formula, and the export's ``amount``
column must stay a plain signed integer (SPEC §6).
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from typing import TextIO

#: What a spreadsheet cell may not start with (`bot.domain.money` refuses currency symbols that do).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\0")

Cell = str | int | None


def cell(value: Cell) -> str | int:
    """One cell as written: ``None`` is empty, an int stays a number, text is defused."""
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value)
    return "'" + text if starts_a_formula(text) else text


def starts_a_formula(text: str) -> bool:
    """Whether a spreadsheet could read ``text`` as a formula: it starts with one of `FORMULA_START`,
    also in a full-width or small form (``＝``, ``﹢``) that some spreadsheets read as the same."""
    return text.startswith(FORMULA_START) or unicodedata.normalize("NFKC", text[:1]).startswith(FORMULA_START)


class SafeWriter:
    """``csv.writer`` (with ``\\n`` line ends) whose every cell goes through `cell`."""

    def __init__(self, out: TextIO) -> None:
        self._writer = csv.writer(out, lineterminator="\n")

    def writerow(self, row: Iterable[Cell]) -> None:
        self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Cell]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: TextIO) -> SafeWriter:
    return SafeWriter(out)
