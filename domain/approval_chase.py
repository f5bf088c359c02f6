"""Chasing an approval: when it is due, and the notices that chase it (a reminder to the
approvers who have not answered, the deadline with its escalation, and the requester told
when the window opens unapproved). Pure; the notice pass settles them (usecases/chase.py)."""

from __future__ import annotations

from datetime import datetime

from domain.approval_policy import ApprovalDeadline
from domain.enums import Category, Risk
from domain.timeline import PlannedNotice

APPROVAL_REMINDER = "approval_reminder"
APPROVAL_DEADLINE = "approval_deadline"
UNAPPROVED_START = "approval_at_start"
# Not prefixed like the chases that outlive the window (post_, review_): approving,
# rejecting, cancelling or moving the change drops them with the window's notices.
APPROVAL_NOTICES = (APPROVAL_REMINDER, APPROVAL_DEADLINE, UNAPPROVED_START)


def approval_due(
    deadline: ApprovalDeadline, *, category: Category, risk: Risk, since: datetime, starts_at: datetime
) -> datetime | None:
    """When the approvers' time is up: the policy's deadline after `since` (filing, or the
    approvals voided), never later than the window's start. None: the change is not chased."""
    within = deadline.within(category=category, risk=risk)
    if within is None:
        return None
    return min(since + within, starts_at)


def plan_approval_chase(
    deadline: ApprovalDeadline,
    *,
    since: datetime,
    due_at: datetime | None,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> list[PlannedNotice]:
    """The chase of a change waiting for approval since `since`: the reminder at
    `remind_at` of its time, the deadline, and the flag at the window's start; only those
    still ahead of `now` (a reminder already sent is not sent again after a move)."""
    notices: list[PlannedNotice] = []
    if due_at is not None:
        remind = since + (due_at - since) * deadline.remind_at
        if deadline.remind_at > 0 and now < remind < due_at:
            notices.append(PlannedNotice(APPROVAL_REMINDER, remind, due_at))
        if due_at >= now:
            notices.append(PlannedNotice(APPROVAL_DEADLINE, due_at, None))
    if deadline.flag_unapproved_start and starts_at > now:
        notices.append(PlannedNotice(UNAPPROVED_START, starts_at, ends_at))
    return notices


def is_approval_notice(key: str) -> bool:
    return key in APPROVAL_NOTICES
