"""Messages of the timeline: the notices planned around a change's window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.messages.base import ChangeMessage, Moment, NoticeKey


@dataclass(frozen=True, kw_only=True)
class TimelineNotice(ChangeMessage):
    """Notice `key`, due at `due_at` (`late`: sent after it); `actions` adds the
    implementer's buttons."""

    template: Literal["notice"] = "notice"
    key: NoticeKey
    late: bool = False
    due_at: Moment
    actions: bool = False


@dataclass(frozen=True, kw_only=True)
class StakeholderNotice(ChangeMessage):
    """Notice `key` as the stakeholders read it (document 001's notification template: what,
    when, services, expected impact and downtime, contact, rollback), from the CR when sent."""

    template: Literal["stakeholder_notice"] = "stakeholder_notice"
    key: NoticeKey
    late: bool = False
    due_at: Moment
