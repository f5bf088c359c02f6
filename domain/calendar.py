"""Calendar ranges in the policy's time zone: local days, correct across DST."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


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
    text: str, *, now: datetime, zone: ZoneInfo, days_ahead: int = 0
) -> CalendarRange | None:
    """`today`, `week` or `YYYY-MM-DD`; None when it is none of them."""
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
    return days_range(day, 1, zone, f"Changes on {day:%a %d %b %Y}")


def scheduled_moment(day: date, hour: int, minute: int, zone: ZoneInfo) -> datetime:
    """Local wall-clock time on `day` as UTC (a time skipped by DST moves forward)."""
    local = datetime.combine(day, time(hour, minute), tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).astimezone(UTC)


def report_range(text: str, *, now: datetime, zone: ZoneInfo) -> CalendarRange | None:
    """`week` (the last 7 days), `month` (this month so far) or `YYYY-MM`; None otherwise."""
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
    following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
    return CalendarRange(
        local_midnight(first, zone), local_midnight(following, zone), f"Change report, {first:%B %Y}"
    )
