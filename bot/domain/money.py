"""Amounts of credit: parsing what people type, checking ranges, formatting for display.

Amounts are always ``int`` minor units (cents when a guild uses 2 decimals, whole credits
when it uses 0). No float is ever involved: input is parsed as text, digit by digit.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from bot.domain import limits
from bot.domain.csvsafe import starts_a_formula
from bot.domain.errors import InvalidInput

MAX_AMOUNT = 10**12
"""Largest amount one operation may move, in minor units."""

MIN_AMOUNT = 1
"""Smallest amount one operation may move, in minor units."""

ALLOWED_DECIMALS = (0, 2)
MAX_NAME_LENGTH = 20
MAX_SYMBOL_LENGTH = 5

# Characters that would ping, format or break a Discord message when shown next to amounts.
_FORBIDDEN_IN_NAMES = frozenset("@<>`\\*_~|#:")

_MAX_INPUT_LENGTH = limits.AMOUNT_INPUT
_MINUS_SIGNS = ("-", "\u2212", "\u2012", "\u2013", "\u2014")
# Either plain digits, or 1-3 digits then groups of exactly three separated by ONE kind of
# separator; then an optional dot and fraction digits. ASCII digits only.
_NUMBER = re.compile(
    r"(?P<int>\d+|\d{1,3}(?P<sep>[,\u0020\u00a0\u202f\u2009'])\d{3}(?:(?P=sep)\d{3})*)"
    r"(?:\.(?P<frac>\d+))?",
    re.ASCII,
)
_EXPONENT = re.compile(r"\d(?:\.\d*)?e[+-]?\d", re.ASCII | re.IGNORECASE)


@dataclass(frozen=True)
class Currency:
    """A guild's currency. ``decimals`` is 0 (whole credits) or 2 (cents-style)."""

    name: str = "credits"
    symbol: str = ""
    decimals: int = 0


def _example(decimals: int) -> str:
    return "25" if decimals == 0 else "12." + "5".ljust(decimals, "0")


def _max_display(decimals: int) -> str:
    return _format_number(MAX_AMOUNT, decimals)


def _check_decimals(decimals: int) -> None:
    if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
        raise ValueError(f"decimals must be an int in 0..6, got {decimals!r}")


def _strip_symbol(text: str, symbol: str) -> str:
    if symbol:
        if text.startswith(symbol):
            return text[len(symbol) :].strip()
        if text.endswith(symbol):
            return text[: -len(symbol)].strip()
    return text


def _digit_zero(c: str, value: int) -> int:
    """The code point of the zero of ``c``'s run of ten digits. Full-width digits (what CJK input
    methods type) are the same digits as ASCII, only wider: they count as ASCII's."""
    if unicodedata.decomposition(c).startswith("<wide>"):
        return ord("0")
    return ord(c) - value


def _fold(text: str, example: str) -> str:
    """``text`` with every decimal digit as its ASCII digit and everything else folded (NFKC, so
    ``＄`` is ``$``), or `InvalidInput` when a digit could be misread (SPEC §1).

    Read: the digits of ONE script, all of them: ASCII (or its full-width form), or the native
    digits of one script such as Arabic-Indic ``١٢٣`` or Devanagari ``१२३``. Refused: anything that
    only looks like or folds into a digit (superscripts ``10⁶``, subscripts, circled ``①``, ``⒈``,
    fractions, Roman or CJK numerals, the styled mathematical digits ``𝟏``) and a mix of scripts
    (``1٢``): NFKC would silently read ``10⁶`` as 106 and ``①②`` as 12.
    """
    out = []
    zero: int | None = None
    for c in text:
        value = unicodedata.decimal(c, None)
        if value is not None and not unicodedata.decomposition(c).startswith("<font>"):
            here = _digit_zero(c, value)
            if zero is not None and here != zero:
                raise InvalidInput(
                    "amount_mixed_scripts",
                    "That amount mixes digits of different scripts: type it with one kind, like {example}.",
                    example=example,
                )
            zero = here
            out.append(str(value))
            continue
        folded = unicodedata.normalize("NFKC", c)
        if value is not None or any(unicodedata.numeric(f, None) is not None for f in (c, *folded)):
            raise InvalidInput(
                "amount_special_digit",
                "Type the amount with plain digits, like {example}: {char:lit} isn't read as a digit "
                "(no superscript, circled or other special digits).",
                example=example,
                char=c,
            )
        out.append(folded)
    return "".join(out)


