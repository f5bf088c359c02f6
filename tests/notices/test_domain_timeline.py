"""Durations, notice planning and the send-or-skip verdict: pure domain, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.durations import format_offset, parse_duration
from domain.enums import Status
from domain.policy import NoticeSpec, Timeline
from domain.timeline import (
    MONITORING_END,
    OVERRUN,
    SHORT_NOTICE,
    PlannedNotice,
    Send,
    Skip,
    plan_notices,
    verdict,
)

FAST = settings(max_examples=200, deadline=None)

START = datetime(2026, 6, 10, 14, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
LATE_AFTER = timedelta(minutes=5)


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-24h", timedelta(hours=-24)),
        ("+15m", timedelta(minutes=15)),
        ("15m", timedelta(minutes=15)),
        ("0", timedelta(0)),
        ("+0", timedelta(0)),
        ("-0", timedelta(0)),
        (0, timedelta(0)),
        ("1d2h", timedelta(days=1, hours=2)),
        ("90s", timedelta(seconds=90)),
        ("1d", timedelta(days=1)),
        (" -1h ", timedelta(hours=-1)),
        ("-1h30m", timedelta(hours=-1, minutes=-30)),
    ],
)
def test_parse_duration_accepts_policy_forms(text: str | int, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("15", "15m"),
        ("abc", "15m"),
        ("1x", "15m"),
        ("", "15m"),
        ("-", "15m"),
        ("1h-30m", "15m"),
        ("+-1h", "15m"),
        (5, "needs a unit"),
        (-24, "needs a unit"),
    ],
)
def test_parse_duration_rejects_with_a_helpful_message(text: str | int, hint: str) -> None:
    with pytest.raises(ValueError, match=hint) as caught:
        parse_duration(text)
    assert f"'{text}'" in str(caught.value)


@pytest.mark.parametrize(
    ("delta", "label"),
    [
        (timedelta(hours=-24), "T-24h"),
        (timedelta(hours=-1), "T-1h"),
        (timedelta(0), "T-0"),
        (timedelta(minutes=15), "T+15m"),
        (timedelta(minutes=-90), "T-90m"),
        (timedelta(hours=-48), "T-48h"),
        (timedelta(days=-7), "T-7d"),
        (timedelta(seconds=90), "T+90s"),
    ],
)
def test_format_offset_says_it_how_people_do(delta: timedelta, label: str) -> None:
    assert format_offset(delta) == label


@FAST
@given(st.integers(min_value=-60 * 24 * 30, max_value=60 * 24 * 30))
def test_format_then_parse_round_trips_whole_minutes(minutes: int) -> None:
    delta = timedelta(minutes=minutes)
    label = format_offset(delta)
    assert label.startswith("T")
    assert parse_duration(label.removeprefix("T")) == delta


# --- plan_notices ------------------------------------------------------------------------


def by_key(planned: list[PlannedNotice]) -> dict[str, PlannedNotice]:
    return {notice.key: notice for notice in planned}


def test_default_timeline_approved_days_ahead_plans_every_notice() -> None:
    planned = plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=START - timedelta(days=3))
    assert [n.key for n in planned] == [
        "t_minus_24h",
        "t_minus_1h",
        "t_minus_15m",
        "t_0",
        "t_plus_15m",
        "t_plus_30m",
        OVERRUN,
    ]
    notices = by_key(planned)
    assert notices["t_minus_24h"] == PlannedNotice("t_minus_24h", START - timedelta(hours=24), START)
    assert notices["t_minus_1h"] == PlannedNotice("t_minus_1h", START - timedelta(hours=1), START)
    assert notices["t_0"].due_at == START
    assert notices["t_plus_15m"].due_at == START + timedelta(minutes=15)
    assert notices["t_0"].expires_at == END
    assert notices["t_plus_15m"].expires_at == END
    assert notices[OVERRUN] == PlannedNotice(OVERRUN, END, None)


def test_post_start_notice_outlives_a_tiny_window() -> None:
    """A window shorter than T+15m: the notice still gets its minute rather than expiring unsent."""
    end = START + timedelta(minutes=10)
    notices = by_key(
        plan_notices(Timeline(), starts_at=START, ends_at=end, approved_at=START - timedelta(days=2))
    )
    assert notices["t_0"].expires_at == end
    assert notices["t_plus_15m"].expires_at == START + timedelta(minutes=16)
    assert notices["t_plus_15m"].expires_at > notices["t_plus_15m"].due_at


def test_approved_three_hours_ahead_gets_one_short_notice_instead_of_t_minus_24h() -> None:
    approved = START - timedelta(hours=3)
    planned = plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=approved)
    keys = [n.key for n in planned]
    assert "t_minus_24h" not in keys
    assert keys.count(SHORT_NOTICE) == 1
    assert keys[0] == SHORT_NOTICE
    assert by_key(planned)[SHORT_NOTICE] == PlannedNotice(SHORT_NOTICE, approved, START)
    assert by_key(planned)["t_minus_1h"].due_at == START - timedelta(hours=1)


def test_approved_exactly_when_a_notice_falls_due_counts_as_missed() -> None:
    approved = START - timedelta(hours=24)
    keys = [n.key for n in plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=approved)]
    assert keys[0] == SHORT_NOTICE
    assert "t_minus_24h" not in keys


def test_short_notice_disabled_sends_none() -> None:
    timeline = Timeline(short_notice=False)
    planned = plan_notices(timeline, starts_at=START, ends_at=END, approved_at=START - timedelta(hours=3))
    keys = [n.key for n in planned]
    assert SHORT_NOTICE not in keys
    assert "t_minus_24h" not in keys
    assert keys == ["t_minus_1h", "t_minus_15m", "t_0", "t_plus_15m", "t_plus_30m", OVERRUN]


def test_approved_after_start_gets_no_short_notice_and_no_pre_start_notice() -> None:
    """An emergency approved mid-window: nothing to warn about any more."""
    approved = START + timedelta(minutes=5)
    planned = plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=approved)
    keys = [n.key for n in planned]
    assert SHORT_NOTICE not in keys
    assert "t_minus_24h" not in keys
    assert "t_minus_1h" not in keys
    assert OVERRUN in keys


def test_approved_at_start_gets_no_short_notice() -> None:
    keys = [n.key for n in plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=START)]
    assert SHORT_NOTICE not in keys
    assert keys == ["t_0", "t_plus_15m", "t_plus_30m", OVERRUN]


def test_no_overrun_alert_when_disabled() -> None:
    planned = plan_notices(
        Timeline(overrun_alert=False), starts_at=START, ends_at=END, approved_at=START - timedelta(days=3)
    )
    assert [n.key for n in planned] == [
        "t_minus_24h",
        "t_minus_1h",
        "t_minus_15m",
        "t_0",
        "t_plus_15m",
        "t_plus_30m",
    ]


def test_empty_timeline_plans_only_the_overrun() -> None:
    planned = plan_notices(Timeline(notices=[]), starts_at=START, ends_at=END, approved_at=START)
    assert planned == [PlannedNotice(OVERRUN, END, None)]


def test_notice_offsets_from_policy_text() -> None:
    timeline = Timeline.model_validate(
        {
            "notices": [
                {"id": "t_minus_2d", "at": "-2d", "text": "Two days."},
                {"id": "t_0", "at": 0, "text": "Go."},
            ]
        }
    )
    planned = plan_notices(timeline, starts_at=START, ends_at=END, approved_at=START - timedelta(days=5))
    assert [(n.key, n.due_at) for n in planned] == [
        ("t_minus_2d", START - timedelta(days=2)),
        ("t_0", START),
        (OVERRUN, END),
    ]


offsets_minutes = st.lists(
    st.integers(min_value=-60 * 24 * 7, max_value=60 * 24), min_size=0, max_size=6, unique=True
)


@st.composite
def timelines(draw: st.DrawFn) -> Timeline:
    offsets = draw(offsets_minutes)
    notices = [
        NoticeSpec(id=f"n{i}", at=timedelta(minutes=minutes), text="x") for i, minutes in enumerate(offsets)
    ]
    return Timeline(notices=notices, short_notice=draw(st.booleans()), overrun_alert=draw(st.booleans()))


@FAST
@given(
    timeline=timelines(),
    window_minutes=st.integers(min_value=1, max_value=60 * 24 * 3),
    approved_before_minutes=st.integers(min_value=-60 * 24 * 2, max_value=60 * 24 * 14),
)
def test_planned_notices_are_sane(
    timeline: Timeline, window_minutes: int, approved_before_minutes: int
) -> None:
    ends_at = START + timedelta(minutes=window_minutes)
    approved_at = START - timedelta(minutes=approved_before_minutes)
    planned = plan_notices(timeline, starts_at=START, ends_at=ends_at, approved_at=approved_at)

    keys = [n.key for n in planned]
    assert len(keys) == len(set(keys)), "a notice key planned twice"
    assert planned == sorted(planned, key=lambda n: (n.due_at, n.key))

    specs = {spec.id: spec for spec in timeline.notices}
    for notice in planned:
        spec = specs.get(notice.key)
        if spec is not None and spec.at < timedelta(0):
            # A pre-start notice is never planned in the past, and is pointless once the change starts.
            assert notice.due_at > approved_at
            assert notice.expires_at == START
        elif spec is not None:
            assert notice.due_at == START + spec.at
            assert notice.expires_at is not None
            assert notice.expires_at >= ends_at
            assert notice.expires_at > notice.due_at
    if approved_at <= START:
        assert all(notice.due_at >= approved_at for notice in planned)

    missed = any(START + s.at <= approved_at for s in timeline.notices if s.at < timedelta(0))
    expect_short = missed and timeline.short_notice and approved_at < START
    assert (SHORT_NOTICE in keys) == expect_short
    if expect_short:
        assert by_key(planned)[SHORT_NOTICE] == PlannedNotice(SHORT_NOTICE, approved_at, START)
    assert (OVERRUN in keys) == timeline.overrun_alert

    expected = {s.id for s in timeline.notices if s.at >= timedelta(0) or START + s.at > approved_at}
    assert set(keys) - {SHORT_NOTICE, OVERRUN} == expected


# --- verdict -----------------------------------------------------------------------------


def judge(
    *,
    key: str = "t_minus_1h",
    status: Status = Status.APPROVED,
    now: datetime,
    due_at: datetime = START - timedelta(hours=1),
    expires_at: datetime | None = START,
) -> Send | Skip:
    return verdict(
        key=key, due_at=due_at, expires_at=expires_at, status=status, now=now, late_after=LATE_AFTER
    )


INACTIVE = [s for s in Status if s not in (Status.APPROVED, Status.IN_PROGRESS)]


@pytest.mark.parametrize("status", INACTIVE)
def test_skip_for_a_change_that_is_not_active(status: Status) -> None:
    result = judge(status=status, now=START - timedelta(hours=1))
    assert isinstance(result, Skip)
    assert status.value.replace("_", " ") in result.reason


@pytest.mark.parametrize("status", [Status.APPROVED, Status.IN_PROGRESS])
@pytest.mark.parametrize("key", ["t_0", "t_minus_1h", OVERRUN, SHORT_NOTICE])
def test_send_for_an_active_change(status: Status, key: str) -> None:
    assert judge(key=key, status=status, now=START - timedelta(hours=1)) == Send(late=False)


@pytest.mark.parametrize("status", [s for s in Status if s is not Status.COMPLETED])
def test_monitoring_end_needs_a_completed_change(status: Status) -> None:
    result = judge(key=MONITORING_END, status=status, now=END, due_at=END, expires_at=None)
    assert isinstance(result, Skip)


def test_monitoring_end_is_sent_for_a_completed_change() -> None:
    result = judge(key=MONITORING_END, status=Status.COMPLETED, now=END, due_at=END, expires_at=None)
    assert result == Send(late=False)


def test_skip_once_the_notice_expired() -> None:
    result = judge(now=START)
    assert isinstance(result, Skip)
    assert START.isoformat() in result.reason
    assert isinstance(judge(now=START + timedelta(hours=5)), Skip)


def test_no_expiry_never_skips_for_time() -> None:
    result = judge(key=OVERRUN, now=END + timedelta(days=3), due_at=END, expires_at=None)
    assert result == Send(late=True)


def test_send_on_time_within_late_after_and_late_beyond_it() -> None:
    due = START - timedelta(hours=1)
    assert judge(now=due) == Send(late=False)
    assert judge(now=due + LATE_AFTER) == Send(late=False)
    assert judge(now=due + LATE_AFTER + timedelta(seconds=1)) == Send(late=True)
    assert judge(now=due + timedelta(minutes=59)) == Send(late=True)


@FAST
@given(
    status=st.sampled_from(list(Status)),
    key=st.sampled_from(["t_minus_1h", "t_0", OVERRUN, SHORT_NOTICE, MONITORING_END]),
    delay=st.integers(min_value=-3600, max_value=7 * 86400),
    lifetime=st.one_of(st.none(), st.integers(min_value=0, max_value=86400)),
)
def test_verdict_property(status: Status, key: str, delay: int, lifetime: int | None) -> None:
    due = START
    now = due + timedelta(seconds=delay)
    expires = None if lifetime is None else due + timedelta(seconds=lifetime)
    result = judge(key=key, status=status, now=now, due_at=due, expires_at=expires)
    wanted = (
        status is Status.COMPLETED
        if key == MONITORING_END
        else status in (Status.APPROVED, Status.IN_PROGRESS)
    )
    if not wanted or (expires is not None and now >= expires):
        assert isinstance(result, Skip)
    else:
        assert result == Send(late=now - due > LATE_AFTER)


def test_a_reschedule_keeps_the_chases_and_replans_the_window_notices() -> None:
    """Which notices outlive a moved window is a domain rule the repository applies."""
    from domain.emergency import POST_DEADLINE, POST_REMINDER
    from domain.timeline import OUTLIVE_THE_WINDOW, REVIEW_DEADLINE, REVIEW_REMINDER

    for chase in (POST_REMINDER, POST_DEADLINE, REVIEW_REMINDER, REVIEW_DEADLINE):
        assert chase.startswith(OUTLIVE_THE_WINDOW), chase
    window = plan_notices(Timeline(), starts_at=START, ends_at=END, approved_at=START - timedelta(days=3))
    assert window and not any(n.key.startswith(OUTLIVE_THE_WINDOW) for n in window)
