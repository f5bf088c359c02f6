"""What the use cases answer with: the outcomes of actions and the views (calendar, CAB
agenda, report, feed, App Home) that modals render. Pure values."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from domain import quorum
from domain.calendar import CalendarRange
from domain.calendar_policy import BlackoutHit, Freeze
from domain.listing import Counted
from domain.metrics import Metrics, WeekPoint
from domain.model import (
    Change,
)


class ProgressAction(StrEnum):
    START = "start"
    COMPLETE = "complete"
    FAIL = "fail"
    ROLLBACK = "rollback"
    CLOSE = "close"


@dataclass(frozen=True)
class ActionOutcome:
    change: Change
    refusal: str | None = None


@dataclass(frozen=True)
class CalendarView:
    range: CalendarRange
    now: datetime
    scheduled: Counted
    awaiting_approval: Counted
    in_progress: Counted
    overdue: Counted
    post_approval_overdue: Counted = field(default_factory=lambda: Counted((), 0))
    freezes: list[Freeze] = field(default_factory=list)
    blackouts: list[BlackoutHit] = field(default_factory=list)


@dataclass(frozen=True)
class CabAgenda:
    now: datetime
    awaiting: Counted
    high_risk: Counted
    ended_badly: Counted
    overdue_reviews: Counted
    overdue_review_ids: tuple[str, ...] = ()  # all of them: the agenda names those it cannot show


@dataclass(frozen=True)
class Report:
    title: str
    metrics: Metrics
    series: list[WeekPoint]
    previous: Metrics | None = None  # the period before, for the trends


@dataclass(frozen=True)
class FeedData:
    now: datetime
    until: datetime
    changes: Counted
    blackouts: list[BlackoutHit]
    freezes: list[Freeze]


@dataclass(frozen=True)
class HomeView:
    user: str
    now: datetime
    mine: Counted
    awaiting_me: Counted  # approvals (and post-approvals) the user can give now
    upcoming: Counted
    blackouts: list[BlackoutHit]
    freezes: list[Freeze]


@dataclass(frozen=True)
class DecisionOutcome:
    change: Change
    refusal: quorum.Refusal | None = None

    @property
    def accepted(self) -> bool:
        return self.refusal is None
