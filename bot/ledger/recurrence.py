"""Cron rules of recurring grants: five fields, read in the guild's timezone."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger

from bot.ledger.errors import InvalidInput
from bot.ledger.timeparse import from_unix, to_unix

CRON_HELP = (
    "Use five cron fields: minute hour day-of-month month day-of-week, "
    "e.g. `0 12 1 * *` for noon on the 1st of every month, or `0 9 * * mon` for Mondays at 9:00."
)


def parse_rule(rule: str, timezone: str) -> CronTrigger:
    text = " ".join(rule.split())
    if len(text.split(" ")) != 5:
        raise InvalidInput(f"`{text[:60]}` is not a cron rule. {CRON_HELP}")
    try:
        return CronTrigger.from_crontab(text, timezone=timezone)
    except ValueError as exc:
        raise InvalidInput(f"`{text[:60]}` is not a valid cron rule ({exc}). {CRON_HELP}") from None


def next_run(rule: str, timezone: str, after: int) -> int:
    """The first due time strictly after `after` (Unix seconds)."""
    trigger = parse_rule(rule, timezone)
    fire = trigger.get_next_fire_time(None, from_unix(after + 1))
    if fire is None:
        raise InvalidInput(f"`{rule}` never fires. {CRON_HELP}")
    return to_unix(fire)
