"""Amounts: parsing what people type, range checks, display, currency settings."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import InvalidInput, UserError
from bot.domain.money import (
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
        ("１２", 0, 12),  # full-width digits, as some keyboards type them
        ("1000000000000", 0, MAX_AMOUNT),
        ("1,000,000,000,000", 0, MAX_AMOUNT),
        ("10000000000.00", 2, MAX_AMOUNT),
        ("1", 0, 1),
    ],
)
def test_parse_amount_accepts(text, decimals, expected):
    assert parse_amount(text, decimals) == expected


# Issue 8 item 7 (SPEC §1): an amount is read only when its reading is unambiguous. NFKC used to
# read 10⁶ as 106, 2¹⁰ as 210, ①② as 12, and any of $ € £ … as the guild's own symbol.
# Digits are read when all of them are of ONE script: ASCII (or its full-width form, what CJK input
# methods type: the same digits, only wider) or the native digits of one script (Arabic-Indic,
# Persian, Devanagari …), with the guild's separators (`.` for decimals, `,` or a space for
# thousands). Everything else that looks like, or folds into, a digit is refused.
NO_SYMBOL = Currency()
DOLLAR_2 = Currency(name="dollars", symbol="$", decimals=2)
DOLLAR_0 = Currency(name="dollars", symbol="$", decimals=0)
EURO_2 = Currency(name="euros", symbol="€", decimals=2)
SPECIAL = "isn't read as a digit"
MIXED = "mixes digits of different scripts"
FOREIGN = "is not this server's currency"


@pytest.mark.parametrize(
    ("text", "currency", "expected"),
    [
        # the reports of issue 8
        ("10⁶", NO_SYMBOL, SPECIAL),
        ("2¹⁰", NO_SYMBOL, SPECIAL),
        ("①②", NO_SYMBOL, SPECIAL),
        ("€5", DOLLAR_2, FOREIGN),
        # plain ASCII and the guild's own symbol, before or after
        ("25", NO_SYMBOL, 25),
        ("$25", DOLLAR_0, 25),
        ("$ 12.50", DOLLAR_2, 1250),
        ("12.50$", DOLLAR_2, 1250),
        ("12.50 $", DOLLAR_2, 1250),
        ("＄12.50", DOLLAR_2, 1250),  # the full-width dollar is the dollar
        ("€12.50", EURO_2, 1250),
        ("12.50 €", EURO_2, 1250),
        ("12.50", EURO_2, 1250),
        # another currency's symbol, or a symbol where the guild has none
        ("5€", DOLLAR_2, FOREIGN),
        ("£3", DOLLAR_0, FOREIGN),
        ("$5", EURO_2, FOREIGN),
        ("¥500", DOLLAR_0, FOREIGN),
        ("₹5", DOLLAR_0, FOREIGN),
        ("¤5", DOLLAR_0, FOREIGN),
        ("$€5", DOLLAR_2, FOREIGN),
        ("$25", NO_SYMBOL, FOREIGN),
        ("25 €", NO_SYMBOL, FOREIGN),
        ("$-5", DOLLAR_0, "more than zero"),
        ("-$5", DOLLAR_2, "more than zero"),
        ("$", DOLLAR_0, "whole number"),
        ("$$5", DOLLAR_0, "whole number"),
        # superscripts, subscripts, circled and other look-alike digits
        ("1⁰", NO_SYMBOL, SPECIAL),
        ("²", NO_SYMBOL, SPECIAL),
        ("₅", NO_SYMBOL, SPECIAL),
        ("1₀", NO_SYMBOL, SPECIAL),
        ("㉑", NO_SYMBOL, SPECIAL),  # circled 21
        ("⒈5", DOLLAR_2, SPECIAL),  # "digit one full stop": NFKC makes it "1."
        ("⑴", NO_SYMBOL, SPECIAL),
        ("🄂", NO_SYMBOL, SPECIAL),  # "digit one comma"
        ("½", DOLLAR_2, SPECIAL),
        ("1½", DOLLAR_2, SPECIAL),
        ("Ⅻ", NO_SYMBOL, SPECIAL),  # Roman numeral twelve
        ("五", NO_SYMBOL, SPECIAL),  # CJK numeral five
        ("㏠", NO_SYMBOL, SPECIAL),  # "telegraph symbol for day one": NFKC makes it "1日"
        ("𝟏𝟎", NO_SYMBOL, SPECIAL),  # mathematical bold digits: styled look-alikes
        ("𝟙", NO_SYMBOL, SPECIAL),  # double-struck
        ("🯱", NO_SYMBOL, SPECIAL),  # segmented digit
        # full-width digits: the ASCII digits, wider; accepted with the guild's separators
        ("１２", NO_SYMBOL, 12),
        ("１,０００", NO_SYMBOL, 1000),
        ("１，０００", NO_SYMBOL, 1000),  # full-width comma
        ("１２．５０", DOLLAR_2, 1250),  # full-width full stop
        ("＄１２.５０", DOLLAR_2, 1250),
        ("1２", NO_SYMBOL, 12),  # full-width and ASCII are one script
        # the native digits of ONE script
        ("٣", NO_SYMBOL, 3),  # Arabic-Indic
        ("١٢٣", NO_SYMBOL, 123),
        ("١٬٠٠٠", NO_SYMBOL, "whole number"),  # the Arabic thousands separator is not the guild's
        ("١,٠٠٠", NO_SYMBOL, 1000),
        ("١٢.٥٠", DOLLAR_2, 1250),
        ("$١٢.٥٠", DOLLAR_2, 1250),
        ("١٢٫٥٠", DOLLAR_2, "number"),  # nor is the Arabic decimal separator
        ("۱۲۳", NO_SYMBOL, 123),  # Persian (extended Arabic-Indic)
        ("१२३", NO_SYMBOL, 123),  # Devanagari
        ("๑๒", NO_SYMBOL, 12),  # Thai
        ("٠", NO_SYMBOL, "more than zero"),
        ("١٠٠٠٠٠٠٠٠٠٠٠١", NO_SYMBOL, "too large"),
        # ... never mixed
        ("1٢", NO_SYMBOL, MIXED),
        ("١2", NO_SYMBOL, MIXED),
        ("١۲", NO_SYMBOL, MIXED),  # Arabic-Indic and Persian two
        ("１٢", NO_SYMBOL, MIXED),
        ("1,٠٠٠", NO_SYMBOL, MIXED),
        ("१2.50", DOLLAR_2, MIXED),
    ],
)
def test_amount_reading_table(text, currency, expected):
    if isinstance(expected, int):
        assert parse_amount(text, currency.decimals, symbol=currency.symbol) == expected
        return
    with pytest.raises(InvalidInput) as info:
        parse_amount(text, currency.decimals, symbol=currency.symbol)
    message = str(info.value)
    assert expected in message, message
    assert len(message) < 160, message
    if expected == FOREIGN:  # names the symbol it refuses, and the guild's own
        assert currency.symbol in message


@given(st.text(max_size=12))
def test_what_is_read_is_what_plain_digits_say(text):
    """Whatever text is accepted, its amount is the one its digits spell in the one script they
    share: no digit is ever dropped, added or reinterpreted."""
    try:
        value = parse_amount(text, 0)
    except InvalidInput:
        return
    digits = "".join(str(unicodedata.decimal(c)) for c in text if unicodedata.decimal(c, None) is not None)
    assert value == int(digits)


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
        ("5 5", 0, "whole number"),
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
    assert "Traceback" not in message
    assert "invalid literal" not in message


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
    with pytest.raises(ValueError, match=r"decimals must be an int in 0\.\.6"):
        parse_amount("1", 7)
    with pytest.raises(ValueError, match=r"decimals must be an int in 0\.\.6"):
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
    for symbol in ("$", "€", "kr", "💎", "R$"):
        currency = Currency(name="dollars", symbol=symbol, decimals=decimals)
        assert parse_amount(format_amount(minor, currency), decimals, symbol=symbol) == minor


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
    assert isinstance(value, int)
    assert not isinstance(value, bool)
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
