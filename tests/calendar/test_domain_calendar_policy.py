"""Maintenance windows, blackouts, freezes and the next allowed start, on local wall-clock
time in the policy's zone (across DST), against the documented example policy."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter
from ruamel.yaml import YAML

from domain.calendar_policy import (
    DAYS,
    Blackout,
    Freeze,
    WeeklySlot,
    Windows,
    blackout_hits,
    blackout_periods,
    describe_window,
    inside_window,
    next_allowed_start,
    schedule_problems,
)
from domain.enums import Category
from domain.policy import Policy
from tests.support.paths import ROOT

FAST = settings(max_examples=150, deadline=None)

LONDON = ZoneInfo("Europe/London")
UTC_ZONE = ZoneInfo("UTC")

SPRING_FORWARD = date(2026, 3, 29)  # London: 01:00 GMT -> 02:00 BST
FALL_BACK = date(2026, 10, 25)  # London: 02:00 BST -> 01:00 GMT

NORMAL_SLOT = WeeklySlot(days=["tue", "wed", "thu"], start="10:00", end="16:00")
WINDOWS: Windows = {
    Category.STANDARD: "anytime",
    Category.NORMAL: [NORMAL_SLOT],
    Category.MAJOR: [WeeklySlot(days=["tue", "wed"], start="10:00", end="16:00")],
    Category.EMERGENCY: "anytime",
}
NOT_EMERGENCY = [Category.STANDARD, Category.NORMAL, Category.MAJOR]

FRIDAY = Blackout(name="Friday afternoon", weekly=WeeklySlot(days=["fri"], start="14:00", end="24:00"))
WEEKEND = Blackout(name="Weekend", weekly=WeeklySlot(days=["sat", "sun"]))
PUBLIC_HOLIDAYS = Blackout.model_validate(
    {"name": "Public holidays", "holidays": {"country": "GB", "subdiv": "ENG"}}
)
XMAS_FREEZE = Blackout.model_validate(
    {
        "name": "Holiday code freeze",
        "before_holidays": {"country": "GB", "subdiv": "ENG", "days_before": 14, "only": ["Christmas Day"]},
    }
)
BLACK_FRIDAY = Blackout.model_validate(
    {"name": "Black Friday to Cyber Monday", "dates": [{"from": "2026-11-27", "to": "2026-11-30"}]}
)
MONTH_END = Blackout.model_validate(
    {"name": "Month end", "last_business_days": {"last": 2, "of": "month"}, "categories": ["normal", "major"]}
)
QUARTER_END = Blackout.model_validate(
    {"name": "Quarter end", "last_business_days": {"last": 2, "of": "quarter"}}
)
BLACKOUTS = [FRIDAY, WEEKEND, PUBLIC_HOLIDAYS, XMAS_FREEZE, BLACK_FRIDAY, MONTH_END]


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, zone: ZoneInfo = LONDON) -> datetime:
    """A local wall-clock time as a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=zone).astimezone(UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def allowed(category: Category, start: datetime, end: datetime, *, blackouts=BLACKOUTS, freezes=()) -> bool:
    return inside_window(WINDOWS, category=category, start=start, end=end, zone=LONDON) and not blackout_hits(
        blackouts=blackouts, freezes=freezes, category=category, start=start, end=end, zone=LONDON
    )


def hit_names(blackouts, start: datetime, end: datetime, category=Category.NORMAL, freezes=()) -> list[str]:
    hits = blackout_hits(
        blackouts=blackouts, freezes=freezes, category=category, start=start, end=end, zone=LONDON
    )
    return [hit.name for hit in hits]


def occurrence_on(slot: WeeklySlot, day: date, zone: ZoneInfo = LONDON) -> tuple[datetime, datetime]:
    """The occurrence of `slot` that begins on local `day`."""
    found = [
        (s, e)
        for s, e in slot.occurrences(zone, at(day.year, day.month, day.day, 12, zone=zone), timedelta(days=1))
        if s.astimezone(zone).date() == day
    ]
    assert len(found) == 1, found
    return found[0]


# ── the example policy embeds these types ───────────────────────────


def test_example_policy_embeds_windows_blackouts_and_dependencies() -> None:
    # Only the sections this module reads, validated with the types Policy declares for them.
    example = YAML(typ="safe").load((ROOT / "policy.example.yml").read_text())
    fields = Policy.model_fields
    windows = TypeAdapter(fields["windows"].annotation).validate_python(example["windows"])
    blackouts = TypeAdapter(list[Blackout]).validate_python(example["blackouts"])
    dependencies = TypeAdapter(fields["dependencies"].annotation).validate_python(example["dependencies"])
    assert windows == WINDOWS
    assert [b.name for b in blackouts] == [
        "Friday afternoon",
        "Weekend",
        "Public holidays",
        "Holiday code freeze",
        "Black Friday to Cyber Monday",
        "Month end",
    ]
    assert blackouts == BLACKOUTS
    assert dependencies == {"api-server": ["database", "redis-cache"]}


# ── windows ─────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [
        (at(2026, 6, 9, 11), at(2026, 6, 9, 12), True),  # Tue, well inside
        (at(2026, 6, 9, 10), at(2026, 6, 9, 16), True),  # exactly the window: both edges touch
        (at(2026, 6, 10, 10), at(2026, 6, 10, 10, 15), True),  # Wed, starts at the window's start
        (at(2026, 6, 11, 15, 45), at(2026, 6, 11, 16), True),  # Thu, ends at the window's end
        (at(2026, 6, 9, 15), at(2026, 6, 9, 16, 30), False),  # overlaps the end
        (at(2026, 6, 9, 9, 45), at(2026, 6, 9, 10, 30), False),  # overlaps the start
        (at(2026, 6, 9, 16), at(2026, 6, 9, 17), False),  # right after
        (at(2026, 6, 9, 15), at(2026, 6, 10, 11), False),  # runs overnight into Wednesday's window
        (at(2026, 6, 8, 11), at(2026, 6, 8, 12), False),  # Monday
        (at(2026, 6, 12, 11), at(2026, 6, 12, 12), False),  # Friday
        (at(2026, 6, 14, 11), at(2026, 6, 14, 12), False),  # Sunday
        (at(2026, 1, 13, 10), at(2026, 1, 13, 16), True),  # a winter Tuesday (GMT)
    ],
)
def test_normal_window_tue_to_thu_10_to_16_london(start: datetime, end: datetime, inside: bool) -> None:
    assert inside_window(WINDOWS, category=Category.NORMAL, start=start, end=end, zone=LONDON) is inside


