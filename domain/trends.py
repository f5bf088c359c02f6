"""How a period's figures moved against the period before: the weekly report's trends
(arrows and deltas). Pure values; the report renders them."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import NamedTuple

from domain.metrics import Metrics


class Unit(StrEnum):
    PERCENT = "percent"  # a rate; its delta is in percentage points
    COUNT = "count"
    DURATION = "duration"  # seconds


class Direction(StrEnum):
    UP = "up"
    DOWN = "down"
    FLAT = "flat"


class Trend(NamedTuple):
    key: str
    label: str
    current: float | None
    previous: float | None
    unit: Unit
    higher_is_better: bool

    @property
    def delta(self) -> float | None:
        """current - previous; None when either side has no data."""
        if self.current is None or self.previous is None:
            return None
        return self.current - self.previous

    @property
    def direction(self) -> Direction | None:
        delta = self.delta
        if delta is None:
            return None
        if abs(delta) < _FLAT[self.unit]:
            return Direction.FLAT
        return Direction.UP if delta > 0 else Direction.DOWN

    @property
    def better(self) -> bool | None:
        """Whether the move is for the better (None: no data, or no move)."""
        direction = self.direction
        if direction is None or direction is Direction.FLAT:
            return None
        return (direction is Direction.UP) == self.higher_is_better


# Moves smaller than this read as flat: a tenth of a point, a fraction of a change, a minute.
_FLAT = {Unit.PERCENT: 0.05, Unit.COUNT: 0.05, Unit.DURATION: 30.0}


def _seconds(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds()


def trends(current: Metrics, previous: Metrics) -> list[Trend]:
    """The figures a team watches week to week, each against the period before."""
    return [
        Trend(
            "implemented", "Changes implemented", current.implemented, previous.implemented, Unit.COUNT, True
        ),
        Trend(
            "success_rate", "Success rate", current.success_rate, previous.success_rate, Unit.PERCENT, True
        ),
        Trend(
            "rollback_rate",
            "Rollback rate",
            current.rollback_rate,
            previous.rollback_rate,
            Unit.PERCENT,
            False,
        ),
        Trend(
            "change_failure_rate",
            "Change failure rate",
            current.change_failure_rate,
            previous.change_failure_rate,
            Unit.PERCENT,
            False,
        ),
        Trend(
            "approval_time_median",
            "Approval time (median)",
            _seconds(current.approval_time_median),
            _seconds(previous.approval_time_median),
            Unit.DURATION,
            False,
        ),
        Trend(
            "time_to_restore_mean",
            "Time to restore (MTTR)",
            _seconds(current.time_to_restore_mean),
            _seconds(previous.time_to_restore_mean),
            Unit.DURATION,
            False,
        ),
    ]
