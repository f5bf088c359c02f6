"""Who may do what to a change besides approving it: separation of duties and incident links.

Plain rules over plain values; the service resolves role members (I/O) and audits refusals.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from domain.enums import Category, Status
from domain.model import SYSTEM_ACTOR, AuditAction, AuditEntry, Change, Phase
from domain.policy import Policy

# A change can only have caused an incident once someone started carrying it out.
STARTED_STATUSES = frozenset(
    {Status.IN_PROGRESS, Status.COMPLETED, Status.FAILED, Status.ROLLED_BACK, Status.CLOSED}
)


def barred_implementer(change: Change, policy: Policy) -> str | None:
    """The implementer when the policy keeps them from deciding on their own change."""
    return None if policy.approvals.implementer_may_approve else change.implementer


def deciders_excluded(change: Change, policy: Policy) -> set[str]:
    """Who is never offered the Approve button: the requester, and the implementer unless allowed."""
    barred = barred_implementer(change, policy)
    return {change.requester} | ({barred} if barred else set())


def incident_refusal(*, change: Change, user: str, in_incident_role: bool, policy: Policy) -> str | None:
    """Why `user` may not mark `change` as the cause of an incident (None: they may).

    A wrong link counts a change failure in the metrics and asks for a review, so only the
    people who own the change or handle incidents may make it, and only once it started.
    """
    if user not in (change.requester, change.implementer) and not in_incident_role:
        who = ", ".join(["the requester", "the implementer", *policy.incident_roles])
        return f"only {who} can link {change.id} to an incident"
    started = change.status in STARTED_STATUSES and (
        change.status is not Status.CLOSED or change.started_at is not None
    )
    if not started:
        state = change.status.value.replace("_", " ")
        return f"{change.id} is {state} and never started, so it cannot have caused an incident"
    return None


def before_start_refusal(
    change: Change, user: str, *, verb: str, also: frozenset[Status] = frozenset()
) -> str | None:
    """Why `user` may not `verb` (reschedule, cancel) `change`: only its requester or its
    implementer may, and only while it is waiting for approval or approved, or in one of
    the statuses `also` names (None: they may)."""
    if user not in (change.requester, change.implementer):
        return f"only the requester or the implementer can {verb} it"
    if change.status not in (Status.PENDING_APPROVAL, Status.APPROVED, *also):
        return f"the change is {change.status.value.replace('_', ' ')}"
    return None


def voids_approval(change: Change, starts_at: datetime, ends_at: datetime, keep_within: timedelta) -> bool:
    """Does moving `change` to [starts_at, ends_at) void the approvals it has?

    An approval binds to the window it was given for. Pre-approved changes (no steps) stay
    approved; emergencies too: their post-approval judges what was actually done and when.
    A shift of both ends by at most `keep_within` (the policy's small-move allowance) keeps them.
    """
    if change.draft.category is Category.EMERGENCY or not change.steps:
        return False
    if not any(entry.phase is Phase.PRE for entry in change.approvals):
        return False
    shift = max(abs(starts_at - change.draft.starts_at), abs(ends_at - change.draft.ends_at))
    return shift > keep_within


def voided_entry(change: Change, at: datetime) -> AuditEntry:
    """The audit line for approvals a move voided: who had decided, for which window."""
    decided = [entry.user for entry in change.approvals if entry.phase is Phase.PRE]
    window = [change.draft.starts_at.isoformat(), change.draft.ends_at.isoformat()]
    return AuditEntry(
        SYSTEM_ACTOR,
        AuditAction.APPROVALS_VOIDED,
        at,
        {"approvers": decided, "window": window, "was": change.status.value},
    )