def test_window_is_local_time_not_utc() -> None:
    # 10:00 BST is 09:00 UTC: a change at 09:30-10:30 UTC is 10:30-11:30 local.
    assert inside_window(
        WINDOWS,
        category=Category.NORMAL,
        start=utc(2026, 6, 9, 9, 30),
        end=utc(2026, 6, 9, 10, 30),
        zone=LONDON,
    )
    assert not inside_window(
        WINDOWS,
        category=Category.NORMAL,
        start=utc(2026, 6, 9, 14, 30),
        end=utc(2026, 6, 9, 15, 30),
        zone=LONDON,
    )


CROSSING: Windows = {Category.NORMAL: [WeeklySlot(days=["sat"], start="22:00", end="02:00")]}


@pytest.mark.parametrize(
    ("start", "end", "inside"),
    [
        (at(2026, 6, 13, 23), at(2026, 6, 14, 1, 30), True),  # Sat 23:00 - Sun 01:30
        (at(2026, 6, 13, 22), at(2026, 6, 14, 2), True),  # the whole slot
        (at(2026, 6, 14, 0), at(2026, 6, 14, 2), True),  # after midnight, still Saturday's slot
        (at(2026, 6, 14, 1, 30), at(2026, 6, 14, 3), False),  # Sun 01:30 - 03:00 runs past 02:00
        (at(2026, 6, 13, 21, 30), at(2026, 6, 13, 22, 30), False),  # starts before 22:00
        (at(2026, 6, 12, 23), at(2026, 6, 13, 1), False),  # Friday night: not a Saturday slot
        (at(2026, 6, 14, 23), at(2026, 6, 15, 1), False),  # Sunday night
    ],
)
def test_window_crossing_midnight(start: datetime, end: datetime, inside: bool) -> None:
    assert inside_window(CROSSING, category=Category.NORMAL, start=start, end=end, zone=LONDON) is inside


def test_crossing_slot_occurrence_ends_the_next_day() -> None:
    slot = CROSSING[Category.NORMAL][0]
    assert occurrence_on(slot, date(2026, 6, 13)) == (at(2026, 6, 13, 22), at(2026, 6, 14, 2))


@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    length=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
    category=st.sampled_from([Category.STANDARD, Category.EMERGENCY]),
)
@FAST
def test_anytime_categories_accept_every_window(
    moment: datetime, length: timedelta, category: Category
) -> None:
    start = moment.replace(tzinfo=UTC)
    assert inside_window(WINDOWS, category=category, start=start, end=start + length, zone=LONDON)
    # a category the policy does not list runs any time too
    assert inside_window({}, category=Category.NORMAL, start=start, end=start + length, zone=LONDON)


def test_describe_window() -> None:
    assert describe_window(WINDOWS, Category.NORMAL) == "Tue/Wed/Thu 10:00-16:00"
    assert describe_window(WINDOWS, Category.STANDARD) == "any time"
    assert describe_window({}, Category.MAJOR) == "any time"
    assert describe_window(CROSSING, Category.NORMAL) == "Sat 22:00-02:00"
    two: Windows = {Category.MAJOR: [NORMAL_SLOT, WeeklySlot(days=["sun"], start="02:00", end="06:00")]}
    assert describe_window(two, Category.MAJOR) == "Tue/Wed/Thu 10:00-16:00; Sun 02:00-06:00"


