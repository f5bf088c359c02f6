"""Messages of reports: the CAB agenda and the metrics report, loaded when sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.calendar import CalendarRange
from domain.messages.base import Moment


@dataclass(frozen=True, kw_only=True)
class CabAgendaPost:
    """This week's CAB agenda, as it stands when it is sent."""

    template: Literal["cab_agenda"] = "cab_agenda"


@dataclass(frozen=True, kw_only=True)
class ReportPost:
    """The metrics report of `start`..`end`, its chart uploaded in its thread; with
    `previous_start`, its trends against `previous_start`..`start` (rows from before have none)."""

    template: Literal["report"] = "report"
    start: Moment
    end: Moment
    title: str
    previous_start: Moment | None = None

    @property
    def span(self) -> CalendarRange:
        return CalendarRange(self.start, self.end, self.title)

    @property
    def previous(self) -> CalendarRange | None:
        if self.previous_start is None:
            return None
        return CalendarRange(self.previous_start, self.start, "the period before")
