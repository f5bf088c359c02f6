"""Quiet hours: a reminder or notice that would reach someone's DMs at night waits for their
morning, in their own Slack time zone, unless the change cannot wait (it is an emergency,
under way, or starts within the policy's few hours). Pure: the caller brings the zone."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.calendar import scheduled_moment
from domain.durations import Duration
from domain.enums import Category, Status
from domain.messages import ApprovalChase, Message, PostChase, ReviewChase

HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"


class QuietHours(BaseModel):
    """From `start` to `end` (local HH:MM, across midnight when `end` is earlier) DMs wait;
    a change starting within `unless_within` (or an emergency) is told at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: str = Field(default="20:00", pattern=HH_MM)
    end: str = Field(default="08:00", pattern=HH_MM)
    unless_within: Duration = Field(default=timedelta(hours=2), ge=timedelta(0))

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end are the same time: no quiet hours (leave quiet_hours out)")
        return self

    @property
    def start_time(self) -> time:
        return time(int(self.start[:2]), int(self.start[3:]))

    @property
    def end_time(self) -> time:
        return time(int(self.end[:2]), int(self.end[3:]))

    def is_quiet(self, wall: time) -> bool:
        """Whether the local wall-clock time `wall` falls in the quiet hours."""
        start, end = self.start_time, self.end_time
        if start < end:
            return start <= wall < end
        return wall >= start or wall < end


def quiet_until(now: datetime, *, zone: ZoneInfo, quiet: QuietHours) -> datetime | None:
    """When the quiet hours around `now` end in `zone` (None: `now` is not quiet there).
    An end the clocks skip (DST) is the first moment after the gap."""
    local = now.astimezone(zone)
    if not quiet.is_quiet(local.time().replace(tzinfo=None)):
        return None
    end = quiet.end_time
    day = local.date()
    if local.time().replace(tzinfo=None) >= end:
        day += timedelta(days=1)  # quiet since the evening: the end is tomorrow morning
    moment = scheduled_moment(day, end.hour, end.minute, zone)
    return moment if moment > now else None


def cannot_wait(
    *,
    category: Category,
    status: Status,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
    within: timedelta,
) -> bool:
    """A change whose news cannot wait for the morning: an emergency, one under way, or one
    whose window is open or opens within `within`."""
    if category is Category.EMERGENCY or status is Status.IN_PROGRESS:
        return True
    return starts_at <= now + within and ends_at > now


def deliver_at(now: datetime, *, zone: ZoneInfo, quiet: QuietHours | None, urgent: bool) -> datetime | None:
    """When a DM settled at `now` goes out: None for at once, else the end of the
    recipient's quiet hours."""
    if quiet is None or urgent:
        return None
    return quiet_until(now, zone=zone, quiet=quiet)


# The chases a notice causes and the gateway fans out to several people: reminders, deadlines
# and escalations, which wait for each reader's morning. An approver's first request (the card
# at filing) and a change's news are not reminders and go at once.
REMINDERS = (ApprovalChase, PostChase, ReviewChase)


def is_reminder(message: Message | None) -> bool:
    """Whether a fanned-out message is a chase held over its readers' quiet hours."""
    return isinstance(message, REMINDERS)
