"""The domain's sentences: templates whose placeholders say what their value is, rendered in plain
text here (bot/domain/text.py) and by each front end in its own markup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.domain.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, UserError
from bot.domain.text import MENTIONS, PLAIN, TIME_STYLES, render

AT = int(datetime(2026, 12, 31, 18, 5, 9, tzinfo=UTC).timestamp())


class Recording:
    """A Markup that shows which of its methods a template called, with what."""

    def strong(self, text: str) -> str:
        return f"strong({text})"

    def literal(self, text: str) -> str:
        return f"literal({text})"

    def time(self, unix: int, style: str) -> str:
        return f"time({unix},{style})"

    def mention(self, kind: str, target_id: int) -> str:
        return f"mention({kind},{target_id})"


@pytest.mark.parametrize(
    ("template", "params", "plain"),
    [
        ("{item:b} is sold out.", {"item": "Rare"}, "Rare is sold out."),
        ("Kind must be {promo:lit} or {gift:lit}.", {"promo": "promo", "gift": "gift"}, "Kind must be promo or gift."),
        ("At {at:t}.", {"at": AT}, "At 18:05 UTC."),
        ("At {at:T}.", {"at": AT}, "At 18:05 UTC."),
        ("On {at:d}.", {"at": AT}, "On 2026-12-31."),
        ("On {at:D}.", {"at": AT}, "On 2026-12-31."),
        ("Until {at:f}.", {"at": AT}, "Until 2026-12-31 18:05 UTC."),
        ("Until {at:F}.", {"at": AT}, "Until 2026-12-31 18:05 UTC."),
        ("Try again {at:R}.", {"at": AT}, "Try again 2026-12-31 18:05 UTC."),
        ("Ask {who:user}.", {"who": 42}, "Ask user 42."),
        ("Members of {r:role}.", {"r": 777}, "Members of role 777."),
        ("Posted in {c:channel}.", {"c": 9}, "Posted in channel 9."),
        ("No markup at all.", {}, "No markup at all."),
    ],
)
def test_plain_rendering_of_each_kind_of_value(template: str, params: dict, plain: str):
    assert render(template, params) == plain
    assert render(template, params, PLAIN) == plain


def test_each_spec_asks_the_markup_for_its_kind():
    template = "{a:b} {b:lit} {c:R} {d:f} {e:user} {f:role} {g:channel}"
    params = {"a": "x", "b": "y", "c": AT, "d": str(AT), "e": 1, "f": "2", "g": 3}
    assert render(template, params, Recording()) == (
        f"strong(x) literal(y) time({AT},R) time({AT},f) mention(user,1) mention(role,2) mention(channel,3)"
    )
    assert set("tTdDfFR") == TIME_STYLES
    assert {"user", "role", "channel"} == MENTIONS


def test_a_time_or_a_mention_is_an_int_and_a_strong_or_literal_text_is_shown_as_str():
    assert render("{n:b} {n:lit}", {"n": 5}, Recording()) == "strong(5) literal(5)"
    with pytest.raises(ValueError, match="invalid literal for int"):
        render("{at:R}", {"at": "soon"})


def test_doubled_braces_are_literal_braces():
    assert render("Write {{name}} as {name:lit}.", {"name": "x"}) == "Write {name} as x."
    assert render("{{}} and {{{n}}}", {"n": 1}, Recording()) == "{} and {1}"


def test_a_value_is_never_read_as_a_template():
    """Braces and markup a member typed stay as they are: a parameter is a value, not a template."""
    assert render("{text} and {text:b}", {"text": "{x} **y** <t:1:R>"}) == "{x} **y** <t:1:R> and {x} **y** <t:1:R>"


@pytest.mark.parametrize(
    ("template", "params", "shown"),
    [
        ("{count:,} credits", {"count": 1234567}, "1,234,567 credits"),
        ("#{n:03d}", {"n": 7}, "#007"),
        ("[{name:>6}]", {"name": "ab"}, "[    ab]"),
        ("{name!r}", {"name": "ab"}, "'ab'"),
        ("{share:.1%}", {"share": 0.25}, "25.0%"),
        ("{items[0]} {lot.id}", {"items": ["first"], "lot": type("L", (), {"id": 3})()}, "first 3"),
    ],
)
def test_any_other_spec_is_str_format(template: str, params: dict, shown: str):
    assert render(template, params) == shown
    assert render(template, params, Recording()) == shown


def test_a_template_naming_a_missing_parameter_fails_loudly():
    with pytest.raises(KeyError):
        render("{item:b} is sold out.", {})


def test_an_error_is_its_plain_sentence_and_keeps_code_template_and_params():
    exc = Conflict("item_sold_out", "{item:b} is sold out.", item="Rare")
    assert str(exc) == "Rare is sold out."
    assert (exc.code, exc.template, exc.params) == ("item_sold_out", "{item:b} is sold out.", {"item": "Rare"})
    assert exc.render(Recording()) == "strong(Rare) is sold out."
    assert isinstance(exc, UserError)


def test_rate_limited_names_its_time():
    until = datetime(2026, 12, 31, 18, 5, 9, tzinfo=UTC)
    exc = RateLimited(until)
    assert (exc.code, exc.params, exc.until) == ("rate_limited", {"until": AT}, until)
    assert str(exc) == "Too many wrong codes. You can try again 2026-12-31 18:05 UTC."


@pytest.mark.parametrize("cls", [InvalidInput, NotFound, Forbidden, Conflict])
def test_a_refusal_without_its_code_is_a_type_error(cls: type[UserError]):
    """Every refusal names its code and its template: a finished sentence alone is refused."""
    with pytest.raises(TypeError, match="template"):
        cls("Lot 1 is gone.")  # type: ignore[call-arg]