SUNDAY_NIGHT = WeeklySlot(days=["sun"], start="02:00", end="06:00")


def test_sunday_02_to_06_utc_window_from_seed_000() -> None:
    windows: Windows = {Category.MAJOR: [SUNDAY_NIGHT]}

    def inside(start: datetime, end: datetime) -> bool:
        return inside_window(windows, category=Category.MAJOR, start=start, end=end, zone=UTC_ZONE)

    assert inside(utc(2026, 6, 14, 2), utc(2026, 6, 14, 6))
    assert inside(utc(2026, 3, 29, 3), utc(2026, 3, 29, 4))  # UTC has no DST
    assert not inside(utc(2026, 6, 14, 1, 59), utc(2026, 6, 14, 3))
    assert not inside(utc(2026, 6, 14, 5), utc(2026, 6, 14, 6, 1))
    assert not inside(utc(2026, 6, 13, 2), utc(2026, 6, 13, 6))  # Saturday
    assert occurrence_on(SUNDAY_NIGHT, date(2026, 10, 25), UTC_ZONE) == (
        utc(2026, 10, 25, 2),
        utc(2026, 10, 25, 6),
    )


@pytest.mark.parametrize(
    ("day", "utc_start", "utc_end"),
    [
        (date(2026, 1, 11), utc(2026, 1, 11, 2), utc(2026, 1, 11, 6)),  # winter: GMT
        (date(2026, 3, 22), utc(2026, 3, 22, 2), utc(2026, 3, 22, 6)),  # the Sunday before the change
        (SPRING_FORWARD, utc(2026, 3, 29, 1), utc(2026, 3, 29, 5)),  # 02:00 BST exists (after the gap)
        (date(2026, 6, 14), utc(2026, 6, 14, 1), utc(2026, 6, 14, 5)),  # summer: BST
        (FALL_BACK, utc(2026, 10, 25, 2), utc(2026, 10, 25, 6)),  # 02:00 is after the repeated hour: GMT
        (date(2026, 11, 1), utc(2026, 11, 1, 2), utc(2026, 11, 1, 6)),
    ],
)
def test_sunday_local_window_across_dst(day: date, utc_start: datetime, utc_end: datetime) -> None:
    start, end = occurrence_on(SUNDAY_NIGHT, day)
    assert (start, end) == (utc_start, utc_end)
    assert end - start == timedelta(hours=4)
    assert start.astimezone(LONDON).strftime("%H:%M") == "02:00"
    assert end.astimezone(LONDON).strftime("%H:%M") == "06:00"
    windows: Windows = {Category.MAJOR: [SUNDAY_NIGHT]}
    assert inside_window(windows, category=Category.MAJOR, start=start, end=end, zone=LONDON)
    assert not inside_window(
        windows, category=Category.MAJOR, start=start - timedelta(minutes=1), end=end, zone=LONDON
    )
    assert not inside_window(
        windows, category=Category.MAJOR, start=start, end=end + timedelta(minutes=1), zone=LONDON
    )


def test_slot_starting_in_the_spring_forward_gap_starts_after_the_gap() -> None:
    # 01:30 does not exist in London on 2026-03-29: it becomes 02:30 BST (01:30 UTC).
    slot = WeeklySlot(days=["sun"], start="01:30", end="04:00")
    start, end = occurrence_on(slot, SPRING_FORWARD)
    assert start == utc(2026, 3, 29, 1, 30)
    assert start.astimezone(LONDON).hour >= 2  # after the gap, not before it
    assert start.astimezone(LONDON).strftime("%H:%M %Z") == "02:30 BST"
    assert end == at(2026, 3, 29, 4) == utc(2026, 3, 29, 3)
    # The same slot is 2.5 h on an ordinary Sunday.
    normal_start, normal_end = occurrence_on(slot, date(2026, 3, 22))
    assert (normal_start, normal_end) == (utc(2026, 3, 22, 1, 30), utc(2026, 3, 22, 4))


def test_slot_in_the_repeated_hour_covers_both_on_fall_back_day() -> None:
    slot = WeeklySlot(days=["sun"], start="01:30", end="03:00")
    start, end = occurrence_on(slot, FALL_BACK)
    assert start == utc(2026, 10, 25, 0, 30)  # the first 01:30 (BST)
    assert end == utc(2026, 10, 25, 3)  # 03:00 GMT
    assert end - start == timedelta(hours=2, minutes=30)


def test_day_long_slot_is_23_and_25_hours_on_dst_days() -> None:
    whole_sunday = WeeklySlot(days=["sun"])
    for day, length in [(SPRING_FORWARD, 23), (FALL_BACK, 25), (date(2026, 6, 14), 24)]:
        start, end = occurrence_on(whole_sunday, day)
        assert end - start == timedelta(hours=length)


