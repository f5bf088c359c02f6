"""Calendar ranges in the policy's time zone: local days, correct across DST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.bounds import DEFAULT_MAX_AHEAD, EARLIEST_DAY, last_calendar_day, month_in_range


@dataclass(frozen=True)
class CalendarRange:
    start: datetime  # UTC
    end: datetime  # UTC, exclusive
    title: str


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)


def days_range(first: date, days: int, zone: ZoneInfo, title: str) -> CalendarRange:
    return CalendarRange(
        local_midnight(first, zone), local_midnight(first + timedelta(days=days), zone), title
    )


def parse_calendar_range(
    text: str, *, now: datetime, zone: ZoneInfo, days_ahead: int = 0, max_ahead: timedelta = DEFAULT_MAX_AHEAD
) -> CalendarRange | None:
    """`today`, `week` or `YYYY-MM-DD` from EARLIEST_DAY to as far ahead as a change may
    start; None when it is none of them. Never raises."""
    today = now.astimezone(zone).date()
    word = (text or "today").strip().lower()
    if word == "today":
        return days_range(today, 1 + days_ahead, zone, f"Changes today, {today:%a %d %b}")
    if word == "week":
        return days_range(today, 7, zone, f"Changes this week, from {today:%a %d %b}")
    try:
        day = date.fromisoformat(word)
    except ValueError:
        return None
    if not EARLIEST_DAY <= day <= last_calendar_day(now=now, zone=zone, max_ahead=max_ahead):
        return None
    return days_range(day, 1, zone, f"Changes on {day:%a %d %b %Y}")


def scheduled_moment(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock time on `day` as UTC (a time skipped by DST moves forward)."""
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).astimezone(UTC)


def report_range(text: str, *, now: datetime, zone: ZoneInfo) -> CalendarRange | None:
    """`week` (the last 7 days), `month` (this month so far) or `YYYY-MM` from EARLIEST_DAY
    to this month; None otherwise. Never raises."""
    word = (text or "month").strip().lower()
    today = now.astimezone(zone).date()
    if word == "week":
        first = today - timedelta(days=6)
        return days_range(first, 7, zone, f"Change report, week {first:%d %b} – {today:%d %b %Y}")
    if word == "month":
        first = today.replace(day=1)
        return CalendarRange(
            local_midnight(first, zone),
            local_midnight(today + timedelta(days=1), zone),
            f"Change report, {first:%B %Y} so far",
        )
    try:
        first = datetime.strptime(word, "%Y-%m").date()
    except ValueError:
        return None
    if not month_in_range(first, today=today):
        return None
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return CalendarRange(
        local_midnight(first, zone), local_midnight(following, zone), f"Change report, {first:%B %Y}"
    )
