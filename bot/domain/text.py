"""Sentences the domain says, written once and shown by each front end in its own markup.

A template is a `str.format` string whose placeholders may name what their value is after the
colon. The domain never writes markup; a front end's `Markup` decides how each kind looks:

    {name:b}          a name that should stand out (an item, a code)   Discord: **name**
    {value:lit}       something to type back exactly (a kind, a format) Discord: `value`
                      (a list or tuple: each item so, joined with ", ")
    {at:R} {at:f} …   a unix time, in one of Discord's timestamp styles Discord: <t:at:R>
    {id:user} {id:role} {id:channel}   a mention                       Discord: <@id> <@&id> <#id>

Any other spec is formatted as `str.format` would ({count:,}, {name!r}).
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

TIME_STYLES = frozenset("tTdDfFR")
MENTIONS = frozenset({"user", "role", "channel"})


class Markup(Protocol):
    """How a front end shows the kinds of value a template names."""

    def strong(self, text: str) -> str: ...

    def literal(self, text: str) -> str: ...

    def time(self, unix: int, style: str) -> str: ...

    def mention(self, kind: str, target_id: int) -> str: ...


class PlainMarkup:
    """Plain text, for logs, the command line and tests: times in UTC, mentions by id."""

    def strong(self, text: str) -> str:
        return text

    def literal(self, text: str) -> str:
        return text

    def time(self, unix: int, style: str) -> str:
        when = datetime.fromtimestamp(unix, UTC)
        if style in ("d", "D"):
            return when.strftime("%Y-%m-%d")
        if style in ("t", "T"):
            return when.strftime("%H:%M UTC")
        return when.strftime("%Y-%m-%d %H:%M UTC")

    def mention(self, kind: str, target_id: int) -> str:
        return f"{kind} {target_id}"


PLAIN = PlainMarkup()


class _TemplateFormatter(string.Formatter):
    def __init__(self, markup: Markup) -> None:
        self.markup = markup

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "b":
            return self.markup.strong(str(value))
        if format_spec == "lit":
            if isinstance(value, (list, tuple)):  # several, each literal: `#1`, `#2`
                return ", ".join(self.markup.literal(str(v)) for v in value)
            return self.markup.literal(str(value))
        if format_spec in TIME_STYLES:
            return self.markup.time(int(value), format_spec)
        if format_spec in MENTIONS:
            return self.markup.mention(format_spec, int(value))
        return str(super().format_field(value, format_spec))


def render(template: str, params: Mapping[str, Any], markup: Markup = PLAIN) -> str:
    """The template with its parameters, in `markup`."""
    return _TemplateFormatter(markup).vformat(template, (), params)
