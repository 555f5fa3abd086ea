"""Durations, dates and timezones as people type them; unix time.

Every datetime going in must be timezone-aware, and every datetime coming out is
timezone-aware UTC, truncated to whole seconds where it comes from user input.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from bot.domain import limits
from bot.domain.errors import InvalidInput

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_DURATION = timedelta(days=365 * 100)
"""Longest duration `parse_duration` accepts (100 years of 365 days)."""

MIN_LEAD_TIME = 60
MAX_LEAD_TIME = 365 * 86400
MAX_LEAD_TIMES = 10

DURATION_FORMS = "30d, 12h, 2w, 90m or 1y (combinations like 1d12h work too)"
WHEN_FORMS = (
    "a duration like 30d, a date like 2026-12-31, "
    "or a date and time like 2026-12-31T18:00 (add Z or +02:00 for a UTC offset)"
)

_UNIT_SECONDS: dict[str, int] = {}
for _names, _seconds in (
    (("s", "sec", "secs", "second", "seconds"), 1),
    (("m", "min", "mins", "minute", "minutes"), 60),
    (("h", "hr", "hrs", "hour", "hours"), 3600),
    (("d", "day", "days"), 86400),
    (("w", "wk", "wks", "week", "weeks"), 7 * 86400),
    (("y", "yr", "yrs", "year", "years"), 365 * 86400),
):
    for _name in _names:
        _UNIT_SECONDS[_name] = _seconds
_MONTH_WORDS = frozenset({"mo", "mos", "mon", "mons", "month", "months"})

_DURATION_SHAPE = re.compile(r"(?:\s*\d+\s*[a-z]+)+\s*", re.ASCII)
_DURATION_PART = re.compile(r"(\d+)\s*([a-z]+)", re.ASCII)
_SIGNED_DURATION = re.compile(r"[+\-\u2212]\s*\d+\s*[a-z]", re.ASCII)
_MAX_INPUT_LENGTH = limits.WHEN_INPUT
_MAX_NUMBER_DIGITS = 12

# Units for format_duration, largest first. Weeks are used from 2 weeks up (so 7 days
# stays "7d", as people write it, while 14 days is "2w").
_WEEK = 7 * 86400
_FORMAT_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def _echo(text: str, limit: int = 40) -> str:
    """A piece of user input safe to quote back in a message."""
    cleaned = "".join(c for c in text if c.isprintable() and c not in "`@<>*_~|\\")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def _require_aware(value: datetime, what: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be a timezone-aware datetime, got {value!r}")


def _to_utc_seconds(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(microsecond=0)


# --- durations -------------------------------------------------------------------------


def _duration_seconds(text: str) -> int:
    s = text.strip().lower()
    if not s:
        raise InvalidInput("duration_missing", "Enter a duration, like {forms}.", forms=DURATION_FORMS)
    if len(s) > _MAX_INPUT_LENGTH:
        raise InvalidInput(
            "duration_input_too_long",
            "That duration is too long to read. Use {forms}.",
            forms=DURATION_FORMS,
        )
    if s.startswith(("-", "\u2212")):
        raise InvalidInput("duration_negative", "A duration can't be negative. Use {forms}.", forms=DURATION_FORMS)
    if s.startswith("+"):
        s = s[1:]
    if s.isascii() and s.isdigit():
        raise InvalidInput(
            "duration_no_unit", "Add a unit to {number}, like {number}d for days or {number}h for hours.", number=s
        )
    if _DURATION_SHAPE.fullmatch(s) is None:
        raise InvalidInput(
            "duration_unreadable",
            "I couldn't read '{text}' as a duration. Use {forms}.",
            text=_echo(text.strip()),
            forms=DURATION_FORMS,
        )
    total = 0
    for number, unit in _DURATION_PART.findall(s):
        if unit in _MONTH_WORDS:
            raise InvalidInput("duration_months", "Months vary in length: use days or weeks instead, like 30d or 4w.")
        if unit not in _UNIT_SECONDS:
            raise InvalidInput(
                "duration_unknown_unit",
                "Unknown time unit '{unit}'. Use {forms}.",
                unit=_echo(unit, 12),
                forms=DURATION_FORMS,
            )
        digits = number.lstrip("0") or "0"
        if len(digits) > _MAX_NUMBER_DIGITS:
            raise InvalidInput("duration_too_long", "That duration is too long: the most is 100 years.")
        total += int(digits) * _UNIT_SECONDS[unit]
    if total <= 0:
        raise InvalidInput(
            "duration_not_positive",
            "A duration must be longer than zero. Use {forms}.",
            forms=DURATION_FORMS,
        )
    if total > MAX_DURATION.days * 86400:
        raise InvalidInput("duration_too_long", "That duration is too long: the most is 100 years.")
    return total


def parse_duration(text: str) -> timedelta:
    """``"30d"``, ``"12h"``, ``"2w"``, ``"90m"``, ``"1y"`` (365 days), ``"1d12h"``, ``"1d 12h"``.

    Case-insensitive; long unit names (``"2 weeks"``) and seconds (``"90s"``) also work.
    Months are refused (their length varies). Refuses zero, negatives and > 100 years.
    """
    return timedelta(seconds=_duration_seconds(text))


# --- timezones and dates ---------------------------------------------------------------


_NOT_ZONES = frozenset({"factory", "localtime", "posixrules"})


def _is_real_zone_name(name: str) -> bool:
    low = name.lower()
    return low not in _NOT_ZONES and not low.startswith(("posix/", "right/"))


@lru_cache(maxsize=1)
def _zone_names() -> dict[str, str]:
    return {n.lower(): n for n in available_timezones() if _is_real_zone_name(n)}


_ZONE_SHAPE = re.compile(r"[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*", re.ASCII)


def _zone_loads(key: str) -> bool:
    try:
        ZoneInfo(key)
    except Exception:  # any failure (not found, a directory, bad key) means "unknown"
        return False
    return True


def validate_timezone(name: str) -> str:
    """Return the properly spelt IANA name (case-insensitive match), or raise `InvalidInput`."""
    s = name.strip() if isinstance(name, str) else ""
    found = _zone_names().get(s.lower())
    if found is not None:
        return found
    # A zone the installed database has but available_timezones() did not list.
    if s and len(s) <= 64 and _ZONE_SHAPE.fullmatch(s) and _is_real_zone_name(s) and _zone_loads(s):
        return s
    raise InvalidInput(
        "timezone_unknown",
        "Unknown timezone '{zone}'. Use an IANA name like Europe/Berlin.",
        zone=_echo(s),
    )


def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(validate_timezone(tz))


def end_of_day(d: date, tz: str) -> datetime:
    """23:59:59 local time on ``d`` in the IANA zone ``tz``, as a UTC datetime."""
    day = date(d.year, d.month, d.day)  # a datetime passed in counts as its date
    local = datetime.combine(day, time(23, 59, 59), tzinfo=_zone(tz))
    return local.astimezone(UTC)


def start_of_day(d: date, tz: str) -> datetime:
    """00:00:00 local time on ``d`` in the IANA zone ``tz``, as a UTC datetime."""
    local = datetime.combine(date(d.year, d.month, d.day), time(0, 0, 0), tzinfo=_zone(tz))
    return local.astimezone(UTC)


def parse_when(text: str, now: datetime, tz: str = "UTC", *, day_start: bool = False) -> datetime:
    """Read a point in time; UTC-aware, whole seconds. Does not judge past or future.

    ``day_start=True`` reads a bare date as the START of that day (for "usable from" dates); by
    default a date means its end, as SPEC §1 says of expiry dates.

    - a duration from ``now``: ``"30d"``, ``"1d12h"``;
    - ``"today"`` / ``"tomorrow"``: the end of that day in ``tz``;
    - a date ``"2026-12-31"`` (also ``20261231``): the end of that day (23:59:59) in ``tz``;
    - an ISO-8601 datetime: ``"2026-12-31T18:00Z"``, ``"2026-12-31 18:00+02:00"``; without an
      offset it is read in ``tz``. A local time skipped by a DST change is read with the
      offset before the change (02:30 on a spring-forward night becomes 03:30); a repeated
      one means its first occurrence.
    """
    _require_aware(now, "now")
    zone = _zone(tz)
    s = text.strip() if isinstance(text, str) else ""
    if not s:
        raise InvalidInput("when_missing", "Enter a date or duration: {forms}.", forms=WHEN_FORMS)
    if len(s) > _MAX_INPUT_LENGTH:
        raise InvalidInput("when_input_too_long", "That date is too long to read. Use {forms}.", forms=WHEN_FORMS)
    low = s.lower()
    try:
        if low in ("today", "tomorrow"):
            local_today = now.astimezone(zone).date()
            day = local_today + timedelta(days=1 if low == "tomorrow" else 0)
            return start_of_day(day, tz) if day_start else end_of_day(day, tz)
        if (
            _DURATION_SHAPE.fullmatch(low)
            or _SIGNED_DURATION.match(low)
            or (low.isascii() and low.isdigit() and len(low) < 8)
        ):
            return _to_utc_seconds(now + timedelta(seconds=_duration_seconds(s)))
        try:
            day = date.fromisoformat(s)
        except ValueError:
            pass
        else:
            return start_of_day(day, tz) if day_start else end_of_day(day, tz)
        try:
            parsed = datetime.fromisoformat(s.upper())
        except ValueError:
            raise InvalidInput(
                "when_unreadable", "I couldn't read '{text}' as a date. Use {forms}.", text=_echo(s), forms=WHEN_FORMS
            ) from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=zone)
        return _to_utc_seconds(parsed)
    except OverflowError:
        raise InvalidInput("when_out_of_range", "That date is out of range.") from None


def parse_future(text: str, now: datetime, tz: str = "UTC", what: str = "expiry") -> datetime:
    """Like `parse_when`, but refuses a time at or before ``now``."""
    when = parse_when(text, now, tz)
    if when <= now:
        raise InvalidInput(
            "when_in_past",
            "That {what} is in the past: {when:f}. Give a future date or a duration like 30d.",
            what=what,
            when=to_unix(when),
        )
    return when


# --- reminder lead times ---------------------------------------------------------------


def parse_lead_times(text: str) -> tuple[int, ...]:
    """``"7d,1d"`` -> ``(604800, 86400)``: seconds, unique, largest first.

    Each at least 1 minute and at most 365 days; at most 10 of them; at least one.
    """
    s = text.strip() if isinstance(text, str) else ""
    parts = [p.strip() for p in s.split(",")]
    parts = [p for p in parts if p]
    if not parts:
        raise InvalidInput("lead_times_missing", "Give at least one lead time, like 7d,1d.")
    if len(parts) > 4 * MAX_LEAD_TIMES:
        raise InvalidInput("lead_times_too_many", "At most {most} lead times, like 7d,1d.", most=MAX_LEAD_TIMES)
    seconds: set[int] = set()
    for part in parts:
        try:
            value = _duration_seconds(part)
        except InvalidInput as exc:
            # The duration's own sentence after the lead time it is about; `reason` is its code. (A
            # duration's parameters are never called `lead` or `reason`.)
            raise InvalidInput(
                "lead_time_invalid",
                "Lead time '{lead}': " + exc.template,
                **exc.params,
                lead=_echo(part, 20),
                reason=exc.code,
            ) from None
        if value < MIN_LEAD_TIME:
            raise InvalidInput(
                "lead_time_too_short",
                "Lead time '{lead}' is too short: each must be at least 1 minute.",
                lead=_echo(part, 20),
            )
        if value > MAX_LEAD_TIME:
            raise InvalidInput(
                "lead_time_too_long",
                "Lead time '{lead}' is too long: each must be at most 365 days.",
                lead=_echo(part, 20),
            )
        seconds.add(value)
    if len(seconds) > MAX_LEAD_TIMES:
        raise InvalidInput("lead_times_too_many", "At most {most} lead times, like 7d,1d.", most=MAX_LEAD_TIMES)
    return tuple(sorted(seconds, reverse=True))


def format_duration(seconds: int) -> str:
    """Seconds in the largest exact unit: 86400 -> ``"1d"``, 5400 -> ``"90m"``, 1209600 -> ``"2w"``.

    7 days is ``"7d"`` (weeks only from 2 weeks up). Always parses back with `parse_duration`.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds <= 0:
        raise ValueError(f"seconds must be a positive int, got {seconds!r}")
    if seconds % _WEEK == 0 and seconds >= 2 * _WEEK:
        return f"{seconds // _WEEK}w"
    for unit, size in _FORMAT_UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every int is a multiple of 1")  # pragma: no cover


def format_lead_times(seconds: tuple[int, ...]) -> str:
    """``(604800, 86400)`` -> ``"7d,1d"``; order kept as given. Parses back with `parse_lead_times`."""
    return ",".join(format_duration(s) for s in seconds)


# --- unix time ---------------------------------------------------------------------------


def to_unix(when: datetime) -> int:
    """Whole seconds since the epoch (floored), without going through float."""
    _require_aware(when, "when")
    return (when - EPOCH) // timedelta(seconds=1)


def from_unix(ts: int) -> datetime:
    """A UTC-aware datetime for a unix timestamp in seconds."""
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ValueError(f"ts must be an int, got {ts!r}")
    return EPOCH + timedelta(seconds=ts)
