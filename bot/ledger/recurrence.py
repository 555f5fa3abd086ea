"""Cron rules of recurring grants: five fields, read in the guild's timezone."""

from __future__ import annotations

import re

from apscheduler.triggers.cron import CronTrigger

from bot.ledger.errors import InvalidInput
from bot.ledger.timeparse import from_unix, to_unix

CRON_HELP = (
    "Use five cron fields: minute hour day-of-month month day-of-week, "
    "e.g. `0 12 1 * *` for noon on the 1st of every month, or `0 9 * * mon` for Mondays at 9:00."
)


# Standard cron numbers weekdays from Sunday = 0 (7 is Sunday too); APScheduler 3 numbers them from
# Monday = 0. Numbers are turned into names, which both read the same way.
_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DAYS = re.compile(r"^(\d+)(?:-(\d+))?(?:/(\d+))?$|^\*/(\d+)$")


def _weekday_names(field: str) -> str:
    """`1-5` -> `mon,tue,wed,thu,fri`; `0,6` -> `sun,sat`; names and `*` pass through."""
    parts = []
    for part in field.split(","):
        match = _NUMERIC_DAYS.match(part)
        if match is None:
            parts.append(part)
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
            raise InvalidInput(f"`{part}` is not a day of the week (0-7, Sunday = 0 or 7, or mon…sun). {CRON_HELP}")
        parts.extend(_CRON_DAYS[day] for day in range(first, last + 1, step))
    return ",".join(dict.fromkeys(parts))


def parse_rule(rule: str, timezone: str) -> CronTrigger:
    text = " ".join(rule.split())
    fields = text.split(" ")
    if len(fields) != 5:
        raise InvalidInput(f"`{text[:60]}` is not a cron rule. {CRON_HELP}")
    fields[4] = _weekday_names(fields[4].lower())
    try:
        return CronTrigger.from_crontab(" ".join(fields), timezone=timezone)
    except ValueError as exc:
        raise InvalidInput(f"`{text[:60]}` is not a valid cron rule ({exc}). {CRON_HELP}") from None


def next_run(rule: str, timezone: str, after: int) -> int:
    """The first due time strictly after `after` (Unix seconds)."""
    trigger = parse_rule(rule, timezone)
    fire = trigger.get_next_fire_time(None, from_unix(after + 1))
    if fire is None:
        raise InvalidInput(f"`{rule}` never fires. {CRON_HELP}")
    return to_unix(fire)
