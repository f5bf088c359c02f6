"""The change timeline: which notices a change gets and when, and whether a notice that
comes due (perhaps late, after downtime) is still worth sending."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.enums import Status
from domain.policy import NoticeSpec, Timeline

SHORT_NOTICE = "short_notice"
OVERRUN = "overrun"
MONITORING_END = "monitoring_end"
REVIEW_REMINDER = "review_reminder"
REVIEW_DEADLINE = "review_deadline"
# Notices that chase people rather than mark the window (emergency post-approval, reviews):
# moving or re-approving a change keeps them; its window's notices are replanned.
OUTLIVE_THE_WINDOW = ("post_", "review_")

ACTIVE = frozenset({Status.APPROVED, Status.IN_PROGRESS})


@dataclass(frozen=True)
class PlannedNotice:
    key: str
    due_at: datetime
    # After this moment the notice has lost its point and is skipped, not sent late.
    expires_at: datetime | None


@dataclass(frozen=True)
class Send:
    late: bool


@dataclass(frozen=True)
class Skip:
    reason: str


def plan_notices(
    timeline: Timeline,
    *,
    starts_at: datetime,
    ends_at: datetime,
    approved_at: datetime,
    pre_approved: bool = False,
) -> list[PlannedNotice]:
    """Notices for a change approved at `approved_at`. A pre-start notice already due at
    approval is not planned; one short-notice message says so instead (if the policy wants),
    but not for a pre-approved standard change: nobody held it up, nothing went out late."""
    planned: list[PlannedNotice] = []
    missed = False
    for spec in timeline.notices:
        due = starts_at + spec.at
        if spec.at < timedelta(0) and due <= approved_at:
            missed = True
            continue
        planned.append(PlannedNotice(spec.id, due, _expiry(spec, starts_at=starts_at, ends_at=ends_at)))
    if missed and timeline.short_notice and not pre_approved and approved_at < starts_at:
        planned.append(PlannedNotice(SHORT_NOTICE, approved_at, starts_at))
    if timeline.overrun_alert:
        planned.append(PlannedNotice(OVERRUN, ends_at, None))
    return sorted(planned, key=lambda notice: (notice.due_at, notice.key))


def _expiry(spec: NoticeSpec, *, starts_at: datetime, ends_at: datetime) -> datetime:
    """Before-start notices are pointless once the change started; the rest once it ended."""
    return starts_at if spec.at < timedelta(0) else max(ends_at, starts_at + spec.at + timedelta(minutes=1))


def verdict(
    *,
    key: str,
    due_at: datetime,
    expires_at: datetime | None,
    status: Status,
    now: datetime,
    late_after: timedelta,
) -> Send | Skip:
    if key == MONITORING_END:
        if status is not Status.COMPLETED:
            return Skip(f"the change is {status.value.replace('_', ' ')}")
    elif status not in ACTIVE:
        return Skip(f"the change is {status.value.replace('_', ' ')}")
    if expires_at is not None and now >= expires_at:
        return Skip(f"its moment passed at {expires_at.isoformat()} (the bot was down or busy)")
    return Send(late=now - due_at > late_after)


def spec_for(timeline: Timeline, key: str) -> NoticeSpec | None:
    return next((spec for spec in timeline.notices if spec.id == key), None)
