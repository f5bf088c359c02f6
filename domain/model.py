"""Plain values the domain works on; storage maps its rows to and from these."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status

SYSTEM_ACTOR = "changebot"


@dataclass(frozen=True)
class ChangeSource:
    """Where a pipeline-filed change came from, so a reader can open the run that asked:
    `kind` (github, gitlab, argocd, api), the run's `url`, the `ref` it deploys."""

    kind: str
    url: str | None = None
    ref: str | None = None

    @property
    def web_url(self) -> str | None:
        """The URL when a browser may open it (http or https), else None."""
        url = self.url or ""
        return url if url.lower().startswith(("https://", "http://")) else None


@dataclass(frozen=True)
class ChangeDraft:
    """A validated change request as the requester filed it."""

    title: str
    category: Category
    impact: Impact
    likelihood: Likelihood
    services: tuple[str, ...]
    starts_at: datetime
    ends_at: datetime
    description: str
    justification: str = ""
    implementation_plan: str = ""
    rollback_plan: str = ""
    test_plan: str = ""
    downtime_minutes: int = 0
    catalog_id: str | None = None
    implementer: str | None = None  # who carries it out; the requester when not named
    severity: str | None = None  # emergencies: the incident's severity (P0, P1, …)
    incident_ref: str | None = None  # emergencies: incident id or link
    source: ChangeSource | None = None  # filed by a pipeline; None when filed through the form
    # The template's further fields (process 002): all optional unless the policy requires them.
    links: tuple[str, ...] = ()  # PRs, tickets, runbooks, dashboards: http(s) URLs
    success_criteria: str = ""
    dependencies: str = ""  # on other systems, teams or changes
    stakeholders: tuple[str, ...] = ()  # Slack users and channels told at T-24h and on completion
    rollback_minutes: int | None = None  # how long a rollback takes
    rollback_triggers: str = ""  # when to roll back, besides the policy's triggers


@dataclass(frozen=True)
class StepSnapshot:
    """An approval step copied from the policy at submission, so later policy edits
    never change what an open CR needs. `members` are user ids and user-group ids."""

    role: str
    count: int
    members: tuple[str, ...]
    purpose: str = ""  # "exception": the extra step for a change outside its window; "rule": added by a rule


class Phase(StrEnum):
    PRE = "pre"  # approval before the change
    POST = "post"  # an emergency's post-approval


class PostState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    OVERDUE = "overdue"
    NOT_NEEDED = "not_needed"  # the go-ahead was refused: nothing was done to approve


@dataclass(frozen=True)
class ApprovalEntry:
    user: str
    decision: Decision
    step_index: int
    at: datetime
    reason: str = ""
    phase: Phase = Phase.PRE


