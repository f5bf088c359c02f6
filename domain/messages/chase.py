"""Messages of the approval chase (reminders, the deadline, the window opening
unapproved) and of delegation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from domain.messages.base import Escalating, Moment, NoticeKey, UserId


@dataclass(frozen=True, kw_only=True)
class ApprovalChase(Escalating):
    """An approval reminder, its deadline (`due_at`), or the requester told that the
    window opened unapproved (`key`, domain/approval_chase.py)."""

    template: Literal["approval_chase"] = "approval_chase"
    key: NoticeKey
    due_at: Moment
    late: bool = False


@dataclass(frozen=True, kw_only=True)
class DelegationNews:
    """To the delegate: `delegator` handed them their approvals until `until`, or ended it."""

    template: Literal["delegation"] = "delegation"
    delegator: UserId
    until: Moment
    ended: bool = False
