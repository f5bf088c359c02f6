"""Messages of the change calendar: the daily digest and change freezes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.calendar import CalendarRange
from domain.messages.base import Moment, UserId

DIGEST_TITLE = "Change calendar"


@dataclass(frozen=True, kw_only=True)
class CalendarDigest:
    """The calendar of `start`..`end`, loaded when it is sent."""

    template: Literal["digest"] = "digest"
    start: Moment
    end: Moment
    title: str = DIGEST_TITLE

    @property
    def span(self) -> CalendarRange:
        return CalendarRange(self.start, self.end, self.title or DIGEST_TITLE)


@dataclass(frozen=True, kw_only=True)
class FreezeChanged:
    """`by` declared (`started`, with `reason`) or lifted a change freeze."""

    template: Literal["freeze"] = "freeze"
    started: bool
    by: UserId
    reason: str = ""