# A random weekly slot: days, start and end on a 15-minute grid (end <= start crosses midnight).
slot_strategy = st.builds(
    lambda days, start, end: (sorted(days, key=DAYS.index), start, end),
    st.sets(st.sampled_from(DAYS), min_size=1),
    st.integers(0, 95).map(lambda q: q * 15),
    st.integers(1, 96).map(lambda q: q * 15),
).filter(lambda s: s[1] != s[2] % 1440 or s[2] == 1440)


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _near_dst(day: date) -> bool:
    return any(abs((day - change).days) <= 1 for change in (SPRING_FORWARD, FALL_BACK))


@given(
    spec=slot_strategy,
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
)
@FAST
def test_occurrences_match_local_wall_clock(spec: tuple[list[str], int, int], moment: datetime) -> None:
    days, start, end = spec
    slot = WeeklySlot(days=days, start=_clock(start), end=_clock(end))
    instant = moment.replace(tzinfo=UTC)
    local = instant.astimezone(LONDON)
    assume(not _near_dst(local.date()))
    minute = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    if end > start:
        expected = today in days and start <= minute < end
    else:
        expected = (today in days and minute >= start) or (yesterday in days and minute < end)
    found = any(s <= instant < e for s, e in slot.occurrences(LONDON, instant, timedelta(0)))
    assert found is expected


# ── blackouts ───────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("start", "end", "blocked"),
    [
        (at(2026, 6, 12, 10), at(2026, 6, 12, 12), False),  # Friday morning
        (at(2026, 6, 12, 13), at(2026, 6, 12, 14), False),  # ends as it starts
        (at(2026, 6, 12, 13, 30), at(2026, 6, 12, 14, 30), True),
        (at(2026, 6, 12, 14), at(2026, 6, 12, 14, 15), True),
        (at(2026, 6, 12, 23, 45), at(2026, 6, 13, 0), True),  # up to midnight
        (at(2026, 6, 13, 0), at(2026, 6, 13, 1), False),  # Saturday is not Friday
        (at(2026, 6, 11, 14), at(2026, 6, 11, 23), False),  # Thursday afternoon
        (at(2026, 1, 9, 14, 30), at(2026, 1, 9, 15), True),  # a winter Friday
    ],
)
def test_friday_afternoon_blackout(start: datetime, end: datetime, blocked: bool) -> None:
    assert bool(hit_names([FRIDAY], start, end)) is blocked


def test_friday_afternoon_period_is_local() -> None:
    periods = list(blackout_periods(FRIDAY, zone=LONDON, start=at(2026, 6, 8), end=at(2026, 6, 15)))
    assert periods == [(utc(2026, 6, 12, 13), utc(2026, 6, 12, 23))]


@pytest.mark.parametrize(
    ("start", "end", "blocked"),
    [
        (at(2026, 6, 13, 10), at(2026, 6, 13, 11), True),  # Saturday
        (at(2026, 6, 14, 10), at(2026, 6, 14, 11), True),  # Sunday
        (at(2026, 6, 12, 23), at(2026, 6, 13, 0), False),  # Friday night, ends at midnight
        (at(2026, 6, 12, 23), at(2026, 6, 13, 0, 1), True),
        (at(2026, 6, 15, 0), at(2026, 6, 15, 1), False),  # Monday
        (at(2026, 6, 14, 23, 30), at(2026, 6, 15, 0, 30), True),  # Sunday into Monday
        (at(2026, 6, 11, 10), at(2026, 6, 15, 10), True),  # Thursday to Monday spans it
    ],
)
def test_weekend_blackout(start: datetime, end: datetime, blocked: bool) -> None:
    assert bool(hit_names([WEEKEND], start, end)) is blocked


def test_fixed_dates_cover_whole_local_days_inclusive() -> None:
    periods = list(blackout_periods(BLACK_FRIDAY, zone=LONDON, start=utc(2026, 11, 1), end=utc(2026, 12, 31)))
    assert periods == [(utc(2026, 11, 27), utc(2026, 12, 1))]  # GMT: local midnight is UTC midnight
    assert hit_names([BLACK_FRIDAY], at(2026, 11, 27, 0), at(2026, 11, 27, 0, 15))
    assert hit_names([BLACK_FRIDAY], at(2026, 11, 30, 23, 45), at(2026, 12, 1, 0))
    assert not hit_names([BLACK_FRIDAY], at(2026, 11, 26, 23), at(2026, 11, 27, 0))
    assert not hit_names([BLACK_FRIDAY], at(2026, 12, 1, 0), at(2026, 12, 1, 1))
    # In summer the local day starts at 23:00 UTC the day before.
    summer = Blackout.model_validate(
        {"name": "Launch", "dates": [{"from": "2026-07-01", "to": "2026-07-01"}]}
    )
    assert list(blackout_periods(summer, zone=LONDON, start=utc(2026, 6, 1), end=utc(2026, 8, 1))) == [
        (utc(2026, 6, 30, 23), utc(2026, 7, 1, 23))
    ]
    assert not list(blackout_periods(summer, zone=LONDON, start=utc(2026, 7, 2), end=utc(2026, 8, 1)))


