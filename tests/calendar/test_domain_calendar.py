"""Local days in the policy's zone across DST changes: calendar ranges, scheduled moments and the
digest's cron trigger."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import days_range, local_midnight, parse_calendar_range, scheduled_moment
from domain.policy_loader import parse_policy
from scheduler.jobs import digest_trigger
from tests.support.policy_fixture import TEST_POLICY

FAST = settings(max_examples=200, deadline=None)

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")
ZONES = [LONDON, NEW_YORK]

# 2026's DST changes: (zone, day, length of that local day in hours)
DST_DAYS = [
    (LONDON, date(2026, 3, 29), 23),
    (LONDON, date(2026, 10, 25), 25),
    (NEW_YORK, date(2026, 3, 8), 23),
    (NEW_YORK, date(2026, 11, 1), 25),
]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def noon_local(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=zone).astimezone(UTC)


def assert_local_midnight(moment: datetime, day: date, zone: ZoneInfo) -> None:
    assert moment.tzinfo is UTC
    local = moment.astimezone(zone)
    assert (local.date(), local.hour, local.minute, local.second) == (day, 0, 0, 0)


# --- local_midnight / days_range ---------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (LONDON, date(2026, 1, 15), utc(2026, 1, 15, 0)),
        (LONDON, date(2026, 7, 15), utc(2026, 7, 14, 23)),
        (NEW_YORK, date(2026, 1, 15), utc(2026, 1, 15, 5)),
        (NEW_YORK, date(2026, 7, 15), utc(2026, 7, 15, 4)),
    ],
)
def test_local_midnight_in_utc(zone: ZoneInfo, day: date, expected: datetime) -> None:
    assert local_midnight(day, zone) == expected
    assert local_midnight(day, zone).tzinfo is UTC


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_a_dst_day_is_23_or_25_hours_long(zone: ZoneInfo, day: date, hours: int) -> None:
    rng = days_range(day, 1, zone, "t")
    assert rng.end - rng.start == timedelta(hours=hours)
    assert_local_midnight(rng.start, day, zone)
    assert_local_midnight(rng.end, day + timedelta(days=1), zone)


# --- parse_calendar_range ----------------------------------------------------------------


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("text", ["today", "Today", "  TODAY ", "", None])
def test_today(zone: ZoneInfo, text: str | None) -> None:
    day = date(2026, 6, 10)
    rng = parse_calendar_range(text, now=noon_local(day, zone), zone=zone)  # type: ignore[arg-type]
    assert rng is not None
    assert_local_midnight(rng.start, day, zone)
    assert_local_midnight(rng.end, day + timedelta(days=1), zone)
    assert "Wed 10 Jun" in rng.title


def test_today_is_the_local_day_not_the_utc_day() -> None:
    # 02:00 UTC on the 11th is still the evening of the 10th in New York.
    rng = parse_calendar_range("today", now=utc(2026, 6, 11, 2), zone=NEW_YORK)
    assert rng is not None
    assert (rng.start, rng.end) == (utc(2026, 6, 10, 4), utc(2026, 6, 11, 4))
    # 23:30 UTC on the 10th is already the 11th in London (BST).
    rng = parse_calendar_range("today", now=utc(2026, 6, 10, 23, 30), zone=LONDON)
    assert rng is not None
    assert (rng.start, rng.end) == (utc(2026, 6, 10, 23), utc(2026, 6, 11, 23))


def test_today_with_days_ahead() -> None:
    rng = parse_calendar_range("today", now=utc(2026, 3, 27, 12), zone=LONDON, days_ahead=3)
    assert rng is not None
    assert rng.start == utc(2026, 3, 27, 0)
    assert rng.end == utc(2026, 3, 30, 23)  # 31 Mar 00:00 BST
    assert rng.end - rng.start == timedelta(days=4, hours=-1)


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_today_on_a_dst_day(zone: ZoneInfo, day: date, hours: int) -> None:
    rng = parse_calendar_range("today", now=noon_local(day, zone), zone=zone)
    assert rng is not None
    assert rng.end - rng.start == timedelta(hours=hours)
    assert_local_midnight(rng.start, day, zone)
    assert_local_midnight(rng.end, day + timedelta(days=1), zone)


@pytest.mark.parametrize(("zone", "dst_day", "hours"), DST_DAYS)
def test_week_spans_seven_local_days_across_dst(zone: ZoneInfo, dst_day: date, hours: int) -> None:
    first = dst_day - timedelta(days=2)
    rng = parse_calendar_range("week", now=noon_local(first, zone), zone=zone)
    assert rng is not None
    assert_local_midnight(rng.start, first, zone)
    assert_local_midnight(rng.end, first + timedelta(days=7), zone)
    assert rng.end - rng.start == timedelta(days=7) + timedelta(hours=hours - 24)
    assert "this week" in rng.title


@pytest.mark.parametrize("zone", ZONES)
def test_week_without_dst_is_exactly_seven_days(zone: ZoneInfo) -> None:
    rng = parse_calendar_range("week", now=noon_local(date(2026, 6, 1), zone), zone=zone)
    assert rng is not None
    assert rng.end - rng.start == timedelta(days=7)


@pytest.mark.parametrize("zone", ZONES)
def test_iso_date(zone: ZoneInfo) -> None:
    rng = parse_calendar_range("2026-12-01", now=utc(2026, 6, 1, 12), zone=zone)
    assert rng is not None
    assert_local_midnight(rng.start, date(2026, 12, 1), zone)
    assert_local_midnight(rng.end, date(2026, 12, 2), zone)
    assert rng.title == "Changes on Tue 01 Dec 2026"


@pytest.mark.parametrize(("zone", "day", "hours"), DST_DAYS)
def test_iso_date_on_a_dst_day(zone: ZoneInfo, day: date, hours: int) -> None:
    rng = parse_calendar_range(day.isoformat(), now=utc(2026, 1, 1), zone=zone)
    assert rng is not None
    assert rng.end - rng.start == timedelta(hours=hours)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("text", ["bogus", "2026-13-01", "2026-02-30", "tomorrow", "weeks"])
def test_anything_else_is_none(zone: ZoneInfo, text: str) -> None:
    assert parse_calendar_range(text, now=utc(2026, 6, 1, 12), zone=zone) is None


@FAST
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
    zone=st.sampled_from(ZONES),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
    kind=st.sampled_from(["today", "week"]),
)
def test_ranges_are_local_midnights(day: date, zone: ZoneInfo, minute: int, kind: str) -> None:
    now = local_midnight(day, zone) + timedelta(minutes=minute)
    local_day = now.astimezone(zone).date()
    rng = parse_calendar_range(kind, now=now, zone=zone)
    assert rng is not None
    days = 1 if kind == "today" else 7
    assert_local_midnight(rng.start, local_day, zone)
    assert_local_midnight(rng.end, local_day + timedelta(days=days), zone)
    assert rng.start <= now < rng.end
    assert abs(rng.end - rng.start - timedelta(days=days)) <= timedelta(hours=1)


# --- scheduled_moment --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        (LONDON, date(2026, 3, 28), utc(2026, 3, 28, 9)),
        (LONDON, date(2026, 3, 29), utc(2026, 3, 29, 8)),
        (LONDON, date(2026, 7, 1), utc(2026, 7, 1, 8)),
        (LONDON, date(2026, 10, 24), utc(2026, 10, 24, 8)),
        (LONDON, date(2026, 10, 25), utc(2026, 10, 25, 9)),
        (NEW_YORK, date(2026, 3, 7), utc(2026, 3, 7, 14)),
        (NEW_YORK, date(2026, 3, 8), utc(2026, 3, 8, 13)),
        (NEW_YORK, date(2026, 11, 1), utc(2026, 11, 1, 14)),
    ],
)
def test_nine_local_on_both_sides_of_dst(zone: ZoneInfo, day: date, expected: datetime) -> None:
    moment = scheduled_moment(day, 9, 0, zone)
    assert moment == expected
    assert moment.tzinfo is UTC
    local = moment.astimezone(zone)
    assert (local.date(), local.hour, local.minute) == (day, 9, 0)


def test_a_skipped_local_time_moves_past_the_gap() -> None:
    # 01:00-02:00 does not exist in London on 29 Mar 2026: 01:30 becomes 02:30 BST.
    moment = scheduled_moment(date(2026, 3, 29), 1, 30, LONDON)
    assert moment == utc(2026, 3, 29, 1, 30)
    assert moment.astimezone(LONDON).replace(tzinfo=None) == datetime(2026, 3, 29, 2, 30)
    assert moment >= utc(2026, 3, 29, 1)  # after the clocks went forward
    # New York: 02:00-03:00 skipped on 8 Mar 2026.
    moment = scheduled_moment(date(2026, 3, 8), 2, 30, NEW_YORK)
    assert moment.astimezone(NEW_YORK).replace(tzinfo=None) == datetime(2026, 3, 8, 3, 30)


def test_a_repeated_local_time_is_its_first_occurrence() -> None:
    # 01:00-02:00 happens twice in London on 25 Oct 2026: take the earlier (BST) one.
    assert scheduled_moment(date(2026, 10, 25), 1, 30, LONDON) == utc(2026, 10, 25, 0, 30)


@FAST
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 31)),
    zone=st.sampled_from(ZONES),
    hour=st.integers(min_value=4, max_value=23),
    minute=st.integers(min_value=0, max_value=59),
)
def test_scheduled_moment_is_that_wall_clock_time(day: date, zone: ZoneInfo, hour: int, minute: int) -> None:
    local = scheduled_moment(day, hour, minute, zone).astimezone(zone)
    assert (local.date(), local.hour, local.minute) == (day, hour, minute)


# --- digest trigger ----------------------------------------------------------------------


_POLICY = parse_policy(TEST_POLICY)


def test_the_test_policy_digests_at_nine_in_london() -> None:
    assert _POLICY.timezone == "Europe/London"
    assert _POLICY.digest.at == "09:00"


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (utc(2026, 3, 27, 10), utc(2026, 3, 28, 9)),
        (utc(2026, 3, 28, 10), utc(2026, 3, 29, 8)),
        (utc(2026, 3, 29, 8, 30), utc(2026, 3, 30, 8)),
        (utc(2026, 3, 29, 7, 59), utc(2026, 3, 29, 8)),
        (utc(2026, 10, 24, 10), utc(2026, 10, 25, 9)),
        (utc(2026, 10, 24, 7), utc(2026, 10, 24, 8)),
        (utc(2026, 10, 25, 8, 30), utc(2026, 10, 25, 9)),
        (utc(2026, 10, 25, 9, 1), utc(2026, 10, 26, 9)),
    ],
)
def test_digest_fires_at_nine_local_across_dst(now: datetime, expected: datetime) -> None:
    fire = digest_trigger(_POLICY).get_next_fire_time(None, now)
    assert fire is not None
    assert fire == expected
    local = fire.astimezone(LONDON)
    assert (local.hour, local.minute) == (9, 0)


def test_digest_fires_at_nine_local_every_day_of_a_dst_fortnight() -> None:
    trigger = digest_trigger(_POLICY)
    for start in (date(2026, 3, 22), date(2026, 10, 18)):
        now = local_midnight(start, LONDON)
        previous = None
        for offset in range(14):
            fire = trigger.get_next_fire_time(previous, now)
            assert fire is not None
            day = start + timedelta(days=offset)
            assert fire == scheduled_moment(day, 9, 0, LONDON)
            previous, now = fire, fire + timedelta(seconds=1)


@FAST
@given(
    day=st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 12, 30)),
    minute=st.integers(min_value=0, max_value=24 * 60 - 1),
)
def test_digest_next_fire_is_always_nine_local(day: date, minute: int) -> None:
    trigger = digest_trigger(_POLICY)
    now = local_midnight(day, LONDON) + timedelta(minutes=minute)
    fire = trigger.get_next_fire_time(None, now)
    assert fire is not None
    local = fire.astimezone(LONDON)
    assert (local.hour, local.minute, local.second) == (9, 0, 0)
    assert now <= fire < now + timedelta(hours=25)
    # At 09:00 sharp the digest fires now (a fire time may equal `now`); later, tomorrow.
    expected_day = day if now.astimezone(LONDON).time() <= time(9) else day + timedelta(days=1)
    assert local.date() == expected_day
