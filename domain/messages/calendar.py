"""Messages of the change calendar: the daily digest and change freezes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.calendar import CalendarRange
from domain.messages.base import ChangeMessage, Moment, UserId

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
    """`by` declared (`started`, with `reason`, until `until` if given) or lifted a change
    freeze; `as_planned`: it ended itself at the end it was declared with."""

    template: Literal["freeze"] = "freeze"
    started: bool
    by: UserId
    reason: str = ""
    until: Moment | None = None
    as_planned: bool = False


@dataclass(frozen=True, kw_only=True)
class FreezeCovers(ChangeMessage):
    """To an owner of an approved change inside a freeze `by` just declared: it cannot start
    while the freeze is on (until `until`, or until lifted)."""

    template: Literal["freeze_covers"] = "freeze_covers"
    by: UserId
    reason: str = ""
    until: Moment | None = None
