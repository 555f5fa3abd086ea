"""Cron rules of recurring grants: five fields, read in the guild's timezone.

A rule is checked before it is parsed: at most ``limits.CRON_RULE`` characters, and only what a
cron rule is made of (ASCII digits, names like ``mon`` or ``jan``, ``* , - / #``). So every
malformed rule, however long or strange, is a clear ``InvalidInput`` that quotes back only a
short, clipped piece of it, never a parser crash (Python refuses to read an int of more than
4,300 digits) and never the whole input.
"""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

from bot.ledger import limits
from bot.ledger.errors import InvalidInput
from bot.ledger.timeparse import from_unix, to_unix

CRON_HELP = (
    "Use five cron fields: minute hour day-of-month month day-of-week, "
    "e.g. `0 12 1 * *` for noon on the 1st of every month, or `0 9 * * mon` for Mondays at 9:00."
)
#: How much of a refused rule (or of one of its fields) a message quotes back.
ECHO = 40

# What one field may be made of, in ASCII only: Arabic-Indic, full-width or mathematical digits
# (which Python's int() and \d would read as digits) are refused, not silently reinterpreted.
_FIELD = re.compile(r"[0-9A-Za-z*,/#-]+", re.ASCII)


def _quote(text: str, limit: int = ECHO) -> str:
    """A piece of a rule fit to quote back between backticks: no backticks, unprintable characters
    shown as "\ufffd", at most ``limit`` characters (cut with "…")."""
    shown = "".join(c if c.isprintable() else "\ufffd" for c in text[: limit + 1]).replace("`", "'")
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


# Standard cron numbers weekdays from Sunday = 0 (7 is Sunday too); APScheduler 3 numbers them from
# Monday = 0. Numbers are turned into names, which both read the same way.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DAYS = re.compile(r"^(\d{1,3})(?:-(\d{1,3}))?(?:/(\d{1,3}))?$|^\*/(\d{1,3})$", re.ASCII)
_NEVER_A_DAY = re.compile(r"\d{4}|[^\x00-\x7f]")  # four digits, or anything but ASCII


def _not_a_day(part: str) -> InvalidInput:
    return InvalidInput(
        f"`{_quote(part, ECHO)}` is not a day of the week (0-7, Sunday = 0 or 7, or mon…sun). {CRON_HELP}"
    )


def _weekday_names(field: str) -> str:
    """`1-5` -> `mon,tue,wed,thu,fri`; `0,6` -> `sun,sat`; names and `*` pass through."""
    parts = []
    for part in field.split(","):
        if not part:
            raise _not_a_day(field)
        match = _NUMERIC_DAYS.match(part)
        if match is None:
            if part[0].isdigit() or _NEVER_A_DAY.search(part):  # no day is written like that
                raise _not_a_day(part)
            parts.append(part)  # a name (`mon`, `mon-fri`, `mon#2`) or `*`: APScheduler reads those
            continue
        if match.group(4) is not None:
            first, last, step = 0, 6, int(match.group(4))
        else:
            first = int(match.group(1))
            last = int(match.group(2)) if match.group(2) is not None else first
            step = int(match.group(3)) if match.group(3) is not None else 1
            if match.group(3) is not None and match.group(2) is None:
                last = 6
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise _not_a_day(part)
        parts.extend(_CRON_DAYS[day] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(parts))


def normalise_rule(rule: str) -> str:
    """The rule as stored and shown: its fields separated by single spaces. Refuses a rule that is
    too long or has anything but cron's own characters, before any parsing."""
    if len(rule.strip()) > limits.CRON_RULE:
        raise InvalidInput(f"A cron rule can be at most {limits.CRON_RULE} characters. {CRON_HELP}")
    text = " ".join(rule.split())
    if not text:
        raise InvalidInput(f"Enter a cron rule. {CRON_HELP}")
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidInput(f"`{_quote(text, ECHO)}` is not a cron rule: it has {len(fields)} fields. {CRON_HELP}")
    for field in fields:
        if _FIELD.fullmatch(field) is None:
            raise InvalidInput(
                f"`{_quote(field, ECHO)}` is not a cron field: use the digits 0-9, names like mon or jan, "
                f"and * , - /. {CRON_HELP}"
            )
    return text


def parse_rule(rule: str, timezone: str) -> CronTrigger:
    text = normalise_rule(rule)
    fields = text.split(" ")
    fields[4] = _weekday_names(fields[4].lower())
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as exc:  # APScheduler's own words quote the field: clip them too
        raise InvalidInput(
            f"`{_quote(text, ECHO)}` is not a valid cron rule ({_quote(str(exc), 2 * ECHO)}). {CRON_HELP}"
        ) from None


def next_run(rule: str, timezone: str, after: int) -> int:
    """The first due time strictly after `after` (Unix seconds)."""
    trigger = parse_rule(rule, timezone)
    fire = trigger.get_next_fire_time(None, from_unix(after + 1))
    if fire is None:
        raise InvalidInput(f"`{_quote(normalise_rule(rule), ECHO)}` never fires. {CRON_HELP}")
    return to_unix(fire)
