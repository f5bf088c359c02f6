"""The approval chase: a change waiting for approval is chased by the notice pass. Its
approvers who have not answered are reminded once, and again at the deadline, when the
policy's escalation role is told and the card says overdue; the requester is told if the
window opens before it is approved. Planned at filing (usecases/intake.py) and again when
its window moves; approving, rejecting or cancelling it drops what is still pending."""

from __future__ import annotations

from datetime import datetime

from domain.approval_chase import APPROVAL_DEADLINE, UNAPPROVED_START, approval_due, plan_approval_chase
from domain.approval_policy import extra_steps_for
from domain.enums import Category, Risk, Status
from domain.intents import Intent, IntentKind
from domain.messages import ApprovalChase
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, ChangeDraft, StepSnapshot
from domain.policy import Policy
from domain.ports import DueNotice, NoticeSettlement
from domain.timeline import PlannedNotice
from domain.usecases.base import escalation, is_late, late_audit, skipped


def approval_chase(
    policy: Policy,
    *,
    category: Category,
    risk: Risk,
    since: datetime,
    starts_at: datetime,
    ends_at: datetime,
    now: datetime,
) -> tuple[datetime | None, list[PlannedNotice]]:
    """A change waiting for approval since `since`: its deadline and the notices chasing it."""
    deadline = policy.approvals.deadline
    if category is Category.EMERGENCY:  # its own chase: the post-approval
        return None, []
    due = approval_due(deadline, category=category, risk=risk, since=since, starts_at=starts_at)
    notices = plan_approval_chase(
        deadline, since=since, due_at=due, starts_at=starts_at, ends_at=ends_at, now=now
    )
    return due, notices


def filing_chase(
    policy: Policy, draft: ChangeDraft, risk: Risk, now: datetime
) -> tuple[datetime | None, list[PlannedNotice]]:
    """The chase of a change filed now that waits for approval."""
    return approval_chase(
        policy,
        category=draft.category,
        risk=risk,
        since=now,
        starts_at=draft.starts_at,
        ends_at=draft.ends_at,
        now=now,
    )


def rechase(
    policy: Policy, change: Change, *, starts_at: datetime, ends_at: datetime, now: datetime, voided: bool
) -> tuple[datetime | None, list[PlannedNotice]]:
    """The chase of a change still (or again, `voided`) waiting for approval after its
    window moved: from now if its approvals were voided, else from its filing."""
    return approval_chase(
        policy,
        category=change.draft.category,
        risk=change.risk,
        since=now if voided else change.created_at,
        starts_at=starts_at,
        ends_at=ends_at,
        now=now,
    )


def settle_approval_chase(
    change: Change, notice: DueNotice, *, now: datetime, policy: Policy
) -> NoticeSettlement:
    """A reminder, the deadline or the window's start while the change still waits for
    approval: sent and audited (at the deadline, escalated); else skipped."""
    if change.status is not Status.PENDING_APPROVAL:
        return skipped(
            change, notice, now=now, reason=f"the change is {change.status.value.replace('_', ' ')}"
        )
    if notice.expires_at is not None and now >= notice.expires_at:
        return skipped(
            change, notice, now=now, reason=f"its moment passed at {notice.expires_at.isoformat()}"
        )
    late = is_late(notice, now=now, policy=policy)
    audit = late_audit(notice, now=now, late=late)
    payload = ApprovalChase(key=notice.key, due_at=change.approval_due_at or notice.due_at, late=late)
    intents: list[Intent]
    if notice.key == UNAPPROVED_START:
        audit.append(
            AuditEntry(SYSTEM_ACTOR, AuditAction.UNAPPROVED_AT_START, now, {"told": change.requester})
        )
        intents = [
            Intent(
                IntentKind.MESSAGE,
                change.id,
                change.requester,
                payload,
                dedupe_key=f"notice:{notice.id}:requester",
            )
        ]
    else:
        intents = [
            Intent(IntentKind.DM_APPROVERS, change.id, None, payload, dedupe_key=f"notice:{notice.id}:dm")
        ]
        if notice.key == APPROVAL_DEADLINE:
            role = policy.approvals.deadline.escalate_to
            details = {"due_at": payload.due_at.isoformat(), "escalated_to": role}
            audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.APPROVAL_OVERDUE, now, details))
            if role is not None:
                intents.append(escalation(change, notice, payload, role=role))
            intents.append(Intent(IntentKind.REFRESH_CARDS, change.id))
        else:
            details = {"notice": notice.key, "due_at": payload.due_at.isoformat()}
            audit.append(AuditEntry(SYSTEM_ACTOR, AuditAction.APPROVAL_REMINDED, now, details))
    return NoticeSettlement(
        notice.id, change.id, sent=True, late=late, note=None, audit=audit, intents=intents
    )


def with_rule_steps(
    policy: Policy, steps: tuple[StepSnapshot, ...], *, draft: ChangeDraft, risk: Risk
) -> tuple[StepSnapshot, ...]:
    """`steps` and the review steps the policy's rules add for this change (none for a
    pre-approved standard change: following its procedure needs no approval)."""
    if draft.catalog_id:
        return steps
    rules = extra_steps_for(
        policy.approvals.extra_steps,
        services=draft.services,
        category=draft.category,
        risk=risk,
        roles_already=[step.role for step in steps],
    )
    added = tuple(
        StepSnapshot(rule.role, rule.count, tuple(policy.roles[rule.role]), purpose="rule") for rule in rules
    )
    return steps + added
