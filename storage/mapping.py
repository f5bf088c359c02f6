"""Rows back into domain values: a CR from its row and its approval, audit and review rows,
and the CR a new change becomes once numbered. Pure (no database), so the in-memory
repository of the tests builds the same values."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.enums import Category, Decision, Impact, Likelihood, Risk, Status
from domain.model import (
    ApprovalEntry,
    AuditAction,
    AuditEntry,
    Change,
    ChangeDraft,
    ChangeSource,
    NewChange,
    Phase,
    PostState,
    Review,
    StepSnapshot,
)


def steps_json(steps: Sequence[StepSnapshot]) -> list[dict[str, Any]]:
    return [
        {"role": s.role, "count": s.count, "members": list(s.members), "purpose": s.purpose} for s in steps
    ]


def steps_from(raw: Sequence[dict[str, Any]] | None) -> tuple[StepSnapshot, ...]:
    return tuple(
        StepSnapshot(
            role=s["role"], count=int(s["count"]), members=tuple(s["members"]), purpose=s.get("purpose", "")
        )
        for s in raw or ()
    )


def approved_at(change: NewChange) -> datetime | None:
    """A change created already approved (standard changes) was approved when created."""
    return change.created_at if change.status is Status.APPROVED else None


def numbered(change_id: str, change: NewChange, *, audit: Sequence[AuditEntry] = ()) -> Change:
    """The CR a new change becomes under its number: version 1, never updated yet."""
    return Change(
        id=change_id,
        draft=change.draft,
        risk=change.risk,
        status=change.status,
        requester=change.requester,
        version=1,
        created_at=change.created_at,
        updated_at=change.created_at,
        steps=change.steps,
        audit=tuple(audit),
        approved_at=approved_at(change),
        post_state=change.post_state,
        post_due_at=change.post_due_at,
        post_steps=change.post_steps,
        conflicts=change.conflicts,
        approval_due_at=change.approval_due_at,
    )


def to_change(
    row: Any,
    approvals: Sequence[Any],
    audit: Sequence[Any],
    review: Any | None = None,
) -> Change:
    """A CR from its row and its approval, audit and review rows: ORM objects or Core
    rows of the same tables alike (both read by column name)."""
    entries = [
        ApprovalEntry(a.user_id, Decision(a.decision), a.step_index, a.decided_at, a.reason, Phase(a.phase))
        for a in approvals
    ]
    return Change(
        id=row.id,
        draft=ChangeDraft(
            title=row.title,
            category=Category(row.category),
            impact=Impact(row.impact),
            likelihood=Likelihood(row.likelihood),
            services=tuple(row.services),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            description=row.description,
            justification=row.justification,
            implementation_plan=row.implementation_plan,
            rollback_plan=row.rollback_plan,
            test_plan=row.test_plan,
            downtime_minutes=row.downtime_minutes,
            catalog_id=row.catalog_id,
            implementer=row.implementer,
            severity=row.severity,
            incident_ref=row.incident_ref,
            source=ChangeSource(row.source_kind, row.source_url, row.source_ref) if row.source_kind else None,
            links=tuple(row.links or ()),
            success_criteria=row.success_criteria or "",
            dependencies=row.dependencies or "",
            stakeholders=tuple(row.stakeholders or ()),
            rollback_minutes=row.rollback_minutes,
            rollback_triggers=row.rollback_triggers or "",
        ),
        risk=Risk(row.risk),
        status=Status(row.status),
        requester=row.requester,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        steps=steps_from(row.steps),
        approvals=tuple(e for e in entries if e.phase is Phase.PRE),
        post_approvals=tuple(e for e in entries if e.phase is Phase.POST),
        audit=tuple(AuditEntry(a.actor, AuditAction(a.action), a.at, a.details) for a in audit),
        approved_at=row.approved_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome_notes=row.outcome_notes,
        post_state=PostState(row.post_state) if row.post_state else None,
        post_due_at=row.post_due_at,
        post_steps=steps_from(row.post_steps),
        conflicts=tuple(row.conflicts or ()),
        caused_incident=row.caused_incident,
        review=Review(
            review.requested_at,
            review.due_at,
            review.reason,
            review.submitted_at,
            review.submitted_by,
            review.answers,
        )
        if review
        else None,
        approval_due_at=row.approval_due_at,
    )