def test_gb_holidays_from_the_package() -> None:
    table = holidays.country_holidays("GB", subdiv="ENG", years=2026)
    # What the package says (not guessed): Boxing Day falls on a Saturday, observed on Monday 28th.
    assert table.get(date(2026, 12, 25)) == "Christmas Day"
    assert table.get(date(2026, 12, 26)) == "Boxing Day"
    assert table.get(date(2026, 12, 28)) == "Boxing Day (observed)"
    periods = list(
        blackout_periods(PUBLIC_HOLIDAYS, zone=LONDON, start=utc(2026, 12, 1), end=utc(2026, 12, 31))
    )
    december = sorted(d for d in table if d.month == 12)
    assert december == [date(2026, 12, 25), date(2026, 12, 26), date(2026, 12, 28)]
    assert periods == [
        (at(d.year, d.month, d.day), at(d.year, d.month, d.day) + timedelta(days=1)) for d in december
    ]
    assert hit_names([PUBLIC_HOLIDAYS], at(2026, 12, 25, 11), at(2026, 12, 25, 12)) == ["Public holidays"]
    assert hit_names([PUBLIC_HOLIDAYS], at(2026, 12, 28, 11), at(2026, 12, 28, 12)) == ["Public holidays"]
    assert not hit_names([PUBLIC_HOLIDAYS], at(2026, 12, 29, 11), at(2026, 12, 29, 12))
    assert not hit_names([PUBLIC_HOLIDAYS], at(2026, 12, 24, 11), at(2026, 12, 24, 12))


def test_every_2026_gb_holiday_is_blocked_and_nothing_else() -> None:
    table = holidays.country_holidays("GB", subdiv="ENG", years=2026)
    periods = list(
        blackout_periods(PUBLIC_HOLIDAYS, zone=LONDON, start=utc(2026, 1, 1), end=utc(2026, 12, 31))
    )
    assert [s.astimezone(LONDON).date() for s, _ in periods] == sorted(table)
    for start, end in periods:
        assert start.astimezone(LONDON).time().isoformat() == "00:00:00"
        assert end.astimezone(LONDON).time().isoformat() == "00:00:00"


def test_before_holidays_only_christmas_covers_11_to_25_december() -> None:
    periods = list(blackout_periods(XMAS_FREEZE, zone=LONDON, start=utc(2026, 11, 1), end=utc(2027, 1, 31)))
    assert periods == [(utc(2026, 12, 11), utc(2026, 12, 26))]
    assert hit_names([XMAS_FREEZE], at(2026, 12, 11, 0), at(2026, 12, 11, 0, 15)) == ["Holiday code freeze"]
    assert hit_names([XMAS_FREEZE], at(2026, 12, 25, 23, 45), at(2026, 12, 26, 0))
    assert hit_names([XMAS_FREEZE], at(2026, 12, 15, 11), at(2026, 12, 15, 12))
    assert not hit_names([XMAS_FREEZE], at(2026, 12, 10, 23), at(2026, 12, 11, 0))
    assert not hit_names([XMAS_FREEZE], at(2026, 12, 26, 0), at(2026, 12, 26, 1))
    # `only` leaves out New Year's Day and Boxing Day: nothing after Christmas
    assert not hit_names([XMAS_FREEZE], at(2026, 12, 29, 11), at(2026, 12, 31, 12))
    # a query that ends long before Christmas still sees the freeze that starts within it
    assert hit_names([XMAS_FREEZE], at(2026, 12, 10, 12), at(2026, 12, 11, 12))


def test_before_holidays_without_only_freezes_before_every_holiday() -> None:
    every = Blackout.model_validate(
        {"name": "Eve", "before_holidays": {"country": "GB", "subdiv": "ENG", "days_before": 1}}
    )
    periods = list(blackout_periods(every, zone=LONDON, start=utc(2026, 12, 20), end=utc(2027, 1, 5)))
    assert periods == [
        (utc(2026, 12, 24), utc(2026, 12, 26)),  # Christmas Day
        (utc(2026, 12, 25), utc(2026, 12, 27)),  # Boxing Day
        (utc(2026, 12, 27), utc(2026, 12, 29)),  # Boxing Day (observed)
        (utc(2026, 12, 31), utc(2027, 1, 2)),  # New Year's Day 2027
    ]


@pytest.mark.parametrize(
    ("month", "expected"),
    [
        (1, [date(2026, 1, 29), date(2026, 1, 30)]),  # Jan 31 is a Saturday
        (5, [date(2026, 5, 28), date(2026, 5, 29)]),  # May 30-31 weekend
        (11, [date(2026, 11, 27), date(2026, 11, 30)]),  # Fri 27 and Mon 30
        (12, [date(2026, 12, 30), date(2026, 12, 31)]),
    ],
)
def test_last_two_business_days_of_the_month(month: int, expected: list[date]) -> None:
    start = at(2026, month, 1)
    end = at(2026 + (month == 12), month % 12 + 1, 1)
    periods = list(blackout_periods(MONTH_END, zone=LONDON, start=start, end=end))
    assert [s.astimezone(LONDON).date() for s, _ in periods] == expected
    assert all(e - s in (timedelta(hours=23), timedelta(hours=24), timedelta(hours=25)) for s, e in periods)


