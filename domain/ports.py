"""What the use cases need from the outside, as Protocols, and the values that cross
them: storage implements ChangeRepository, the Slack adapter Directory and Notifier."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

from domain.calendar_policy import Freeze
from domain.delegation import Delegation
from domain.enums import Risk, Status
from domain.intents import Intent
from domain.model import (
    ApprovalEntry,
    AuditEntry,
    Change,
    ChangeDraft,
    NewChange,
    PostState,
    Review,
    StepSnapshot,
)
from domain.timeline import (
    PlannedNotice,
)


class ListScope(StrEnum):
    MINE = "mine"
    PENDING = "pending"
    UPCOMING = "upcoming"
    IN_PROGRESS = "in-progress"
    OVERDUE = "overdue"
    POST_OVERDUE = "post-overdue"


@dataclass(frozen=True)
class ChangeQuery:
    requester: str | None = None
    statuses: tuple[Status, ...] = ()
    starts_from: datetime | None = None
    starts_before: datetime | None = None
    ends_before: datetime | None = None
    ends_after: datetime | None = None
    post_states: tuple[PostState, ...] = ()
    risks: tuple[Risk, ...] = ()
    limit: int = 20
    offset: int = 0
    with_approvals: bool = True  # False: the CRs' approvals are not needed (cheaper)


@dataclass(frozen=True)
class ChangeUpdate:
    """One conditional write to a CR: new status, moved times, a decision, notices."""

    at: datetime
    status: Status | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    approved_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome_notes: str | None = None
    approval: ApprovalEntry | None = None
    post_state: PostState | None = None
    steps: tuple[StepSnapshot, ...] | None = None  # e.g. the on-call, once PagerDuty answered
    conflicts: tuple[str, ...] | None = None
    caused_incident: str | None = None
    request_review: Review | None = None  # store a review request (ignored if one exists)
    replace_notices: Sequence[PlannedNotice] | None = None  # drop pending ones, plan these
    add_notices: Sequence[PlannedNotice] = ()
    drop_notices: bool = False
    void_approvals: bool = False  # drop the pre-approvals and approved_at (the window moved)
    draft: ChangeDraft | None = None  # the CR as edited: every field of the form (its source kept)
    risk: Risk | None = None  # scored again for an edited draft
    approval_due_at: datetime | None = None  # the approval deadline, planned again (moved, voided)


@dataclass(frozen=True)
class DueNotice:
    id: int
    change_id: str
    key: str
    due_at: datetime
    expires_at: datetime | None


@dataclass(frozen=True)
class NoticeSettlement:
    """What became of one claimed notice: sent (with its posts) or skipped (with why)."""

    notice_id: int
    change_id: str
    sent: bool
    late: bool
    note: str | None
    audit: Sequence[AuditEntry]
    intents: Sequence[Intent]
    post_state: PostState | None = None  # move the CR's post-approval state too (guarded)


class ChangeRepository(Protocol):
    async def create_change(
        self,
        change: NewChange,
        *,
        audit: Sequence[AuditEntry],
        intents: Callable[[str], Sequence[Intent]],
        notices: Sequence[PlannedNotice] = (),
    ) -> Change:
        """Allocate the next CR id, store the CR with its audit and the intents made
        for that id, all in one transaction."""
        ...

    async def next_notice_due(self) -> datetime | None: ...

    async def schedule_context(
        self, *, start: datetime, end: datetime, others: ChangeQuery
    ) -> tuple[list[Freeze], list[Change]]: ...

    async def get_change(self, change_id: str, *, history: bool = True) -> Change | None:
        """history=False: only the audit entries in CARD_AUDIT_ACTIONS (cheaper)."""
        ...

    async def update_change(
        self,
        *,
        change_id: str,
        expected_version: int,
        update: ChangeUpdate,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool:
        """Apply `update` only if the CR is still at `expected_version` (and, for a
        decision, the user has not decided yet); False means someone else won the race."""
        ...

    async def claim_due_notices(self, *, now: datetime, limit: int, lease: timedelta) -> list[DueNotice]: ...

    async def settle_notices(self, settlements: Sequence[NoticeSettlement], *, now: datetime) -> int:
        """Settle claimed notices with what they send, in one transaction. A notice no
        longer held, or whose post-approval state moved meanwhile, is left as it is (it is
        judged again after its lease). Returns how many were settled."""
        ...

    async def get_changes(self, change_ids: Sequence[str]) -> dict[str, Change]:
        """Many CRs at once, each with only the audit entries its card shows."""
        ...

    async def claim_job_run(
        self, *, job: str, period: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> bool:
        """Run a cron period's work once across restarts and replicas: True for the first caller."""
        ...

    async def record_first_job_run(self, *, job: str, period: str, now: datetime) -> bool:
        """If `job` never ran on this database, record `period` as run (posting nothing): True."""
        ...

    async def append_audit(self, change_id: str | None, entry: AuditEntry) -> None: ...

    async def add_intents(self, intents: Sequence[Intent], *, now: datetime) -> None: ...

    async def freezes(self, *, start: datetime, end: datetime) -> list[Freeze]: ...

    async def home_opened(self, *, user: str, now: datetime, intents: Sequence[Intent]) -> None: ...

    async def submit_review(
        self,
        *,
        change_id: str,
        user: str,
        answers: dict[str, Any],
        now: datetime,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
    ) -> bool: ...

    async def review_counts(self, *, start: datetime, end: datetime) -> tuple[int, int]: ...

    async def overdue_reviews(self, *, now: datetime) -> list[str]: ...

    async def caused_incidents(self, ids: Sequence[str]) -> list[str]: ...

    async def changes_with_history(self, *, start: datetime, end: datetime) -> list[Change]: ...

    async def start_freeze(
        self,
        *,
        reason: str,
        user: str,
        now: datetime,
        audit: Sequence[AuditEntry],
        intents: Sequence[Intent],
        until: datetime | None = None,
    ) -> Freeze | None:
        """None when a freeze is on (one with an end is on until then); `until`: it ends then."""
        ...

    async def close_due_freezes(
        self, *, now: datetime, closing: Callable[[Freeze], tuple[list[AuditEntry], list[Intent]]]
    ) -> list[Freeze]:
        """The freezes whose declared end has come and was not yet marked, each marked
        ended with the audit and intents `closing` gives it, in one transaction; a freeze
        goes to one caller only."""
        ...

    async def end_freeze(
        self, *, user: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Freeze | None: ...

    async def list_changes(self, query: ChangeQuery) -> list[Change]: ...

    async def delegations(self, *, now: datetime) -> list[Delegation]:
        """The delegations in force at `now`, oldest first."""
        ...

    async def start_delegation(
        self, delegation: Delegation, *, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> None:
        """Store `delegation`, ending the delegator's earlier one, with its audit and intents."""
        ...

    async def end_delegation(
        self, *, delegator: str, now: datetime, audit: Sequence[AuditEntry], intents: Sequence[Intent]
    ) -> Delegation | None:
        """End the delegator's delegation in force (audit and intents stored with it);
        None, with nothing written, when there is none."""
        ...

    async def count_changes(self, query: ChangeQuery) -> int:
        """How many CRs match (limit and offset ignored): a COUNT, nothing loaded."""
        ...


class Directory(Protocol):
    async def expand(self, refs: Sequence[str]) -> frozenset[str]:
        """User ids for a mix of user ids and user-group ids."""
        ...

    async def time_zone(self, user: str) -> str | None:
        """The user's Slack time zone (an IANA name), None when Slack cannot say."""
        ...


class Notifier(Protocol):
    def wake(self) -> None:
        """New intents are stored: dispatch soon rather than at the next tick."""
        ...
