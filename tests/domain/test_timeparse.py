"""Durations, dates in a guild's timezone, lead times, unix time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.domain.errors import InvalidInput
from bot.domain.timeparse import (
    end_of_day,
    format_duration,
    format_lead_times,
    from_unix,
    parse_duration,
    parse_future,
    parse_lead_times,
    parse_when,
    to_unix,
    validate_timezone,
)

NOW = datetime(2026, 6, 15, 12, 0, 0, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- parse_duration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30d", timedelta(days=30)),
        ("12h", timedelta(hours=12)),
        ("2w", timedelta(weeks=2)),
        ("90m", timedelta(minutes=90)),
        ("1y", timedelta(days=365)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("1d 12h", timedelta(days=1, hours=12)),
        (" 1D12H ", timedelta(days=1, hours=12)),
        ("30 D", timedelta(days=30)),
        ("2 weeks", timedelta(weeks=2)),
        ("1 day 6 hours", timedelta(days=1, hours=6)),
        ("45s", timedelta(seconds=45)),
        ("1w1d1h1m", timedelta(days=8, hours=1, minutes=1)),
        ("+3d", timedelta(days=3)),
        ("100y", timedelta(days=36500)),
        ("0d5h", timedelta(hours=5)),
    ],
)
def test_parse_duration_accepts(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Enter a duration"),
        ("   ", "Enter a duration"),
        ("0d", "longer than zero"),
        ("0h0m", "longer than zero"),
        ("-5d", "negative"),
        ("−5d", "negative"),
        ("30", "Add a unit"),
        ("abc", "couldn't read"),
        ("d30", "couldn't read"),
        ("1.5d", "couldn't read"),
        ("30x", "Unknown time unit"),
        ("3mo", "Months vary"),
        ("2 months", "Months vary"),
        ("101y", "too long"),
        ("36501d", "too long"),
        ("99999999999999999999d", "too long"),
        ("1d" * 60, "too long"),
        ("١d", "couldn't read"),  # non-ASCII digit
    ],
)
def test_parse_duration_refuses(text, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_duration(text)
    assert fragment in str(info.value)


def test_duration_messages_list_the_accepted_forms():
    with pytest.raises(InvalidInput) as info:
        parse_duration("soon")
    message = str(info.value)
    for form in ("30d", "12h", "2w", "90m", "1y"):
        assert form in message


# --- end_of_day and timezones -----------------------------------------------------------


def test_end_of_day_new_york_winter():
    assert end_of_day(date(2026, 12, 31), "America/New_York") == utc(2027, 1, 1, 4, 59, 59)


def test_end_of_day_new_york_summer_uses_daylight_time():
    assert end_of_day(date(2026, 7, 4), "America/New_York") == utc(2026, 7, 5, 3, 59, 59)


def test_end_of_day_on_dst_change_days():
    # Europe/Berlin springs forward on 2026-03-29 and falls back on 2026-10-25:
    # by 23:59:59 the new offset applies on both days.
    assert end_of_day(date(2026, 3, 29), "Europe/Berlin") == utc(2026, 3, 29, 21, 59, 59)
    assert end_of_day(date(2026, 3, 28), "Europe/Berlin") == utc(2026, 3, 28, 22, 59, 59)
    assert end_of_day(date(2026, 10, 25), "Europe/Berlin") == utc(2026, 10, 25, 22, 59, 59)
    assert end_of_day(date(2026, 10, 24), "Europe/Berlin") == utc(2026, 10, 24, 21, 59, 59)


def test_end_of_day_east_of_utc_is_the_same_day_earlier():
    assert end_of_day(date(2026, 12, 31), "Asia/Tokyo") == utc(2026, 12, 31, 14, 59, 59)
    assert end_of_day(date(2026, 12, 31), "Asia/Kolkata") == utc(2026, 12, 31, 18, 29, 59)


def test_end_of_day_returns_utc_and_takes_a_datetimes_date():
    result = end_of_day(datetime(2026, 1, 2, 10, 0, tzinfo=UTC), "UTC")
    assert result == utc(2026, 1, 2, 23, 59, 59)
    assert result.tzinfo is UTC


def test_end_of_day_unknown_zone():
    with pytest.raises(InvalidInput):
        end_of_day(date(2026, 1, 1), "Mars/Base")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("europe/berlin", "Europe/Berlin"),
        ("  America/New_York ", "America/New_York"),
        ("AMERICA/NEW_YORK", "America/New_York"),
        ("UTC", "UTC"),
        ("utc", "UTC"),
        ("Etc/GMT+5", "Etc/GMT+5"),
        ("America/Argentina/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ],
)
def test_validate_timezone_accepts(text, expected):
    assert validate_timezone(text) == expected
    ZoneInfo(expected)  # and it loads


@pytest.mark.parametrize(
    "text",
    [
        "Mars/Base",
        "",
        "   ",
        "Europe",
        "../../etc/passwd",
        "/etc/localtime",
        "Factory",
        "localtime",
        "posixrules",
        "right/UTC",
        "Europe/Berlin\x00",
        "+02:00",
        "x" * 500,
    ],
)
def test_validate_timezone_refuses(text):
    with pytest.raises(InvalidInput) as info:
        validate_timezone(text)
    assert "Use an IANA name like Europe/Berlin." in str(info.value)


def test_validate_timezone_message_quotes_the_name():
    with pytest.raises(InvalidInput) as info:
        validate_timezone("Mars/Base")
    assert str(info.value) == "Unknown timezone 'Mars/Base'. Use an IANA name like Europe/Berlin."


# --- parse_when / parse_future ----------------------------------------------------------


def test_parse_when_duration_from_now():
    assert parse_when("30d", NOW) == NOW + timedelta(days=30)
    assert parse_when("1d12h", NOW, "Asia/Tokyo") == NOW + timedelta(days=1, hours=12)


def test_parse_when_date_is_end_of_day_in_guild_timezone():
    assert parse_when("2026-12-31", NOW, "America/New_York") == utc(2027, 1, 1, 4, 59, 59)
    assert parse_when("2026-12-31", NOW) == utc(2026, 12, 31, 23, 59, 59)
    assert parse_when("20261231", NOW, "UTC") == utc(2026, 12, 31, 23, 59, 59)


def test_parse_when_z_suffix_and_offsets():
    assert parse_when("2026-12-31T18:00:00Z", NOW, "America/New_York") == utc(2026, 12, 31, 18)
    assert parse_when("2026-12-31t18:00z", NOW) == utc(2026, 12, 31, 18)
    assert parse_when("2026-12-31T18:00+02:00", NOW, "Asia/Tokyo") == utc(2026, 12, 31, 16)
    assert parse_when("2026-12-31 18:00-05:00", NOW) == utc(2026, 12, 31, 23)


def test_parse_when_naive_iso_is_read_in_guild_timezone():
    assert parse_when("2026-12-31T18:00", NOW, "America/New_York") == utc(2026, 12, 31, 23)
    assert parse_when("2026-07-01 09:30", NOW, "Europe/Berlin") == utc(2026, 7, 1, 7, 30)
    assert parse_when("2026-07-01T09:30", NOW, "UTC") == utc(2026, 7, 1, 9, 30)


def test_parse_when_naive_time_in_dst_gap_and_overlap():
    # 2026-03-08 02:30 does not exist in New York: read with the offset before the change
    # (EST), i.e. 07:30 UTC = 03:30 EDT.
    assert parse_when("2026-03-08T02:30", NOW, "America/New_York") == utc(2026, 3, 8, 7, 30)
    # 2026-11-01 01:30 happens twice: the first occurrence (EDT, UTC-4) is used.
    assert parse_when("2026-11-01T01:30", NOW, "America/New_York") == utc(2026, 11, 1, 5, 30)


def test_parse_when_truncates_to_whole_seconds():
    now = datetime(2026, 6, 15, 12, 0, 0, 987654, tzinfo=UTC)
    assert parse_when("1h", now) == utc(2026, 6, 15, 13, 0, 0)
    assert parse_when("2026-12-31T18:00:00.999999Z", now).microsecond == 0


def test_parse_when_returns_utc_even_for_non_utc_now():
    now = datetime(2026, 6, 15, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    result = parse_when("1h", now)
    assert result.utcoffset() == timedelta(0)
    assert result == utc(2026, 6, 15, 13, 0)


def test_parse_when_today_and_tomorrow_are_end_of_local_day():
    # 03:00 UTC on June 15 is still June 14 in New York.
    now = utc(2026, 6, 15, 3, 0)
    assert parse_when("today", now, "America/New_York") == utc(2026, 6, 15, 3, 59, 59)
    assert parse_when("Tomorrow", now, "America/New_York") == utc(2026, 6, 16, 3, 59, 59)
    assert parse_when("today", now) == utc(2026, 6, 15, 23, 59, 59)


def test_parse_when_does_not_judge_the_past():
    assert parse_when("2020-01-01", NOW) == utc(2020, 1, 1, 23, 59, 59)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Enter a date"),
        ("next tuesday", "couldn't read"),
        ("31/12/2026", "couldn't read"),
        ("2026-13-01", "couldn't read"),
        ("2026-02-30", "couldn't read"),
        ("-5d", "negative"),
        ("0d", "longer than zero"),
        ("30", "Add a unit"),
        ("3mo", "Months vary"),
        ("9999-12-31T23:59:59-05:00", "out of range"),
        ("x" * 200, "too long"),
    ],
)
def test_parse_when_refuses(text, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_when(text, NOW, "America/New_York")
    assert fragment in str(info.value)


def test_parse_when_unparsable_lists_the_forms():
    with pytest.raises(InvalidInput) as info:
        parse_when("someday", NOW)
    message = str(info.value)
    assert "30d" in message
    assert "2026-12-31" in message
    assert "2026-12-31T18:00" in message


def test_parse_when_requires_aware_now():
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_when("1d", datetime(2026, 1, 1))


def test_parse_when_unknown_guild_timezone():
    with pytest.raises(InvalidInput, match="Unknown timezone"):
        parse_when("1d", NOW, "Mars/Base")


def test_parse_future_accepts_future_and_refuses_past():
    assert parse_future("30d", NOW) == NOW + timedelta(days=30)
    with pytest.raises(InvalidInput) as info:
        parse_future("2020-01-01", NOW)
    assert str(info.value).startswith("That expiry is in the past: 2020-01-01 23:59 UTC. ")
    assert info.value.code == "when_in_past"
    assert info.value.params == {"what": "expiry", "when": to_unix(utc(2020, 1, 1, 23, 59, 59))}
    assert "{when:f}" in info.value.template  # the date and time, not how long ago


def test_parse_future_refuses_exactly_now_and_names_what():
    with pytest.raises(InvalidInput, match=r"^That start time is in the past"):
        parse_future("2026-06-15T12:00:00Z", NOW, what="start time")
    assert parse_future("2026-06-15T12:00:01Z", NOW) == NOW + timedelta(seconds=1)


def test_parse_future_today_is_fine_until_the_day_ends():
    assert parse_future("today", NOW) == utc(2026, 6, 15, 23, 59, 59)
    with pytest.raises(InvalidInput):
        parse_future("today", utc(2026, 6, 15, 23, 59, 59))


# --- lead times ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d,1d", (604800, 86400)),
        ("1d,7d", (604800, 86400)),
        ("7d, 1d ,", (604800, 86400)),
        ("1d,1d,24h", (86400,)),
        ("1m", (60,)),
        ("365d", (365 * 86400,)),
        ("1y", (365 * 86400,)),
        ("2w,3d,12h,90m", (1209600, 259200, 43200, 5400)),
        (",".join(f"{i}h" for i in range(1, 11)), tuple(i * 3600 for i in range(10, 0, -1))),
    ],
)
def test_parse_lead_times_accepts(text, expected):
    assert parse_lead_times(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "at least one lead time"),
        (" , ,", "at least one lead time"),
        ("30s", "at least 1 minute"),
        ("7d,59s", "at least 1 minute"),
        ("366d", "at most 365 days"),
        ("2y", "at most 365 days"),
        (",".join(f"{i}h" for i in range(1, 12)), "At most 10"),
        ("7d;1d", "couldn't read"),
        ("soon", "couldn't read"),
        ("0d", "longer than zero"),
        ("-1d", "negative"),
    ],
)
def test_parse_lead_times_refuses(text, fragment):
    with pytest.raises(InvalidInput) as info:
        parse_lead_times(text)
    assert fragment in str(info.value)


def test_a_lead_time_that_is_no_duration_says_which_and_why():
    with pytest.raises(InvalidInput) as info:
        parse_lead_times("7d,5")
    assert str(info.value) == "Lead time '5': Add a unit to 5, like 5d for days or 5h for hours."
    assert info.value.code == "lead_time_invalid"
    assert info.value.params == {"lead": "5", "reason": "duration_no_unit", "number": "5"}


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        ((604800, 86400), "7d,1d"),
        ((1209600,), "2w"),
        ((21 * 86400,), "3w"),
        ((8 * 86400,), "8d"),
        ((36 * 3600,), "36h"),
        ((5400,), "90m"),
        ((60,), "1m"),
        ((90,), "90s"),
        ((), ""),
    ],
)
def test_format_lead_times(seconds, expected):
    assert format_lead_times(seconds) == expected


def test_format_duration_refuses_non_positive():
    for bad in (0, -60, True):
        with pytest.raises(ValueError, match="positive int"):
            format_duration(bad)
    assert format_duration(3600) == "1h"


@given(
    st.sets(st.integers(1, 365 * 24 * 60), min_size=1, max_size=10).map(
        lambda minutes: tuple(sorted((m * 60 for m in minutes), reverse=True))
    )
)
def test_lead_times_round_trip(lead_times):
    assert parse_lead_times(format_lead_times(lead_times)) == lead_times


@given(st.integers(1, 36500 * 86400))
def test_duration_format_parse_round_trip(seconds):
    assert parse_duration(format_duration(seconds)) == timedelta(seconds=seconds)


@given(st.text(max_size=40))
def test_parse_when_only_ever_raises_invalid_input(text):
    try:
        result = parse_when(text, NOW, "America/New_York")
    except InvalidInput:
        return
    assert result.utcoffset() == timedelta(0)
    assert result.microsecond == 0


# --- unix and Discord timestamps -----------------------------------------------------------


def test_unix_round_trip_and_values():
    assert to_unix(utc(1970, 1, 1)) == 0
    assert to_unix(utc(2026, 12, 31, 23, 59, 59)) == 1798761599
    assert from_unix(1798761599) == utc(2026, 12, 31, 23, 59, 59)
    assert from_unix(0).tzinfo is UTC
    assert to_unix(datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))) == to_unix(utc(2026, 1, 1))


def test_to_unix_floors_fractions():
    assert to_unix(datetime(1970, 1, 1, 0, 0, 1, 999999, tzinfo=UTC)) == 1
    assert to_unix(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)) == -1


def test_to_unix_requires_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        to_unix(datetime(2026, 1, 1))


def test_from_unix_requires_int():
    with pytest.raises(ValueError, match="must be an int"):
        from_unix(1.5)  # type: ignore[arg-type]


@given(st.integers(-(10**10), 10**11))
def test_unix_round_trip_property(ts):
    assert to_unix(from_unix(ts)) == ts
