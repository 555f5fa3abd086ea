"""Cron rules of recurring grants: five fields, read in the guild's timezone.

A rule is checked before it is parsed: at most ``limits.CRON_RULE`` characters, and only what a
cron rule is made of (ASCII digits, names like ``mon`` or ``jan``, ``* , - / #``). So every
malformed rule, however long or strange, is a clear ``InvalidInput`` that quotes back only a
short, clipped piece of it, never a parser crash (Python refuses to read an int of more than
4,300 digits) and never the whole input.

A rule means what it means to standard (Vixie) cron, which APScheduler's ``CronTrigger`` does
not always follow, so `next_run` adds two rules of cron's on top of it:

- **Day of month and weekday.** When both day fields are restricted, a day matches when EITHER
  does: ``0 12 1 * 1`` is noon on the 1st and noon every Monday (APScheduler requires both, the
  1st falling on a Monday). A day field is restricted unless it starts with ``*``: like Vixie cron
  and cronie, ``*/2`` counts as unrestricted, so ``0 12 */2 * 1`` is noon on the odd days that are
  Mondays.
- **Clocks set back.** When a daylight-saving change repeats an hour, a rule with a fixed minute
  and hour (neither field starts with ``*``) runs at the first of the two times only: ``30 1 * *
  *`` in New York runs once on the night clocks go back, not twice. Rules with ``*`` in the
  minute or hour field run at every time that matches, as in cron. When an hour is skipped
  (clocks go forward), a time inside it runs once, an hour later by the clock (``30 2 * * *`` at
  03:30).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from bot.domain import limits
from bot.domain.errors import InvalidInput
from bot.domain.timeparse import from_unix, to_unix

CRON_HELP = (
    "Use five cron fields: minute hour day-of-month month day-of-week, "
    "e.g. {noon_on_the_1st:lit} for noon on the 1st of every month, or {mondays_at_9:lit} for Mondays at 9:00."
)
"""The sentence that ends every refused rule: a template fragment, with `CRON_HELP_PARAMS`."""
CRON_HELP_PARAMS = {"noon_on_the_1st": "0 12 1 * *", "mondays_at_9": "0 9 * * mon"}
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
        "cron_not_a_weekday",
        "{part:lit} is not a day of the week (0-7, Sunday = 0 or 7, or mon…sun). " + CRON_HELP,
        part=_quote(part, ECHO),
        **CRON_HELP_PARAMS,
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
        raise InvalidInput(
            "cron_rule_too_long",
            "A cron rule can be at most {longest} characters. " + CRON_HELP,
            longest=limits.CRON_RULE,
            **CRON_HELP_PARAMS,
        )
    text = " ".join(rule.split())
    if not text:
        raise InvalidInput("cron_rule_missing", "Enter a cron rule. " + CRON_HELP, **CRON_HELP_PARAMS)
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidInput(
            "cron_field_count",
            "{rule:lit} is not a cron rule: it has {count} fields. " + CRON_HELP,
            rule=_quote(text, ECHO),
            count=len(fields),
            **CRON_HELP_PARAMS,
        )
    for field in fields:
        if _FIELD.fullmatch(field) is None:
            raise InvalidInput(
                "cron_field_characters",
                "{field:lit} is not a cron field: use the digits 0-9, names like mon or jan, and * , - /. " + CRON_HELP,
                field=_quote(field, ECHO),
                **CRON_HELP_PARAMS,
            )
    return text


def _restricted(field: str) -> bool:
    """Vixie cron's test: a field is restricted unless it starts with ``*`` (``*/2`` is not)."""
    return not field.startswith("*")


def _trigger(text: str, fields: list[str], timezone: str) -> CronTrigger:
    fields = [*fields]
    fields[4] = _weekday_names(fields[4].lower())
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as exc:  # APScheduler's own words quote the field: clip them too
        raise InvalidInput(
            "cron_rule_invalid",
            "{rule:lit} is not a valid cron rule ({reason}). " + CRON_HELP,
            rule=_quote(text, ECHO),
            reason=_quote(str(exc), 2 * ECHO),
            **CRON_HELP_PARAMS,
        ) from None


def parse_rule(rule: str, timezone: str) -> list[CronTrigger]:
    """The APScheduler triggers whose union is the rule: one, or two when both day fields are
    restricted (the rule with weekday ``*`` and the rule with day of month ``*``)."""
    text = normalise_rule(rule)
    fields = text.split(" ")
    if _restricted(fields[2]) and _restricted(fields[4]):
        by_day = [*fields[:4], "*"]
        by_weekday = [*fields[:2], "*", *fields[3:]]
        return [_trigger(text, by_day, timezone), _trigger(text, by_weekday, timezone)]
    return [_trigger(text, fields, timezone)]


def _repeated(fire: datetime, zone: ZoneInfo) -> bool:
    """Whether ``fire`` is the second time its wall-clock time happens (an hour clocks went back)."""
    first = fire.replace(tzinfo=zone, fold=0)
    return first.astimezone(UTC) < fire.astimezone(UTC)


def next_run(rule: str, timezone: str, after: int) -> int:
    """The first due time strictly after `after` (Unix seconds), as standard cron reads the rule."""
    triggers = parse_rule(rule, timezone)
    fields = normalise_rule(rule).split(" ")
    fixed_time = _restricted(fields[0]) and _restricted(fields[1])
    zone = ZoneInfo(timezone)
    fires = []
    for trigger in triggers:
        fire = trigger.get_next_fire_time(None, from_unix(after + 1))
        while fire is not None and fixed_time and _repeated(fire, zone):
            # In UTC: wall-clock arithmetic would land on the first pass again (fold=0).
            fire = trigger.get_next_fire_time(None, fire.astimezone(UTC) + timedelta(seconds=1))
        if fire is not None:
            fires.append(to_unix(fire))
    if not fires:
        raise InvalidInput(
            "cron_never_fires",
            "{rule:lit} never fires. " + CRON_HELP,
            rule=_quote(normalise_rule(rule), ECHO),
            **CRON_HELP_PARAMS,
        )
    return min(fires)