class AuditAction(StrEnum):
    SUBMITTED = "submitted"
    AUTO_APPROVED = "auto_approved"
    APPROVAL_RECORDED = "approval_recorded"
    APPROVED = "approved"
    REJECTED = "rejected"
    DECISION_REFUSED = "decision_refused"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CLOSED = "closed"
    CANCELLED = "cancelled"
    RESCHEDULED = "rescheduled"
    ACTION_REFUSED = "action_refused"
    NOTICE_SKIPPED = "notice_skipped"
    NOTICE_SENT_LATE = "notice_sent_late"
    NOTICE_SENT = "notice_sent"  # a timeline notice or chase went out on time
    DIGEST_POSTED = "digest_posted"
    EMERGENCY_DECLARED = "emergency_declared"
    ON_CALL_RESOLVED = "on_call_resolved"
    ON_CALL_ACKNOWLEDGED = "on_call_acknowledged"  # the on-call saw an emergency needing no go-ahead
    POST_APPROVAL_RECORDED = "post_approval_recorded"
    POST_APPROVED = "post_approved"
    POST_REJECTED = "post_rejected"
    POST_APPROVAL_OVERDUE = "post_approval_overdue"
    EXCEPTION_REQUESTED = "exception_requested"
    REVIEW_REQUESTED = "review_requested"
    REVIEW_SUBMITTED = "review_submitted"
    REVIEW_OVERDUE = "review_overdue"
    INCIDENT_LINKED = "incident_linked"
    CAB_AGENDA_POSTED = "cab_agenda_posted"
    REPORT_POSTED = "report_posted"
    FREEZE_STARTED = "freeze_started"
    FREEZE_ENDED = "freeze_ended"
    START_OVERRIDDEN = "start_overridden"
    APPROVALS_VOIDED = "approvals_voided"
    GATE_ANSWERED = "gate_answered"  # a pipeline asked a change's gate: each distinct answer
    GATE_CALLBACK = "gate_callback"  # a deployment waiting at the gate was answered (GitHub's result)
    EDITED = "edited"  # the requester corrected the CR: its diff, and whether it went back for approval
    CHANGES_REQUESTED = "changes_requested"  # an approver sent it back with a comment
    APPROVAL_REMINDED = "approval_reminded"  # the approvers who had not answered were reminded
    APPROVAL_OVERDUE = "approval_overdue"  # past its approval deadline: escalated
    UNAPPROVED_AT_START = "unapproved_at_start"  # the window opened unapproved: the requester told
    DELEGATED = "delegated"  # an approver away handed their approvals to another member
    DELEGATION_ENDED = "delegation_ended"


# The audit entries a card shows. Everything else in the trail is read only by
# `/change show`, the CLI and reports, so ordinary loads leave it in the database.
CARD_AUDIT_ACTIONS = frozenset(
    {
        AuditAction.EXCEPTION_REQUESTED,
        AuditAction.ON_CALL_RESOLVED,
        AuditAction.ON_CALL_ACKNOWLEDGED,
        AuditAction.START_OVERRIDDEN,
        AuditAction.EDITED,
        AuditAction.CHANGES_REQUESTED,
        AuditAction.APPROVAL_OVERDUE,
    }
)


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    action: AuditAction
    at: datetime
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Review:
    """A post-implementation review: asked for, then written (seed 003's template)."""

    requested_at: datetime
    due_at: datetime
    reason: str
    submitted_at: datetime | None = None
    submitted_by: str | None = None
    answers: dict[str, Any] | None = None

    @property
    def done(self) -> bool:
        return self.submitted_at is not None


@dataclass(frozen=True)
class Change:
    id: str
    draft: ChangeDraft
    risk: Risk
    status: Status
    requester: str
    version: int
    created_at: datetime
    updated_at: datetime
    steps: tuple[StepSnapshot, ...]
    approvals: tuple[ApprovalEntry, ...] = ()
    audit: tuple[AuditEntry, ...] = ()
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome_notes: str = ""
    post_state: PostState | None = None
    post_due_at: datetime | None = None
    post_steps: tuple[StepSnapshot, ...] = ()
    post_approvals: tuple[ApprovalEntry, ...] = ()
    conflicts: tuple[str, ...] = ()
    caused_incident: str | None = None
    review: Review | None = None
    approval_due_at: datetime | None = None  # chased until approved by then (policy approvals.deadline)

    @property
    def post_approval_open(self) -> bool:
        return self.post_state in (PostState.PENDING, PostState.OVERDUE)

    @property
    def implementer(self) -> str:
        return self.draft.implementer or self.requester


@dataclass(frozen=True)
class NewChange:
    """What the service asks storage to persist; storage assigns the id."""

    draft: ChangeDraft
    risk: Risk
    status: Status
    requester: str
    created_at: datetime
    steps: tuple[StepSnapshot, ...]
    post_state: PostState | None = None
    post_due_at: datetime | None = None
    post_steps: tuple[StepSnapshot, ...] = ()
    conflicts: tuple[str, ...] = ()
    approval_due_at: datetime | None = None


def format_change_id(year: int, sequence: int) -> str:
    return f"CR-{year}-{sequence:04d}"