def _foreign_symbol(text: str, symbol: str, example: str) -> None:
    """Refuse a currency symbol that is not the guild's: ``€5`` is not $5 (SPEC §1)."""
    foreign = next((c for c in text if unicodedata.category(c) == "Sc" and c not in symbol), None)
    if foreign is None:
        return
    if symbol:
        raise InvalidInput(
            "amount_foreign_symbol",
            "{foreign:lit} is not this server's currency ({symbol}): type just the number, like {example}.",
            foreign=foreign,
            symbol=symbol,
            example=example,
        )
    raise InvalidInput(
        "amount_symbol_none_set",
        "{foreign:lit} is not this server's currency: type just the number, like {example}.",
        foreign=foreign,
        example=example,
    )


def parse_amount(text: str, decimals: int, *, symbol: str = "") -> int:
    """Parse what a person typed into minor units, or raise `InvalidInput` saying why.

    ``"12.50"`` with ``decimals=2`` is 1250; ``"12"`` is 1200; ``"12.5"`` is 1250.
    Thousands separators (``1,000``, ``1 000``) and the guild's own ``symbol`` once, before or
    after the number (``$25``, ``25$``), are accepted; any other currency symbol (``€5`` in a ``$``
    server, ``$5`` in a server without a symbol) is refused. A decimal point is always ``.``; a
    comma only ever groups thousands. Digits: see `_fold` (one script; no look-alikes).
    """
    _check_decimals(decimals)
    example = _example(decimals)
    if not isinstance(text, str):
        raise InvalidInput("amount_missing", "Enter an amount, like {example}.", example=example)
    if len(text) > _MAX_INPUT_LENGTH:  # before folding, which can lengthen a text
        raise InvalidInput(
            "amount_too_long",
            "That amount is too long. Enter a number, like {example}.",
            example=example,
        )
    s = _fold(text, example).strip()
    if not s:
        raise InvalidInput("amount_missing", "Enter an amount, like {example}.", example=example)
    if len(s) > _MAX_INPUT_LENGTH:
        raise InvalidInput(
            "amount_too_long",
            "That amount is too long. Enter a number, like {example}.",
            example=example,
        )
    if s.startswith(_MINUS_SIGNS):
        raise InvalidInput("amount_not_positive", "Amount must be more than zero.")
    sym = unicodedata.normalize("NFKC", symbol).strip()
    s = _strip_symbol(s, sym)
    if s.startswith(_MINUS_SIGNS):
        raise InvalidInput("amount_not_positive", "Amount must be more than zero.")
    _foreign_symbol(s, sym, example)
    if s.startswith("+"):
        s = s[1:].lstrip()
    if _EXPONENT.search(s):
        raise InvalidInput(
            "amount_exponent",
            "Write the amount out in full, like {example}: exponents such as 1e3 aren't accepted.",
            example=example,
        )
    m = _NUMBER.fullmatch(s)
    if m is None:
        if decimals and re.fullmatch(r"\d+,\d{1,2}", s, re.ASCII):
            raise InvalidInput(
                "amount_decimal_comma",
                "Use a dot for decimals, like {example}. Commas only group thousands (1,000).",
                example=example,
            )
        if decimals == 0:
            raise InvalidInput("amount_not_whole", "Amount must be a whole number, like {example}.", example=example)
        raise InvalidInput("amount_not_a_number", "Amount must be a number, like 25 or {example}.", example=example)

    whole = m.group("int")
    if m.group("sep"):
        whole = whole.replace(m.group("sep"), "")
    frac = m.group("frac")
    if frac is not None:
        if decimals == 0:
            raise InvalidInput(
                "amount_no_decimals",
                "This server's currency has no decimals: use a whole number, like {example}.",
                example=example,
            )
        if len(frac) > decimals:
            raise InvalidInput(
                "amount_too_many_decimals",
                "Amount can have at most {decimals} decimals, like {example}.",
                decimals=decimals,
                example=example,
            )
    frac = (frac or "").ljust(decimals, "0")

    whole = whole.lstrip("0") or "0"
    # Bound the digit count before int(): MAX_AMOUNT has 13 digits.
    if len(whole) + decimals > 16:
        raise InvalidInput(
            "amount_too_large",
            "That amount is too large: one operation can move at most {limit}.",
            limit=_max_display(decimals),
        )
    minor = int(whole + frac) if decimals else int(whole)
    if minor < MIN_AMOUNT:
        raise InvalidInput("amount_not_positive", "Amount must be more than zero.")
    if minor > MAX_AMOUNT:
        raise InvalidInput(
            "amount_too_large",
            "That amount is too large: one operation can move at most {limit}.",
            limit=_max_display(decimals),
        )
    return minor