def test_last_two_business_days_of_the_quarter() -> None:
    periods = list(blackout_periods(QUARTER_END, zone=LONDON, start=utc(2026, 1, 1), end=utc(2027, 1, 1)))
    assert [s.astimezone(LONDON).date() for s, _ in periods] == [
        date(2026, 3, 30),
        date(2026, 3, 31),
        date(2026, 6, 29),
        date(2026, 6, 30),
        date(2026, 9, 29),
        date(2026, 9, 30),
        date(2026, 12, 30),
        date(2026, 12, 31),
    ]
    assert not hit_names([QUARTER_END], at(2026, 11, 30, 11), at(2026, 11, 30, 12))  # November: not a quarter


@given(last=st.integers(1, 5), of=st.sampled_from(["month", "quarter"]), month=st.integers(1, 12))
@FAST
def test_last_business_days_match_a_reference(last: int, of: str, month: int) -> None:
    rule = Blackout.model_validate({"name": "End", "last_business_days": {"last": last, "of": of}})
    first = date(2026, month, 1)
    following = date(2026 + (month == 12), month % 12 + 1, 1)
    weekdays = [first + timedelta(days=i) for i in range((following - first).days)]
    weekdays = [d for d in weekdays if d.weekday() < 5]
    expected = weekdays[-last:] if of == "month" or month % 3 == 0 else []
    periods = blackout_periods(
        rule, zone=LONDON, start=at(2026, month, 1), end=at(following.year, following.month, 1)
    )
    assert [s.astimezone(LONDON).date() for s, _ in periods] == expected


def test_blackout_categories_default_to_all_but_emergency() -> None:
    assert WEEKEND.categories == NOT_EMERGENCY
    start, end = at(2026, 6, 13, 10), at(2026, 6, 13, 11)
    for category in NOT_EMERGENCY:
        assert hit_names([WEEKEND], start, end, category) == ["Weekend"]
    assert hit_names([WEEKEND], start, end, Category.EMERGENCY) == []
    # Month end names normal and major only: standard changes still run
    start, end = at(2026, 11, 30, 11), at(2026, 11, 30, 12)
    assert hit_names([MONTH_END], start, end, Category.NORMAL) == ["Month end"]
    assert hit_names([MONTH_END], start, end, Category.MAJOR) == ["Month end"]
    assert hit_names([MONTH_END], start, end, Category.STANDARD) == []
    # A blackout may also name emergency explicitly
    total = Blackout.model_validate({"name": "Total", "weekly": {}, "categories": ["emergency"]})
    assert hit_names([total], start, end, Category.EMERGENCY) == ["Total"]
    assert hit_names([total], start, end, Category.NORMAL) == []


@pytest.mark.parametrize(
    "rules",
    [
        {},
        {"weekly": {"days": ["fri"]}, "dates": [{"from": "2026-01-01", "to": "2026-01-02"}]},
        {"holidays": {"country": "GB"}, "last_business_days": {"last": 1}},
    ],
)
def test_blackout_needs_exactly_one_rule(rules: dict) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Blackout.model_validate({"name": "Bad", **rules})


def test_freezes_block_every_category_but_emergency() -> None:
    open_ended = Freeze(1, "incident 42", "UBOB", started_at=utc(2026, 6, 9, 9))
    ended = Freeze(2, "", "UBOB", started_at=utc(2026, 6, 9, 9), ended_at=utc(2026, 6, 9, 12))
    for category in NOT_EMERGENCY:
        hits = blackout_hits(
            blackouts=[],
            freezes=[open_ended],
            category=category,
            start=utc(2027, 1, 1),
            end=utc(2027, 1, 2),
            zone=LONDON,
        )
        assert [(h.name, h.start, h.end) for h in hits] == [
            ("Change freeze: incident 42", utc(2026, 6, 9, 9), datetime.max.replace(tzinfo=UTC))
        ]
        assert hit_names([], utc(2026, 6, 9, 11), utc(2026, 6, 9, 13), category, [ended]) == [
            "Change freeze until Tue 09 Jun 2026 13:00 BST: declared in Slack"  # named with its end
        ]
        # from its end on, the ended freeze no longer blocks
        assert hit_names([], utc(2026, 6, 9, 12), utc(2026, 6, 9, 13), category, [ended]) == []
        assert hit_names([], utc(2026, 6, 9, 8), utc(2026, 6, 9, 9), category, [ended, open_ended]) == []
    assert (
        hit_names([], utc(2026, 6, 9, 10), utc(2026, 6, 9, 11), Category.EMERGENCY, [open_ended, ended]) == []
    )


