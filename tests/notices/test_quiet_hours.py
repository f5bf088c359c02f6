"""Quiet hours as plain values: when a DM due at `now` goes out in its reader's zone, across
midnight and the DST changes; which changes cannot wait; the policy's checks."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.enums import Category, Status
from domain.messages import ApprovalChase, PostChase, Rescheduled, ReviewChase, ReviewRequest
from domain.policy import PolicyError
from domain.policy_loader import parse_policy
from domain.quiet_hours import QuietHours, cannot_wait, deliver_at, is_reminder, quiet_until
from tests.support.policy_fixture import TEST_POLICY

LONDON = ZoneInfo("Europe/London")
NIGHT = QuietHours(start="20:00", end="08:00")
ZONES = [
    ZoneInfo(name)
    for name in (
        "Europe/London",
        "America/New_York",
        "Australia/Sydney",
        "Asia/Kolkata",
        "UTC",
        "Pacific/Apia",
    )
]
HH_MM = st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
# Moments around the 2026/2027 DST changes of every zone above, and plain days.
MOMENTS = st.datetimes(
    min_value=datetime(2026, 3, 1), max_value=datetime(2027, 4, 30), timezones=st.just(UTC)
)


def at(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)


def test_a_dm_at_night_waits_for_the_morning_in_the_readers_zone() -> None:
    late = at(LONDON, 2026, 12, 3, 22, 30)
    assert quiet_until(late, zone=LONDON, quiet=NIGHT) == at(LONDON, 2026, 12, 4, 8, 0)
    early = at(LONDON, 2026, 12, 4, 6, 0)
    assert quiet_until(early, zone=LONDON, quiet=NIGHT) == at(LONDON, 2026, 12, 4, 8, 0)
    assert quiet_until(at(LONDON, 2026, 12, 4, 8, 0), zone=LONDON, quiet=NIGHT) is None
    assert quiet_until(at(LONDON, 2026, 12, 4, 19, 59), zone=LONDON, quiet=NIGHT) is None
    # 22:30 in London is 17:30 in New York: not quiet there
    new_york = ZoneInfo("America/New_York")
    assert quiet_until(late, zone=new_york, quiet=NIGHT) is None


def test_quiet_hours_within_one_day() -> None:
    siesta = QuietHours(start="13:00", end="15:00")
    assert quiet_until(at(LONDON, 2026, 6, 1, 14, 0), zone=LONDON, quiet=siesta) == at(
        LONDON, 2026, 6, 1, 15, 0
    )
    assert quiet_until(at(LONDON, 2026, 6, 1, 15, 0), zone=LONDON, quiet=siesta) is None
    assert quiet_until(at(LONDON, 2026, 6, 1, 12, 59), zone=LONDON, quiet=siesta) is None


def test_a_morning_the_clocks_skip_is_the_first_moment_after_the_gap() -> None:
    # London springs forward on 29 Mar 2026: 01:00 GMT becomes 02:00 BST.
    quiet = QuietHours(start="23:00", end="01:30")
    held = quiet_until(at(LONDON, 2026, 3, 29, 0, 30), zone=LONDON, quiet=quiet)
    assert held == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)  # 02:30 BST, after the gap
    # and the night the clocks go back is an hour longer
    night = quiet_until(datetime(2026, 10, 24, 20, 0, tzinfo=UTC), zone=LONDON, quiet=NIGHT)
    assert night == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)  # 08:00 GMT, 13 h later


@settings(max_examples=400, deadline=None)
@given(now=MOMENTS, zone=st.sampled_from(ZONES), start=HH_MM, end=HH_MM)
def test_held_until_the_first_moment_the_quiet_hours_are_over(
    now: datetime, zone: ZoneInfo, start: str, end: str
) -> None:
    if start == end:
        return
    quiet = QuietHours(start=start, end=end)
    wall = now.astimezone(zone).time().replace(tzinfo=None)
    held = quiet_until(now, zone=zone, quiet=quiet)
    if not quiet.is_quiet(wall):
        assert held is None
        return
    if held is None:  # only where the clocks went back over the end: the end already passed
        return
    assert now < held <= now + timedelta(hours=25)
    local = held.astimezone(zone).time().replace(tzinfo=None)
    if local != quiet.end_time:  # the end fell in a DST gap: the first moment after it
        return
    assert not quiet.is_quiet(local)
    just_before = (held - timedelta(minutes=1)).astimezone(zone).time().replace(tzinfo=None)
    assert quiet.is_quiet(just_before)


@settings(max_examples=200, deadline=None)
@given(now=MOMENTS, zone=st.sampled_from(ZONES))
def test_urgent_news_and_no_policy_never_wait(now: datetime, zone: ZoneInfo) -> None:
    assert deliver_at(now, zone=zone, quiet=NIGHT, urgent=True) is None
    assert deliver_at(now, zone=zone, quiet=None, urgent=False) is None
    assert deliver_at(now, zone=zone, quiet=NIGHT, urgent=False) == quiet_until(now, zone=zone, quiet=NIGHT)


def test_which_changes_cannot_wait_for_the_morning() -> None:
    now = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)

    def urgent(
        category: Category = Category.NORMAL, status: Status = Status.APPROVED, starts_in: float = 10
    ) -> bool:
        start = now + timedelta(hours=starts_in)
        return cannot_wait(
            category=category,
            status=status,
            starts_at=start,
            ends_at=start + timedelta(hours=1),
            now=now,
            within=timedelta(hours=2),
        )

    assert not urgent()  # starts tomorrow morning: the reminder waits
    assert urgent(starts_in=2)  # starts within the next two hours
    assert urgent(starts_in=-0.5)  # its window is open
    assert not urgent(starts_in=-5, status=Status.COMPLETED)  # over: a review reminder waits
    assert urgent(starts_in=-5, status=Status.IN_PROGRESS)  # overrunning
    assert urgent(category=Category.EMERGENCY)


def test_the_policy_reads_quiet_hours_and_names_the_line_of_a_mistake() -> None:
    assert parse_policy(TEST_POLICY).quiet_hours is None
    policy = parse_policy(TEST_POLICY + 'quiet_hours: {start: "21:00", end: "07:30", unless_within: 3h}\n')
    assert policy.quiet_hours == QuietHours(start="21:00", end="07:30", unless_within=timedelta(hours=3))
    assert policy.quiet_hours.start_time == time(21, 0)
    defaults = parse_policy(TEST_POLICY + "quiet_hours: {}\n").quiet_hours
    assert defaults == QuietHours(start="20:00", end="08:00", unless_within=timedelta(hours=2))
    lines = len(TEST_POLICY.splitlines())
    with pytest.raises(PolicyError) as bad:
        parse_policy(TEST_POLICY + 'quiet_hours:\n  start: "25:00"\n  end: "08:00"\n  volume: low\n')
    shown = str(bad.value)
    assert (
        f":{lines + 2}: quiet_hours.start:" in shown
        and f":{lines + 4}: quiet_hours.volume: unknown key" in shown
    )
    with pytest.raises(PolicyError, match="quiet_hours: start and end are the same time"):
        parse_policy(TEST_POLICY + 'quiet_hours: {start: "08:00", end: "08:00"}\n')


def test_only_the_chases_are_held_over_the_readers_quiet_hours() -> None:
    due = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
    chases = [
        ApprovalChase(key="approval_reminder", due_at=due),
        PostChase(key="post_reminder_1", due_at=due),
        ReviewChase(key="review_reminder"),
    ]
    assert all(is_reminder(chase) for chase in chases)
    # an approver's first request, a review request, a change's news go at once
    assert not is_reminder(ReviewRequest())
    assert not is_reminder(Rescheduled(by="UREQ"))
    assert not is_reminder(None)
