"""Amounts: parsing what people type, range checks, display, currency settings."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.ledger.errors import InvalidInput, UserError
from bot.ledger.money import (
    MAX_AMOUNT,
    MIN_AMOUNT,
    Currency,
    check_amount,
    format_amount,
    parse_amount,
    validate_currency,
)

CREDITS = Currency()
DOLLARS = Currency(name="dollars", symbol="$", decimals=2)
GEMS_2 = Currency(name="gems", symbol="", decimals=2)


def test_constants_and_defaults():
    assert MAX_AMOUNT == 10**12
    assert MIN_AMOUNT == 1
    assert Currency() == Currency(name="credits", symbol="", decimals=0)


def test_currency_is_frozen():
    with pytest.raises(AttributeError):
        CREDITS.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "decimals", "expected"),
    [
        ("12.50", 2, 1250),
        ("12", 2, 1200),
        ("12.5", 2, 1250),
        ("0.01", 2, 1),
        ("0.5", 2, 50),
        ("12", 0, 12),
        ("  25  ", 0, 25),
        ("007", 0, 7),
        ("+25", 0, 25),
        ("1,000", 0, 1000),
        ("1 000", 0, 1000),
        ("1\u00a0000", 0, 1000),
        ("1\u202f000", 0, 1000),
        ("1,234,567", 0, 1234567),
        ("1,234.56", 2, 123456),
        ("1 234 567.89", 2, 123456789),
        ("$25", 0, 25),
        ("$ 12.50", 2, 1250),
        ("€12.50", 2, 1250),
        ("12.50€", 2, 1250),
        ("12.50 €", 2, 1250),
        ("£3", 0, 3),
        ("１２", 0, 12),  # full-width digits, as some keyboards type them
        ("1000000000000", 0, MAX_AMOUNT),
        ("1,000,000,000,000", 0, MAX_AMOUNT),
        ("10000000000.00", 2, MAX_AMOUNT),
        ("1", 0, 1),
    ],
)
def test_parse_amount_accepts(text, decimals, expected):
    assert parse_amount(text, decimals) == expected


def test_parse_amount_guild_symbol():
    assert parse_amount("G25", 0, symbol="G") == 25
    assert parse_amount("25 G", 0, symbol="G") == 25
    with pytest.raises(InvalidInput):
        parse_amount("G25", 0)


@pytest.mark.parametrize(
    ("text", "decimals", "fragment"),
    [
        ("", 0, "Enter an amount"),
        ("   ", 2, "Enter an amount"),
        ("0", 0, "more than zero"),
        ("0.00", 2, "more than zero"),
        ("000", 0, "more than zero"),
        ("-5", 0, "more than zero"),
        ("-0.01", 2, "more than zero"),
        ("−5", 0, "more than zero"),  # U+2212 minus sign
        ("$-5", 0, "more than zero"),
        ("-$5", 2, "more than zero"),
        ("NaN", 0, "whole number"),
        ("nan", 2, "number"),
        ("inf", 0, "whole number"),
        ("Infinity", 2, "number"),
        ("1e99", 0, "exponents"),
        ("1E3", 2, "exponents"),
        ("1.5e2", 2, "exponents"),
        ("12.345", 2, "at most 2 decimals"),
        ("0.001", 2, "at most 2 decimals"),
        ("12.50", 0, "no decimals"),
        ("12.0", 0, "no decimals"),
        ("1000000000001", 0, "too large"),
        ("10000000000.01", 2, "too large"),
        ("99999999999999999999999999", 0, "too large"),
        ("9" * 60, 0, "too large"),
        ("1" * 5000, 0, "too long"),
        ("abc", 0, "whole number"),
        ("12abc", 2, "number"),
        ("12.", 2, "number"),
        (".5", 2, "number"),
        ("1,00", 0, "whole number"),
        ("1,0000", 0, "whole number"),
        ("1,000 000", 0, "whole number"),
        ("12,50", 2, "dot for decimals"),
        ("0x10", 0, "whole number"),
        ("1_000", 0, "whole number"),
        ("٣", 0, "whole number"),  # Arabic-Indic digit: int() would accept it
        ("5 5", 0, "whole number"),
        ("$", 0, "whole number"),
        ("12..5", 2, "number"),
    ],
)
def test_parse_amount_refuses(text, decimals, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_amount(text, decimals)
    message = str(info.value)
    assert fragment in message
    assert isinstance(info.value, UserError)
    # Fit to show a member: short, one sentence or two, no Python internals.
    assert len(message) < 160
    assert "Traceback" not in message and "invalid literal" not in message


def test_decimals_zero_message_mentions_whole_and_example():
    with pytest.raises(InvalidInput, match=r"whole number, like 25\."):
        parse_amount("12.50", 0)


def test_too_large_message_is_in_guild_units():
    with pytest.raises(InvalidInput, match=r"10,000,000,000\.00"):
        parse_amount("99999999999", 2)
    with pytest.raises(InvalidInput, match=r"1,000,000,000,000\."):
        parse_amount("1000000000001", 0)


def test_parse_amount_non_string_is_refused_politely():
    with pytest.raises(InvalidInput):
        parse_amount(None, 0)  # type: ignore[arg-type]


def test_parse_amount_bad_decimals_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_amount("1", 7)
    with pytest.raises(ValueError):
        parse_amount("1", True)  # type: ignore[arg-type]


def test_parse_amount_never_uses_float():
    # 0.29 * 100 == 28.999999999999996 in binary floating point.
    assert parse_amount("0.29", 2) == 29
    assert parse_amount("1.15", 2) == 115
    assert parse_amount("9999999999.99", 2) == 999999999999


@pytest.mark.parametrize("value", [1, 2, 500, MAX_AMOUNT])
def test_check_amount_accepts(value):
    assert check_amount(value) == value


@pytest.mark.parametrize("value", [0, -1, -(10**13), MAX_AMOUNT + 1, 10**30])
def test_check_amount_refuses_out_of_range(value):
    with pytest.raises(InvalidInput):
        check_amount(value)


@pytest.mark.parametrize("value", [True, False, 1.0, 12.5, "12", None, float("nan")])
def test_check_amount_refuses_non_int(value):
    with pytest.raises(InvalidInput):
        check_amount(value)


def test_check_amount_limit_message_uses_currency():
    with pytest.raises(InvalidInput, match=r"\$10,000,000,000\.00"):
        check_amount(MAX_AMOUNT + 1, currency=DOLLARS)
    with pytest.raises(InvalidInput, match=r"1,000,000,000,000"):
        check_amount(MAX_AMOUNT + 1)


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1250, DOLLARS, "$12.50"),
        (-1250, DOLLARS, "-$12.50"),
        (5, DOLLARS, "$0.05"),
        (0, DOLLARS, "$0.00"),
        (123456789, DOLLARS, "$1,234,567.89"),
        (1250, CREDITS, "1,250 credits"),
        (1, CREDITS, "1 credits"),
        (-7, CREDITS, "-7 credits"),
        (1250, GEMS_2, "12.50 gems"),
        (MAX_AMOUNT, CREDITS, "1,000,000,000,000 credits"),
        (1000, Currency(name="", symbol="", decimals=0), "1,000"),
        (999, Currency(name="x", symbol="€", decimals=0), "€999"),
    ],
)
def test_format_amount(minor, currency, expected):
    assert format_amount(minor, currency) == expected


@given(minor=st.integers(MIN_AMOUNT, MAX_AMOUNT), decimals=st.sampled_from([0, 2]))
def test_format_parse_round_trip_without_symbol(minor, decimals):
    text = format_amount(minor, Currency(name="", decimals=decimals))
    assert parse_amount(text, decimals) == minor


@given(minor=st.integers(MIN_AMOUNT, MAX_AMOUNT), decimals=st.sampled_from([0, 2]))
def test_format_parse_round_trip_with_symbol(minor, decimals):
    currency = Currency(name="dollars", symbol="$", decimals=decimals)
    assert parse_amount(format_amount(minor, currency), decimals) == minor


@given(whole=st.integers(0, 10**10 - 1), cents=st.integers(0, 99))
def test_parse_two_decimals_is_exact(whole, cents):
    minor = whole * 100 + cents
    text = f"{whole}.{cents:02d}"
    if minor == 0:
        with pytest.raises(InvalidInput):
            parse_amount(text, 2)
    else:
        assert parse_amount(text, 2) == minor


@given(st.text(max_size=30))
def test_parse_amount_only_ever_raises_invalid_input(text):
    try:
        value = parse_amount(text, 2)
    except InvalidInput:
        return
    assert isinstance(value, int) and not isinstance(value, bool)
    assert MIN_AMOUNT <= value <= MAX_AMOUNT


def test_validate_currency_accepts_and_cleans():
    assert validate_currency(" gems ", " $ ", 2) == ("gems", "$", 2)
    assert validate_currency(None, None, None) == (None, None, None)
    assert validate_currency("Münzen", "€", 0) == ("Münzen", "€", 0)
    assert validate_currency(None, "", None) == (None, "", None)  # clears the symbol
    assert validate_currency("x" * 20, "kr", None) == ("x" * 20, "kr", None)


@pytest.mark.parametrize(
    ("name", "symbol", "decimals", "fragment"),
    [
        ("", None, None, "1–20 characters"),
        ("   ", None, None, "1–20 characters"),
        ("x" * 21, None, None, "1–20 characters"),
        ("two\nlines", None, None, "line breaks"),
        ("@everyone", None, None, "can't contain"),
        ("`code`", None, None, "can't contain"),
        ("<@123>", None, None, "can't contain"),
        (None, "dollar", None, "at most 5"),
        (None, "1$", None, "digits"),
        (None, "a b", None, "spaces"),
        (None, "$\x07", None, "control characters"),
        (None, None, 1, "0 (whole credits"),
        (None, None, 3, "0 (whole credits"),
        (None, None, -2, "0 (whole credits"),
        (None, None, True, "0 (whole credits"),
    ],
)
def test_validate_currency_refuses(name, symbol, decimals, fragment):
    with pytest.raises(InvalidInput) as info:
        validate_currency(name, symbol, decimals)
    assert fragment in str(info.value)