def check_amount(minor: int, *, currency: Currency | None = None) -> int:
    """Return ``minor`` if it is an int in ``MIN_AMOUNT..MAX_AMOUNT``, else raise `InvalidInput`.

    ``currency`` (optional) only makes the message show the limit in the guild's format.
    """
    if isinstance(minor, bool) or not isinstance(minor, int):
        raise InvalidInput("amount_not_an_int", "Amount must be a whole number of credits, like 25.")
    if minor < MIN_AMOUNT:
        raise InvalidInput("amount_not_positive", "Amount must be more than zero.")
    if minor > MAX_AMOUNT:
        limit = format_amount(MAX_AMOUNT, currency) if currency is not None else _format_number(MAX_AMOUNT, 0)
        raise InvalidInput(
            "amount_too_large", "That amount is too large: one operation can move at most {limit}.", limit=limit
        )
    return minor


def _format_number(minor: int, decimals: int) -> str:
    whole, frac = divmod(abs(minor), 10**decimals)
    text = f"{whole:,}"
    if decimals:
        text += f".{frac:0{decimals}d}"
    return text


def format_amount(minor: int, currency: Currency) -> str:
    """``1250`` -> ``"12.50 credits"`` / ``"$12.50"`` / ``"-$12.50"`` / ``"1,250 credits"``.

    The name is used exactly as configured (no singular/plural guessing).
    """
    sign = "-" if minor < 0 else ""
    number = _format_number(minor, currency.decimals)
    if currency.symbol:
        return f"{sign}{currency.symbol}{number}"
    if currency.name:
        return f"{sign}{number} {currency.name}"
    return f"{sign}{number}"


def _check_display_text(value: str, what: str) -> None:
    if not value.isprintable():
        raise InvalidInput(
            "currency_text_unprintable",
            "The currency {what} can't contain line breaks or control characters.",
            what=what,
        )
    bad = sorted({c for c in value if c in _FORBIDDEN_IN_NAMES})
    if bad:
        raise InvalidInput(
            "currency_text_forbidden",
            "The currency {what} can't contain these characters: {chars}",
            what=what,
            chars=" ".join(bad),
        )


def validate_currency(
    name: str | None, symbol: str | None, decimals: int | None
) -> tuple[str | None, str | None, int | None]:
    """Check the parts of a currency a moderator is setting; ``None`` means "not changing".

    Returns the cleaned values (stripped; ``None`` stays ``None``). An empty symbol means
    "no symbol". Raises `InvalidInput` with a message for the moderator.
    """
    clean_name: str | None = None
    clean_symbol: str | None = None
    if name is not None:
        clean_name = unicodedata.normalize("NFC", name).strip()
        if not 1 <= len(clean_name) <= MAX_NAME_LENGTH:
            raise InvalidInput(
                "currency_name_length",
                "The currency name must be 1–{longest} characters, like credits.",
                longest=MAX_NAME_LENGTH,
            )
        _check_display_text(clean_name, "name")
    if symbol is not None:
        clean_symbol = unicodedata.normalize("NFC", symbol).strip()
        if starts_a_formula(clean_symbol):  # every amount shown in a CSV would start with it
            raise InvalidInput(
                "currency_symbol_formula",
                "The currency symbol can't start with = + - or @: spreadsheets would read amounts as formulas.",
            )
        if len(clean_symbol) > MAX_SYMBOL_LENGTH:
            raise InvalidInput(
                "currency_symbol_too_long",
                "The currency symbol can be at most {longest} characters, like $.",
                longest=MAX_SYMBOL_LENGTH,
            )
        _check_display_text(clean_symbol, "symbol")
        if any(c.isdigit() or c in ".,+-" or c.isspace() for c in clean_symbol):
            raise InvalidInput(
                "currency_symbol_characters", "The currency symbol can't contain digits, spaces, dots, commas or signs."
            )
    if decimals is not None and (
        isinstance(decimals, bool) or not isinstance(decimals, int) or decimals not in ALLOWED_DECIMALS
    ):
        raise InvalidInput("currency_decimals", "Decimals must be 0 (whole credits, like 25) or 2 (like 12.50).")
    return clean_name, clean_symbol, decimals
