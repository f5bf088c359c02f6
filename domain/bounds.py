"""Bounds on the dates people type or pick. Without them a CR from the year 9999 or one
lasting a century is filed, and a calendar for 9999-12-31 overflows. Every limit is here;
the policy's `limits` section chooses within the ceilings."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

# Calendars, reports and audit exports do not look back further than this.
EARLIEST_DAY = date(2000, 1, 1)
# Policy defaults (limits.max_ahead, limits.max_duration) and the most a policy may allow.
DEFAULT_MAX_AHEAD = timedelta(days=730)
DEFAULT_MAX_DURATION = timedelta(days=30)
CEILING_AHEAD = timedelta(days=3650)
CEILING_DURATION = timedelta(days=366)


def in_words(span: timedelta) -> str:
    """730 days, 30 days, 12 hours: how a limit reads in a message."""
    if span >= timedelta(days=1):
        days = span.days
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, int(span.total_seconds() // 3600))
    return f"{hours} hour{'s' if hours != 1 else ''}"


def window_bound_errors(
    starts_at: datetime | None,
    ends_at: datetime | None,
    *,
    now: datetime,
    max_ahead: timedelta,
    max_duration: timedelta,
) -> dict[str, str]:
    """A start too far ahead, or a window too long, keyed by form field."""
    errors: dict[str, str] = {}
    if starts_at is not None and starts_at > now + max_ahead:
        errors["starts_at"] = f"Pick a start within {in_words(max_ahead)} from now."
    if starts_at is not None and ends_at is not None and ends_at - starts_at > max_duration:
        errors["ends_at"] = (
            f"A change window lasts at most {in_words(max_duration)}; split longer work into several changes."
        )
    return errors


def last_calendar_day(*, now: datetime, zone: ZoneInfo, max_ahead: timedelta) -> date:
    """The furthest day `/change calendar` shows: as far ahead as a change may start."""
    return (now + max_ahead).astimezone(zone).date()


def month_in_range(first: date, *, today: date) -> bool:
    """A report covers a month from EARLIEST_DAY up to this one (later ones hold nothing yet)."""
    return EARLIEST_DAY <= first <= today.replace(day=1)


def period_problem(since: datetime, until: datetime, *, now: datetime) -> str | None:
    """Why an export period cannot be used, or None. Never raises (far dates overflow in UTC)."""
    latest = now + CEILING_AHEAD
    earliest = datetime.combine(EARLIEST_DAY, datetime.min.time(), tzinfo=UTC)
    try:
        since_utc, until_utc = since.astimezone(UTC), until.astimezone(UTC)
    except (OverflowError, ValueError):
        since_utc, until_utc = earliest - timedelta(days=1), latest
    if since_utc < earliest or until_utc > latest:
        return f"the period must lie between {EARLIEST_DAY.isoformat()} and {latest.date().isoformat()}"
    if until_utc <= since_utc:
        return "--until must be after --since"
    return None
