"""The approval chase as people see it: the deadline on the card and in the digest, who
can still approve each step, an approver's own decision on their DM copy, the reminder,
overdue and unapproved-start messages, and the delegate told. Pure builders."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from domain.approval_chase import APPROVAL_DEADLINE, UNAPPROVED_START
from domain.delegation import Approver
from domain.enums import Decision, Status
from domain.messages import ApprovalChase, DelegationNews
from domain.model import AuditAction, Change, Phase
from modals.text import Mrkdwn, escaped_clip, join_md, md, mention, role_label, slack_date

NAMES_SHOWN = 10  # people named per step; the rest are counted


def approver_names(approvers: Sequence[Approver]) -> Mrkdwn:
    """ "<@U1>, <@U2> (for <@U3>) and 4 more": who can still sign a step."""
    shown = [
        md("{} (for {})", mention(a.user), mention(a.for_user)) if a.for_user else mention(a.user)
        for a in approvers[:NAMES_SHOWN]
    ]
    more = md(" and {} more", str(len(approvers) - NAMES_SHOWN)) if len(approvers) > NAMES_SHOWN else ""
    return md("{}{}", join_md(", ", shown), more)


def overdue_since(change: Change) -> tuple[datetime, str | None] | None:
    """When the change went overdue for approval, and the role told (None: it has not)."""
    entry = next((e for e in reversed(change.audit) if e.action is AuditAction.APPROVAL_OVERDUE), None)
    if entry is None or change.approval_due_at is None:
        return None
    role = entry.details.get("escalated_to")
    return entry.at, str(role) if role else None


def approval_due_line(change: Change, zone: ZoneInfo) -> Mrkdwn | None:
    """ ":alarm_clock: Approval due by <date>", or overdue and whom it was escalated to."""
    if change.status is not Status.PENDING_APPROVAL or change.approval_due_at is None:
        return None
    overdue = overdue_since(change)
    if overdue is None:
        return md(":alarm_clock: Approval due by {}", slack_date(change.approval_due_at, zone))
    _, role = overdue
    told = md("; escalated to {}", role_label(role)) if role else ""
    return md(
        ":rotating_light: Approval *overdue*: it was due by {}{}",
        slack_date(change.approval_due_at, zone),
        told,
    )


def approval_due_flag(change: Change, *, now: datetime, zone: ZoneInfo) -> Mrkdwn | None:
    """The digest's and calendar's "approval due <date>" (or overdue) on a waiting change."""
    due = change.approval_due_at
    if change.status is not Status.PENDING_APPROVAL or due is None:
        return None
    if due <= now:
        return md(":rotating_light: approval overdue since {}", slack_date(due, zone))
    return md("approval due by {}", slack_date(due, zone))


def own_decision_line(change: Change, viewer: str, zone: ZoneInfo) -> Mrkdwn | None:
    """On an approver's own DM copy, in place of the buttons: "You approved <date>"."""
    entries = [e for e in (*change.approvals, *change.post_approvals) if e.user == viewer]
    if not entries:
        return None
    entry = entries[-1]
    if entry.phase is Phase.POST:
        verb = "post-approved" if entry.decision is Decision.APPROVE else "refused the post-approval of"
    else:
        verb = "approved" if entry.decision is Decision.APPROVE else "rejected"
    reason = md(": {}", escaped_clip(entry.reason, 300)) if entry.reason else ""
    return md(":ballot_box_with_check: You {} this change {}{}", verb, slack_date(entry.at, zone), reason)


def approval_chase_message(change: Change, message: ApprovalChase, zone: ZoneInfo) -> Mrkdwn:
    """A reminder to an approver, the overdue notice (to the approvers, or to the
    escalation role), or the requester told the window opened unapproved."""
    title = escaped_clip(change.draft.title, 150)
    late = Mrkdwn(" (sent late: changebot was unavailable)") if message.late else ""
    due = slack_date(message.due_at, zone)
    if message.key == UNAPPROVED_START:
        return md(
            ":warning: Your change *{}* {} was to start {}, but it is not approved yet. "
            "Do not start it: reschedule it, or ask its approvers.{}",
            change.id,
            title,
            slack_date(change.draft.starts_at, zone),
            late,
        )
    if message.key == APPROVAL_DEADLINE and message.role:
        return md(
            ":rotating_light: *{}* {} is overdue for approval (due by {}); you are told as {}. "
            "Requested by {}.{}",
            change.id,
            title,
            due,
            role_label(message.role),
            mention(change.requester),
            late,
        )
    if message.key == APPROVAL_DEADLINE:
        return md(
            ":rotating_light: *{}* {} is overdue for approval (due by {}): please decide.{}",
            change.id,
            title,
            due,
            late,
        )
    return md(
        ":alarm_clock: Reminder: *{}* {} waits for your approval, due by {}.{}", change.id, title, due, late
    )


def delegation_message(message: DelegationNews, zone: ZoneInfo) -> Mrkdwn:
    """To the delegate: what they now hold, until when (or that it ended)."""
    if message.ended:
        return md(
            "{} ended their delegation to you: their approvals are theirs again.", mention(message.delegator)
        )
    return md(
        ":handshake: {} is away and handed you their approvals until {}: you may approve what they "
        "may, and you get their approval requests.",
        mention(message.delegator),
        slack_date(message.until - timedelta(minutes=1), zone),  # through the day given
    )
