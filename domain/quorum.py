"""Quorum: who may decide a CR, which step their approval fills, when a CR is decided.

Pure functions over a snapshot; the storage layer makes the resulting write
conditional on the snapshot's version, so concurrent clicks are decided one at a time.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from enum import StrEnum

from domain.enums import Decision, Status
from domain.model import ApprovalEntry, StepSnapshot


class Refusal(StrEnum):
    NOT_PENDING = "not_pending"
    OWN_REQUEST = "own_request"
    OWN_IMPLEMENTATION = "own_implementation"
    ALREADY_DECIDED = "already_decided"
    NOT_ELIGIBLE = "not_eligible"
    STEPS_COMPLETE = "steps_complete"


REFUSAL_TEXT: dict[Refusal, str] = {
    Refusal.NOT_PENDING: "this change is no longer waiting for approval",
    Refusal.OWN_REQUEST: "you requested this change, so you cannot approve or reject it",
    Refusal.OWN_IMPLEMENTATION: "you implement this change, so you cannot approve or reject it",
    Refusal.ALREADY_DECIDED: "you have already decided on this change",
    Refusal.NOT_ELIGIBLE: "you are not an approver for any step of this change",
    Refusal.STEPS_COMPLETE: "the approval steps you can sign are already complete",
}


@dataclass(frozen=True)
class Accepted:
    step_index: int
    new_status: Status


def approvals_per_step(steps: Sequence[StepSnapshot], approvals: Sequence[ApprovalEntry]) -> list[int]:
    counts = [0] * len(steps)
    for entry in approvals:
        if entry.decision is Decision.APPROVE and 0 <= entry.step_index < len(steps):
            counts[entry.step_index] += 1
    return counts


def open_steps(steps: Sequence[StepSnapshot], approvals: Sequence[ApprovalEntry]) -> list[int]:
    counts = approvals_per_step(steps, approvals)
    return [i for i, step in enumerate(steps) if counts[i] < step.count]


def is_fully_approved(steps: Sequence[StepSnapshot], approvals: Sequence[ApprovalEntry]) -> bool:
    return not open_steps(steps, approvals)


def decide(
    *,
    status: Status,
    requester: str,
    steps: Sequence[StepSnapshot],
    approvals: Sequence[ApprovalEntry],
    user: str,
    eligible_steps: Collection[int],
    decision: Decision,
    implementer: str | None = None,
) -> Accepted | Refusal:
    """Decide whether `user` may record `decision`, and what it does to the CR.

    `eligible_steps` are the indexes of the steps whose role `user` belongs to
    (resolving user groups is I/O, so the caller does it). `implementer` is the one who
    carries the change out, when the policy keeps them from deciding on it (separation
    of duties); None when it lets them.
    """
    if status is not Status.PENDING_APPROVAL:
        return Refusal.NOT_PENDING
    if user == requester:
        return Refusal.OWN_REQUEST
    if implementer is not None and user == implementer:
        return Refusal.OWN_IMPLEMENTATION
    if any(entry.user == user for entry in approvals):
        return Refusal.ALREADY_DECIDED
    if not eligible_steps:
        return Refusal.NOT_ELIGIBLE
    still_open = [i for i in open_steps(steps, approvals) if i in eligible_steps]
    if not still_open:
        return Refusal.STEPS_COMPLETE
    step_index = still_open[0]
    if decision is Decision.REJECT:
        return Accepted(step_index, Status.REJECTED)
    counts = approvals_per_step(steps, approvals)
    counts[step_index] += 1
    done = all(counts[i] >= step.count for i, step in enumerate(steps))
    return Accepted(step_index, Status.APPROVED if done else Status.PENDING_APPROVAL)