def test_hits_are_sorted_by_start() -> None:
    # Friday 23:00 to Saturday 01:00: Friday afternoon first, then the weekend
    start, end = at(2026, 6, 12, 23), at(2026, 6, 13, 1)
    assert hit_names(BLACKOUTS, start, end) == ["Friday afternoon", "Weekend"]
    freeze = Freeze(1, "release", "UBOB", started_at=at(2026, 6, 12, 23, 30))
    assert hit_names(BLACKOUTS, start, end, freezes=[freeze]) == [
        "Friday afternoon",
        "Change freeze: release",
        "Weekend",
    ]


def test_weekly_blackout_found_across_spring_forward() -> None:
    # Sat 23:30 GMT for 23h59m ends Mon 00:29 BST: it touches Monday's 00:00-01:00 slot.
    monday = Blackout(name="Monday backup", weekly=WeeklySlot(days=["mon"], start="00:00", end="01:00"))
    start = at(2026, 3, 28, 23, 30)
    end = start + timedelta(hours=23, minutes=59)
    assert end == at(2026, 3, 30, 0, 29)
    assert list(blackout_periods(monday, zone=LONDON, start=start, end=end)) == [
        (at(2026, 3, 30, 0), at(2026, 3, 30, 1))
    ]


@given(
    spec=slot_strategy,
    moment=st.one_of(
        st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
        st.datetimes(min_value=datetime(2026, 3, 26), max_value=datetime(2026, 3, 30)),
        st.datetimes(min_value=datetime(2026, 10, 22), max_value=datetime(2026, 10, 26)),
    ),
    length=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=4)),
)
@FAST
def test_weekly_blackout_periods_match_a_wide_scan(
    spec: tuple[list[str], int, int], moment: datetime, length: timedelta
) -> None:
    days, start_minute, end_minute = spec
    slot = WeeklySlot(days=days, start=_clock(start_minute), end=_clock(end_minute))
    blackout = Blackout(name="Weekly", weekly=slot)
    start = moment.replace(tzinfo=UTC)
    end = start + length
    wide = slot.occurrences(LONDON, start - timedelta(days=3), length + timedelta(days=6))
    expected = sorted({(s, e) for s, e in wide if s < end and start < e})
    assert sorted(blackout_periods(blackout, zone=LONDON, start=start, end=end)) == expected


# ── next allowed start ──────────────────────────────────────────────


def test_next_allowed_start_after_a_friday_afternoon() -> None:
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[],
        category=Category.NORMAL,
        duration=timedelta(hours=1),
        after=at(2026, 6, 12, 15),
        zone=LONDON,
    )
    assert found == at(2026, 6, 16, 10)  # Tuesday 10:00 BST


def test_next_allowed_start_skips_the_christmas_freeze_and_holidays() -> None:
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[],
        category=Category.NORMAL,
        duration=timedelta(hours=2),
        after=at(2026, 12, 15, 11),
        zone=LONDON,
    )
    # freeze to 25 Dec, Boxing Day observed Mon 28, month end 30-31: Tuesday 29th
    assert found == at(2026, 12, 29, 10)
    major = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[],
        category=Category.MAJOR,
        duration=timedelta(hours=2),
        after=at(2026, 12, 29, 15),
        zone=LONDON,
    )
    assert major == at(2027, 1, 5, 10)  # Wed 30 is month end; major runs Tue/Wed only


def test_next_allowed_start_keeps_a_start_that_already_fits() -> None:
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[],
        category=Category.NORMAL,
        duration=timedelta(hours=1),
        after=at(2026, 6, 9, 11, 7),
        zone=LONDON,
    )
    assert found == at(2026, 6, 9, 11, 15)  # rounded up to the quarter hour


def test_next_allowed_start_may_end_as_a_blackout_begins() -> None:
    def standard(duration: timedelta) -> datetime | None:
        return next_allowed_start(
            windows=WINDOWS,
            blackouts=BLACKOUTS,
            freezes=[],
            category=Category.STANDARD,
            duration=duration,
            after=at(2026, 6, 12, 13),
            zone=LONDON,
        )

    assert standard(timedelta(hours=1)) == at(2026, 6, 12, 13)  # ends at 14:00 exactly
    assert standard(timedelta(hours=2)) == at(2026, 6, 15, 0)  # after the weekend: a blackout's end


def test_emergency_ignores_blackouts_and_freezes() -> None:
    freeze = Freeze(1, "incident", "UBOB", started_at=utc(2026, 1, 1))
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[freeze],
        category=Category.EMERGENCY,
        duration=timedelta(hours=3),
        after=at(2026, 12, 25, 3, 2),
        zone=LONDON,
    )
    assert found == at(2026, 12, 25, 3, 15)


@pytest.mark.parametrize(
    "blocker",
    [
        Blackout(name="Always", weekly=WeeklySlot()),
        Blackout.model_validate({"name": "Years", "dates": [{"from": "2026-01-01", "to": "2027-12-31"}]}),
    ],
)
def test_nothing_fits_within_120_days(blocker: Blackout) -> None:
    for category in NOT_EMERGENCY:
        assert (
            next_allowed_start(
                windows=WINDOWS,
                blackouts=[blocker],
                freezes=[],
                category=category,
                duration=timedelta(minutes=15),
                after=at(2026, 6, 9, 11),
                zone=LONDON,
            )
            is None
        )


