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
    """The metrics report of `start`..`end`, its chart uploaded in its thread."""

    template: Literal["report"] = "report"
    start: Moment
    end: Moment
    title: str

    @property
    def span(self) -> CalendarRange:
        return CalendarRange(self.start, self.end, self.title)
