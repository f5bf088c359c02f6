"""Vocabulary shared by the policy, the lifecycle and the UI."""

from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    STANDARD = "standard"
    NORMAL = "normal"
    MAJOR = "major"
    EMERGENCY = "emergency"


class Impact(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Likelihood(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Status(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"
    CLOSED = "closed"
    CHANGES_REQUESTED = "changes_requested"  # an approver sent it back to its requester to edit


class Decision(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
