"""Every CSV the bot writes is safe to open in a spreadsheet (issue 8 item 10): one rule, in
bot/domain/csvsafe.py, for the ledger export and the gift-card codes alike."""

from __future__ import annotations

import csv
import io

import pytest

from bot.domain import csvsafe
from bot.domain.errors import InvalidInput
from bot.domain.money import validate_currency


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("\0=1", "'\0=1"),
        ("=A12", "'=A12"),  # an amount with the currency symbol =A
        ("-=A12", "'-=A12"),  # a negative one
        ("＝1+1", "'＝1+1"),  # full-width equals sign
        ("﹢1", "'﹢1"),  # small plus sign
        ("＠x", "'＠x"),
        ("a=1", "a=1"),  # only the first character counts
        ("'=1", "'=1"),  # already text
        ("1,250 credits", "1,250 credits"),
        ("", ""),
        (None, ""),
        (-500, -500),  # a number is a number: the export's amount stays a plain signed integer
        (0, 0),
        (12, 12),
    ],
)
def test_cell(value, written):
    assert csvsafe.cell(value) == written


def test_writer_defuses_every_cell_of_every_row():
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(("=head", "ok"))
    writer.writerows([("=A1", -5, None), ("+x", "@y", "\tz")])
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["'=head", "ok"], ["'=A1", "-5", ""], ["'+x", "'@y", "'\tz"]]
    assert out.getvalue().endswith("\n")
    assert "\r\n" not in out.getvalue()


@pytest.mark.parametrize("symbol", ["=A", "=", "+", "-", "@", "-$", "=HYPER", "＝A", " =A ", "\t=A"])
def test_a_currency_symbol_that_starts_a_formula_is_refused(symbol):
    with pytest.raises(InvalidInput) as info:
        validate_currency(None, symbol, None)
    assert "can't start with" in str(info.value) or "at most 5" in str(info.value)


@pytest.mark.parametrize("symbol", ["$", "€", "kr", "R$", "A=", "💎", "€¥£₹₩"])
def test_ordinary_symbols_are_still_fine(symbol):
    assert validate_currency(None, symbol, None) == (None, symbol, None)


def test_a_symbol_is_at_most_a_few_characters():
    with pytest.raises(InvalidInput, match="at most 5"):
        validate_currency(None, "ABCDEF", None)