def test_a_window_that_is_too_short_never_fits() -> None:
    assert (
        next_allowed_start(
            windows=WINDOWS,
            blackouts=[],
            freezes=[],
            category=Category.NORMAL,
            duration=timedelta(hours=7),
            after=at(2026, 6, 9, 11),
            zone=LONDON,
        )
        is None
    )


def test_a_freeze_end_is_a_candidate() -> None:
    ended = Freeze(1, "release", "UBOB", started_at=utc(2026, 6, 10, 9), ended_at=utc(2026, 6, 10, 13, 7))
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=[],
        freezes=[ended],
        category=Category.STANDARD,
        duration=timedelta(minutes=30),
        after=utc(2026, 6, 10, 10),
        zone=LONDON,
    )
    assert found == utc(2026, 6, 10, 13, 7)
    open_ended = Freeze(2, "release", "UBOB", started_at=utc(2026, 6, 10, 9))
    assert (
        next_allowed_start(
            windows=WINDOWS,
            blackouts=[],
            freezes=[open_ended],
            category=Category.STANDARD,
            duration=timedelta(minutes=30),
            after=utc(2026, 6, 10, 10),
            zone=LONDON,
        )
        is None
    )


@given(
    moment=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31, 23, 59)),
    minutes=st.integers(15, 240),
    category=st.sampled_from(list(Category)),
)
@FAST
def test_next_allowed_start_fits_its_window_and_no_blackout(
    moment: datetime, minutes: int, category: Category
) -> None:
    after = moment.replace(tzinfo=UTC)
    duration = timedelta(minutes=minutes)
    found = next_allowed_start(
        windows=WINDOWS,
        blackouts=BLACKOUTS,
        freezes=[],
        category=category,
        duration=duration,
        after=after,
        zone=LONDON,
    )
    assert found is not None  # every category has a slot within 120 days of any 2026 instant
    assert after <= found < after + timedelta(days=120)
    assert allowed(category, found, found + duration)
    # earliest: a minute before, once past the rounding of `after`, is refused
    earlier = found - timedelta(minutes=1)
    if earlier >= after + timedelta(minutes=15):
        assert not allowed(category, earlier, earlier + duration)
    if category is Category.EMERGENCY:
        assert found - after < timedelta(minutes=15)


# ── schedule problems ───────────────────────────────────────────────


def problems(category: Category, start: datetime, end: datetime, freezes=(), blackouts=BLACKOUTS) -> str:
    found = schedule_problems(
        windows=WINDOWS,
        blackouts=blackouts,
        freezes=freezes,
        category=category,
        start=start,
        end=end,
        zone=LONDON,
    )
    assert set(found) <= {"starts_at"}
    return found.get("starts_at", "")


def test_schedule_problems_name_the_window_blackouts_and_next_start() -> None:
    message = problems(Category.NORMAL, at(2026, 6, 12, 15), at(2026, 6, 12, 16))
    assert message.startswith("Normal changes run Tue/Wed/Thu 10:00-16:00.")
    assert "It touches a blackout: Friday afternoon." in message
    assert "Next allowed start: Tue 16 Jun 2026 10:00 BST." in message
    assert message.endswith("Or tick 'request an exception' and say why.")


def test_schedule_problems_list_each_blackout_once_in_order() -> None:
    message = problems(Category.STANDARD, at(2026, 6, 12, 23), at(2026, 6, 13, 23))
    assert "changes run" not in message  # standard runs any time
    assert "It touches a blackout: Friday afternoon, Weekend." in message
    assert "Next allowed start: Mon 15 Jun 2026 00:00 BST." in message


def test_schedule_problems_inside_the_window_but_in_a_freeze() -> None:
    message = problems(Category.NORMAL, at(2026, 12, 15, 11), at(2026, 12, 15, 13))
    assert "changes run" not in message
    assert "It touches a blackout: Holiday code freeze." in message
    assert "Next allowed start: Tue 29 Dec 2026 10:00 GMT." in message
    freeze = Freeze(1, "payments incident", "UBOB", started_at=at(2026, 6, 9, 9))
    message = problems(Category.NORMAL, at(2026, 6, 9, 11), at(2026, 6, 9, 12), freezes=[freeze])
    assert "It touches a blackout: Change freeze: payments incident." in message
    assert "No allowed slot in the next 120 days." in message


def test_no_problems_for_an_allowed_change() -> None:
    assert problems(Category.NORMAL, at(2026, 6, 9, 10), at(2026, 6, 9, 16)) == ""
    assert problems(Category.EMERGENCY, at(2026, 12, 25, 3), at(2026, 12, 25, 4)) == ""
    assert (
        problems(Category.STANDARD, at(2026, 11, 30, 11), at(2026, 11, 30, 12), blackouts=[MONTH_END]) == ""
    )
