"""Messages caused by carrying a change out: started, completed, failed, cancelled, moved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from domain.enums import Status
from domain.messages.base import ChangeMessage, Moment, UserId


@dataclass(frozen=True, kw_only=True)
class ProgressUpdate(ChangeMessage):
    """`by` moved the CR to `status`, with their notes (failures, cancellations)."""

    template: Literal["progress"] = "progress"
    status: Status
    by: UserId
    notes: str = ""


@dataclass(frozen=True, kw_only=True)
class Rescheduled(ChangeMessage):
    """`by` moved the window (from `moved_from`); `reapproval`: the approvals were voided."""

    template: Literal["rescheduled"] = "rescheduled"
    by: UserId
    reapproval: bool = False
    moved_from: Annotated[tuple[Moment, Moment] | None, Field(alias="from")] = None


@dataclass(frozen=True, kw_only=True)
class ChangeEvent:
    """A PagerDuty Change Event: the CR reached `status` at `at`."""

    template: Literal["change_event"] = "change_event"
    status: Status
    at: Moment
    by: UserId
    notes: str = ""
