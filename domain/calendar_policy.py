"""Maintenance windows and blackouts: when a category of change may run.

Everything is computed in the policy's time zone on local wall-clock times, so a
window "Sat 02:00-06:00" stays 02:00-06:00 local across DST; a window whose end is
earlier than its start crosses midnight.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from domain.enums import Category
from domain.lead_time import LeadTime

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HORIZON = timedelta(days=120)


def _clock_time(value: object) -> str:
    text = str(value).strip()
    if text == "24:00":
        return text
    try:
        time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{value}' is not a time like 09:00 (or 24:00 for midnight at the end)") from None
    if len(text) != 5:
        raise ValueError(f"'{value}' is not a time like 09:00")
    return text


ClockTime = Annotated[str, BeforeValidator(_clock_time)]


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeeklySlot(_Strict):
    """Days of the week and a local time range; `end` before `start` crosses midnight."""

    days: list[Day] = Field(default_factory=lambda: list(DAYS), min_length=1)
    start: ClockTime = "00:00"
    end: ClockTime = "24:00"

    @model_validator(mode="after")
    def _not_empty(self) -> WeeklySlot:
        if _minutes(self.start) == _minutes(self.end) % (24 * 60) and self.end != "24:00":
            raise ValueError(f"the slot {self.start}-{self.end} is empty")
        return self

    def occurrences(
        self, zone: ZoneInfo, around: datetime, span: timedelta
    ) -> Iterator[tuple[datetime, datetime]]:
        """(start, end) in UTC of every occurrence that may touch [around - 1 day, around + span]."""
        first = around.astimezone(zone).date() - timedelta(days=1)
        start_minutes = _minutes(self.start)
        end_minutes = _minutes(self.end)
        crosses = end_minutes <= start_minutes
        # up to span.days + 2 local days on: across a spring-forward change the end can fall that late
        for offset in range((span.days if span.days > 0 else 0) + 4):
            day = first + timedelta(days=offset)
            if DAYS[day.weekday()] not in self.days:
                continue
            begin = _at(day, start_minutes, zone)
            finish = (
                _at(day + timedelta(days=1), end_minutes, zone) if crosses else _at(day, end_minutes, zone)
            )
            yield begin, finish


def _at(day: date, minutes: int, zone: ZoneInfo) -> datetime:
    day += timedelta(days=minutes // (24 * 60))
    minutes %= 24 * 60
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone).astimezone(UTC)  # a time skipped by DST moves forward


class DateRange(_Strict):
    start: date = Field(alias="from")
    end: date = Field(alias="to")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"'to' ({self.end}) is before 'from' ({self.start})")
        return self


class Holidays(_Strict):
    country: str = Field(min_length=2, max_length=3)
    subdiv: str | None = None

    @field_validator("country")
    @classmethod
    def _known(cls, value: str) -> str:
        # The `holidays` package is imported only by policies that use it (~45 ms), and the
        # country is checked against its registry of codes: list_supported_countries() would
        # import every country's module to list subdivisions (~0.13 s) we do not need here.
        from holidays.registry import EntityLoader

        if value.upper() not in EntityLoader.get_country_codes(include_aliases=True):
            raise ValueError(f"'{value}' is not a country the holidays package knows (use ISO codes like GB)")
        return value.upper()


class HolidayFreeze(Holidays):
    days_before: int = Field(ge=1, le=60)
    only: list[str] = Field(default_factory=list)  # holiday names to freeze before (empty: all)


class BusinessDays(_Strict):
    last: int = Field(ge=1, le=15)
    of: Literal["month", "quarter"] = "month"


class Blackout(_Strict):
    """A period with no changes. Exactly one rule; `categories` it blocks (default: all
    but emergency)."""

    name: str = Field(min_length=1, max_length=80)
    weekly: WeeklySlot | None = None
    dates: list[DateRange] | None = None
    holidays: Holidays | None = None
    before_holidays: HolidayFreeze | None = None
    last_business_days: BusinessDays | None = None
    categories: list[Category] = Field(
        default_factory=lambda: [Category.STANDARD, Category.NORMAL, Category.MAJOR]
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Blackout:
        rules = [
            r
            for r in (self.weekly, self.dates, self.holidays, self.before_holidays, self.last_business_days)
            if r is not None
        ]
        if len(rules) != 1:
            raise ValueError(
                "give exactly one of weekly, dates, holidays, before_holidays or last_business_days"
            )
        return self


Windows = dict[Category, Literal["anytime"] | list[WeeklySlot]]


@dataclass(frozen=True)
class Freeze:
    """An ad-hoc change freeze declared in Slack; blocks every category but emergency."""

    id: int
    reason: str
    started_by: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True)
class BlackoutHit:
    name: str
    start: datetime
    end: datetime


def _days(start: date, end: date) -> Iterator[date]:
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


@lru_cache(maxsize=64)
def _holiday_table(country: str, subdiv: str | None, year: int) -> dict[date, str]:
    import holidays as holiday_calendars  # see Holidays._known

    return dict(holiday_calendars.country_holidays(country, subdiv=subdiv, years=year).items())


def holidays_between(rule: Holidays, start: date, end: date) -> list[tuple[date, str]]:
    found: list[tuple[date, str]] = []
    for year in range(start.year, end.year + 1):
        found += [
            (d, n) for d, n in _holiday_table(rule.country, rule.subdiv, year).items() if start <= d <= end
        ]
    return sorted(found)


def _day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    return _at(day, 0, zone), _at(day + timedelta(days=1), 0, zone)


def blackout_periods(
    blackout: Blackout, *, zone: ZoneInfo, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """Every period of this blackout that overlaps [start, end)."""
    local_first = start.astimezone(zone).date() - timedelta(days=1)
    local_last = end.astimezone(zone).date() + timedelta(days=1)
    spans: Iterable[tuple[datetime, datetime]] = ()
    if blackout.weekly is not None:
        spans = blackout.weekly.occurrences(zone, start, end - start)
    elif blackout.dates is not None:
        spans = [(_day_span(r.start, zone)[0], _day_span(r.end, zone)[1]) for r in blackout.dates]
    elif blackout.holidays is not None:
        spans = [_day_span(d, zone) for d, _ in holidays_between(blackout.holidays, local_first, local_last)]
    elif blackout.before_holidays is not None:
        rule = blackout.before_holidays
        ahead = holidays_between(rule, local_first, local_last + timedelta(days=rule.days_before))
        spans = [
            (_day_span(d - timedelta(days=rule.days_before), zone)[0], _day_span(d, zone)[1])
            for d, name in ahead
            if not rule.only or name in rule.only
        ]
    elif blackout.last_business_days is not None:
        spans = [
            _day_span(d, zone)
            for d in _last_business_days(blackout.last_business_days, local_first, local_last)
        ]
    for period_start, period_end in spans:
        if period_start < end and start < period_end:
            yield period_start, period_end


def _last_business_days(rule: BusinessDays, first: date, last: date) -> Iterator[date]:
    for day in _days(first, last):
        if day.weekday() >= 5:
            continue
        if rule.of == "quarter" and day.month % 3 != 0:
            continue
        following = [d for d in _days(day + timedelta(days=1), _period_end(day)) if d.weekday() < 5]
        if len(following) < rule.last:
            yield day


def _period_end(day: date) -> date:
    first_of_next = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return first_of_next - timedelta(days=1)


def blackout_hits(
    *,
    blackouts: Sequence[Blackout],
    freezes: Sequence[Freeze],
    category: Category,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
) -> list[BlackoutHit]:
    hits: list[BlackoutHit] = []
    for blackout in blackouts:
        if category not in blackout.categories:
            continue
        hits += [
            BlackoutHit(blackout.name, s, e)
            for s, e in blackout_periods(blackout, zone=zone, start=start, end=end)
        ]
    if category is not Category.EMERGENCY:
        for freeze in freezes:
            freeze_end = freeze.ended_at or datetime.max.replace(tzinfo=UTC)
            if freeze.started_at < end and start < freeze_end:
                hits.append(
                    BlackoutHit(
                        f"Change freeze: {freeze.reason or 'declared in Slack'}",
                        freeze.started_at,
                        freeze_end,
                    )
                )
    return sorted(hits, key=lambda hit: hit.start)


def inside_window(
    windows: Windows, *, category: Category, start: datetime, end: datetime, zone: ZoneInfo
) -> bool:
    slots = windows.get(category, "anytime")
    if slots == "anytime":
        return True
    for slot in slots:
        for slot_start, slot_end in slot.occurrences(zone, start, timedelta(days=1)):
            if slot_start <= start and end <= slot_end:
                return True
    return False


def describe_window(windows: Windows, category: Category) -> str:
    slots = windows.get(category, "anytime")
    if slots == "anytime":
        return "any time"
    return "; ".join(
        f"{'/'.join(d.capitalize() for d in slot.days)} {slot.start}-{slot.end}" for slot in slots
    )


def next_allowed_start(
    *,
    windows: Windows,
    blackouts: Sequence[Blackout],
    freezes: Sequence[Freeze],
    category: Category,
    duration: timedelta,
    after: datetime,
    zone: ZoneInfo,
) -> datetime | None:
    """The earliest start >= `after` at which a change this long fits its window and
    touches no blackout, within the next 120 days."""
    horizon = after + HORIZON
    candidates = {_round_up(after)}
    slots = windows.get(category, "anytime")
    if slots != "anytime":
        for slot in slots:
            candidates |= {s for s, _ in slot.occurrences(zone, after, HORIZON) if s >= after}
    for blackout in blackouts:
        if category in blackout.categories:
            candidates |= {
                e for _, e in blackout_periods(blackout, zone=zone, start=after, end=horizon) if e >= after
            }
    for freeze in freezes:
        if freeze.ended_at and freeze.ended_at >= after:
            candidates.add(freeze.ended_at)
    for candidate in sorted(c for c in candidates if c < horizon):
        finish = candidate + duration
        if not inside_window(windows, category=category, start=candidate, end=finish, zone=zone):
            continue
        if blackout_hits(
            blackouts=blackouts, freezes=freezes, category=category, start=candidate, end=finish, zone=zone
        ):
            continue
        return candidate
    return None


def _round_up(moment: datetime, step: int = 15) -> datetime:
    moment = moment.replace(second=0, microsecond=0) + (
        timedelta(minutes=1) if moment.second or moment.microsecond else timedelta(0)
    )
    extra = (-moment.minute) % step
    return moment + timedelta(minutes=extra)


def schedule_problems(
    *,
    windows: Windows,
    blackouts: Sequence[Blackout],
    freezes: Sequence[Freeze],
    category: Category,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
    lead: LeadTime | None = None,
) -> dict[str, str]:
    """Inline errors for a window outside the category's windows, touching a blackout or
    starting sooner than the category's `lead` time allows, with the next slot that would
    be accepted."""
    problems: list[str] = []
    if not inside_window(windows, category=category, start=start, end=end, zone=zone):
        problems.append(f"{category.value.capitalize()} changes run {describe_window(windows, category)}.")
    hits = blackout_hits(
        blackouts=blackouts, freezes=freezes, category=category, start=start, end=end, zone=zone
    )
    if hits:
        names = ", ".join(dict.fromkeys(hit.name for hit in hits))
        problems.append(f"It touches a blackout: {names}.")
    after = start
    if lead is not None and start < lead.earliest:
        problems.append(lead.problem)
        after = lead.earliest
    if not problems:
        return {}
    slot = next_allowed_start(
        windows=windows,
        blackouts=blackouts,
        freezes=freezes,
        category=category,
        duration=end - start,
        after=after,
        zone=zone,
    )
    hint = (
        f" Next allowed start: {slot.astimezone(zone):%a %d %b %Y %H:%M %Z}."
        if slot
        else " No allowed slot in the next 120 days."
    )
    hint += " Or tick 'request an exception' and say why."
    return {"starts_at": " ".join(problems) + hint}
